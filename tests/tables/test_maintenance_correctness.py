"""Maintenance never changes what a retained snapshot reads.

Random sequences of writes (appends, deletes, updates, merges; copy-on-write and merge-on-read
mixed; some on a branch and tagged) are followed by compaction, delete-file compaction, snapshot
expiry and orphan removal. Before maintenance every snapshot's rows are recorded; afterwards
every snapshot that still exists must return exactly those rows (the current one too, through
Wharf, PyIceberg and DuckDB's iceberg extension), and every file any remaining snapshot
references must still exist.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

import wharf
from tests.tables.test_merge_on_read import MOR, iceberg_scan, ordered, set_props
from wharf.tables.scan import local_path


def _statement(rng: random.Random, step: int) -> str:
    lo = rng.randrange(0, 300)
    hi = lo + rng.randrange(5, 80)
    kind = rng.choice(["insert", "insert", "delete", "update", "merge"])
    if kind == "insert":
        return f"INSERT INTO t SELECT range, range % 5, 's{step}' FROM range({lo}, {hi})"
    if kind == "delete":
        return f"DELETE FROM t WHERE id BETWEEN {lo} AND {hi} AND id % 2 = {rng.randrange(2)}"
    if kind == "update":
        return f"UPDATE t SET v = 'u{step}' WHERE id BETWEEN {lo} AND {hi}"
    return (
        f"MERGE INTO t USING (SELECT DISTINCT range AS id FROM range({lo}, {hi}, 3)) s ON t.id = s.id "
        f"WHEN MATCHED AND t.id % 4 = 0 THEN DELETE WHEN MATCHED THEN UPDATE SET v = 'm{step}' "
        f"WHEN NOT MATCHED THEN INSERT VALUES (s.id, 7, 'n{step}')"
    )


def _snapshot_rows(lake: wharf.Lakehouse) -> dict[int, list[tuple[Any, ...]]]:
    table = lake.table("t").iceberg.refresh()
    return {
        s.snapshot_id: ordered(lake.sql(f"SELECT id, grp, v FROM t VERSION AS OF {s.snapshot_id}").fetchall())
        for s in table.snapshots()
    }


def _read_files(table: Any) -> set[str]:
    """Manifest lists, manifests and live data/delete files of every snapshot of ``table``."""
    paths: set[str] = set()
    for snapshot in table.snapshots():
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            paths.add(manifest.manifest_path)
            paths |= {e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io, discard_deleted=True)}
    return {local_path(p) for p in paths}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_maintenance_keeps_every_retained_snapshot_exact(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lake = wharf.connect(tmp_path / "lake")
    partitioned = " PARTITIONED BY (grp)" if seed % 2 else ""
    lake.sql(f"CREATE TABLE t (id BIGINT, grp INT, v VARCHAR){partitioned}")
    lake.sql("INSERT INTO t SELECT range, range % 5, 'a' FROM range(200)")
    for step in range(16):
        if step % 5 == 0:
            mode = rng.choice(["copy-on-write", "merge-on-read"])
            set_props(lake, "t", dict.fromkeys(MOR, mode))
        if step == 6:
            lake.sql("ALTER TABLE t CREATE TAG audit")
        if step == 8:
            lake.sql("ALTER TABLE t CREATE BRANCH dev")
            lake.sql(f"INSERT INTO t.branch_dev SELECT range, 4, 'dev' FROM range(1000, {1000 + rng.randrange(5, 50)})")
        lake.sql(_statement(rng, step))
    before = _snapshot_rows(lake)
    head = lake.table("t").iceberg.refresh().current_snapshot()
    assert head is not None
    tag = lake.table("t").iceberg.metadata.refs["audit"].snapshot_id
    dev = lake.table("t").iceberg.metadata.refs["dev"].snapshot_id

    # A stray file, as a killed writer leaves it, old enough for orphan removal.
    stray = tmp_path / "lake" / "warehouse" / "default" / "t" / "data" / "stray.parquet"
    stray.write_bytes(b"not referenced")
    os.utime(stray, (time.time() - 10 * 86400, time.time() - 10 * 86400))

    lake.sql("CALL system.rewrite_data_files('t', options => map('min-input-files', '2', 'remove-dangling-deletes', 'true'))")
    lake.sql("CALL system.rewrite_position_delete_files('t')")
    after_compaction = _snapshot_rows(lake)
    for sid, expected in before.items():
        assert after_compaction[sid] == expected, f"snapshot {sid} changed by compaction"
    current = lake.table("t").iceberg.refresh().current_snapshot()
    assert current is not None
    assert after_compaction[current.snapshot_id] == before[head.snapshot_id]

    lake.sql("CALL system.expire_snapshots(table => 't', older_than => now() + INTERVAL 1 DAY, retain_last => 2)")
    orphans = lake.sql("CALL system.remove_orphan_files(table => 't', older_than => now() - INTERVAL 1 DAY)").fetchall()
    assert str(stray) in {os.path.normpath(p) for (p,) in orphans}
    assert not stray.exists()

    table = lake.table("t").iceberg.refresh()
    remaining = {s.snapshot_id for s in table.snapshots()}
    assert {tag, dev} <= remaining  # tag and branch heads are never expired
    assert len(remaining) < len(after_compaction)  # something was expired
    for sid in remaining:
        expected = after_compaction[sid]
        assert ordered(lake.sql(f"SELECT id, grp, v FROM t VERSION AS OF {sid}").fetchall()) == expected
    # Every file a remaining snapshot reads still exists.
    missing = [p for p in _read_files(table) if not os.path.exists(p)]
    assert not missing
    # Other readers agree on the current rows.
    expected_now = before[head.snapshot_id]
    arrow = table.scan(selected_fields=("id", "grp", "v")).to_arrow()
    assert ordered(list(zip(*(arrow[c].to_pylist() for c in ("id", "grp", "v")), strict=True))) == expected_now
    assert ordered(iceberg_scan(table.metadata_location, "SELECT id, grp, v FROM {t}")) == expected_now
