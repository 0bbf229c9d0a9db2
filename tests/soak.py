"""Soak: an ingest loop, the optimizer and readers on one table, unattended, for minutes.

    python -m tests.soak --minutes 10 [--lake DIR] [--optimizer-process]

A writer thread appends small batches (``BATCH`` rows with fresh ids) and, every few batches,
runs a merge-on-read MERGE that updates random existing rows (delete files plus new rows); a
conflicting statement is retried, and counted. The optimizer runs its ``serve`` loop with a short
interval (in a thread, or as a separate ``wharf optimizer serve`` process). Reader threads count
the table continuously and check every answer: no error, no duplicate id (a row resurrected by a
compaction would show as one), a multiple of ``BATCH``, never fewer rows than were committed
before the query began nor more than were committed when it ended, never fewer than the
reader's previous answer. A sampler records the live data and delete file counts.

At the end the writer stops, and the final count must equal the rows committed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import wharf
from wharf.errors import ConflictError
from wharf.optimizer import Optimizer

BATCH = 20
TABLE = "soak.events"

# A policy for minutes, not days: compact early, keep a minute of snapshots, look for orphans
# (files over five minutes old) every three minutes.
POLICY = {
    "wharf.optimizer.enabled": "true",
    "wharf.optimizer.min-interval-minutes": "0",
    "wharf.optimizer.compaction.min-input-files": "20",
    "wharf.optimizer.compaction.delete-file-threshold": "2",
    "wharf.optimizer.expiry.retention-days": str(60 / 86_400),
    "wharf.optimizer.expiry.retain-last": "5",
    "wharf.optimizer.orphans.retention-days": str(300 / 86_400),
    "wharf.optimizer.orphans.interval-hours": str(180 / 3600),
    "write.merge.mode": "merge-on-read",
    "write.update.mode": "merge-on-read",
    "write.delete.mode": "merge-on-read",
}


@dataclass
class SoakResult:
    seconds: float = 0.0
    batches: int = 0
    merges: int = 0
    rows_committed: int = 0
    writer_conflicts: int = 0  # statements retried after a ConflictError
    writer_failures: list[str] = field(default_factory=list)
    reader_queries: int = 0
    reader_failures: list[str] = field(default_factory=list)
    inconsistencies: list[str] = field(default_factory=list)
    max_data_files: int = 0
    max_delete_files: int = 0
    final_data_files: int = 0
    final_count: int = 0
    optimizer_actions: dict[str, int] = field(default_factory=dict)
    optimizer_failed: int = 0
    optimizer_skipped: int = 0

    @property
    def ok(self) -> bool:
        return (
            not self.reader_failures
            and not self.inconsistencies
            and not self.writer_failures
            and self.final_count == self.rows_committed
        )

    def summary(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("writer_failures", "reader_failures", "inconsistencies"):
            data[key] = data[key][:5] + ([f"... {len(data[key]) - 5} more"] if len(data[key]) > 5 else [])
        data["ok"] = self.ok
        return data


class Soak:
    def __init__(
        self,
        path: Path,
        *,
        readers: int = 2,
        optimizer_interval: float = 1.0,
        reader_pause: float = 0.02,
        min_input_files: int = 20,
        seed: int = 7,
    ) -> None:
        self.path = path
        self.policy = {**POLICY, "wharf.optimizer.compaction.min-input-files": str(min_input_files)}
        self.reader_pause = reader_pause
        self.lake = wharf.connect(path)
        self.readers = readers
        self.optimizer_interval = optimizer_interval
        self.random = random.Random(seed)
        self.result = SoakResult()
        self.committed = 0  # rows visible once the statement returned
        self.lock = threading.Lock()
        self.stop_writer = threading.Event()
        self.stop_all = threading.Event()

    def setup(self) -> None:
        self.lake.sql("CREATE SCHEMA IF NOT EXISTS soak")
        props = ", ".join(f"'{k}'='{v}'" for k, v in self.policy.items())
        self.lake.sql(f"CREATE TABLE {TABLE} (id BIGINT, version INT, payload VARCHAR) TBLPROPERTIES ({props})")

    # --- threads ----------------------------------------------------------------------------------

    def _retrying(self, lake: wharf.Lakehouse, sql: str) -> bool:
        for _attempt in range(20):
            try:
                lake.sql(sql)
                return True
            except ConflictError:
                self.result.writer_conflicts += 1
                time.sleep(0.01)
            except Exception as exc:  # noqa: BLE001 - recorded, the soak fails
                self.result.writer_failures.append(f"{type(exc).__name__}: {exc}"[:300])
                return False
        self.result.writer_failures.append(f"gave up after 20 conflicts: {sql[:80]}")
        return False

    def writer(self) -> None:
        lake = self.lake.session()
        next_id = 0
        while not self.stop_writer.is_set():
            first = next_id
            sql = f"INSERT INTO {TABLE} SELECT i, 0, 'row ' || i FROM range({first}, {first + BATCH}) r(i)"
            if self._retrying(lake, sql):
                next_id += BATCH
                with self.lock:
                    self.committed += BATCH
                self.result.batches += 1
            if self.result.batches % 5 == 0 and next_id:
                ids = ", ".join(str(i) for i in self.random.sample(range(next_id), min(8, next_id)))  # distinct: one match each
                merge = (
                    f"MERGE INTO {TABLE} t USING (SELECT unnest([{ids}]) AS id) s ON t.id = s.id "
                    "WHEN MATCHED THEN UPDATE SET version = t.version + 1"
                )
                if self._retrying(lake, merge):
                    self.result.merges += 1

    def reader(self) -> None:
        lake = self.lake.session()
        previous = 0
        while not self.stop_all.is_set():
            with self.lock:
                low = self.committed
            try:
                rows, ids = lake.sql(f"SELECT count(*), count(DISTINCT id) FROM {TABLE}").fetchall()[0]
            except Exception as exc:  # noqa: BLE001 - recorded, the soak fails
                self.result.reader_failures.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            with self.lock:
                high = self.committed + BATCH  # a batch may have landed without its counter yet
            self.result.reader_queries += 1
            problems = []
            if rows != ids:
                problems.append(f"{rows - ids} duplicate id(s)")
            if rows % BATCH:
                problems.append("not a whole number of batches")
            if not low <= rows <= high:
                problems.append(f"committed were {low}..{high}")
            if rows < previous:
                problems.append(f"fewer than the previous answer {previous}")
            if problems:
                self.result.inconsistencies.append(f"count {rows}: " + "; ".join(problems))
            previous = max(previous, rows)
            self.stop_all.wait(self.reader_pause)  # leave the writer some of the GIL

    def sampler(self) -> None:
        lake = self.lake.session()
        while not self.stop_all.is_set():
            try:
                self._sample(lake)
            except Exception as exc:  # noqa: BLE001 - a failed metadata read is a reader failure too
                self.result.reader_failures.append(f"files: {type(exc).__name__}: {exc}"[:300])
            self.stop_all.wait(0.25)

    def _sample(self, lake: wharf.Lakehouse) -> tuple[int, int]:
        counts = dict(lake.sql(f"SELECT content, count(*) FROM {TABLE}.files GROUP BY content").fetchall())
        data, deletes = int(counts.get(0, 0)), int(counts.get(1, 0)) + int(counts.get(2, 0))
        self.result.max_data_files = max(self.result.max_data_files, data)
        self.result.max_delete_files = max(self.result.max_delete_files, deletes)
        return data, deletes

    # --- running ----------------------------------------------------------------------------------

    def run(self, seconds: float, *, optimizer_process: bool = False) -> SoakResult:
        self.setup()
        started = time.monotonic()
        optimizer: Optimizer | None = None
        process: subprocess.Popen[bytes] | None = None
        threads = [threading.Thread(target=self.writer, name="writer")]
        threads += [threading.Thread(target=self.reader, name=f"reader-{i}") for i in range(self.readers)]
        threads.append(threading.Thread(target=self.sampler, name="sampler"))
        if optimizer_process:
            process = subprocess.Popen(
                [sys.executable, "-m", "wharf.cli", "--lake", str(self.path), "optimizer", "serve",
                 "--interval", str(self.optimizer_interval), "--table", TABLE],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        else:
            optimizer = Optimizer(self.lake, tables=[TABLE])
            threads.append(
                threading.Thread(
                    target=optimizer.serve,
                    args=(self.optimizer_interval,),
                    kwargs={"handle_signals": False},
                    name="optimizer",
                )
            )
        for t in threads:
            t.start()
        try:
            self.stop_all.wait(seconds)
        finally:
            self.stop_writer.set()
            threads[0].join()
            time.sleep(0.5)  # readers see the final state
            self.stop_all.set()
            if optimizer is not None:
                optimizer.stop()
            if process is not None:
                process.terminate()  # SIGTERM: the optimizer finishes its current table and exits
                process.wait(60)
            for t in threads[1:]:
                t.join()
        self.result.seconds = time.monotonic() - started
        self.result.rows_committed = self.committed
        self.result.final_count = int(self.lake.sql(f"SELECT count(*) FROM {TABLE}").scalar())
        self.result.final_data_files, _ = self._sample(self.lake)
        for action, outcome, n in self.lake.sql(
            f"SELECT action, outcome, count(*) FROM system.maintenance_log WHERE table_name = '{TABLE}' GROUP BY ALL"
        ).fetchall():
            if outcome == "ok":
                self.result.optimizer_actions[action] = int(n)
            elif outcome == "failed":
                self.result.optimizer_failed += int(n)
            else:
                self.result.optimizer_skipped += int(n)
        self.lake.close()
        return self.result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--lake", type=Path, default=None, help="lake directory (default: a new temporary one)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between optimizer passes")
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--reader-pause", type=float, default=0.02, help="seconds each reader waits between queries")
    parser.add_argument("--optimizer-process", action="store_true", help="run `wharf optimizer serve` as its own process")
    args = parser.parse_args()
    path = args.lake or Path(tempfile.mkdtemp(prefix="wharf-soak-")) / "lake"
    os.makedirs(path.parent, exist_ok=True)
    soak = Soak(path, readers=args.readers, optimizer_interval=args.interval, reader_pause=args.reader_pause)
    result = soak.run(args.minutes * 60, optimizer_process=args.optimizer_process)
    print(json.dumps({"lake": str(path), **result.summary()}, indent=2))
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
