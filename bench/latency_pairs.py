"""``latency_pairs``: issue 14's statement fixed cost measured in pairs, for a shared (loaded) machine.

``python -m bench latency`` reports medians of each system separately; when the machine is busy
the load drifts between the two series. Here every iteration runs DuckDB on the tables' files and
then ``lake.sql`` on the tables, and the fixed cost is the median of the per-call *differences*
(CPU time of the process, and wall), so drift cancels. Cases: a three-table join with a new shape
each call, the same join with new literals each call (one compiled form), the same text repeated,
and a one-row append on a short history (8 snapshots and up).

For a claim about a change, run it from the code before and after, alternately, in separate
processes (the JSON results name the commit)::

    python -m bench latency_pairs                                   # this checkout
    (cd ../main && PYTHONPATH=src:$OLDPWD python -m bench latency_pairs --results-dir /tmp/main)

or as a script printing one line per case (``PYTHONPATH=src:. python bench/latency_pairs.py
[new] [lit] [rep] [append]``; environment ``N`` query iterations (300), ``NA`` appends (60)).
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
from bench.data import duckdb_connection, run_dir
from bench.harness import CaseResult, Options, Peer, Report, SystemResult, log, same_rows
from bench.latency import _files, _read_parquet

PEERS = [
    Peer("wharf", "system", "Wharf lake.sql / Table.append"),
    Peer("duckdb", "limit", "DuckDB on the same Parquet files, run just before each Wharf call"),
]
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
MODES = {"new": "3-table join, new shape", "lit": "3-table join, new literals", "rep": "3-table join, repeated"}


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    t0, p0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - p0


def _pairs(wharf_call: Callable[[], Any], duck_call: Callable[[], Any], n: int, warmup: int = 20) -> list[tuple[float, ...]]:
    """(wharf wall, wharf cpu, duckdb wall, duckdb cpu) per iteration, DuckDB first."""
    for _ in range(warmup):
        duck_call()
        wharf_call()
    rows = []
    for _ in range(n):
        duck = _timed(duck_call)
        mine = _timed(wharf_call)
        rows.append((*mine, *duck))
    return rows


def _ms(values: Any) -> float:
    return round(statistics.median(values) * 1000, 3)


def _query_result(name: str, rows: list[tuple[float, ...]]) -> CaseResult:
    wharf_result = SystemResult(samples_s=[r[0] for r in rows])
    wharf_result.extra = {
        "fixed_cpu_ms": _ms(r[1] - r[3] for r in rows),
        "fixed_wall_ms": _ms(r[0] - r[2] for r in rows),
        "cpu_p50_ms": _ms(r[1] for r in rows),
    }
    duck_result = SystemResult(samples_s=[r[2] for r in rows], extra={"cpu_p50_ms": _ms(r[3] for r in rows)})
    return CaseResult(name, {"calls": len(rows)}, {"wharf": wharf_result, "duckdb": duck_result})


def measure_all(which: list[str], n: int, appends: int, work: Path) -> list[CaseResult]:
    """The cases named in ``which`` (new, lit, rep, append), measured in a lake under ``work``."""
    previous = os.environ.get("WHARF_THREADS")
    os.environ["WHARF_THREADS"] = "1"  # one DuckDB thread, as bench/latency.py
    try:
        lake = wharf.connect(work / "lake", user="bench")
    finally:
        if previous is None:
            os.environ.pop("WHARF_THREADS", None)
        else:
            os.environ["WHARF_THREADS"] = previous
    con = duckdb_connection()
    con.execute("SET threads = 1")
    results: list[CaseResult] = []
    try:
        for name, column in (("a", "x"), ("b", "y"), ("c", "z")):
            lake.sql(f"CREATE TABLE {name} (id BIGINT, {column} VARCHAR)")
            lake.sql(f"INSERT INTO {name} SELECT range, 'v' || range FROM range(100)")
        files = {t: _read_parquet(_files(lake, t)) for t in "abc"}
        for mode, label in MODES.items():
            if mode not in which:
                continue
            log(f"latency_pairs: {label}")
            text = NEW_SHAPE if mode == "new" else JOIN
            calls = itertools.count(1000) if mode != "rep" else itertools.repeat(1007)  # rep: lo = 7, one text
            state: dict[str, Any] = {"k": 0}

            def duck_call(text: str = text, calls: Any = calls, state: dict[str, Any] = state) -> None:
                state["k"] = k = next(calls)
                sql = text.format(a=files["a"], b=files["b"], c=files["c"], lo=k % 100, call=k)
                state["duckdb"] = con.execute(sql).to_arrow_table()

            def wharf_call(text: str = text, state: dict[str, Any] = state) -> None:
                k = state["k"]
                state["wharf"] = lake.sql(text.format(a="a", b="b", c="c", lo=k % 100, call=k)).to_arrow()

            result = _query_result(label, _pairs(wharf_call, duck_call, n))
            result.systems["duckdb"].agrees = same_rows(state["wharf"], state["duckdb"])  # the last call's answers
            results.append(result)
        if "append" in which:
            log("latency_pairs: one-row appends")
            lake.sql("CREATE TABLE h (id BIGINT, v VARCHAR)")
            row = pa.table({"id": pa.array([1], pa.int64()), "v": pa.array(["one row"], pa.string())})
            table = lake.table("h")
            for _ in range(8):
                table.append(row)
            timings = [_timed(lambda: table.append(row)) for _ in range(appends)]
            res = SystemResult(samples_s=[t[0] for t in timings], extra={"cpu_p50_ms": _ms(t[1] for t in timings)})
            res.agrees = table.count() == 8 + appends  # every append committed its row
            results.append(CaseResult(f"append 1 row, 8 to {8 + appends} snapshots", {"appends": appends}, {"wharf": res}))
    finally:
        con.close()
        lake.close()
    return results


def run(opts: Options) -> Report:
    n = opts.reps or (30 if opts.quick else 300)
    appends = 5 if opts.quick else 60
    report = Report(
        "latency_pairs",
        "latency_pairs: statement fixed cost, paired per call with DuckDB on the files",
        opts,
        PEERS,
        params={"calls": n, "appends": appends},
        issue=14,
    )
    report.extra_columns = [
        ("fixed cpu ms", "wharf", "fixed_cpu_ms"),
        ("fixed wall ms", "wharf", "fixed_wall_ms"),
        ("wharf cpu ms", "wharf", "cpu_p50_ms"),
        ("duckdb cpu ms", "duckdb", "cpu_p50_ms"),
    ]
    for result in measure_all(["new", "lit", "rep", "append"], n, appends, run_dir(opts.data_dir, "latency_pairs")):
        report.add(result)
    report.notes.append("fixed cost = median over calls of (Wharf − DuckDB run just before it); load average " + _load())
    return report


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main(which: list[str]) -> None:
    results = measure_all(
        which, int(os.environ.get("N", "300")), int(os.environ.get("NA", "60")), Path(tempfile.mkdtemp(prefix="latency-pairs-"))
    )
    for result in results:
        extra = result.systems["wharf"].extra
        if "fixed_cpu_ms" in extra:
            print(
                f"{result.name:28s} fixed cost: cpu {extra['fixed_cpu_ms']:.2f} ms, wall {extra['fixed_wall_ms']:.2f} ms "
                f"(wharf cpu {extra['cpu_p50_ms']:.2f} ms)"
            )
        else:
            wall = result.systems["wharf"].median_s or 0.0
            print(f"{result.name:28s} cpu p50 {extra['cpu_p50_ms']:.2f} ms, wall p50 {wall * 1000:.2f} ms")
    print("load average:", _load())


if __name__ == "__main__":
    main(sys.argv[1:] or ["new", "lit", "rep", "append"])
