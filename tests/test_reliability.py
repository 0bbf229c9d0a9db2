"""Reliability with real processes: contention, kill -9 mid-write, concurrent DDL, nothing left behind.

Each test starts separate Python processes (``spawn``) on one lake directory, as several jobs or
notebooks would, and checks the lake afterwards: every committed change is intact, every failed
or killed one left the table exactly as it was, and the files it wrote are either gone or
collected by ``remove_orphan_files``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import wharf
from wharf.errors import AlreadyExists, ConflictError

CTX = mp.get_context("spawn")


@contextmanager
def processes(target: Callable[..., Any], args: list[tuple[Any, ...]]) -> Iterator[list[Any]]:
    """Start one process per argument tuple; on the way out, kill any that is still running."""
    procs = [CTX.Process(target=target, args=a) for a in args]
    try:
        for p in procs:
            p.start()
        yield procs
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(timeout=30)


def _data_files(lake: wharf.Lakehouse, table: str) -> set[str]:
    return {r[0] for r in lake.sql(f"SELECT file_path FROM {table}.files").fetchall()}


def _files_on_disk(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# --- contention -------------------------------------------------------------------------------


def _update_own_file(path: str, worker: int, rounds: int, queue: Any, start: Any) -> None:
    lake = wharf.connect(path, user=f"w{worker}")
    retries = []
    lake.events.subscribe("on_statement", lambda e: retries.append(e.retries))
    start.wait(120)  # every process imported and connected: their commits race from here
    for i in range(rounds):
        lake.sql(f"UPDATE t SET v = v + 1 WHERE worker = {worker}")
        lake.sql(f"DELETE FROM t WHERE worker = {worker} AND i = {i}")
    queue.put((worker, sum(retries)))


def test_dml_on_disjoint_files_never_conflicts(tmp_path: Path) -> None:
    """Four processes update and delete rows of their own data file at once: every statement must land."""
    path = str(tmp_path / "lake")
    lake = wharf.connect(path)
    lake.sql("CREATE TABLE t (worker INT, i INT, v INT)")
    workers, rounds = 4, 3
    for w in range(workers):  # one data file per worker
        lake.sql(f"INSERT INTO t SELECT {w}, range, 0 FROM range(10)")
        lake.sql(f"GRANT SELECT, UPDATE, DELETE ON TABLE t TO USER w{w}")  # each process acts as its own user
    queue, start = CTX.Queue(), CTX.Barrier(workers)
    with processes(_update_own_file, [(path, w, rounds, queue, start) for w in range(workers)]) as procs:
        for p in procs:
            p.join(timeout=300)
            assert p.exitcode == 0, "a writer failed (a false conflict?)"
    retries = dict(queue.get(timeout=10) for _ in range(workers))
    rows = lake.sql("SELECT worker, count(*), min(v), max(v) FROM t GROUP BY worker ORDER BY worker").fetchall()
    assert rows == [(w, 10 - rounds, rounds, rounds) for w in range(workers)]
    assert sum(retries.values()) > 0  # they did collide, and rebased instead of failing


def _update_shared_rows(path: str, worker: int, queue: Any) -> None:
    lake = wharf.connect(path, user=f"w{worker}")
    outcomes = []
    for _ in range(5):
        try:
            lake.sql("UPDATE t SET v = v + 1 WHERE i < 5")
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")
    queue.put(outcomes)


def test_true_conflicts_are_typed_and_lose_nothing(tmp_path: Path) -> None:
    """Writers rewriting the same file: each statement lands or fails with ConflictError, never half."""
    path = str(tmp_path / "lake")
    lake = wharf.connect(path)
    lake.sql("CREATE TABLE t AS SELECT range AS i, 0 AS v FROM range(10)")
    lake.sql("CREATE ROLE writers")  # each process acts as its own user: governed, so granted first
    lake.sql("GRANT SELECT, UPDATE ON TABLE t TO ROLE writers")
    for w in range(4):
        lake.sql(f"GRANT ROLE writers TO USER w{w}")
    queue = CTX.Queue()
    with processes(_update_shared_rows, [(path, w, queue) for w in range(4)]) as procs:
        for p in procs:
            p.join(timeout=300)
            assert p.exitcode == 0
    outcomes = [o for _ in range(4) for o in queue.get(timeout=10)]
    landed = outcomes.count("ok")
    assert lake.sql("SELECT sum(v) FROM t").scalar() == 5 * landed  # every landed update counted once
    assert lake.sql("SELECT count(*) FROM t").scalar() == 10


RACERS = 3


def _create(path: str, statement: str, queue: Any) -> None:
    lake = wharf.connect(path)
    try:
        lake.sql(statement)
        queue.put("ok")
    except AlreadyExists:
        queue.put("exists")


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS x", {"ok"}),
        ("CREATE SCHEMA IF NOT EXISTS s", {"ok"}),
        ("CREATE TABLE t (x INT)", {"ok", "exists"}),
        ("CREATE SCHEMA s", {"ok", "exists"}),
    ],
)
def test_concurrent_ddl(tmp_path: Path, statement: str, expected: set[str]) -> None:
    path = str(tmp_path / "lake")
    wharf.connect(path).close()
    queue = CTX.Queue()
    # Three racers are enough for "exactly one wins, the others see it"; each process costs an import of wharf.
    with processes(_create, [(path, statement, queue) for _ in range(RACERS)]) as procs:
        for p in procs:
            p.join(timeout=300)
            assert p.exitcode == 0
    outcomes = [queue.get(timeout=10) for _ in range(RACERS)]
    assert set(outcomes) == expected
    if "exists" in expected:
        assert outcomes.count("ok") == 1  # exactly one process wins


# --- kill -9 ------------------------------------------------------------------------------------

ROWS = 1_000_000
STATEMENTS = {
    "insert": f"INSERT INTO t SELECT range + {ROWS}, 'new', range FROM range({ROWS})",
    "update": "UPDATE t SET name = 'changed', amount = amount + 1",
    "merge": (
        f"MERGE INTO t USING (SELECT range AS id, 'merged' AS name, 0 AS amount FROM range(0, {2 * ROWS}, 2)) s "
        "ON t.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name WHEN NOT MATCHED THEN INSERT *"
    ),
}
# (rows, distinct names) after one statement of each kind committed
AFTER = {"insert": (2 * ROWS, 2), "update": (ROWS, 1), "merge": (ROWS + ROWS // 2, 2)}


def _write_forever(path: str, statement: str) -> None:
    lake = wharf.connect(path)
    while True:
        lake.sql(statement)


@pytest.mark.parametrize("kind", sorted(STATEMENTS))
def test_kill_9_mid_write_leaves_the_table_before_or_after(tmp_path: Path, kind: str) -> None:
    from wharf.tables.orphans import referenced_files

    path = tmp_path / "lake"
    lake = wharf.connect(path)
    lake.sql(f"CREATE TABLE t AS SELECT range AS id, 'old' AS name, range AS amount FROM range({ROWS})")
    table_dir = path / "warehouse" / "default" / "t"
    before = _files_on_disk(table_dir)
    with processes(_write_forever, [(str(path), STATEMENTS[kind])]) as [proc]:
        # Kill it while it writes its first statement's Parquet (a new data file appears).
        deadline = time.monotonic() + 120
        while not any(p.suffix == ".parquet" for p in _files_on_disk(table_dir) - before):
            assert proc.is_alive() and time.monotonic() < deadline
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    snapshots = lake.sql("SELECT count(*) FROM t.snapshots").scalar()
    state = lake.sql("SELECT count(*), count(DISTINCT name) FROM t").fetchone()
    assert (snapshots, state) in {(1, (ROWS, 1)), (2, AFTER[kind])}  # all of the statement, or none of it
    # What the killed process left is orphaned; orphan cleanup removes exactly that.
    lake.sql("CALL system.remove_orphan_files(table => 't', older_than => now() + INTERVAL 1 MINUTE)")
    table = lake.catalog.load_table("default.t")
    on_disk = {os.path.normpath(p) for p in _files_on_disk(table_dir)}
    assert on_disk == {p for p in referenced_files(table) if p.startswith(str(table_dir))}
    assert lake.sql("SELECT count(*), count(DISTINCT name) FROM t").fetchone() == state


# --- nothing left behind ----------------------------------------------------------------------


def test_a_commit_that_loses_its_race_leaves_no_metadata_file(tmp_path: Path) -> None:
    """The metadata file written for a compare-and-swap that failed is removed with it."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.types import IntegerType

    lake = wharf.connect(tmp_path / "lake")
    lake.sql("CREATE TABLE t (x INT)")
    stale = lake.catalog.load_table("default.t")
    lake.sql("ALTER TABLE t ADD COLUMN y INT")  # moves the table on: a new current schema
    metadata_dir = tmp_path / "lake" / "warehouse" / "default" / "t" / "metadata"
    before = _files_on_disk(metadata_dir)
    with pytest.raises(CommitFailedException, match="schema"):
        # Asserts the schema it started from, which changed; no snapshot producer, so no retry.
        stale.update_schema().add_column("z", IntegerType()).commit()
    assert _files_on_disk(metadata_dir) == before


