"""The statement cache and the catalog lookup cache never serve a stale answer.

A repeated query reuses its compiled form only while every table and view it resolved is
unchanged: commits (from this handle, another handle, another process), DDL, branch moves and
views replaced or dropped must all be seen by the next statement; parameters rebind.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wharf
from wharf.principal import Principal
from wharf.sql import statement_cache

QUERY = "SELECT id, v FROM t ORDER BY id"


def rows(lake: wharf.Lakehouse, sql: str, params: list | dict | None = None) -> list[tuple]:
    return [tuple(r) for r in lake.sql(sql, params).fetchall()]


@pytest.fixture
def t(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE TABLE t (id BIGINT, v VARCHAR)")
    lake.sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    return lake


def test_repeated_query_is_served_from_the_cache(t: wharf.Lakehouse) -> None:
    statement_cache.clear()
    assert rows(t, QUERY) == [(1, "a"), (2, "b")]
    assert len(statement_cache._cache) == 1
    compiled = next(iter(statement_cache._cache.values()))
    assert rows(t, QUERY) == [(1, "a"), (2, "b")]
    assert next(iter(statement_cache._cache.values())) is compiled  # reused, not recompiled


def test_commit_by_another_handle_is_seen(t: wharf.Lakehouse, tmp_path: Path) -> None:
    assert rows(t, QUERY) == [(1, "a"), (2, "b")]
    with wharf.connect(tmp_path / "lake", user="tester") as other:  # another runtime: own catalog, own caches
        other.sql("INSERT INTO t VALUES (3, 'c')")
    assert rows(t, QUERY) == [(1, "a"), (2, "b"), (3, "c")]


def test_commit_by_another_process_is_seen(t: wharf.Lakehouse, tmp_path: Path) -> None:
    assert rows(t, QUERY) == [(1, "a"), (2, "b")]
    script = textwrap.dedent(
        f"""
        import wharf
        with wharf.connect({str(tmp_path / "lake")!r}, user="tester") as lake:
            lake.sql("DELETE FROM t WHERE id = 1")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert rows(t, QUERY) == [(2, "b")]


def test_ddl_invalidates(t: wharf.Lakehouse) -> None:
    assert rows(t, "SELECT * FROM t ORDER BY id") == [(1, "a"), (2, "b")]
    t.sql("ALTER TABLE t ADD COLUMN w INT")
    assert rows(t, "SELECT * FROM t ORDER BY id") == [(1, "a", None), (2, "b", None)]
    t.sql("DROP TABLE t")
    with pytest.raises(wharf.errors.NotFound):
        t.sql("SELECT * FROM t ORDER BY id")
    t.sql("CREATE TABLE t (id BIGINT, v VARCHAR)")
    assert rows(t, "SELECT * FROM t ORDER BY id") == []


def test_branch_move_invalidates(t: wharf.Lakehouse) -> None:
    t.sql("ALTER TABLE t CREATE BRANCH dev")
    query = "SELECT id FROM t.branch_dev ORDER BY id"
    assert rows(t, query) == [(1,), (2,)]
    t.sql("INSERT INTO t.branch_dev VALUES (9, 'z')")
    assert rows(t, query) == [(1,), (2,), (9,)]
    assert rows(t, "SELECT id FROM t ORDER BY id") == [(1,), (2,)]
    t.sql("SET wharf.branch = dev")
    assert rows(t, "SELECT id FROM t ORDER BY id") == [(1,), (2,), (9,)]  # the session branch is part of the key


def test_view_replaced_or_shadowed_is_seen(t: wharf.Lakehouse) -> None:
    t.sql("CREATE VIEW v AS SELECT id FROM t WHERE id = 1")
    assert rows(t, "SELECT * FROM v") == [(1,)]
    t.sql("CREATE OR REPLACE VIEW v AS SELECT id FROM t WHERE id = 2")
    assert rows(t, "SELECT * FROM v") == [(2,)]
    t.sql("DROP VIEW v")
    t.sql("CREATE TABLE v (id BIGINT)")
    t.sql("INSERT INTO v VALUES (7)")
    assert rows(t, "SELECT * FROM v") == [(7,)]


def test_parameters_rebind(t: wharf.Lakehouse) -> None:
    t.sql("INSERT INTO t VALUES (3, 'c'), (4, NULL)")
    sql = "SELECT v FROM t WHERE id = ? OR v = ? ORDER BY v"
    assert rows(t, sql, [1, "b"]) == [("a",), ("b",)]
    assert rows(t, sql, [3, "zz"]) == [("c",)]
    assert rows(t, sql, [-1, None]) == []
    named = "SELECT id FROM t WHERE id >= $lo AND id < $hi ORDER BY id"
    assert rows(t, named, {"lo": 2, "hi": 4}) == [(2,), (3,)]
    assert rows(t, named, {"lo": 1, "hi": 2}) == [(1,)]
    with pytest.raises(wharf.errors.InvalidArgument, match="Fewer parameters"):
        t.sql(sql, [1])
    with pytest.raises(wharf.errors.InvalidArgument, match=r"\$hi"):
        t.sql(named, {"lo": 1})


