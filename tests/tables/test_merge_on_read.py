"""Merge-on-read DELETE / UPDATE / MERGE: positional delete files plus new rows, one snapshot each.

Random statement sequences run on a Wharf table and on a plain DuckDB table with the same rows;
after every statement both must hold the same rows, and the Iceberg table must read the same in
PyIceberg's reader and DuckDB's own iceberg extension. The delete files themselves are checked
against the spec (field ids, sort order, bounds), and copy-on-write rewrites must remove the
delete files that no longer apply to anything.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from pyiceberg.manifest import DataFileContent
from pyiceberg.table.snapshots import Operation

import wharf
import wharf.sql.update
from wharf.errors import ConflictError, InvalidArgument
from wharf.tables.deletes import FILE_PATH_ID, POS_ID, live_files
from wharf.tables.scan import local_path

MOR = {"write.delete.mode": "merge-on-read", "write.update.mode": "merge-on-read", "write.merge.mode": "merge-on-read"}


def set_props(lake: wharf.Lakehouse, table: str, props: dict[str, str]) -> None:
    pairs = ", ".join(f"'{k}' = '{v}'" for k, v in props.items())
    lake.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ({pairs})")


def ordered(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda r: [(v is None, 0 if v is None else v) for v in r])


def iceberg_scan(metadata_location: str, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` (with ``{t}`` for the table) on DuckDB's iceberg extension, reading the metadata file."""
    from wharf.engine import load_extension

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    load_extension(con, "avro")
    load_extension(con, "iceberg")
    return con.execute(sql.format(t=f"iceberg_scan('{metadata_location}')")).fetchall()


def deletes_of(lake: wharf.Lakehouse, table: str) -> list[Any]:
    t = lake.table(table).iceberg.refresh()
    snapshot = t.current_snapshot()
    return live_files(t, snapshot.snapshot_id if snapshot else None)[1]


def _random_statement(rng: random.Random, step: int) -> str:
    kind = rng.choice(["insert", "delete", "update", "merge", "delete", "update"])
    lo = rng.randrange(0, 400)
    hi = lo + rng.randrange(1, 120)
    if kind == "insert":
        return f"INSERT INTO t SELECT range, range % 7, 'i{step}' FROM range({lo}, {hi})"
    if kind == "delete":
        return f"DELETE FROM t WHERE id BETWEEN {lo} AND {hi} AND id % {rng.randrange(2, 5)} = 0"
    if kind == "update":
        return f"UPDATE t SET v = 'u{step}', grp = grp + 1 WHERE id BETWEEN {lo} AND {hi} AND id % 3 = {rng.randrange(3)}"
    return (
        f"MERGE INTO t USING (SELECT DISTINCT range AS id FROM range({lo}, {hi}, 2)) s ON t.id = s.id "
        f"WHEN MATCHED AND t.id % 5 = 0 THEN DELETE WHEN MATCHED THEN UPDATE SET v = 'm{step}' "
        f"WHEN NOT MATCHED THEN INSERT (id, grp, v) VALUES (s.id, 9, 'n{step}')"
    )


@pytest.mark.parametrize(
    ("partitioned", "granularity", "seed"),
    [(False, "file", 1), (True, "file", 2), (True, "partition", 3), (False, "partition", 4)],
)
def test_random_statements_match_a_plain_table(tmp_path: Path, partitioned: bool, granularity: str, seed: int) -> None:
    rng = random.Random(seed)
    lake = wharf.connect(tmp_path / "lake")
    ref = duckdb.connect()
    part = " PARTITIONED BY (bucket(4, id))" if partitioned else ""
    lake.sql(f"CREATE TABLE t (id BIGINT, grp INT, v VARCHAR){part}")
    ref.execute("CREATE TABLE t (id BIGINT, grp INT, v VARCHAR)")
    for statement in [
        "INSERT INTO t SELECT range, range % 7, 'a' FROM range(0, 300)",
        "INSERT INTO t SELECT range, 1, 'b' FROM range(300, 500)",
    ]:
        lake.sql(statement)
        ref.execute(statement)
    set_props(lake, "t", {**MOR, "write.delete.granularity": granularity})
    saw_deletes = False
    for step in range(14):
        statement = _random_statement(rng, step)
        if step == 9:
            set_props(lake, "t", {"write.update.mode": "copy-on-write"})  # modes mix on one table
        before = lake.table("t").iceberg.refresh().current_snapshot()
        lake.sql(statement)
        ref.execute(statement)
        expected = ordered(ref.execute("SELECT id, grp, v FROM t").fetchall())
        assert ordered(lake.sql("SELECT id, grp, v FROM t").fetchall()) == expected, statement
        table = lake.table("t").iceberg.refresh()
        saw_deletes = saw_deletes or bool(deletes_of(lake, "t"))
        after = table.current_snapshot()
        assert after is not None and before is not None
        if after.snapshot_id != before.snapshot_id:
            assert after.parent_snapshot_id == before.snapshot_id  # one snapshot per statement
        if step % 4 == 3 or step == 13:
            arrow = table.scan(selected_fields=("id", "grp", "v")).to_arrow()
            assert ordered(list(zip(*(arrow[c].to_pylist() for c in ("id", "grp", "v")), strict=True))) == expected
            assert ordered(iceberg_scan(table.metadata_location, "SELECT id, grp, v FROM {t}")) == expected
    assert saw_deletes, "the sequence should have written positional delete files"


