"""``ingest``: one append of 10M rows, and 1,000 small appends of 1,000 rows.

Systems: **wharf** ``Table.append(arrow)`` (one INSERT, one snapshot per call); **pyarrow**
``pyarrow.parquet.write_table`` of the same Arrow data (the limit: bytes to Parquet, no table
format; zstd like Wharf and PyIceberg write); **pyiceberg** ``Table.append(arrow)`` (the peer).
Every call starts on a fresh, empty table (made untimed). The data is the events table of the
``pruning`` benchmark, held in memory as Arrow before timing starts.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import wharf
from bench.data import events_file, run_dir
from bench.harness import Case, Options, Peer, Report, Runner, Target, log, measure

PEERS = [
    Peer("wharf", "system", "Wharf"),
    Peer("pyarrow", "limit", "pyarrow.parquet.write_table"),
    Peer("pyiceberg", "peer", "PyIceberg append"),
]
_names = itertools.count()


def sizes(opts: Options) -> tuple[int, int, int]:
    """(bulk rows, number of small appends, rows per small append)."""
    scale = opts.scale if opts.scale is not None else (0.01 if opts.quick else 1.0)
    return int(10_000_000 * scale), max(20, int(1000 * scale)) if scale < 1 else 1000, 1000


def run(opts: Options) -> Report:
    bulk_rows, appends, rows_each = sizes(opts)
    warmup = opts.warmup if opts.warmup is not None else 1
    reps = opts.reps or (1 if opts.quick else 3)
    budget = opts.budget_s or (10.0 if opts.quick else 90.0)
    source = events_file(bulk_rows, 30, opts.data_dir)
    work = run_dir(opts.data_dir, "ingest")
    data = pq.read_table(source)
    small = [data.slice(i * rows_each, rows_each) for i in range(appends)]
    report = Report(
        "ingest",
        f"ingest: one append of {bulk_rows:,} rows; {appends:,} appends of {rows_each:,} rows",
        opts,
        PEERS,
        params={
            "bulk_rows": bulk_rows,
            "bulk_arrow_bytes": data.nbytes,
            "appends": appends,
            "rows_per_append": rows_each,
            "warmup": warmup,
            "reps": reps,
            "compression": "zstd",
        },
    )
    report.extra_columns = [
        ("wharf rows/s", "wharf", "rows_per_s"),
        ("pyarrow rows/s", "pyarrow", "rows_per_s"),
        ("wharf commits/s", "wharf", "commits_per_s"),
        ("pyiceberg commits/s", "pyiceberg", "commits_per_s"),
        ("files", "wharf", "data_files"),
    ]
    lake = wharf.connect(work / "lake", user="bench")
    from pyiceberg.catalog.sql import SqlCatalog

    peer_dir = work / "peer"
    (peer_dir / "warehouse").mkdir(parents=True)
    catalog = SqlCatalog("peer", uri=f"sqlite:///{peer_dir / 'peer.db'}", warehouse=(peer_dir / "warehouse").as_uri())
    catalog.create_namespace("default")
    schema = data.schema
    out_dir = work / "pyarrow"
    out_dir.mkdir()
    state: dict[str, Any] = {}

    def fresh_wharf() -> None:
        state["wharf"] = lake.create_table(f"w_{next(_names)}", schema)

    def fresh_peer() -> None:
        state["pyiceberg"] = catalog.create_table(("default", f"p_{next(_names)}"), schema=schema)

    def wharf_files(table: Any) -> int:
        iceberg = table.iceberg
        return len(lake.planner.plan(iceberg, iceberg.metadata.current_snapshot_id).files)

    # --- one big append ---
    def wharf_bulk() -> Any:
        state["wharf"].append(data)
        return state["wharf"]

    def pyarrow_bulk() -> Any:
        path = out_dir / f"bulk-{next(_names)}.parquet"
        pq.write_table(data, path, compression="zstd")
        return path

    def peer_bulk() -> Any:
        state["pyiceberg"].append(data)
        return state["pyiceberg"]

    bulk = Case(
        f"append {bulk_rows:,} rows",
        [
            Runner("wharf", wharf_bulk, setup=fresh_wharf, extra=lambda t: {"data_files": wharf_files(t)}),
            Runner("pyarrow", pyarrow_bulk),
            Runner("pyiceberg", peer_bulk, setup=fresh_peer),
        ],
        params={"rows": bulk_rows},
        compare=lambda ref, other: _rows(lake, ref) == _rows(lake, other),
    )
    log(f"ingest: bulk append of {bulk_rows:,} rows")
    result = measure(bulk, opts, warmup=warmup, reps=reps, budget_s=budget)
    for system in ("wharf", "pyarrow", "pyiceberg"):
        median = result.systems[system].median_s
        if median:
            result.systems[system].extra["rows_per_s"] = int(bulk_rows / median)
    report.add(result)

    # --- many small appends ---
    def wharf_small() -> Any:
        table = state["wharf"]
        for part in small:
            table.append(part)
        return table

    def pyarrow_small() -> Any:
        folder = out_dir / f"small-{next(_names)}"
        folder.mkdir()
        for i, part in enumerate(small):
            pq.write_table(part, folder / f"{i}.parquet", compression="zstd")
        return folder

    def peer_small() -> Any:
        table = state["pyiceberg"]
        for part in small:
            table.append(part)
        return table

    many = Case(
        f"{appends:,} appends of {rows_each:,} rows",
        [
            Runner("wharf", wharf_small, setup=fresh_wharf, extra=lambda t: {"data_files": wharf_files(t)}, max_reps=1),
            Runner("pyarrow", pyarrow_small, max_reps=1),
            Runner("pyiceberg", peer_small, setup=fresh_peer, max_reps=1),
        ],
        params={"appends": appends, "rows_per_append": rows_each},
        compare=lambda ref, other: _rows(lake, ref) == _rows(lake, other),
    )
    log(f"ingest: {appends:,} appends of {rows_each:,} rows")
    result = measure(many, opts, warmup=0, reps=1, budget_s=budget)
    for system in ("wharf", "pyiceberg"):
        median = result.systems[system].median_s
        if median:
            result.systems[system].extra["commits_per_s"] = round(appends / median, 1)
    report.add(result)
    lake.close()
    add_targets(report)
    return report


def _rows(lake: wharf.Lakehouse, answer: Any) -> int:
    """Rows written by a system (its answer is a Wharf table, a PyIceberg table, a file or a folder)."""
    if isinstance(answer, wharf.Table):
        return answer.count()
    if isinstance(answer, Path):
        files = [answer] if answer.is_file() else sorted(answer.glob("*.parquet"))
        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    snapshot = answer.current_snapshot()
    return int(snapshot.summary["total-records"]) if snapshot else 0


def add_targets(report: Report) -> None:
    if len(report.cases) < 2:
        return
    bulk, many = report.cases
    ratio = bulk.ratio("pyarrow")
    report.targets.append(
        Target(
            f"ingest {bulk.name}",
            "≥ 0.9× pyarrow.parquet write throughput",
            f"{1 / ratio:.2f}× pyarrow throughput" if ratio else f"wharf: {bulk.systems['wharf'].error}",
            None if ratio is None else 1 / ratio >= 0.9,
        )
    )
    w = many.systems["wharf"].extra.get("commits_per_s")
    p = many.systems["pyiceberg"].extra.get("commits_per_s")
    report.targets.append(
        Target(
            f"ingest {many.name}",
            "≥ PyIceberg append commits/s",
            f"Wharf {w} commits/s, PyIceberg {p} commits/s" if w and p else "n/a",
            None if not (w and p) else w >= p,
        )
    )