def test_parameter_lookup_prunes_files_for_each_value(t: wharf.Lakehouse) -> None:
    for start in (10, 20, 30):
        t.sql(f"INSERT INTO t SELECT range, 'x' FROM range({start}, {start + 5})")
    reads: list[int | None] = []
    t.events.subscribe("on_statement", lambda e: reads.extend(r.files for r in e.inputs))
    assert rows(t, "SELECT id FROM t WHERE id = ?", [21]) == [(21,)]
    assert rows(t, "SELECT id FROM t WHERE id = ?", [32]) == [(32,)]
    assert rows(t, "SELECT id FROM t WHERE id = ?", [1]) == [(1,)]
    assert reads == [1, 1, 1]


def test_principals_do_not_share_compiled_statements(t: wharf.Lakehouse) -> None:
    def only_odd(principal: Principal, reference: object) -> object:
        from sqlglot import exp

        from wharf.sql.policy import ReferencePolicy

        if principal.name != "bob":
            return None
        return ReferencePolicy(row_filter=exp.condition("id % 2 = 1"))

    only_odd.cache_version = 1  # type: ignore[attr-defined]
    t.add_policy(only_odd)
    t.sql("GRANT SELECT ON CATALOG TO USER bob")
    assert rows(t, QUERY) == [(1, "a"), (2, "b")]
    assert rows(t.session("bob"), QUERY) == [(1, "a")]
    assert rows(t, QUERY) == [(1, "a"), (2, "b")]


def test_compiled_reads_come_from_the_cache_and_follow_commits(t: wharf.Lakehouse) -> None:
    """``Lakehouse.compiled_reads``: what a cached query reads, without compiling it (the HTTP result cache's key)."""
    statement_cache.clear()
    assert t.compiled_reads(QUERY) is None  # never compiled: nothing to say
    result = t.sql(QUERY)
    first = t.table("t").current_snapshot_id()
    assert [(r.table, r.snapshot_id) for r in result.reads] == [("default.t", first)]
    reads = t.compiled_reads(QUERY)
    assert reads is not None and reads.tables == (("default.t", first, None),) and reads.views == ()
    t.sql("INSERT INTO t VALUES (3, 'c')")
    assert t.compiled_reads(QUERY) is None  # the commit made the compiled form stale
    t.sql(QUERY)
    second = t.compiled_reads(QUERY)
    assert second is not None and second.tables == (("default.t", t.table("t").current_snapshot_id(), None),)
    assert second.tables != reads.tables
    for uncacheable in ("SELECT id, random() FROM t", "SELECT now(), id FROM t", "INSERT INTO t VALUES (9, 'z')"):
        t.sql(uncacheable)
        assert t.compiled_reads(uncacheable) is None, uncacheable
    t.sql("CREATE VIEW clock AS SELECT current_timestamp AS at, id FROM t")  # volatile inside a view
    t.sql("SELECT * FROM clock")
    assert t.compiled_reads("SELECT * FROM clock") is None
    t.sql("CREATE VIEW recent AS SELECT * FROM t WHERE id > 1")
    t.sql("SELECT * FROM recent")
    before = t.compiled_reads("SELECT * FROM recent")
    assert before is not None and [v[0] for v in before.views] == ["default.recent"]
    t.sql("CREATE OR REPLACE VIEW recent AS SELECT * FROM t WHERE id > 2")
    assert t.compiled_reads("SELECT * FROM recent") is None
    t.sql("SELECT * FROM recent")
    after = t.compiled_reads("SELECT * FROM recent")
    assert after is not None and after.views != before.views and after.tables == before.tables


def test_interrupt_stops_a_running_statement(lake: wharf.Lakehouse) -> None:
    import threading

    from wharf.errors import ResourceExhausted

    handle = lake.session()
    assert handle.interrupt() == 0  # nothing running
    outcome: dict[str, BaseException] = {}
    started = threading.Event()

    def run() -> None:
        started.set()
        try:
            handle.sql("SELECT count(*) FROM range(100000000000) AS a WHERE a.range % 7 = 3").fetchall()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    started.wait()
    for _ in range(1200):  # DuckDB ignores an interrupt that arrives before the query starts: repeat it
        if not thread.is_alive():
            break
        handle.interrupt()
        thread.join(0.05)
    assert not thread.is_alive(), "the statement was not interrupted"
    assert isinstance(outcome.get("error"), ResourceExhausted) and "Interrupted" in str(outcome["error"])
    assert lake.sql("SELECT 1").scalar() == 1  # other handles are untouched
