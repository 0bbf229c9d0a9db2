"""Several processes write the same lake at once: no append is lost, conflicts are typed."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

import wharf
from wharf.errors import ConflictError

pytestmark = pytest.mark.metadata_backends  # SQLite and PostgreSQL metadata (tests/conftest.py)

WRITERS = 4
APPENDS_EACH = 8


def _append_worker(path: str, worker: int) -> None:
    lake = wharf.connect(path, user=f"writer{worker}")
    for i in range(APPENDS_EACH):
        lake.sql("INSERT INTO events VALUES (?, ?)", [worker, i])
    lake.close()


def test_concurrent_appends_from_processes_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "lake")
    lake = wharf.connect(path)
    lake.sql("CREATE TABLE events (worker INT, seq INT)")
    for w in range(WRITERS):  # each process writes as its own user: governed, so granted first
        lake.sql(f"GRANT INSERT ON TABLE events TO USER writer{w}")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_worker, args=(path, w)) for w in range(WRITERS)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=240)
            assert p.exitcode == 0
    finally:
        for p in procs:  # a writer that hung must not outlive the test
            if p.is_alive():
                p.kill()
                p.join()
    rows = lake.sql("SELECT worker, seq FROM events ORDER BY ALL").fetchall()
    assert rows == [(w, i) for w in range(WRITERS) for i in range(APPENDS_EACH)]
    snapshots = lake.sql("SELECT count(*) FROM events.snapshots").scalar()
    assert snapshots == WRITERS * APPENDS_EACH
    users = {r[0] for r in lake.sql("SELECT summary['wharf.user'] FROM events.snapshots").fetchall()}
    assert users == {f"writer{w}" for w in range(WRITERS)}


def test_two_lakes_in_one_process_see_each_others_commits(tmp_path: Path) -> None:
    a = wharf.connect(tmp_path / "lake")
    b = wharf.connect(tmp_path / "lake")
    a.sql("CREATE TABLE t (x INT)")
    b.sql("INSERT INTO t VALUES (1)")
    a.sql("INSERT INTO t VALUES (2)")
    assert sorted(r[0] for r in b.sql("SELECT x FROM t").fetchall()) == [1, 2]


def test_overwrite_conflict_is_a_typed_error_and_commits_nothing(tmp_path: Path) -> None:
    """A rewrite whose input file was replaced concurrently fails with ConflictError."""
    from wharf.tables.commit import commit_files
    from wharf.tables.scan import ScanPlanner

    a = wharf.connect(tmp_path / "lake")
    a.sql("CREATE TABLE t (x INT)")
    a.sql("INSERT INTO t VALUES (1), (2)")
    stale = a.loader.load("default", "t")
    stale_files = [f.data_file for f in ScanPlanner().plan(stale, stale.metadata.current_snapshot_id).files]
    # Another writer replaces the file (INSERT OVERWRITE) after we planned.
    wharf.connect(tmp_path / "lake").sql("INSERT OVERWRITE t SELECT 3")
    before = a.sql("SELECT count(*) FROM t.snapshots").scalar()
    data_dir = Path(stale.location().removeprefix("file://")) / "data"
    files_before = sorted(data_dir.rglob("*.parquet"))
    import pyarrow as pa

    from wharf.tables.commit import write_data_files

    written = write_data_files(stale, pa.table({"x": pa.array([7], pa.int32())}))
    assert len(sorted(data_dir.rglob("*.parquet"))) == len(files_before) + 1
    with pytest.raises(ConflictError) as info:
        commit_files(stale, added=written, removed=stale_files)
    # the files written for the failed commit are removed again
    assert sorted(data_dir.rglob("*.parquet")) == files_before
    assert info.value.table == "default.t"
    assert info.value.conflicting_snapshot_id is not None
    assert a.sql("SELECT x FROM t").fetchall() == [(3,)]
    assert a.sql("SELECT count(*) FROM t.snapshots").scalar() == before
