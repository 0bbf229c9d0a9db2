"""``cdc``: apply 1M change events (10% updates/deletes of existing keys, 90% inserts, 1% of the
events delivered twice) onto a 1M-row table, SCD type 1.

Systems:

* **wharf**: ``Table.apply_changes(events, keys="id", sequence_by="lsn", operation_column="op")``
  — dedup, sequence order, high-water mark, one MERGE commit (Parquet files + Iceberg snapshot);
  copy-on-write and merge-on-read targets;
* **duckdb** (the limit): the same work written by hand in DuckDB on a native in-memory table —
  ``QUALIFY row_number() OVER (PARTITION BY id ORDER BY lsn DESC) = 1`` then ``MERGE INTO`` —
  with no Parquet to write and no snapshot to commit.

The target is rebuilt (untimed) before every call. Answers are compared by the final table's rows.
"""

from __future__ import annotations

import itertools
from typing import Any

import pyarrow as pa

import wharf
from bench.data import duckdb_connection, run_dir
from bench.harness import Case, Options, Peer, Report, Runner, log, measure, same_rows

PEERS = [
    Peer("wharf", "system", "Wharf apply_changes"),
    Peer("duckdb", "limit", "DuckDB dedup + MERGE on an in-memory table (no files, no commit)"),
]
MERGE_ON_READ = {"write.merge.mode": "merge-on-read"}


def base_sql(rows: int) -> str:
    return f"""
        SELECT i AS id, 'customer-' || CAST(i AS VARCHAR) AS name,
               CAST((i * 37) % 100000 AS DOUBLE) / 100 AS amount, CAST(i % 17 AS INTEGER) AS qty
        FROM range({rows}) AS r(i)
    """


def events_sql(rows: int, events: int) -> str:
    """Every 10th event changes an existing key (1 in 5 of those deletes it); the rest insert new
    keys; 1% of the events come twice. ``lsn`` orders them; the batch is in no particular order."""
    return f"""
        WITH e AS (
            SELECT
                CASE WHEN i % 10 = 0 THEN (hash(i) % {rows})::BIGINT ELSE {rows} + i END AS id,
                CASE WHEN i % 10 = 0 AND i % 50 = 0 THEN 'D' WHEN i % 10 = 0 THEN 'U' ELSE 'I' END AS op,
                i + 1 AS lsn
            FROM range({events}) AS r(i)
        ),
        full_events AS (
            SELECT id, CASE WHEN op = 'D' THEN NULL ELSE 'v' || CAST(lsn AS VARCHAR) END AS name,
                   CASE WHEN op = 'D' THEN NULL ELSE CAST(lsn % 1000 AS DOUBLE) END AS amount,
                   CASE WHEN op = 'D' THEN NULL ELSE CAST(lsn % 7 AS INTEGER) END AS qty, op, lsn
            FROM e
        )
        SELECT * FROM (SELECT * FROM full_events UNION ALL SELECT * FROM full_events WHERE lsn % 100 = 3)
        ORDER BY hash(lsn)
    """


DUCKDB_APPLY = """
    MERGE INTO target t
    USING (SELECT * FROM events QUALIFY row_number() OVER (PARTITION BY id ORDER BY lsn DESC) = 1) s
    ON t.id = s.id
    WHEN MATCHED AND s.op = 'D' THEN DELETE
    WHEN MATCHED THEN UPDATE SET name = s.name, amount = s.amount, qty = s.qty
    WHEN NOT MATCHED AND s.op <> 'D' THEN INSERT (id, name, amount, qty) VALUES (s.id, s.name, s.amount, s.qty)
"""


def run(opts: Options) -> Report:
    def final_tables_equal(wharf_table: str, duckdb_table: str) -> bool:
        """The answers name the tables the runs left behind (reading them is not part of the timing)."""
        mine = lake.sql(f"SELECT id, name, amount, qty FROM {wharf_table}").to_arrow()
        return same_rows(mine, con.execute(f"SELECT id, name, amount, qty FROM {duckdb_table}").to_arrow_table())

    scale = opts.scale if opts.scale is not None else (0.01 if opts.quick else 1.0)
    rows = int(1_000_000 * scale)
    warmup = opts.warmup if opts.warmup is not None else 1
    reps = opts.reps or (1 if opts.quick else 3)
    budget = opts.budget_s or (10.0 if opts.quick else 60.0)
    work = run_dir(opts.data_dir, "cdc")
    report = Report(
        "cdc",
        f"cdc: apply {rows:,} change events (10% updates/deletes, 1% duplicates) onto {rows:,} rows",
        opts,
        PEERS,
        params={"rows": rows, "events": rows, "warmup": warmup, "reps": reps},
    )
    con = duckdb_connection()
    base: pa.Table = con.execute(base_sql(rows)).to_arrow_table()
    con.register("events_view", con.execute(events_sql(rows, rows)).to_arrow_table())
    events: pa.Table = con.execute("SELECT * FROM events_view").to_arrow_table()
    report.params["event_rows"] = events.num_rows
    lake = wharf.connect(work / "lake", user="bench")
    lake.register("base", base)
    names = itertools.count()
    label = f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows / 1e3:g}k"

    for mode in ("copy-on-write", "merge-on-read"):
        current: dict[str, str] = {}

        def wharf_setup(mode: str = mode, current: dict[str, str] = current) -> None:
            name = f"target_{next(names)}"
            lake.sql(f"CREATE TABLE {name} AS SELECT * FROM base")
            if mode == "merge-on-read":
                pairs = ", ".join(f"'{k}' = '{v}'" for k, v in MERGE_ON_READ.items())
                lake.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({pairs})")
            current["name"] = name

        def wharf_run(current: dict[str, str] = current) -> Any:
            result = lake.table(current["name"]).apply_changes(events, keys="id", sequence_by="lsn", operation_column="op")
            assert result.to_arrow().column("status")[0].as_py() == "applied"
            return current["name"]

        def duckdb_setup() -> None:
            con.execute("CREATE OR REPLACE TABLE target AS SELECT * FROM base")
            con.execute("CREATE OR REPLACE TABLE events AS SELECT * FROM events_view")

        def duckdb_run() -> Any:
            con.execute(DUCKDB_APPLY)
            return "target"

        con.register("base", base)
        log(f"cdc: {mode}")
        case = Case(
            f"apply {label} events onto {label} rows ({mode})",
            [
                Runner("wharf", wharf_run, setup=wharf_setup),
                Runner("duckdb", duckdb_run, setup=duckdb_setup),
            ],
            params={"mode": mode},
            compare=final_tables_equal,
        )
        report.add(measure(case, opts, warmup=warmup, reps=reps, budget_s=budget))
    con.close()
    lake.close()
    return report