def test_merge_on_read_writes_delete_files_not_data_files(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT, v VARCHAR)")
    lake.sql("INSERT INTO t SELECT range, 'x' FROM range(1000)")
    set_props(lake, "t", MOR)
    data_before = {
        f.file_path for f, _ in live_files(lake.table("t").iceberg, lake.table("t").iceberg.current_snapshot().snapshot_id)[0]
    }  # type: ignore[union-attr]
    result = lake.sql("DELETE FROM t WHERE id % 100 = 7")
    assert result.fetchall() == [(10,)]
    table = lake.table("t").iceberg.refresh()
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.operation == Operation.DELETE
    assert snapshot.summary["added-position-delete-files"] == "1"
    assert snapshot.summary["added-position-deletes"] == "10"
    data, deletes = live_files(table, snapshot.snapshot_id)
    assert {f.file_path for f, _ in data} == data_before  # no data file rewritten
    ((delete_file, seq),) = deletes
    assert seq == snapshot.sequence_number
    assert delete_file.content == DataFileContent.POSITION_DELETES
    arrow = pq.read_table(local_path(delete_file.file_path))
    ids = {f.name: int(f.metadata[b"PARQUET:field_id"]) for f in arrow.schema}
    assert ids == {"file_path": FILE_PATH_ID, "pos": POS_ID}
    positions = arrow.column("pos").to_pylist()
    assert positions == sorted(positions) == [i for i in range(1000) if i % 100 == 7]
    assert set(arrow.column("file_path").to_pylist()) == data_before
    # Full bounds: lower == upper names the one data file.
    assert delete_file.lower_bounds[FILE_PATH_ID] == delete_file.upper_bounds[FILE_PATH_ID] == next(iter(data_before)).encode()

    lake.sql("UPDATE t SET v = 'y' WHERE id < 5")
    snapshot = lake.table("t").iceberg.refresh().current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.operation == Operation.OVERWRITE
    assert snapshot.summary["added-data-files"] == "1" and snapshot.summary["added-records"] == "5"
    assert lake.sql("SELECT count(*), count(*) FILTER (WHERE v = 'y') FROM t").fetchall() == [(990, 5)]


def test_deleting_every_row_of_a_file_removes_it(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT)")
    lake.sql("INSERT INTO t SELECT range FROM range(10)")
    lake.sql("INSERT INTO t SELECT range FROM range(10, 20)")
    set_props(lake, "t", MOR)
    lake.sql("DELETE FROM t WHERE id < 10")
    table = lake.table("t").iceberg.refresh()
    data, deletes = live_files(table, table.current_snapshot().snapshot_id)  # type: ignore[union-attr]
    assert len(data) == 1 and not deletes
    assert lake.sql("SELECT min(id), count(*) FROM t").fetchall() == [(10, 10)]


def test_copy_on_write_removes_delete_files_that_no_longer_apply(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT)")
    lake.sql("INSERT INTO t SELECT range FROM range(100)")
    lake.sql("INSERT INTO t SELECT range FROM range(100, 200)")
    set_props(lake, "t", {**MOR, "write.delete.granularity": "partition"})
    lake.sql("DELETE FROM t WHERE id % 10 = 0")  # one delete file naming both data files
    lake.sql("DELETE FROM t WHERE id = 1")  # one naming the first only
    assert len(deletes_of(lake, "t")) == 2
    set_props(lake, "t", {"write.delete.mode": "copy-on-write"})
    lake.sql("DELETE FROM t WHERE id < 50")  # rewrites the first file: the second delete file dangles
    assert len(deletes_of(lake, "t")) == 1
    lake.sql("DELETE FROM t WHERE id >= 100 AND id < 110")  # rewrites the second: nothing applies any more
    assert deletes_of(lake, "t") == []
    expected = [i for i in range(200) if i % 10 and i >= 50 and not (100 <= i < 110)]
    assert [r[0] for r in lake.sql("SELECT id FROM t ORDER BY id").fetchall()] == expected


def test_unknown_write_mode_is_a_clear_error(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT)")
    lake.sql("INSERT INTO t VALUES (1)")
    set_props(lake, "t", {"write.delete.mode": "merge-on-write"})
    with pytest.raises(InvalidArgument, match="write.delete.mode"):
        lake.sql("DELETE FROM t WHERE id = 1")
    assert lake.sql("SELECT count(*) FROM t").fetchall() == [(1,)]


def test_concurrent_rewrite_of_the_same_file_aborts_the_merge_on_read_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = wharf.connect(tmp_path / "lake")
    other = wharf.connect(tmp_path / "lake")
    lake.sql("CREATE TABLE t (id BIGINT)")
    lake.sql("INSERT INTO t SELECT range FROM range(100)")
    set_props(lake, "t", MOR)
    real = wharf.sql.update.write_position_deletes

    def racing(*args: Any, **kwargs: Any) -> Any:
        written = real(*args, **kwargs)
        # Another writer rewrites the data file the delete files point into (copy-on-write).
        other.sql("ALTER TABLE t SET TBLPROPERTIES ('write.update.mode' = 'copy-on-write')")
        other.sql("UPDATE t SET id = id + 1000 WHERE id = 99")
        return written

    monkeypatch.setattr(wharf.sql.update, "write_position_deletes", racing)
    files_before = set(_files(tmp_path))
    with pytest.raises(ConflictError):
        lake.sql("DELETE FROM t WHERE id < 10")
    monkeypatch.undo()
    # The other writer's change stands, the failed delete left nothing behind.
    assert lake.sql("SELECT count(*), max(id) FROM t").fetchall() == [(100, 1099)]
    leftover = {p for p in set(_files(tmp_path)) - files_before if p.endswith("-deletes.parquet")}
    assert not leftover


def _files(root: Path) -> list[str]:
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
