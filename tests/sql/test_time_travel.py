"""Time travel and branch semantics of reads and writes: versions, timestamps, branches, tags, session branch."""

from __future__ import annotations

import datetime as dt

import pytest

import wharf
from tests.conftest import past_last_commit
from wharf.errors import InvalidArgument, NotFound

pytestmark = pytest.mark.metadata_backends  # SQLite and PostgreSQL metadata (tests/conftest.py)


def _ids(lake: wharf.Lakehouse, sql: str, **kwargs: str) -> list[int]:
    return sorted(r[0] for r in lake.sql(sql, **kwargs).fetchall())  # type: ignore[arg-type]


@pytest.fixture
def history(lake: wharf.Lakehouse) -> list[tuple[int, dt.datetime, list[int]]]:
    """Five commits on t: (snapshot id, committed_at, ids visible at that snapshot) per commit."""
    lake.sql("CREATE TABLE t (id BIGINT, v VARCHAR)")
    steps = [
        "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO t VALUES (3, 'c')",
        "INSERT OVERWRITE t SELECT id, v FROM t WHERE id <> 2",
        "INSERT INTO t SELECT range + 10, 'r' FROM range(3)",
        "INSERT OVERWRITE t SELECT 99, 'z'",
    ]
    out = []
    for step in steps:
        past_last_commit(lake, "t")  # distinct commit milliseconds, so every snapshot has its own timestamp
        lake.sql(step)
        sid = lake.table("t").current_snapshot_id()
        committed = lake.sql(f"SELECT committed_at FROM t.snapshots WHERE snapshot_id = {sid}").scalar()
        out.append((sid, committed, _ids(lake, "SELECT id FROM t")))
    return out


def test_reads_at_every_snapshot(lake: wharf.Lakehouse, history: list) -> None:
    assert [ids for _, _, ids in history] == [[1, 2], [1, 2, 3], [1, 3], [1, 3, 10, 11, 12], [99]]
    for sid, _, ids in history:
        assert _ids(lake, f"SELECT id FROM t FOR VERSION AS OF {sid}") == ids
        assert _ids(lake, f"SELECT id FROM t VERSION AS OF {sid}", dialect="spark") == ids
        assert _ids(lake, f"SELECT id FROM default.t FOR VERSION AS OF {sid}", dialect="trino") == ids
        assert sorted(lake.table("t").to_arrow(snapshot_id=sid).column("id").to_pylist()) == ids


def test_reads_at_every_timestamp(lake: wharf.Lakehouse, history: list) -> None:
    for _sid, committed, ids in history:
        at = committed.isoformat(sep=" ")
        assert _ids(lake, f"SELECT id FROM t FOR TIMESTAMP AS OF '{at}'") == ids
        assert _ids(lake, f"SELECT id FROM t TIMESTAMP AS OF '{at}'", dialect="spark") == ids
        assert sorted(lake.table("t").to_arrow(as_of=at).column("id").to_pylist()) == ids
        # just after the commit still reads it; just before reads the previous one
        later = (committed + dt.timedelta(microseconds=999)).isoformat(sep=" ")
        assert _ids(lake, f"SELECT id FROM t FOR TIMESTAMP AS OF '{later}'") == ids
    before_second = (history[1][1] - dt.timedelta(milliseconds=1)).isoformat(sep=" ")
    assert _ids(lake, f"SELECT id FROM t FOR TIMESTAMP AS OF '{before_second}'") == history[0][2]


def test_timestamp_before_the_first_snapshot(lake: wharf.Lakehouse, history: list) -> None:
    with pytest.raises(NotFound, match="has no snapshot at or before") as info:
        lake.sql("SELECT * FROM t FOR TIMESTAMP AS OF '2000-01-01 00:00:00'")
    assert "first snapshot was committed at" in str(info.value)
    with pytest.raises(InvalidArgument, match="is not a timestamp"):
        lake.sql("SELECT * FROM t FOR TIMESTAMP AS OF 'last tuesday'")


def test_two_versions_of_one_table_in_one_query(lake: wharf.Lakehouse, history: list) -> None:
    first, last = history[1][0], history[3][0]
    added = _ids(
        lake,
        f"SELECT n.id FROM t FOR VERSION AS OF {last} n "
        f"LEFT JOIN t FOR VERSION AS OF {first} o ON n.id = o.id WHERE o.id IS NULL",
    )
    assert added == [10, 11, 12]


