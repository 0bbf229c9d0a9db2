"""The Python API mirrors SQL: the same commit path, the same read path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import wharf
from wharf.errors import AlreadyExists, InvalidArgument, NotFound, SchemaMismatch


def test_connect_creates_lake_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHARF_HOME", str(tmp_path / "home-lake"))
    lake = wharf.connect()
    assert lake.path == tmp_path / "home-lake"
    assert (lake.path / "wharf.db").exists() and (lake.path / "warehouse").is_dir()
    assert lake.namespaces() == ["default"]
    lake.close()
    monkeypatch.delenv("WHARF_HOME")
    monkeypatch.chdir(tmp_path)
    with wharf.connect() as default:
        assert default.path == Path("lake")
    assert (tmp_path / "lake" / "wharf.db").exists()


def test_create_table_from_each_dataframe_kind(lake: wharf.Lakehouse) -> None:
    arrow = pa.table({"id": pa.array([1, 2], pa.int64()), "v": ["a", "b"]})
    lake.create_table("from_arrow", arrow)
    lake.create_table("from_pandas", pd.DataFrame({"id": [1, 2], "v": ["a", "b"]}))
    lake.create_table("from_polars", pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}), partition_by=["v"])
    for name in ("from_arrow", "from_pandas", "from_polars"):
        assert lake.table(name).to_arrow().sort_by("id").column("v").to_pylist() == ["a", "b"]
    assert [str(f.transform) for f in lake.table("from_polars").iceberg.spec().fields] == ["identity"]
    with pytest.raises(AlreadyExists):
        lake.create_table("from_arrow", arrow)
    lake.create_table("empty", pa.schema([("x", pa.int32())]), partition_by=["bucket(4, x)"])
    assert lake.table("empty").count() == 0


def test_append_by_name_and_read_options(lake: wharf.Lakehouse) -> None:
    t = lake.create_table("t", pa.schema([("id", pa.int64()), ("name", pa.string()), ("score", pa.float64())]))
    t.append(pa.table({"name": ["a"], "id": [1]}))  # by name, missing nullable column is NULL
    first = t.current_snapshot_id()
    t.append(pd.DataFrame({"id": [2, 3], "name": ["b", "c"], "score": [1.0, 2.0]}))
    assert t.count() == 3
    assert t.to_arrow(columns=["id"], where="score > 1").column("id").to_pylist() == [3]
    assert t.to_arrow(snapshot_id=first).num_rows == 1
    assert t.to_pandas(where="id = 2")["name"].tolist() == ["b"]
    assert t.to_polars(columns=["name"]).height == 3
    with pytest.raises(SchemaMismatch, match="'nope'"):
        t.append(pa.table({"nope": [1]}))
    with pytest.raises(InvalidArgument):
        t.to_arrow(ref="main", snapshot_id=first)


def test_snapshots_and_history(lake: wharf.Lakehouse) -> None:
    t = lake.create_table("t", pa.table({"id": [1]}))
    t.append(pa.table({"id": [2]}))
    snaps = t.snapshots()
    assert snaps.num_rows == 2
    summary = dict(snaps.column("summary")[1].as_py())
    assert summary["wharf.user"] == "tester"
    assert "INSERT INTO" in summary["wharf.statement"]
    assert snaps.column("operation").to_pylist() == ["append", "append"]
    assert t.history().num_rows == 2
    assert "main" in t.refs().column("name").to_pylist()


def test_statement_summary_is_truncated_at_4_kib(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (s VARCHAR)")
    long_value = "x" * 10_000
    lake.sql(f"INSERT INTO t VALUES ('{long_value}')")
    statement = lake.sql("SELECT summary['wharf.statement'] FROM t.snapshots").scalar()
    assert len(statement.encode()) <= 4096 and statement.endswith("...")


def test_unknown_table(lake: wharf.Lakehouse) -> None:
    with pytest.raises(NotFound):
        lake.table("nope")


def test_on_commit_hook_sees_every_snapshot(lake: wharf.Lakehouse) -> None:
    events: list[wharf.events.CommitEvent] = []
    lake.events.subscribe("on_commit", events.append)
    lake.sql("CREATE TABLE t (a INT)")
    lake.sql("INSERT INTO t VALUES (1)")
    lake.table("t").append(pa.table({"a": [2]}))
    assert [(e.table, e.kind) for e in events] == [("default.t", "create"), ("default.t", "update"), ("default.t", "update")]
    insert = events[1]
    assert [s.operation for s in insert.snapshots] == ["append"]
    assert insert.refs == {"main": insert.snapshots[0].snapshot_id}
    assert insert.statement == "INSERT INTO t VALUES (1)" and insert.principal == "tester"
    assert lake.table("t").current_snapshot_id() == events[-1].snapshots[0].snapshot_id


def test_appends_from_threads_and_from_a_hook_keep_their_own_data(lake: wharf.Lakehouse) -> None:
    """``Table.append`` registers its data under one name per thread and nesting depth: a thread's
    appends repeat one statement text (parsed once), threads and a hook appending from inside an
    append use names of their own, and every row lands where it was sent."""
    import re
    import threading

    lake.sql("CREATE TABLE t (x INT)")
    lake.sql("CREATE TABLE audit (x INT)")
    frames: dict[str, list[tuple[int, str]]] = {"t": [], "audit": []}

    def on_statement(event: object) -> None:
        text = str(getattr(event, "statement", ""))
        found = re.search(r'INSERT INTO "default"."(t|audit)" .* FROM (\w+)$', text)
        if found:
            frames[found.group(1)].append((threading.get_ident(), found.group(2)))

    def copy_to_audit(event: object) -> None:
        if getattr(event, "table", "") == "default.t":
            lake.table("audit").append(pa.table({"x": pa.array([-1], pa.int32())}))

    lake.events.subscribe("on_statement", on_statement)
    lake.events.subscribe("on_commit", copy_to_audit)

    def writer(base: int) -> None:
        for i in range(4):
            lake.table("t").append(pa.table({"x": pa.array([base + i, base + i], pa.int32())}))

    threads = [threading.Thread(target=writer, args=(100 * n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(r[0] for r in lake.sql("SELECT x FROM t").fetchall()) == sorted(
        [100 * n + i for n in range(3) for i in range(4)] * 2
    )
    assert lake.sql("SELECT count(*), min(x), max(x) FROM audit").fetchone() == (12, -1, -1)
    by_thread: dict[int, set[str]] = {}
    for ident, name in frames["t"]:
        by_thread.setdefault(ident, set()).add(name)
    assert len(frames["t"]) == 12 and len(by_thread) == 3
    assert all(len(names) == 1 for names in by_thread.values())  # one text per thread: parsed once
    assert len(set().union(*by_thread.values())) == 3  # no two threads share a name
    assert {name for _ident, name in frames["audit"]}.isdisjoint(set().union(*by_thread.values()))  # the hook's own
