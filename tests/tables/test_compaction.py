"""Compaction (``rewrite_data_files``, ``rewrite_position_delete_files``): same rows, fewer files.

Every test checks the rows before and after (and at the snapshot before, by time travel), the
snapshot the rewrite committed (a ``replace``), and for racing writers that no row is lost or
comes back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyiceberg.table.snapshots import Operation

import wharf
import wharf.tables.compaction as compaction
from tests.tables.delete_files import commit_delete_files, equality_delete_file
from tests.tables.test_merge_on_read import MOR, iceberg_scan, ordered, set_props
from wharf.errors import ConflictError, InvalidArgument, SchemaMismatch
from wharf.tables.deletes import live_files


def files_of(lake: wharf.Lakehouse, table: str = "t") -> tuple[int, int]:
    """(live data files, live delete files) of main."""
    t = lake.table(table).iceberg.refresh()
    data, deletes = live_files(t, t.current_snapshot().snapshot_id)  # type: ignore[union-attr]
    return len(data), len(deletes)


def rows(lake: wharf.Lakehouse, sql: str = "SELECT * FROM t") -> list[tuple[Any, ...]]:
    return ordered(lake.sql(sql).fetchall())


def small_files(lake: wharf.Lakehouse, count: int, per_file: int = 100, table: str = "t") -> None:
    lake.sql(f"CREATE TABLE {table} (id BIGINT, grp INT, v VARCHAR)")
    for i in range(count):
        lake.sql(f"INSERT INTO {table} SELECT range, range % 4, 'v' || range FROM range({i * per_file}, {(i + 1) * per_file})")


def call(lake: wharf.Lakehouse, sql: str) -> dict[str, Any]:
    result = lake.sql(sql)
    (row,) = result.fetchall()
    return dict(zip(result.columns, row, strict=True))


def test_small_files_become_one_replace_snapshot(lake: wharf.Lakehouse) -> None:
    small_files(lake, 12)
    before = rows(lake)
    old = lake.table("t").iceberg.refresh().current_snapshot()
    assert old is not None
    out = call(lake, "CALL system.rewrite_data_files('t')")
    assert out == {
        "rewritten_data_files_count": 12,
        "added_data_files_count": 1,
        "rewritten_bytes_count": out["rewritten_bytes_count"],
        "failed_data_files_count": 0,
        "removed_delete_files_count": 0,
    }
    assert out["rewritten_bytes_count"] > 0
    assert files_of(lake) == (1, 0)
    assert rows(lake) == before
    assert rows(lake, f"SELECT * FROM t VERSION AS OF {old.snapshot_id}") == before
    snapshot = lake.table("t").iceberg.refresh().current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.operation == Operation.REPLACE
    assert snapshot.summary["deleted-data-files"] == "12" and snapshot.summary["added-data-files"] == "1"
    assert snapshot.summary["total-records"] == "1200"
    # The new file carries the sequence number of the snapshot the rewrite read.
    (data,) = live_files(lake.table("t").iceberg, snapshot.snapshot_id)[0]
    assert data[1] == old.sequence_number
    # Nothing left to do: a second run commits nothing.
    assert call(lake, "CALL system.rewrite_data_files('t')")["rewritten_data_files_count"] == 0


def test_selection_rules_follow_spark(lake: wharf.Lakehouse) -> None:
    small_files(lake, 3)
    # Fewer than min-input-files (5) small files: nothing to do.
    assert call(lake, "CALL system.rewrite_data_files('t')")["rewritten_data_files_count"] == 0
    assert (
        call(lake, "CALL system.rewrite_data_files('t', options => map('min-input-files', '3'))")["rewritten_data_files_count"]
        == 3
    )
    size = lake.sql("SELECT max(file_size_in_bytes) FROM t.files").fetchall()[0][0]
    # A file of the target size is left alone; a file above max-file-size-bytes is split.
    target = f"map('target-file-size-bytes', '{size}', 'min-input-files', '1')"
    assert call(lake, f"CALL system.rewrite_data_files('t', options => {target})")["rewritten_data_files_count"] == 0
    split = f"map('target-file-size-bytes', '{size // 4}', 'max-file-size-bytes', '{size // 2}', 'min-file-size-bytes', '1')"
    before = rows(lake)
    out = call(lake, f"CALL system.rewrite_data_files('t', options => {split})")
    assert out["rewritten_data_files_count"] == 1
    assert out["added_data_files_count"] >= 1
    assert rows(lake) == before
    # rewrite-all rewrites whatever the sizes.
    live = files_of(lake)[0]
    out = call(lake, "CALL system.rewrite_data_files(table => 't', options => map('rewrite-all', 'true'))")
    assert (out["rewritten_data_files_count"], out["added_data_files_count"]) == (live, 1)


def test_deletes_are_absorbed_and_their_files_removed(lake: wharf.Lakehouse) -> None:
    small_files(lake, 6)
    set_props(lake, "t", MOR)
    lake.sql("DELETE FROM t WHERE id % 3 = 0")
    lake.sql("UPDATE t SET v = 'u' WHERE id % 5 = 0")
    source = "(SELECT range AS id FROM range(590, 610)) s"
    clauses = "WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id, 9, 'n')"
    lake.sql(f"MERGE INTO t USING {source} ON t.id = s.id {clauses}")
    before = rows(lake)
    assert files_of(lake)[1] > 0
    out = call(lake, "CALL system.rewrite_data_files('t', options => map('min-input-files', '2'))")
    assert out["removed_delete_files_count"] > 0
    assert files_of(lake) == (1, 0)
    assert rows(lake) == before
    table = lake.table("t").iceberg.refresh()
    arrow = table.scan().to_arrow()
    assert ordered(list(zip(*(arrow[c].to_pylist() for c in ("id", "grp", "v")), strict=True))) == before
    assert ordered(iceberg_scan(table.metadata_location, "SELECT * FROM {t}")) == before


def test_delete_thresholds_pick_a_file_of_good_size(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT, grp INT, v VARCHAR)")
    lake.sql("INSERT INTO t SELECT range, range % 4, 'v' || range FROM range(1000)")
    set_props(lake, "t", MOR)
    lake.sql("DELETE FROM t WHERE id < 100")  # 10% of the rows
    lake.sql("DELETE FROM t WHERE id BETWEEN 100 AND 149")
    size = lake.sql("SELECT max(file_size_in_bytes) FROM t.files").fetchall()[0][0]
    sized = f"'target-file-size-bytes', '{size}', 'min-file-size-bytes', '1'"
    # 15% deleted < 30% ratio and 2 delete files < threshold: the file stays.
    assert call(lake, f"CALL system.rewrite_data_files('t', options => map({sized}))")["rewritten_data_files_count"] == 0
    out = call(lake, f"CALL system.rewrite_data_files('t', options => map({sized}, 'delete-file-threshold', '2'))")
    assert (out["rewritten_data_files_count"], out["removed_delete_files_count"]) == (1, 2)
    assert files_of(lake) == (1, 0)
    lake.sql("DELETE FROM t WHERE id < 500")  # 350 of the 850 rows left: over the 30% ratio
    assert call(lake, f"CALL system.rewrite_data_files('t', options => map({sized}))")["rewritten_data_files_count"] == 1
    assert rows(lake, "SELECT count(*), min(id) FROM t") == [(500, 500)]


def test_partitioned_table_is_compacted_per_partition(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT, grp INT, v VARCHAR) PARTITIONED BY (grp)")
    for i in range(6):
        lake.sql(f"INSERT INTO t SELECT range, range % 3, 'v' FROM range({i * 30}, {(i + 1) * 30})")
    before = rows(lake)
    out = call(lake, "CALL system.rewrite_data_files('t', options => map('min-input-files', '2'))")
    assert out["rewritten_data_files_count"] == 18 and out["added_data_files_count"] == 3
    assert rows(lake) == before
    assert rows(lake, "SELECT partition.grp, count(*) FROM t.files GROUP BY 1") == [(0, 1), (1, 1), (2, 1)]
    # Partition pruning still works on the new files.
    assert lake.sql("SELECT count(*) FROM t WHERE grp = 1").fetchall() == [(60,)]


def test_where_limits_the_rewrite(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT, grp INT, v VARCHAR) PARTITIONED BY (grp)")
    for i in range(4):
        lake.sql(f"INSERT INTO t SELECT range, range % 2, 'v' FROM range({i * 10}, {(i + 1) * 10})")
    out = call(lake, "CALL system.rewrite_data_files(table => 't', where => 'grp = 1', options => map('min-input-files', '2'))")
    assert (out["rewritten_data_files_count"], out["added_data_files_count"]) == (4, 1)
    assert rows(lake, "SELECT partition.grp, count(*) FROM t.files GROUP BY 1") == [(0, 4), (1, 1)]
    with pytest.raises(SchemaMismatch, match="nope"):
        lake.sql("CALL system.rewrite_data_files(table => 't', where => 'nope = 1')")


def test_sort_and_zorder(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (x INT, y INT)")
    for i in range(4):
        lake.sql(f"INSERT INTO t SELECT (range * 7919 + {i}) % 64, (range * 104729 + {i}) % 64 FROM range(1024)")
    before = rows(lake)
    everything = "options => map('rewrite-all', 'true')"
    lake.sql(
        f"CALL system.rewrite_data_files(table => 't', strategy => 'sort', sort_order => 'x DESC NULLS LAST, y', {everything})"
    )
    assert rows(lake) == before
    path = lake.sql("SELECT file_path FROM t.files").fetchall()[0][0]
    import duckdb

    from wharf.tables.scan import local_path

    in_file = duckdb.sql(f"SELECT x, y FROM read_parquet('{local_path(path)}')").fetchall()
    assert in_file == sorted(in_file, key=lambda r: (-r[0], r[1]))
    lake.sql(f"CALL system.rewrite_data_files(table => 't', strategy => 'sort', sort_order => 'zorder(x, y)', {everything})")
    path = lake.sql("SELECT file_path FROM t.files").fetchall()[0][0]
    in_file = duckdb.sql(f"SELECT x, y FROM read_parquet('{local_path(path)}')").fetchall()
    assert sorted(in_file) == sorted(before)
    # Z-order: each quarter of the file covers about a quarter of the (x, y) plane, not full stripes.
    quarter = len(in_file) // 4
    first = in_file[:quarter]
    assert max(r[0] for r in first) < 40 and max(r[1] for r in first) < 40
    with pytest.raises(SchemaMismatch, match="zz"):
        lake.sql("CALL system.rewrite_data_files(table => 't', strategy => 'sort', sort_order => 'zz')")
    with pytest.raises(InvalidArgument, match="no sort order"):
        lake.sql("CALL system.rewrite_data_files(table => 't', strategy => 'sort')")
    with pytest.raises(InvalidArgument, match="strategy"):
        lake.sql("CALL system.rewrite_data_files(table => 't', sort_order => 'x')")


def test_bad_options_are_clear_errors(lake: wharf.Lakehouse) -> None:
    small_files(lake, 2)
    with pytest.raises(InvalidArgument, match="min-input-filez"):
        lake.sql("CALL system.rewrite_data_files('t', options => map('min-input-filez', '2'))")
    with pytest.raises(InvalidArgument, match="integer"):
        lake.sql("CALL system.rewrite_data_files('t', options => map('min-input-files', 'two'))")
    with pytest.raises(InvalidArgument, match="strategy"):
        lake.sql("CALL system.rewrite_data_files('t', strategy => 'shuffle')")
    assert files_of(lake) == (2, 0)


def _race(monkeypatch: pytest.MonkeyPatch, action: Any, after_groups: int = 1) -> None:
    """Run ``action`` once, right after the rewrite has written ``after_groups`` groups."""
    real = compaction._rewrite_group
    calls = {"n": 0}

    def racing(*args: Any, **kwargs: Any) -> Any:
        written = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == after_groups:
            action()
        return written

    monkeypatch.setattr(compaction, "_rewrite_group", racing)


def test_concurrent_delete_aborts_the_rewrite_and_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = wharf.connect(tmp_path / "lake")
    other = wharf.connect(tmp_path / "lake")
    small_files(lake, 6)
    set_props(lake, "t", MOR)
    _race(monkeypatch, lambda: other.sql("DELETE FROM t WHERE id = 5"))
    with pytest.raises(ConflictError):
        lake.sql("CALL system.rewrite_data_files('t', options => map('min-input-files', '2'))")
    monkeypatch.undo()
    assert rows(lake, "SELECT count(*), count(*) FILTER (WHERE id = 5) FROM t") == [(599, 0)]
    assert files_of(lake)[0] == 6  # nothing replaced
    # Copy-on-write delete racing: same outcome.
    set_props(lake, "t", {"write.delete.mode": "copy-on-write"})
    _race(monkeypatch, lambda: other.sql("DELETE FROM t WHERE id = 6"))
    with pytest.raises(ConflictError):
        lake.sql("CALL system.rewrite_data_files('t', options => map('min-input-files', '2'))")
    monkeypatch.undo()
    assert rows(lake, "SELECT count(*) FROM t") == [(598,)]


def test_partial_progress_commits_the_groups_that_do_not_conflict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = wharf.connect(tmp_path / "lake")
    other = wharf.connect(tmp_path / "lake")
    lake.sql("CREATE TABLE t (id BIGINT, grp INT, v VARCHAR) PARTITIONED BY (grp)")
    for i in range(4):
        lake.sql(f"INSERT INTO t SELECT range, range % 3, 'v' FROM range({i * 30}, {(i + 1) * 30})")
    set_props(lake, "t", MOR)
    before = rows(lake)

    # While the groups are being rewritten, a writer deletes a row of partition 0 and appends rows.
    def racing() -> None:
        other.sql("DELETE FROM t WHERE id = 0")
        other.sql("INSERT INTO t VALUES (1000, 2, 'new')")

    _race(monkeypatch, racing, after_groups=1)
    options = "map('min-input-files', '2', 'partial-progress.enabled', 'true', 'partial-progress.max-commits', '3')"
    out = call(lake, f"CALL system.rewrite_data_files('t', options => {options})")
    monkeypatch.undo()
    assert out["failed_data_files_count"] == 4  # partition 0's group
    assert out["rewritten_data_files_count"] == 8
    expected = ordered([r for r in before if r[0] != 0] + [(1000, 2, "new")])
    assert rows(lake) == expected
    assert rows(lake, "SELECT partition.grp, count(*) FROM t.data_files GROUP BY 1") == [(0, 4), (1, 1), (2, 2)]


def test_equality_deletes_committed_meanwhile_still_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = wharf.connect(tmp_path / "lake")
    small_files(lake, 5)
    table = lake.table("t").iceberg

    def streaming_delete() -> None:
        # Another engine (a Flink upsert) deletes by key while the rewrite runs.
        t = table.refresh()
        commit_delete_files(t, [equality_delete_file(t, ["id"], [(7,), (301,)])])

    _race(monkeypatch, streaming_delete)
    lake.sql("CALL system.rewrite_data_files('t')")
    monkeypatch.undo()
    assert rows(lake, "SELECT count(*), count(*) FILTER (WHERE id IN (7, 301)) FROM t") == [(498, 0)]


def test_rewrite_position_delete_files_combines_and_drops(lake: wharf.Lakehouse) -> None:
    small_files(lake, 2)
    set_props(lake, "t", MOR)
    for i in range(4):
        lake.sql(f"DELETE FROM t WHERE id = {i * 10 + 1} OR id = {100 + i}")
    before = rows(lake)
    assert files_of(lake) == (2, 8)
    out = call(lake, "CALL system.rewrite_position_delete_files('t')")
    assert out["rewritten_delete_files_count"] == 8 and out["added_delete_files_count"] == 2
    assert files_of(lake) == (2, 2)
    assert rows(lake) == before
    snapshot = lake.table("t").iceberg.refresh().current_snapshot()
    assert snapshot is not None and snapshot.summary is not None and snapshot.summary.operation == Operation.REPLACE


def test_remove_dangling_deletes_option(lake: wharf.Lakehouse) -> None:
    small_files(lake, 2)
    set_props(lake, "t", {**MOR, "write.delete.granularity": "partition"})
    lake.sql("DELETE FROM t WHERE id IN (1, 150)")  # one delete file naming both data files
    before = rows(lake)
    # Rewriting only the first file cannot drop the shared delete file; the option removes it later.
    out = call(
        lake,
        "CALL system.rewrite_data_files('t', where => 'id < 100', "
        "options => map('rewrite-all', 'true', 'remove-dangling-deletes', 'true'))",
    )
    assert out["rewritten_data_files_count"] == 1
    assert rows(lake) == before
    lake.sql("CALL system.rewrite_data_files('t', options => map('rewrite-all', 'true', 'remove-dangling-deletes', 'true'))")
    assert files_of(lake) == (1, 0)
    assert rows(lake) == before
