"""``CALL system.*`` procedures that adopt other engines' data and maintain metadata.

``register_table``, ``add_files``, ``snapshot``, ``migrate`` (adoption), ``ancestors_of``,
``rewrite_manifests`` and ``compute_table_stats``, with Iceberg's Spark parameter names and output
columns. Table arguments take the reference pipeline (role ``maintain``); every change commits
through the lake catalog. The work is in ``wharf.tables.adoption``, ``wharf.tables.manifests`` and
``wharf.tables.statistics``; docs/adoption.md describes each procedure and where it differs
from Spark.

Procedures that read files by path (a metadata.json, Parquet files, a DuckDB database) give the
caller the reach of DuckDB's own file functions, so they are reserved to principals with
external access (the lake owner by default), and the files must lie in the lake's allowed roots.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pyiceberg.table.snapshots import ancestors_of

from wharf.errors import AccessDenied, InvalidArgument, UnsupportedStatement
from wharf.sql.context import Context
from wharf.sql.executor import run_duckdb
from wharf.sql.procedures import COERCE, TABLE, Param, _as_string, procedure
from wharf.tables import adoption
from wharf.tables import snapshots as snapshot_ops
from wharf.tables.loader import split_name
from wharf.tables.manifests import rewrite_manifests
from wharf.tables.refs import table_label
from wharf.tables.scan import quote_ident
from wharf.tables.statistics import compute_table_stats

# --- argument kinds these procedures add to the registry ------------------------------------------


def _as_string_map(ctx: Context, value: Any, param: str) -> dict[str, str]:
    """``map('k', 'v', …)`` (Spark), ``MAP {'k': 'v'}`` (DuckDB) → a dict of strings."""
    pairs: Any = value
    if isinstance(value, dict):
        pairs = list(value.items())
    if isinstance(pairs, list) and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        return {str(k): str(v) for k, v in pairs}
    if isinstance(pairs, list) and all(isinstance(p, dict) and set(p) == {"key", "value"} for p in pairs):
        return {str(p["key"]): str(p["value"]) for p in pairs}
    raise InvalidArgument(f"Argument '{param}' must be a map of strings such as map('k', 'v'), got {value!r}")


def _as_string_list(ctx: Context, value: Any, param: str) -> list[str]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [_as_string(ctx, v, param) for v in values]


COERCE.setdefault("map<string,string>", _as_string_map)
COERCE.setdefault("array<string>", _as_string_list)


# --- shared checks ---------------------------------------------------------------------------------


def _reads_files(ctx: Context, procedure_name: str) -> None:
    """Reading files by path is DuckDB's external access: the same principals may do it."""
    if not ctx.principal.external_access:
        raise AccessDenied(
            f"{ctx.principal.name} may not read files by path, which system.{procedure_name} does",
            hint="the lake owner (or a principal created with external_access=True) may call it",
        )


def _source(ctx: Context, value: str, param: str = "source_table") -> adoption.Source:
    try:
        return adoption.parse_source(value)
    except InvalidArgument as exc:
        raise InvalidArgument(f"Argument '{param}': {exc.message}", hint=exc.hint) from exc


def _label(identifier: tuple[str, str]) -> str:
    return ".".join(identifier)


# --- adoption ------------------------------------------------------------------------------------------


