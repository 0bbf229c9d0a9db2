"""Benchmark data, generated locally and cached under ``bench/data/`` (gitignored), keyed by scale.

* TPC-H: DuckDB's tpch extension (from the ``duckdb-extension-tpch`` pip package, loaded by
  path) runs ``CALL dbgen(sf=…)``; each table is copied to ``tpch-sf<sf>/<table>.parquet``.
* events: a synthetic click stream made by DuckDB SQL, ordered by time (``event_id`` grows with
  ``ts``), in ``events-<rows>r-<days>d/events.parquet``.

Generation writes into a temporary directory that is renamed when complete, so an interrupted
run never leaves a half-written cache entry. Lakes built from this data live in ``runs/`` and are
rebuilt by every benchmark run (they measure Wharf's current write path, so they must not go stale).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import duckdb

from bench.harness import log

TPCH_TABLES = ("lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region")
EVENT_KINDS = ("view", "click", "search", "cart", "purchase")
EVENTS_START = "2024-01-01"


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection configured like Wharf's (UTC, no extension downloads)."""
    from wharf.engine import connect_duckdb

    return connect_duckdb()


def _publish(tmp: Path, final: Path) -> Path:
    if final.exists():  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        return final
    os.replace(tmp, final)
    return final


def _scale_label(value: float) -> str:
    return f"{value:g}".replace(".", "_")


def tpch_dir(sf: float, data_dir: Path) -> Path:
    """Directory with one Parquet file per TPC-H table at scale factor ``sf`` (generated once)."""
    final = data_dir / f"tpch-sf{_scale_label(sf)}"
    if (final / "_complete").exists():
        return final
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    log(f"generating TPC-H sf={sf:g} into {final}")
    from wharf.engine import load_extension

    con = duckdb_connection()
    try:
        load_extension(con, "tpch")
        con.execute(f"CALL dbgen(sf = {float(sf)})")
        for table in TPCH_TABLES:
            con.execute(f"COPY {table} TO '{tmp / (table + '.parquet')}' (FORMAT parquet)")
    finally:
        con.close()
    (tmp / "_complete").write_text(f"sf={sf}\n")
    if final.exists():
        shutil.rmtree(final)
    return _publish(tmp, final)


def tpch_queries() -> dict[int, str]:
    """The 22 TPC-H queries as DuckDB's tpch extension ships them."""
    from wharf.engine import load_extension

    con = duckdb_connection()
    try:
        load_extension(con, "tpch")
        return {int(n): q for n, q in con.execute("SELECT query_nr, query FROM tpch_queries() ORDER BY 1").fetchall()}
    finally:
        con.close()


def events_sql(rows: int, days: int) -> str:
    """SQL producing the events table: ``rows`` events spread evenly over ``days`` days, in time order."""
    span_us = days * 86_400_000_000
    return f"""
        SELECT
            i AS event_id,
            TIMESTAMP '{EVENTS_START}' + to_microseconds(CAST(i * ({span_us} / {rows}) AS BIGINT)) AS ts,
            CAST(hash(i * 3 + 1) % 1000000 AS BIGINT) AS user_id,
            (['{"', '".join(EVENT_KINDS)}'])[1 + CAST(hash(i * 7 + 2) % {len(EVENT_KINDS)} AS INTEGER)] AS kind,
            CAST(hash(i * 11 + 3) % 100000 AS DOUBLE) / 100.0 AS amount,
            'https://example.com/p/' || CAST(hash(i * 13 + 5) % 50000 AS VARCHAR) AS url
        FROM range({rows}) AS r(i)
        ORDER BY i
    """


def events_file(rows: int, days: int, data_dir: Path) -> Path:
    """``events.parquet`` with ``rows`` rows over ``days`` days (generated once)."""
    final = data_dir / f"events-{rows}r-{days}d"
    if (final / "_complete").exists():
        return final / "events.parquet"
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    log(f"generating {rows:,} events over {days} days into {final}")
    con = duckdb_connection()
    try:
        con.execute(f"COPY ({events_sql(rows, days)}) TO '{tmp / 'events.parquet'}' (FORMAT parquet)")
    finally:
        con.close()
    (tmp / "_complete").write_text(f"rows={rows} days={days}\n")
    if final.exists():
        shutil.rmtree(final)
    return _publish(tmp, final) / "events.parquet"


def run_dir(data_dir: Path, name: str) -> Path:
    """A fresh, empty working directory for one benchmark run (lakes, peer catalogs, outputs)."""
    path = data_dir / "runs" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
