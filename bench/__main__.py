"""``python -m bench <name> [--scale S] [--quick]``: run a benchmark, print its table, write JSON results.

Benchmarks: scan (TPC-H), pruning (events by day), merge (MERGE/UPDATE/DELETE), ingest
(bulk and small appends), memory (peak RSS of scan queries), compaction
(queries on a streamed table before and after compaction), quality (data-quality checks vs
Great Expectations), history (changelog, SCD2), cdc (apply_changes), latency (statement and
commit overhead), auth (token checks), server (wharf serve under load), or all of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from bench.harness import BENCH_DIR, RESULTS_DIR, Options, Report

BENCHMARKS: dict[str, str] = {
    "scan": "TPC-H 22 queries: Wharf vs DuckDB on the same Parquet (limit) vs PyIceberg to_arrow (peer); --scale = SF (1)",
    "pruning": "events partitioned by day: files opened, bytes, time vs hive-partitioned DuckDB; --scale × 20M rows",
    "merge": "MERGE 1%/10% into 1M/10M rows, UPDATE/DELETE 1%: vs PyIceberg and DuckDB COPY; --scale × 1M/10M rows",
    "ingest": "10M-row append and 1,000 small appends: vs pyarrow write_table and PyIceberg; --scale × 10M / 1,000",
    "memory": "peak RSS of scan queries: Wharf vs DuckDB on the same Parquet; --scale = TPC-H SF (1)",
    "compaction": "2,000 merge-on-read MERGE commits into employee: 4 queries before/after compaction vs Athena; --scale × 2,000",
    "history": "changelog of 100 snapshots of 1M rows, SCD2 of 10M rows × 5% churn: vs hand-written DuckDB; --scale × 1M/10M",
    "latency": "statement fixed cost vs DuckDB, 1-row appends at 10/1k/10k snapshots vs PyIceberg, point lookups",
    "concurrency": "8 processes × 25 appends / disjoint updates on one table vs one process doing them all; --scale × 25",
    "cdc": "apply_changes: 1M change events onto 1M rows (CoW and MoR) vs DuckDB dedup + MERGE (limit); --scale × 1M",
    "auth": "verify_bearer per request (JWT, personal token), argon2 login vs stateless checks; --scale × 5,000 requests",
    "quality": "50 DQDL checks on 10M rows: Wharf vs Great Expectations 1.x (own venv, SQL on DuckDB); --scale × 10M rows",
    "server": "wharf serve soak: 200 users mix loadTable, cached/uncached SQL, commits; p50/p99, errors, RSS; --scale × 10 min",
    "governance": "TPC-H as a principal under row filters + masks vs as owner; policy and audit cost per statement; --scale = SF",
    "latency_pairs": "statement fixed cost paired per call with DuckDB (new shape, new literals, repeated), 1-row appends",
}


def run_benchmark(name: str, opts: Options) -> Report:
    module = importlib.import_module(f"bench.{name}")
    report: Report = module.run(opts)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Wharf benchmarks. Each runs Wharf and its peers alternately in one process run and prints medians.",
        epilog="\n".join(f"  {k:8} {v}" for k, v in BENCHMARKS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=[*BENCHMARKS, "all"])
    parser.add_argument("--scale", type=float, default=None, help="size (meaning per benchmark, see below)")
    parser.add_argument("--quick", action="store_true", help="tiny scale, one timed round: under a minute each")
    parser.add_argument("--reps", type=int, default=None, help="timed rounds per case (default 3, quick 1)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds before timing (default 1)")
    parser.add_argument("--budget", type=float, default=None, help="seconds per case after which rounds stop early")
    parser.add_argument("--data-dir", type=Path, default=BENCH_DIR / "data", help="data cache and scratch space")
    parser.add_argument(
        "--results-dir", type=Path, default=None, help="where JSON results go (bench/results; --quick: bench/results/tmp)"
    )
    parser.add_argument("--no-check", action="store_true", help="do not compare answers across systems")
    args = parser.parse_args(argv)
    opts = Options(
        scale=args.scale,
        quick=args.quick,
        warmup=args.warmup,
        reps=args.reps,
        budget_s=args.budget,
        data_dir=args.data_dir,
        results_dir=args.results_dir or (RESULTS_DIR / "tmp" if args.quick else RESULTS_DIR),
        check=not args.no_check,
    )
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    started = time.time()
    failed: list[str] = []
    for name in names:
        try:
            report = run_benchmark(name, opts)
        except Exception:  # noqa: BLE001 - with `all`, one broken benchmark must not hide the others
            if len(names) == 1:
                raise
            traceback.print_exc()
            failed.append(name)
            continue
        path = report.write()
        report.print()
        print(f"results: {path}\n", flush=True)
    if len(names) > 1:
        print(f"all benchmarks ran in {time.time() - started:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
