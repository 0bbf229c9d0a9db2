"""``pruning``: selective queries on an events table partitioned by ``days(ts)``.

The table is written by three Wharf INSERTs (00–08h, 08–16h, 16–24h of every day), so each day
has three data files, each sorted by ``ts`` (and so by ``event_id``, which grows with time):
at full scale 20M rows over 366 days, 1,098 files. The peer is DuckDB over a hive-partitioned
copy (``day=YYYY-MM-DD/…parquet``) made of hard links to the very same files, queried as a DuckDB
user would: with the ``day`` partition column in the WHERE clause wherever the query allows.

Reported next to the time: files opened and bytes in the opened files. For Wharf these are the
files its scan plan keeps (``len(plan.files)``, ``plan.bytes_planned``); for DuckDB the files in
the partitions its hive filter keeps (it still opens each of them to read the footer). "matching"
is the number of files that hold at least one row of the answer: the target is Wharf opening
exactly those.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import wharf
from bench.data import EVENTS_START, duckdb_connection, events_file, run_dir
from bench.harness import Case, Options, Peer, Report, Runner, Target, log, measure, same_rows

PEERS = [Peer("wharf", "system", "Wharf"), Peer("duckdb", "peer", "DuckDB, hive-partitioned copy")]
SLOTS = ((0, 8), (8, 16), (16, 24))  # hours of the day written by each INSERT: three files per day


def sizes(opts: Options) -> tuple[int, int]:
    """(rows, days) for the run: 20M rows over 366 days at scale 1; quick: 200k rows over 30 days."""
    scale = opts.scale if opts.scale is not None else (0.01 if opts.quick else 1.0)
    rows = int(20_000_000 * scale)
    days = 366 if scale >= 0.25 else 30
    return rows, days


def wharf_plans(lake: wharf.Lakehouse, sql: str) -> list[Any]:
    """The scan plans Wharf makes for ``sql`` (same planner, same pushdown, cached like a query's)."""
    from wharf.sql import parse
    from wharf.sql.references import rewrite_query

    node = parse(sql)[0].node
    return rewrite_query(lake._context(sql), node).plans


def build(work: Path, source: Path) -> tuple[wharf.Lakehouse, Path, list[str]]:
    lake = wharf.connect(work / "lake", user="bench")
    lake.create_table("events", pq.read_schema(source), partition_by=["days(ts)"])
    for start, end in SLOTS:
        lake.sql(
            f"INSERT INTO events SELECT * FROM read_parquet('{source}') "
            f"WHERE hour(ts) >= {start} AND hour(ts) < {end} ORDER BY ts"
        )
    table = lake.table("events").iceberg
    plan = lake.planner.plan(table, table.metadata.current_snapshot_id)
    hive = work / "hive"
    epoch = dt.date(1970, 1, 1)
    for f in plan.files:
        day = epoch + dt.timedelta(days=int(f.data_file.partition[0]))
        folder = hive / f"day={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        os.link(f.path, folder / Path(f.path).name)
    return lake, hive, [f.path for f in plan.files]


def queries(days: int, rows: int) -> list[tuple[str, str, str, tuple[dt.date, dt.date] | None]]:
    """(name, Wharf SQL, DuckDB-on-hive SQL, days [first, last) the hive filter keeps) per query."""
    start = dt.date.fromisoformat(EVENTS_START)
    day = start + dt.timedelta(days=days // 2 + 3)
    week_end = day + dt.timedelta(days=7)
    nxt = day + dt.timedelta(days=1)
    key = rows // 2 + 12_345
    one_day = f"ts >= TIMESTAMP '{day} 00:00:00' AND ts < TIMESTAMP '{nxt} 00:00:00'"
    one_hour = f"ts >= TIMESTAMP '{day} 13:00:00' AND ts < TIMESTAMP '{day} 14:00:00'"
    week = f"ts >= TIMESTAMP '{day} 00:00:00' AND ts < TIMESTAMP '{week_end} 00:00:00'"
    agg = "SELECT kind, count(*) AS n, sum(amount) AS total FROM {t} WHERE {w} GROUP BY kind ORDER BY kind"
    rows_of = "SELECT event_id, ts, user_id, kind, amount FROM {t} WHERE {w} ORDER BY event_id"
    return [
        (
            "one day",
            agg.format(t="events", w=one_day),
            agg.format(t="hive", w=f"day = DATE '{day}' AND {one_day}"),
            (day, nxt),
        ),
        (
            "one hour",
            rows_of.format(t="events", w=one_hour),
            rows_of.format(t="hive", w=f"day = DATE '{day}' AND {one_hour}"),
            (day, nxt),
        ),
        (
            "one week",
            agg.format(t="events", w=week),
            agg.format(t="hive", w=f"day >= DATE '{day}' AND day < DATE '{week_end}' AND {week}"),
            (day, week_end),
        ),
        (
            "key lookup",
            f"SELECT * FROM events WHERE event_id = {key}",
            f"SELECT * EXCLUDE (day) FROM hive WHERE event_id = {key}",
            None,
        ),
    ]


def run(opts: Options) -> Report:
    rows, days = sizes(opts)
    warmup = opts.warmup if opts.warmup is not None else 1
    reps = opts.reps or (1 if opts.quick else 5)
    budget = opts.budget_s or (10.0 if opts.quick else 30.0)
    source = events_file(rows, days, opts.data_dir)
    work = run_dir(opts.data_dir, "pruning")
    log(f"pruning: writing {rows:,} events into a day-partitioned Wharf table")
    lake, hive, all_files = build(work, source)
    report = Report(
        "pruning",
        f"pruning: {rows:,} events, {days} days, {len(all_files):,} data files",
        opts,
        PEERS,
        params={"rows": rows, "days": days, "data_files": len(all_files), "warmup": warmup, "reps": reps},
    )
    report.extra_columns = [
        ("files wharf", "wharf", "files"),
        ("matching", "wharf", "files_matching"),
        ("files duckdb", "duckdb", "files"),
        ("bytes wharf", "wharf", "bytes"),
        ("bytes duckdb", "duckdb", "bytes"),
    ]
    con = duckdb_connection()
    con.execute(f"CREATE VIEW hive AS SELECT * FROM read_parquet('{hive}/*/*.parquet', hive_partitioning = true)")
    listing = "[" + ", ".join(f"'{p}'" for p in all_files) + "]"
    for name, wharf_sql, hive_sql, kept in queries(days, rows):

        def run_wharf(sql: str = wharf_sql) -> Any:
            return lake.sql(sql).to_arrow()

        def run_hive(sql: str = hive_sql) -> Any:
            return con.execute(sql).to_arrow_table()

        def wharf_extra(_answer: Any, sql: str = wharf_sql) -> dict[str, Any]:
            plans = wharf_plans(lake, sql)
            where = sql.split(" WHERE ", 1)[1].split(" GROUP BY ")[0].split(" ORDER BY ")[0]
            matching = con.execute(
                f"SELECT count(DISTINCT filename) FROM read_parquet({listing}, filename = true) WHERE {where}"
            ).fetchone()[0]
            return {
                "files": sum(len(p.files) for p in plans),
                "files_matching": int(matching),
                "bytes": sum(p.bytes_planned for p in plans),
            }

        def hive_extra(_answer: Any, kept: tuple[dt.date, dt.date] | None = kept) -> dict[str, Any]:
            files = [
                p
                for folder in hive.iterdir()
                if kept is None or kept[0] <= dt.date.fromisoformat(folder.name.split("=", 1)[1]) < kept[1]
                for p in folder.iterdir()
            ]
            return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}

        case = Case(
            name,
            [Runner("wharf", run_wharf, extra=wharf_extra), Runner("duckdb", run_hive, extra=hive_extra)],
            params={"wharf_sql": wharf_sql, "duckdb_sql": hive_sql},
            compare=same_rows,
        )
        report.add(measure(case, opts, warmup=warmup, reps=reps, budget_s=budget))
    con.close()
    lake.close()
    add_targets(report)
    return report


def add_targets(report: Report) -> None:
    for case in report.cases:
        w = case.systems["wharf"]
        opened, matching = w.extra.get("files"), w.extra.get("files_matching")
        ratio = case.ratio("duckdb")
        exact = opened is not None and opened == matching
        report.targets.append(
            Target(
                f"pruning {case.name}",
                "files opened = files that can match; time ≤ 1.2× hive DuckDB",
                f"opened {opened} of {report.params['data_files']} (matching {matching}); "
                + (f"time ratio {ratio:.2f}" if ratio is not None else f"error: {w.error}"),
                None if ratio is None else (exact and ratio <= 1.2),
            )
        )