@procedure(
    "register_table",
    [Param("table", "string"), Param("metadata_file", "string")],
    [("current_snapshot_id", pa.int64()), ("total_records_count", pa.int64()), ("total_data_files_count", pa.int64())],
)
def _register_table(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Register an existing Iceberg metadata.json (written by DuckDB, Spark, PyIceberg, …) as a new table."""
    _reads_files(ctx, "register_table")
    identifier = adoption.new_identifier(ctx.catalog, a["table"])
    table = adoption.register_table(ctx.catalog, identifier, a["metadata_file"])
    ctx.forget_table(*identifier)
    current, records, files = adoption.totals(table)
    return {"current_snapshot_id": current, "total_records_count": records, "total_data_files_count": files}


@procedure(
    "add_files",
    [
        TABLE,
        Param("source_table", "string"),
        Param("partition_filter", "map<string,string>", False),
        Param("check_duplicate_files", "boolean", False),
    ],
    [("added_files_count", pa.int64()), ("changed_partition_count", pa.int64())],
)
def _add_files(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Add Parquet files to a table in place (not copied), as one append snapshot."""
    _reads_files(ctx, "add_files")
    source = _source(ctx, a["source_table"])
    if source.kind != "parquet":
        raise UnsupportedStatement(
            "add_files adds Parquet files in place; a DuckDB table has none",
            hint=f"copy its rows instead: INSERT INTO {table_label(a['table'])} SELECT * FROM <the DuckDB table>, "
            "or create a new table from it with CALL system.snapshot",
        )
    files = adoption.parquet_files(source)
    root = source.path
    files = adoption.filter_partitions(root, files, a["partition_filter"] or {})
    locations = ctx.catalog.locations
    if locations is not None:
        roots = locations.roots()
        locations.check(root, "Source", roots)
        for f in files:
            locations.check(f, "Data file", roots)
    check = a["check_duplicate_files"] is not False
    result = adoption.add_files(a["table"], files, check_duplicate_files=check, source=str(source))
    ctx.forget_table(*split_name(a["table"].name()))
    return {"added_files_count": result.added_files, "changed_partition_count": result.changed_partitions}


@procedure(
    "snapshot",
    [
        Param("source_table", "string"),
        Param("table", "string"),
        Param("location", "string", False),
        Param("properties", "map<string,string>", False),
    ],
    [("imported_files_count", pa.int64())],
)
def _snapshot(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Create a table over a source's data without changing the source (gc.enabled=false: it never deletes them)."""
    _reads_files(ctx, "snapshot")
    source = _source(ctx, a["source_table"])
    identifier = adoption.new_identifier(ctx.catalog, a["table"])
    adoption.check_snapshot_location(a["location"], source)
    properties = a["properties"] or {}
    if source.kind == "duckdb":
        result = adoption.create_from_duckdb(ctx.catalog, identifier, source, location=a["location"], properties=properties)
    else:
        result = adoption.create_from_files(
            ctx.catalog, identifier, source, location=a["location"], properties=properties, owns_files=False
        )
    ctx.forget_table(*identifier)
    return {"imported_files_count": result.files}


@procedure(
    "migrate",
    [
        Param("table", "string"),
        Param("properties", "map<string,string>", False),
        Param("drop_backup", "boolean", False),
        Param("source_table", "string"),
    ],
    [("migrated_files_count", pa.int64())],
)
def _migrate(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Turn a Parquet directory into a table located there that owns its files (or copy a DuckDB table)."""
    _reads_files(ctx, "migrate")
    source = _source(ctx, a["source_table"])
    identifier = adoption.new_identifier(ctx.catalog, a["table"])
    properties = a["properties"] or {}
    if source.kind == "duckdb":
        result = adoption.create_from_duckdb(ctx.catalog, identifier, source, location=None, properties=properties)
        ctx.forget_table(*identifier)
        if a["drop_backup"]:
            adoption.drop_duckdb_table(source)
    else:
        result = adoption.migrate_directory(ctx.catalog, identifier, source, properties=properties)
        ctx.forget_table(*identifier)
    return {"migrated_files_count": result.files}


# --- history and maintenance ----------------------------------------------------------------------------


@procedure(
    "ancestors_of",
    [TABLE, Param("snapshot_id", "long", False)],
    [("snapshot_id", pa.int64()), ("timestamp", pa.int64())],
)
def _ancestors_of(ctx: Context, a: dict[str, Any]) -> list[dict[str, Any]]:
    """The snapshot and its ancestors, newest first, with their commit times (epoch milliseconds)."""
    table = a["table"]
    start = a["snapshot_id"] if a["snapshot_id"] is not None else table.metadata.current_snapshot_id
    if start is None:
        return []
    first = snapshot_ops.snapshot(table, start)
    return [{"snapshot_id": s.snapshot_id, "timestamp": s.timestamp_ms} for s in ancestors_of(first, table.metadata)]


@procedure(
    "rewrite_manifests",
    [TABLE, Param("use_caching", "boolean", False), Param("spec_id", "long", False)],
    [("rewritten_manifests_count", pa.int64()), ("added_manifests_count", pa.int64())],
)
def _rewrite_manifests(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the current snapshot's data manifests into as few as the target size allows (a ``replace`` snapshot)."""
    result = rewrite_manifests(a["table"], a["spec_id"])  # use_caching is Spark's; nothing to cache here
    ctx.forget_table(*split_name(a["table"].name()))
    return {"rewritten_manifests_count": result.rewritten_manifests, "added_manifests_count": result.added_manifests}


@procedure(
    "compute_table_stats",
    [TABLE, Param("snapshot_id", "long", False), Param("columns", "array<string>", False)],
    [("statistics_file", pa.string())],
)
def _compute_table_stats(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Write per-column distinct counts (theta sketches with ``ndv``) to a Puffin file and register it."""
    table = a["table"]
    metadata = table.metadata
    sid = a["snapshot_id"] if a["snapshot_id"] is not None else metadata.current_snapshot_id
    if sid is not None:
        snapshot_ops.snapshot(table, sid)
    snapshot = metadata.snapshot_by_id(sid) if sid is not None else None
    schema = metadata.schema_by_id(snapshot.schema_id) if snapshot is not None and snapshot.schema_id is not None else None
    plan = ctx.planner.plan(table, sid, schema=schema or metadata.schema())
    relation = plan.relation_sql()

    def distinct(column: str) -> pa.Array:
        name = quote_ident(column)
        result = run_duckdb(ctx.con, f"SELECT DISTINCT {name} FROM {relation} WHERE {name} IS NOT NULL").to_arrow_table()
        return result.column(0).combine_chunks()

    statistics = compute_table_stats(table, distinct, snapshot_id=sid, columns=a["columns"])
    ctx.forget_table(*split_name(table.name()))
    return {"statistics_file": statistics.statistics_path}