def test_unknown_versions_and_refs(lake: wharf.Lakehouse, history: list) -> None:
    with pytest.raises(NotFound, match="Snapshot 123 does not exist"):
        lake.sql("SELECT * FROM t FOR VERSION AS OF 123")
    with pytest.raises(NotFound, match="neither a branch, a tag nor a snapshot id"):
        lake.sql("SELECT * FROM t FOR VERSION AS OF 'nope'")
    with pytest.raises(NotFound, match="Branch 'nope' does not exist"):
        lake.sql("SELECT * FROM t.branch_nope")
    with pytest.raises(NotFound, match="Tag 'nope' does not exist"):
        lake.sql("SELECT * FROM t.tag_nope")
    with pytest.raises(NotFound, match="no branch, tag or metadata table called 'whatever'"):
        lake.sql("SELECT * FROM t.whatever")


def test_schema_of_the_snapshot_is_used_for_old_versions(lake: wharf.Lakehouse, history: list) -> None:
    lake.sql("ALTER TABLE t ADD COLUMN extra INTEGER")
    lake.sql("INSERT INTO t VALUES (100, 'n', 7)")
    old = lake.sql(f"SELECT * FROM t FOR VERSION AS OF {history[0][0]}")
    assert old.columns == ["id", "v"]
    assert lake.sql("SELECT * FROM t").columns == ["id", "v", "extra"]
    assert lake.sql("SELECT extra FROM t WHERE id = 99").scalar() is None


def test_cannot_write_to_a_past_version(lake: wharf.Lakehouse, history: list) -> None:
    lake.sql(f"ALTER TABLE t CREATE TAG v1 AS OF VERSION {history[0][0]}")
    with pytest.raises(InvalidArgument, match="tags are read-only"):
        lake.sql("INSERT INTO t.tag_v1 VALUES (5, 'x')")


# --- branches and tags --------------------------------------------------------------------------


def test_branch_isolation_both_ways(lake: wharf.Lakehouse, history: list) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH dev")
    lake.sql("INSERT INTO t.branch_dev VALUES (7, 'dev')")
    lake.sql("INSERT INTO t VALUES (8, 'main')")
    assert _ids(lake, "SELECT id FROM t") == [8, 99]
    assert _ids(lake, "SELECT id FROM t.branch_dev") == [7, 99]
    assert _ids(lake, "SELECT id FROM t FOR VERSION AS OF 'dev'") == [7, 99]
    assert _ids(lake, "SELECT id FROM default.t.branch_dev") == [7, 99]
    assert sorted(lake.table("t").to_arrow(ref="dev").column("id").to_pylist()) == [7, 99]
    assert _ids(lake, "SELECT id FROM t.branch_main") == [8, 99]
    # a join across the two branches
    assert _ids(lake, "SELECT d.id FROM t.branch_dev d JOIN t m ON d.id = m.id") == [99]


def test_tags_pin_a_snapshot(lake: wharf.Lakehouse, history: list) -> None:
    lake.sql(f"ALTER TABLE t CREATE TAG release AS OF VERSION {history[1][0]}")
    lake.sql("INSERT INTO t VALUES (5, 'later')")
    assert _ids(lake, "SELECT id FROM t.tag_release") == [1, 2, 3]
    assert _ids(lake, "SELECT id FROM t FOR VERSION AS OF 'release'") == [1, 2, 3]
    with pytest.raises(NotFound, match="Branch 'release' does not exist"):
        lake.sql("SELECT * FROM t.branch_release")


def test_session_branch_for_reads_and_writes(lake: wharf.Lakehouse, history: list) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH audit")
    lake.sql("SET wharf.branch = 'audit'")
    lake.sql("INSERT INTO t VALUES (50, 'audited')")
    assert _ids(lake, "SELECT id FROM t") == [50, 99]
    # an explicit ref still wins over the session branch
    assert _ids(lake, "SELECT id FROM t.branch_main") == [99]
    assert _ids(lake, f"SELECT id FROM t FOR VERSION AS OF {history[0][0]}") == [1, 2]
    lake.sql("RESET wharf.branch")
    assert _ids(lake, "SELECT id FROM t") == [99]
    assert _ids(lake, "SELECT id FROM t.branch_audit") == [50, 99]


