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