def test_cli_output_files_are_complete_or_absent(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from wharf.cli import app

    lake_path = tmp_path / "lake"
    wharf.connect(lake_path).sql("CREATE TABLE t AS SELECT range AS x FROM range(300000)")
    runner = CliRunner()
    for name in ("out.csv", "out.parquet", "out.json"):
        target = tmp_path / name
        failing = "SELECT CASE WHEN x = 250000 THEN CAST('boom' AS INT) ELSE x END AS x FROM t"
        result = runner.invoke(app, ["--lake", str(lake_path), "sql", failing, "-o", str(target)])
        assert result.exit_code == 1, result.output
        assert not target.exists() and not list(tmp_path.glob(f".{name}*"))
        assert "Traceback" not in result.output
        ok = runner.invoke(app, ["--lake", str(lake_path), "sql", "SELECT x FROM t", "-o", str(target)])
        assert ok.exit_code == 0 and target.exists()


def test_commit_retries_are_counted_not_logged(lake: wharf.Lakehouse, caplog: pytest.LogCaptureFixture) -> None:
    """Writers colliding in one process: no retry warning reaches the log; the events count them."""
    import logging
    import threading

    from wharf.events import StatementEvent

    lake.sql("CREATE TABLE t (worker INT, v INT)")
    for w in range(4):
        lake.sql(f"INSERT INTO t VALUES ({w}, 0)")  # a data file per worker
    events: list[StatementEvent] = []
    lake.events.subscribe("on_statement", events.append)

    def work(worker: int) -> None:
        session = lake.session()
        for _ in range(5):
            session.sql(f"UPDATE t SET v = v + 1 WHERE worker = {worker}")

    with caplog.at_level(logging.WARNING):
        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert lake.sql("SELECT sum(v) FROM t").scalar() == 20
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]
    assert sum(e.retries for e in events if e.kind == "update") > 0
