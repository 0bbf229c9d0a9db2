"""INSERT INTO / INSERT OVERWRITE: DuckDB computes the rows, the commit path writes one snapshot."""

from __future__ import annotations

import re

import pyarrow as pa
from pyiceberg.manifest import DataFile
from sqlglot import exp

from wharf.errors import SchemaMismatch
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.references import rewrite_query
from wharf.sql.targets import Target, commit, resolve_target, write_rows
from wharf.tables.scan import quote_ident
from wharf.tables.types import iceberg_to_duckdb


def source_rows(ctx: Context, target: Target, source: exp.Expression, columns: list[str] | None) -> pa.Table:
    """Evaluate ``source`` and map its columns (by position) onto the target's columns, cast to their types."""
    rewritten = rewrite_query(ctx, source)
    probe = run_duckdb(ctx.con, f"SELECT * FROM ({rewritten.sql}) LIMIT 0")
    width = len(probe.description)
    schema = target.table.schema()
    fields = {f.name.lower(): f for f in schema.fields}
    names = columns if columns is not None else [f.name for f in schema.fields]
    for name in names:
        if name.lower() not in fields:
            raise SchemaMismatch(
                f"Column '{name}' does not exist in table {target.label}",
                hint=f"its columns are: {', '.join(f.name for f in schema.fields)}",
            )
    if width != len(names):
        raise SchemaMismatch(
            f"INSERT into {target.label} gives {width} value(s) per row but "
            f"{'the column list names' if columns is not None else 'the table has'} {len(names)} column(s)",
            hint="list the target columns explicitly: INSERT INTO t (a, b) SELECT ...",
        )
    aliases = [f"__c{i}" for i in range(width)]
    casts = []
    for alias, name in zip(aliases, names, strict=True):
        field = fields[name.lower()]
        casts.append(f"CAST({alias} AS {iceberg_to_duckdb(field.field_type)}) AS {quote_ident(field.name)}")
    sql = f"SELECT {', '.join(casts)} FROM ({rewritten.sql}) AS __src({', '.join(aliases)})"
    try:
        return run_duckdb(ctx.con, sql).to_arrow_table()
    except SchemaMismatch as exc:
        culprit = _find_bad_column(ctx, rewritten.sql, aliases, names, fields)
        message = re.sub(r" when casting from source column __c\d+", "", exc.message)
        raise SchemaMismatch(f"{culprit}{message}") from exc


def _find_bad_column(ctx: Context, source_sql: str, aliases: list[str], names: list[str], fields: dict) -> str:  # type: ignore[type-arg]
    for alias, name in zip(aliases, names, strict=True):
        field = fields[name.lower()]
        check = (
            f"SELECT count(*) FROM ({source_sql}) AS __src({', '.join(aliases)}) "
            f"WHERE {alias} IS NOT NULL AND TRY_CAST({alias} AS {iceberg_to_duckdb(field.field_type)}) IS NULL"
        )
        try:
            if run_duckdb(ctx.con, check).fetchone()[0]:  # type: ignore[index]
                return f"Column '{field.name}' ({field.field_type}): "
        except Exception:  # noqa: BLE001 - best effort diagnosis only
            continue
    return ""


def _target_and_columns(ctx: Context, node: exp.Insert) -> tuple[Target, list[str] | None]:
    this = node.this
    if isinstance(this, exp.Schema):
        return resolve_target(ctx, this.this), [c.name for c in this.expressions]
    return resolve_target(ctx, this), None


def _files_to_replace(target: Target, added: list[DataFile]) -> list[DataFile]:
    """INSERT OVERWRITE: every file (unpartitioned), or files in the partitions being written (dynamic)."""
    snapshot_id = target.snapshot_id
    if snapshot_id is None:
        return []
    from wharf.tables.scan import ScanPlanner

    existing = [f.data_file for f in ScanPlanner(max_entries=1).plan(target.table, snapshot_id).files]
    if target.table.spec().is_unpartitioned():
        return existing
    # Files just written carry the current spec; replace only files of that spec in those partitions.
    spec_id = target.table.spec().spec_id
    written = {tuple(f.partition) for f in added}
    return [f for f in existing if f.spec_id == spec_id and tuple(f.partition) in written]


@handles(exp.Insert)
def run_insert(ctx: Context, node: exp.Insert) -> Result:
    target, columns = _target_and_columns(ctx, node)
    rows = source_rows(ctx, target, node.expression, columns)
    added = write_rows(target, rows)
    removed = _files_to_replace(target, added) if node.args.get("overwrite") else []
    snapshot = commit(ctx, target, added=added, removed=removed)
    return Result(
        pa.table({"rows_inserted": [rows.num_rows]}),
        rowcount=rows.num_rows,
        snapshot_id=snapshot.snapshot_id if snapshot else None,
    )
