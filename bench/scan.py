"""``scan``: the 22 TPC-H queries on Wharf tables, against

* **duckdb** (the limit): DuckDB over the very same Parquet files, i.e. views
  ``read_parquet([<the data files of the Wharf table>])`` — what a query costs with no table layer;
* **pyiceberg** (the peer): the naive path most Python users have today, ``table.scan().to_arrow()``
  for every table the query names, registered in DuckDB, then the query.

Both layouts: unpartitioned, and lineitem by ``months(l_shipdate)`` / orders by ``months(o_orderdate)``.
Every answer is compared with DuckDB's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

import wharf
from bench.data import TPCH_TABLES, duckdb_connection, run_dir, tpch_dir, tpch_queries
from bench.harness import Case, Options, Peer, Report, Runner, Target, log, measure, same_rows

LAYOUTS: dict[str, dict[str, list[str]]] = {
    "unpartitioned": {},
    "partitioned": {"lineitem": ["months(l_shipdate)"], "orders": ["months(o_orderdate)"]},
}
PEERS = [
    Peer("wharf", "system", "Wharf"),
    Peer("duckdb", "limit", "DuckDB, same Parquet"),
    Peer("pyiceberg", "peer", "PyIceberg to_arrow+DuckDB"),
]


def build_tpch_lake(path: Path, source: Path, partition_by: dict[str, list[str]]) -> wharf.Lakehouse:
    """A lake with the eight TPC-H tables, loaded through Wharf's INSERT (its write path)."""
    lake = wharf.connect(path, user="bench")
    for table in TPCH_TABLES:
        file = source / f"{table}.parquet"
        lake.create_table(table, pq.read_schema(file), partition_by=partition_by.get(table))
        lake.sql(f"INSERT INTO {table} SELECT * FROM read_parquet('{file}')")
    return lake


def data_files(lake: wharf.Lakehouse, table: str) -> list[str]:
    """The Parquet files of the current snapshot of ``table`` (as Wharf's planner sees them)."""
    iceberg = lake.table(table).iceberg
    return [f.path for f in lake.planner.plan(iceberg, iceberg.metadata.current_snapshot_id).files]


def referenced_tables(query: str) -> list[str]:
    names = {t.name.lower() for t in sqlglot.parse_one(query, read="duckdb").find_all(exp.Table)}
    return sorted(names & set(TPCH_TABLES))


def peer_catalog(lake_path: Path) -> Any:
    """A plain PyIceberg SqlCatalog on the lake's catalog database (what a PyIceberg user would open)."""
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "wharf",
        uri=f"sqlite:///{lake_path / 'wharf.db'}",
        warehouse=(lake_path / "warehouse").resolve().as_uri(),
    )


def query_case(n: int, query: str, layout: str, lake: wharf.Lakehouse, limit: Any, peer: Any, tables: dict[str, Any]) -> Case:
    """TPC-H query ``n`` on the three systems; answers compared with DuckDB's."""
    names = referenced_tables(query)

    def run_wharf() -> Any:
        return lake.sql(query).to_arrow()

    def run_limit() -> Any:
        return limit.execute(query).to_arrow_table()

    def run_peer() -> Any:
        for name in names:
            peer.register(name, tables[name].scan().to_arrow())
        try:
            return peer.execute(query).to_arrow_table()
        finally:
            for name in names:
                peer.unregister(name)

    return Case(
        f"Q{n:02d} {layout}",
        [Runner("wharf", run_wharf), Runner("duckdb", run_limit), Runner("pyiceberg", run_peer)],
        params={"query": n, "layout": layout, "tables": names},
        compare=same_rows,
        reference="duckdb",
    )


def scale_of(opts: Options) -> float:
    return opts.scale if opts.scale is not None else (0.01 if opts.quick else 1.0)


def run(opts: Options) -> Report:
    sf = scale_of(opts)
    warmup = opts.warmup if opts.warmup is not None else 1
    reps = opts.reps or (1 if opts.quick else 3)
    budget = opts.budget_s or (10.0 if opts.quick else 45.0)
    source = tpch_dir(sf, opts.data_dir)
    queries = tpch_queries()
    work = run_dir(opts.data_dir, "scan")
    report = Report("scan", f"scan: TPC-H sf={sf:g}", opts, PEERS, params={"sf": sf, "warmup": warmup, "reps": reps})
    lakes = []
    for layout, partition_by in LAYOUTS.items():
        log(f"scan: loading TPC-H sf={sf:g} into a {layout} Wharf lake")
        lake = build_tpch_lake(work / layout, source, partition_by)
        lakes.append(lake)
        files = {t: data_files(lake, t) for t in TPCH_TABLES}
        report.params[f"files_{layout}"] = {t: len(v) for t, v in files.items()}
        limit = duckdb_connection()
        for table, paths in files.items():
            listing = ", ".join(f"'{p}'" for p in paths)
            limit.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listing}])")
        catalog = peer_catalog(work / layout)
        iceberg_tables = {t: catalog.load_table(("default", t)) for t in TPCH_TABLES}
        peer = duckdb_connection()
        for n, query in queries.items():
            case = query_case(n, query, layout, lake, limit, peer, iceberg_tables)
            report.add(measure(case, opts, warmup=warmup, reps=reps, budget_s=budget))
        limit.close()
        peer.close()
    for lake in lakes:
        lake.close()
    add_targets(report)
    return report


def add_targets(report: Report) -> None:
    for layout in [*LAYOUTS, None]:
        cases = [c for c in report.cases if layout is None or c.params.get("layout") == layout]
        label = layout or "both layouts"
        ran = [c for c in cases if c.systems["wharf"].median_s is not None]
        failed = len(cases) - len(ran)
        suffix = f"; {failed} quer{'y' if failed == 1 else 'ies'} failed" if failed else ""
        gm = report.geomean("duckdb", cases)
        worst = max(((c.ratio("duckdb") or 0.0, c.name) for c in ran), default=(None, ""))
        report.targets.append(
            Target(
                f"scan {label}: Wharf / DuckDB-on-same-Parquet",
                "geomean ≤ 1.10, every query ≤ 1.30",
                (f"geomean {gm:.2f}, worst {worst[0]:.2f} ({worst[1]})" if gm and worst[0] else "n/a") + suffix,
                None if gm is None else (gm <= 1.10 and (worst[0] or 0) <= 1.30 and not failed),
            )
        )
        gm_peer = report.geomean("pyiceberg", cases)
        report.targets.append(
            Target(
                f"scan {label}: Wharf vs naive PyIceberg",
                "≥ 5× faster (geomean ratio ≤ 0.20)",
                (f"{1 / gm_peer:.1f}× faster (ratio {gm_peer:.2f})" if gm_peer else "n/a") + suffix,
                None if gm_peer is None else (gm_peer <= 0.20 and not failed),
            )
        )
    differ = [c.name for c in report.cases for r in c.systems.values() if r.agrees is False]
    if differ:
        report.notes.append("answers differ from DuckDB's in: " + ", ".join(differ))
