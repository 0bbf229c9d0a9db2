"""``memory``: peak resident memory of scan queries, Wharf vs DuckDB on the same Parquet files.

Each measurement is a fresh child process (``python -m bench.memory <args>``) that imports the
same libraries for both systems (so the interpreter's baseline is alike), runs one query and
reports its peak RSS (``VmHWM`` from ``/proc/self/status``; ``ru_maxrss`` where that is missing —
on Linux ``ru_maxrss`` survives ``exec`` and would report the parent's peak) before and after the
query. Queries: TPC-H Q1 (aggregation), Q9 (joins) and a full ``SELECT *``
of lineitem consumed as a stream of record batches (Wharf's ``Result.iter_batches``, DuckDB's
``fetch_record_batch``): the case where materialising the result would cost memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.data import TPCH_TABLES, run_dir, tpch_dir, tpch_queries
from bench.harness import Case, Options, Peer, Report, Runner, Target, Timed, log, measure
from bench.scan import build_tpch_lake, data_files, scale_of

PEERS = [Peer("wharf", "system", "Wharf"), Peer("duckdb", "limit", "DuckDB, same Parquet")]
STREAM = "SELECT * FROM lineitem"


def _rss_mib() -> float:
    """Peak RSS of this process so far, in MiB.

    Linux's ``VmHWM`` starts afresh at ``exec``; ``ru_maxrss`` does not (a child of a big parent
    would report the parent's peak), so it is only the fallback.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(system: str, lake_path: str, views_file: str, query: str, stream: bool) -> dict[str, Any]:
    """Runs in the child process: one query, then the peak RSS."""
    import duckdb  # noqa: F401 - both systems import the same modules

    import wharf

    lake = wharf.connect(lake_path, user="bench")
    if system == "duckdb":
        from bench.data import duckdb_connection

        con = duckdb_connection()
        for name, paths in json.loads(Path(views_file).read_text()).items():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({paths!r})")
    before = _rss_mib()
    t0 = time.perf_counter()
    rows = 0
    if system == "wharf":
        result = lake.sql(query)
        if stream:
            for batch in result.iter_batches():
                rows += batch.num_rows
        else:
            rows = result.to_arrow().num_rows
    else:
        cursor = con.execute(query)
        if stream:
            for batch in cursor.fetch_record_batch(122_880):
                rows += batch.num_rows
        else:
            rows = cursor.to_arrow_table().num_rows
    return {"peak_mib": _rss_mib(), "before_mib": before, "seconds": time.perf_counter() - t0, "rows": rows}


def run_child(system: str, lake: Path, views: Path, query: str, stream: bool) -> Timed:
    args = [sys.executable, "-m", "bench.memory", system, str(lake), str(views), query, "stream" if stream else "all"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=1800, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        raise RuntimeError(f"child failed ({out.returncode}): {out.stderr.strip().splitlines()[-1] if out.stderr else ''}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return Timed(data, data["peak_mib"])


def run(opts: Options) -> Report:
    sf = scale_of(opts)
    warmup = opts.warmup if opts.warmup is not None else 0
    reps = opts.reps or (1 if opts.quick else 3)
    source = tpch_dir(sf, opts.data_dir)
    work = run_dir(opts.data_dir, "memory")
    log(f"memory: loading TPC-H sf={sf:g} into a Wharf lake")
    lake = build_tpch_lake(work / "lake", source, {})
    views = work / "views.json"
    views.write_text(json.dumps({t: data_files(lake, t) for t in TPCH_TABLES}))
    lake.close()
    queries = tpch_queries()
    report = Report("memory", f"memory: peak RSS, TPC-H sf={sf:g}", opts, PEERS, params={"sf": sf, "reps": reps})
    report.unit = "MiB"
    report.extra_columns = [
        ("wharf before query", "wharf", "before_mib"),
        ("duckdb before query", "duckdb", "before_mib"),
        ("wharf s", "wharf", "seconds"),
        ("duckdb s", "duckdb", "seconds"),
    ]
    for name, query, stream in [
        ("Q01 (aggregation)", queries[1], False),
        ("Q09 (joins)", queries[9], False),
        ("SELECT * FROM lineitem, streamed", STREAM, True),
    ]:
        runners = [
            Runner(
                system,
                lambda system=system, query=query, stream=stream: run_child(system, work / "lake", views, query, stream),
                extra=lambda data: {
                    "before_mib": round(data["before_mib"]),
                    "seconds": round(data["seconds"], 2),
                    "rows": data["rows"],
                },
            )
            for system in ("wharf", "duckdb")
        ]
        case = Case(name, runners, params={"query": query, "streamed": stream}, compare=lambda a, b: a["rows"] == b["rows"])
        report.add(measure(case, opts, warmup=warmup, reps=reps, budget_s=opts.budget_s or 600.0))
    for case in report.cases:
        ratio = case.ratio("duckdb")
        report.targets.append(
            Target(
                f"peak memory {case.name}",
                "≤ 1.5× DuckDB's on the same Parquet",
                f"{ratio:.2f}× ({case.systems['wharf'].median_s:,.0f} vs {case.systems['duckdb'].median_s:,.0f} MiB)"
                if ratio
                else "n/a",
                None if ratio is None else ratio <= 1.5,
            )
        )
    return report


if __name__ == "__main__":
    system, lake_path, views_file, query, mode = sys.argv[1:6]
    print(json.dumps(child(system, lake_path, views_file, query, mode == "stream")))