def test_session_branch_is_created_from_main_on_first_write(lake: wharf.Lakehouse, history: list) -> None:
    lake.sql("SET wharf.branch = 'wap'")
    assert _ids(lake, "SELECT id FROM t") == [99]  # no such branch yet: reads main
    lake.sql("INSERT INTO t VALUES (60, 'staged')")
    assert _ids(lake, "SELECT id FROM t") == [60, 99]
    lake.sql("RESET wharf.branch")
    assert _ids(lake, "SELECT id FROM t") == [99]
    lake.sql("CALL system.fast_forward('t', 'main', 'wap')")
    assert _ids(lake, "SELECT id FROM t") == [60, 99]


def test_session_branch_applies_to_every_table_in_a_query(lake: wharf.Lakehouse, history: list) -> None:
    lake.sql("CREATE TABLE u (id BIGINT)")
    lake.sql("INSERT INTO u VALUES (99), (60)")
    lake.sql("SET wharf.branch = 'audit'")
    lake.sql("INSERT INTO t VALUES (60, 'x')")
    lake.sql("INSERT INTO u VALUES (61)")
    assert _ids(lake, "SELECT u.id FROM u JOIN t ON u.id = t.id") == [60, 99]
    lake.sql("RESET wharf.branch")
    assert _ids(lake, "SELECT u.id FROM u JOIN t ON u.id = t.id") == [99]
    assert _ids(lake, "SELECT id FROM u") == [60, 99]


def test_session_branch_on_an_empty_table(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE e (id BIGINT)")
    lake.sql("SET wharf.branch = 'audit'")
    lake.sql("INSERT INTO e VALUES (1)")
    assert _ids(lake, "SELECT id FROM e") == [1]
    lake.sql("RESET wharf.branch")
    assert _ids(lake, "SELECT id FROM e") == []
    assert _ids(lake, "SELECT id FROM e.branch_audit") == [1]


def test_session_branch_naming_a_tag_reads_it_but_cannot_write(lake: wharf.Lakehouse, history: list) -> None:
    lake.sql(f"ALTER TABLE t CREATE TAG first AS OF VERSION {history[0][0]}")
    lake.sql("SET wharf.branch = 'first'")
    assert _ids(lake, "SELECT id FROM t") == [1, 2]
    with pytest.raises(InvalidArgument, match="'first' is a tag of default.t; tags are read-only"):
        lake.sql("INSERT INTO t VALUES (5, 'x')")
    lake.sql("RESET wharf.branch")
    assert _ids(lake, "SELECT id FROM t.tag_first") == [1, 2]


def test_every_write_kind_commits_to_the_branch_only(lake: wharf.Lakehouse, history: list) -> None:
    lake.sql("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    main = lake.table("t").current_snapshot_id()
    lake.sql("ALTER TABLE t CREATE BRANCH dev")
    lake.sql("UPDATE t.branch_dev SET v = 'upd' WHERE id = 1")
    lake.sql("DELETE FROM t.branch_dev WHERE id = 2")
    lake.sql(
        "MERGE INTO t.branch_dev d USING (SELECT 99 AS id, 'merged' AS v UNION ALL SELECT 5, 'new') s ON d.id = s.id "
        "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)"
    )
    assert lake.table("t").current_snapshot_id() == main
    assert sorted(lake.sql("SELECT id, v FROM t").fetchall()) == [(1, "one"), (2, "two"), (99, "z")]
    assert sorted(lake.sql("SELECT id, v FROM t.branch_dev").fetchall()) == [(1, "upd"), (5, "new"), (99, "merged")]


def test_every_write_kind_follows_the_session_branch(lake: wharf.Lakehouse, history: list) -> None:
    main = lake.table("t").current_snapshot_id()
    lake.sql("SET wharf.branch = 'audit'")
    lake.sql("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    lake.sql("UPDATE t SET v = 'upd' WHERE id = 1")
    lake.sql("DELETE FROM t WHERE id = 2")
    lake.sql("MERGE INTO t USING (SELECT 99 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE")
    assert sorted(lake.sql("SELECT id, v FROM t").fetchall()) == [(1, "upd")]
    lake.sql("RESET wharf.branch")
    assert lake.table("t").current_snapshot_id() == main
    assert sorted(lake.sql("SELECT id, v FROM t").fetchall()) == [(99, "z")]
    assert sorted(lake.sql("SELECT id, v FROM t.branch_audit").fetchall()) == [(1, "upd")]
