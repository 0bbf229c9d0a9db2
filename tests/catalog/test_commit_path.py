"""One commit path: every route that changes a table passes the gates, is stamped, and is announced once.

A gate that refuses a change must leave the lake exactly as it was: no commit, and no file the
refused change wrote (data files, manifests, manifest lists, metadata files).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog import load_catalog

import wharf
from wharf.catalog import TableChange
from wharf.errors import CommitRejected, InvalidArgument
from wharf.events import CommitEvent, register_builtin

pytestmark = pytest.mark.metadata_backends  # SQLite and PostgreSQL metadata (tests/conftest.py)


@dataclass
class Gate:
    """Records every change it sees; refuses them while ``refusing`` is set."""

    seen: list[TableChange] = field(default_factory=list)
    refusing: bool = False

    def __call__(self, change: TableChange) -> None:
        self.seen.append(change)
        if self.refusing:
            raise InvalidArgument(f"test gate refuses the {change.kind} of {change.table}")


@pytest.fixture
def gate(lake: wharf.Lakehouse) -> Iterator[Gate]:
    g = Gate()
    stop = lake.events.subscribe("before_commit", g)
    yield g
    stop()


@pytest.fixture
def t(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE TABLE t (id BIGINT NOT NULL, v VARCHAR)")
    lake.sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    lake.sql("INSERT INTO t VALUES (3, 'c')")
    lake.sql("ALTER TABLE t CREATE TAG first AS OF VERSION " + str(_snapshots(lake)[0]))
    lake.sql("ALTER TABLE t CREATE BRANCH dev")
    lake.sql("INSERT INTO t.branch_dev VALUES (4, 'd')")
    lake.sql("SET wharf.wap_id = 'w1'")
    lake.sql("INSERT INTO t VALUES (5, 'e')")
    lake.sql("RESET wharf.wap_id")
    return lake


def _snapshots(lake: wharf.Lakehouse, table: str = "t") -> list[int]:
    return [r[0] for r in lake.sql(f"SELECT snapshot_id FROM {table}.snapshots ORDER BY committed_at").fetchall()]


def _files(lake: wharf.Lakehouse) -> set[Path]:
    return {p for p in (lake.path / "warehouse").rglob("*") if p.is_file()}


def _state(lake: wharf.Lakehouse) -> dict[str, str | None]:
    return {name: lake.loader.metadata_location(*name.split(".")) for name in ("default.t", "default.c", "default.u")}


def _dev_head(lake: wharf.Lakehouse) -> int:
    return lake.table("t").current_snapshot_id("dev")  # type: ignore[return-value]


def _staged(lake: wharf.Lakehouse) -> int:
    return int(lake.sql("SELECT snapshot_id FROM t.snapshots WHERE summary['wap.id'] = 'w1'").scalar())


# Every way a statement changes a table: (name, statement or callable, change kind the gate sees).
ROUTES: list[tuple[str, str | Callable[[wharf.Lakehouse], object], str]] = [
    ("insert", "INSERT INTO t VALUES (9, 'z')", "update"),
    ("insert overwrite", "INSERT OVERWRITE t SELECT 9, 'z'", "update"),
    ("update", "UPDATE t SET v = 'x' WHERE id = 1", "update"),
    ("delete", "DELETE FROM t WHERE id = 2", "update"),
    ("delete all", "DELETE FROM t", "update"),
    ("merge", "MERGE INTO t USING (SELECT 1 AS id, 'm' AS v) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v", "update"),
    ("write to a branch", "INSERT INTO t.branch_dev VALUES (8, 'y')", "update"),
    ("create table", "CREATE TABLE c (x INT)", "create"),
    ("create table as select", "CREATE TABLE c AS SELECT id, v FROM t", "create"),
    ("create or replace table", "CREATE OR REPLACE TABLE t AS SELECT 7 AS id", "update"),
    ("add column", "ALTER TABLE t ADD COLUMN w DOUBLE", "update"),
    ("rename column", "ALTER TABLE t RENAME COLUMN v TO value", "update"),
    ("set properties", "ALTER TABLE t SET TBLPROPERTIES ('k' = 'v')", "update"),
    ("identifier fields", "ALTER TABLE t SET IDENTIFIER FIELDS id", "update"),
    ("rename table", "ALTER TABLE t RENAME TO u", "rename"),
    ("create branch", "ALTER TABLE t CREATE BRANCH b2", "update"),
    ("create tag", "ALTER TABLE t CREATE TAG t2", "update"),
    ("drop branch", "ALTER TABLE t DROP BRANCH dev", "update"),
    ("rollback", lambda lake: lake.sql(f"CALL system.rollback_to_snapshot('t', {_snapshots(lake)[0]})"), "update"),
    ("set current snapshot", lambda lake: lake.sql(f"CALL system.set_current_snapshot('t', {_snapshots(lake)[0]})"), "update"),
    ("fast forward", "CALL system.fast_forward('t', 'main', 'dev')", "update"),
    ("cherry-pick", lambda lake: lake.sql(f"CALL system.cherrypick_snapshot('t', {_dev_head(lake)})"), "update"),
    ("publish", "CALL system.publish_changes('t', 'w1')", "update"),
    ("expire", lambda lake: lake.sql(f"CALL system.expire_snapshots('t', snapshot_ids => array({_staged(lake)}))"), "update"),
    ("drop table", "DROP TABLE t", "drop"),
    ("drop table purge", "DROP TABLE t PURGE", "drop"),
    ("python append", lambda lake: lake.table("t").append(pa.table({"id": [9], "v": ["z"]})), "update"),
    ("python create", lambda lake: lake.create_table("c", pa.table({"x": [1, 2]})), "create"),
]


def _run(lake: wharf.Lakehouse, route: str | Callable[[wharf.Lakehouse], object]) -> None:
    if isinstance(route, str):
        lake.sql(route)
    else:
        route(lake)


@pytest.mark.parametrize(("name", "route", "kind"), ROUTES, ids=[r[0] for r in ROUTES])
def test_every_commit_route_passes_the_gate(
    t: wharf.Lakehouse, gate: Gate, name: str, route: str | Callable[[wharf.Lakehouse], object], kind: str
) -> None:
    _run(t, route)
    assert gate.seen, f"{name} committed without passing the gate"
    assert kind in {c.kind for c in gate.seen}
    for change in gate.seen:
        assert change.principal.name == "tester"
        assert change.statement is not None and change.statement.principal.name == "tester"


@pytest.mark.parametrize(("name", "route", "kind"), ROUTES, ids=[r[0] for r in ROUTES])
def test_a_refusing_gate_leaves_nothing_behind(
    t: wharf.Lakehouse, gate: Gate, name: str, route: str | Callable[[wharf.Lakehouse], object], kind: str
) -> None:
    before, files = _state(t), _files(t)
    gate.refusing = True
    with pytest.raises(InvalidArgument, match="test gate refuses"):
        _run(t, route)
    assert _state(t) == before, f"{name}: a refused change was committed"
    assert _files(t) == files, f"{name}: a refused change left files behind"


def test_a_failing_gate_refuses_with_commit_rejected(t: wharf.Lakehouse) -> None:
    def broken(change: TableChange) -> None:
        raise RuntimeError("quality service unreachable")

    t.events.subscribe("before_commit", broken)
    before = _state(t)
    with pytest.raises(CommitRejected, match="quality service unreachable") as info:
        t.sql("INSERT INTO t VALUES (9, 'z')")
    assert info.value.status == 422 and info.value.table == "default.t"
    assert _state(t) == before


def test_gates_see_what_the_change_would_do(t: wharf.Lakehouse, gate: Gate) -> None:
    t.sql("CALL system.fast_forward('t', 'main', 'dev')")
    [move] = gate.seen
    assert move.added_snapshots == [] and move.moves("main") and not move.moves("dev")
    gate.seen.clear()
    t.sql("INSERT INTO t VALUES (9, 'z')")
    [change] = gate.seen
    [snapshot] = change.added_snapshots
    assert change.ref_moves == {"main": snapshot.snapshot_id} and change.moves("main")
    assert change.metadata is not None and change.metadata.current_snapshot_id == snapshot.snapshot_id
    assert change.statement is not None and change.statement.text == "INSERT INTO t VALUES (9, 'z')"


def test_failed_ctas_leaves_no_table_and_no_files(lake: wharf.Lakehouse, gate: Gate) -> None:
    """The CTAS data is written before the commit; a refused commit must take the files with it."""
    lake.sql("CREATE TABLE src AS SELECT range AS id FROM range(1000)")
    files = _files(lake)
    gate.refusing = True
    with pytest.raises(InvalidArgument):
        lake.sql("CREATE TABLE c PARTITIONED BY (bucket(4, id)) AS SELECT id FROM src")
    assert not lake.loader.exists("default", "c")
    assert _files(lake) == files
    gate.refusing = False
    lake.sql("CREATE TABLE c PARTITIONED BY (bucket(4, id)) AS SELECT id FROM src")
    assert lake.sql("SELECT count(*) FROM c").scalar() == 1000


def test_every_snapshot_is_stamped_by_the_commit_path(t: wharf.Lakehouse) -> None:
    main_before = t.table("t").current_snapshot_id()
    t.sql("INSERT INTO t SELECT id + 10, v FROM t WHERE id < 3")
    summary = dict(t.sql("SELECT summary FROM t.snapshots ORDER BY committed_at DESC LIMIT 1").scalar())
    assert summary["wharf.user"] == "tester"
    assert summary["wharf.statement"] == "INSERT INTO t SELECT id + 10, v FROM t WHERE id < 3"
    assert len(summary["wharf.statement-id"]) == 30
    assert summary["wharf.inputs"] == f"default.t@{main_before}"


def test_a_client_cannot_claim_the_properties_the_commit_path_owns(t: wharf.Lakehouse) -> None:
    table = t.catalog.load_table("default.t")
    table.append(
        pa.table({"id": pa.array([7], pa.int64()), "v": ["x"]}, schema=table.schema().as_arrow()),
        snapshot_properties={"wharf.user": "the-ceo", "wharf.statement": "nothing to see", "note": "kept"},
    )
    summary = dict(t.sql("SELECT summary FROM t.snapshots ORDER BY committed_at DESC LIMIT 1").scalar())
    assert summary["wharf.user"] == "tester"  # the principal the catalog was opened as
    assert "wharf.statement" not in summary and "wharf.statement-id" not in summary
    assert summary["note"] == "kept"


def test_pyiceberg_clients_of_the_lake_catalog_pass_the_gates(t: wharf.Lakehouse, gate: Gate) -> None:
    """PyIceberg pointed at the lake (``py-catalog-impl``) commits through the same path."""
    table = t.catalog.load_table("default.t")
    gate.refusing = True
    before = _state(t)
    with pytest.raises(InvalidArgument):
        table.append(pa.table({"id": pa.array([7], pa.int64()), "v": ["x"]}, schema=table.schema().as_arrow()))
    assert _state(t) == before

    seen: list[TableChange] = []
    unregister = register_builtin("before_commit", seen.append)
    try:
        other = load_catalog(
            "elsewhere", **{"py-catalog-impl": "wharf.catalog.LakeCatalog", "lake": str(t.path), "wharf.user": "etl"}
        )
        remote = other.load_table("default.t")
        remote.append(pa.table({"id": pa.array([8], pa.int64()), "v": ["y"]}, schema=remote.schema().as_arrow()))
    finally:
        unregister()
    assert [(c.kind, c.principal.name, c.principal.kind, c.statement) for c in seen] == [("update", "etl", "external", None)]
    summary = dict(t.sql("SELECT summary FROM t.snapshots ORDER BY committed_at DESC LIMIT 1").scalar())
    assert summary["wharf.user"] == "etl"
    assert t.sql("SELECT count(*) FROM t WHERE id = 8").scalar() == 1


def test_one_commit_event_per_commit_and_a_failing_subscriber_is_logged(
    t: wharf.Lakehouse, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[CommitEvent] = []
    t.events.subscribe("on_commit", events.append)

    def broken(event: CommitEvent) -> None:
        raise RuntimeError("lineage store is down")

    t.events.subscribe("on_commit", broken)
    with caplog.at_level(logging.ERROR, logger="wharf.events"):
        t.sql("UPDATE t SET v = 'x' WHERE id = 1")
    assert t.sql("SELECT v FROM t WHERE id = 1").scalar() == "x"  # a subscriber never undoes a commit
    assert any("lineage store is down" in r.getMessage() or "lineage store is down" in str(r.exc_info) for r in caplog.records)
    [event] = events
    assert event.kind == "update" and event.table == "default.t" and event.principal == "tester"
    assert [s.operation for s in event.snapshots] == ["overwrite"]
    assert event.refs == {"main": event.snapshots[0].snapshot_id}
    assert event.metadata_location != event.previous_metadata_location


def test_gates_cannot_be_emitted_as_events(lake: wharf.Lakehouse) -> None:
    with pytest.raises(ValueError, match="gates"):
        lake.events.emit("before_commit", object())
    with pytest.raises(ValueError, match="Unknown hook"):
        lake.events.subscribe("on_query", print)


def test_a_ctas_that_loses_a_creation_race_leaves_no_files(lake: wharf.Lakehouse) -> None:
    """Another client creates the table between our write and our commit: the CTAS fails cleanly."""
    from wharf.errors import AlreadyExists

    lake.sql("CREATE TABLE src AS SELECT range AS id FROM range(100)")
    lake.sql("GRANT ALL PRIVILEGES ON CATALOG TO USER rival")
    rival = lake.session(user="rival")
    raced: list[str] = []

    def race(change: TableChange) -> None:
        if change.kind == "create" and change.table == "default.c" and change.principal.name == "tester" and not raced:
            raced.append(change.table)
            rival.sql("CREATE TABLE c (other INT)")

    lake.events.subscribe("before_commit", race)
    files = _files(lake)
    with pytest.raises(AlreadyExists, match="concurrently"):
        lake.sql("CREATE TABLE c AS SELECT id FROM src")
    assert raced == ["default.c"]
    assert lake.table("c").schema.column_names == ["other"]  # the rival's table, untouched
    new = _files(lake) - files
    assert all("/default/c/metadata/" in str(p) and p.name.endswith(".metadata.json") for p in new), new
