"""Paired A/B measurement of issue 14's two hard cases, for a shared (loaded) machine.

``python -m bench latency`` reports medians of each system separately; when the machine is busy
the load drifts between the two series. This script runs DuckDB on the tables' files and then
``lake.sql`` in each iteration and takes the median of the per-call *differences* (CPU time of
the process, and wall), so drift cancels: the statement's fixed cost. Run the code before and
after a change back to back, in separate processes::

    PYTHONPATH=src:. python bench/latency_pairs.py            # new shape, new literals, repeated, append
    PYTHONPATH=src:. python bench/latency_pairs.py new append  # a subset (new, lit, rep, append)

Environment: ``N`` query iterations (300), ``NA`` appends (60). Not a registered benchmark: it
writes no results file; docs/performance.md ("Follow-up") quotes its output.
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

import wharf
from bench.data import duckdb_connection
from bench.latency import _files, _read_parquet

JOIN = (
    "SELECT a.x, b.y, c.z FROM {a} AS a JOIN {b} AS b ON a.id = b.id JOIN {c} AS c ON c.id = b.id "
    "WHERE a.id BETWEEN {lo} AND {lo} + 5 AND {call} > 0 ORDER BY a.x"
)
# A genuinely new statement each call: the call number is an output column (select-list literals
# are never taken as parameters), as in ``bench/latency.py``'s "new shape" case.
NEW_SHAPE = (
    "SELECT a.x, b.y, c.z, {call} AS k FROM {a} AS a JOIN {b} AS b ON a.id = b.id JOIN {c} AS c ON c.id = b.id "
    "WHERE a.id BETWEEN {lo} AND {lo} + 5 ORDER BY a.x"
)


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    t0, p0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - p0


def _pairs(wharf_call: Callable[[], Any], duck_call: Callable[[], Any], n: int, warmup: int = 20) -> dict[str, float]:
    for _ in range(warmup):
        duck_call()
        wharf_call()
    rows = []
    for _ in range(n):
        duck = _timed(duck_call)
        mine = _timed(wharf_call)
        rows.append((*mine, *duck))

    def ms(values: Any) -> float:
        return statistics.median(values) * 1000

    return {
        "wharf_cpu": ms(r[1] for r in rows),
        "duckdb_cpu": ms(r[3] for r in rows),
        "fixed_wall": ms(r[0] - r[2] for r in rows),
        "fixed_cpu": ms(r[1] - r[3] for r in rows),
    }


def _report(case: str, r: dict[str, float]) -> None:
    print(
        f"{case:10s} fixed cost: cpu {r['fixed_cpu']:.2f} ms, wall {r['fixed_wall']:.2f} ms (wharf cpu {r['wharf_cpu']:.2f} ms)"
    )


def main(which: list[str]) -> None:
    os.environ["WHARF_THREADS"] = "1"  # one DuckDB thread, as bench/latency.py
    n = int(os.environ.get("N", "300"))
    work = Path(tempfile.mkdtemp(prefix="latency-pairs-"))
    lake = wharf.connect(work / "lake", user="bench")
    con = duckdb_connection()
    con.execute("SET threads = 1")
    try:
        for name, column in (("a", "x"), ("b", "y"), ("c", "z")):
            lake.sql(f"CREATE TABLE {name} (id BIGINT, {column} VARCHAR)")
            lake.sql(f"INSERT INTO {name} SELECT range, 'v' || range FROM range(100)")
        files = {t: _read_parquet(_files(lake, t)) for t in "abc"}
        if "rep" in which:
            r = _pairs(
                lambda: lake.sql(JOIN.format(a="a", b="b", c="c", lo=7, call=1)).to_arrow(),
                lambda: con.execute(JOIN.format(a=files["a"], b=files["b"], c=files["c"], lo=7, call=1)).to_arrow_table(),
                n,
            )
            _report("repeated", r)
        for mode, label, text in (("new", "new shape", NEW_SHAPE), ("lit", "new literals", JOIN)):
            if mode not in which:
                continue
            calls = itertools.count(1000)
            state = {"k": 0}

            def duck_new(text: str = text, calls: Any = calls, state: dict[str, int] = state) -> None:
                state["k"] = k = next(calls)  # a new text each call
                con.execute(text.format(a=files["a"], b=files["b"], c=files["c"], lo=k % 100, call=k)).to_arrow_table()

            def wharf_new(text: str = text, state: dict[str, int] = state) -> None:
                k = state["k"]
                lake.sql(text.format(a="a", b="b", c="c", lo=k % 100, call=k)).to_arrow()

            _report(label, _pairs(wharf_new, duck_new, n))
        if "append" in which:
            lake.sql("CREATE TABLE h (id BIGINT, v VARCHAR)")
            row = pa.table({"id": pa.array([1], pa.int64()), "v": pa.array(["one row"], pa.string())})
            table = lake.table("h")
            for _ in range(8):
                table.append(row)
            appends = int(os.environ.get("NA", "60"))
            timings = [_timed(lambda: table.append(row)) for _ in range(appends)]
            wall = statistics.median(t[0] for t in timings) * 1000
            cpu = statistics.median(t[1] for t in timings) * 1000
            print(f"append     cpu p50 {cpu:.2f} ms, wall p50 {wall:.2f} ms ({8 + appends} snapshots at the end)")
        print("load average:", " ".join(open("/proc/loadavg").read().split()[:3]))
    finally:
        con.close()
        lake.close()


if __name__ == "__main__":
    main(sys.argv[1:] or ["new", "lit", "rep", "append"])
