"""INSERT INTO / INSERT OVERWRITE: DuckDB computes the rows, the commit path writes one snapshot."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa
from pyiceberg.manifest import DataFile
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.typedef import Record
from pyiceberg.types import NestedField
from sqlglot import exp

from wharf.errors import InvalidArgument, SchemaMismatch, SqlParseError
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.pipeline import compile_query
from wharf.sql.targets import Target, commit, resolve_target, write_rows
from wharf.tables.commit import remove_files
from wharf.tables.rewrite import duckdb_can_write, write_query
from wharf.tables.scan import quote_ident
from wharf.tables.types import iceberg_to_duckdb


@dataclass
class InsertSource:
    """The rows an INSERT writes, as DuckDB SQL producing every target column with its Iceberg type."""

    sql: str
    source_sql: str
    aliases: list[str]
    names: list[str]
    fields: dict[str, NestedField]

    def explain(self, ctx: Context, exc: SchemaMismatch) -> SchemaMismatch:
        """Name the column whose values could not be cast (DuckDB's message names only an internal alias)."""
        culprit = _find_bad_column(ctx, self.source_sql, self.aliases, self.names, self.fields)
        message = re.sub(r" when casting from source column __c\d+", "", exc.message)
        return SchemaMismatch(f"{culprit}{message}")


def insert_source(
    ctx: Context,
    target: Target,
    source: exp.Expression,
    columns: list[str] | None,
    constants: dict[str, exp.Expression] | None = None,
) -> InsertSource:
    """Map ``source``'s columns (by position) onto the target's columns, cast to their types.

    ``constants`` are the static partition values of ``PARTITION (c = v)``: those columns take
    the value and are not in ``source``.
    """
    constants = constants or {}
    rewritten = compile_query(ctx, source)
    probe = run_duckdb(ctx.con, f"SELECT * FROM ({rewritten.sql}) LIMIT 0")
    width = len(probe.description)
    schema = target.table.schema()
    fields = {f.name.lower(): f for f in schema.fields}
    names = columns if columns is not None else [f.name for f in schema.fields if f.name.lower() not in constants]
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
    given = {name.lower(): alias for alias, name in zip(aliases, names, strict=True)}
    casts = []
    for f in schema.fields:
        alias = given.get(f.name.lower())
        constant = constants.get(f.name.lower())
        if alias is None and constant is None and f.required:
            raise SchemaMismatch(f"Column '{f.name}' of {target.label} is NOT NULL but no value was given")
        value = alias if alias is not None else constant.sql("duckdb") if constant is not None else "NULL"
        casts.append(f"CAST({value} AS {iceberg_to_duckdb(f.field_type)}) AS {quote_ident(f.name)}")
    sql = f"SELECT {', '.join(casts)} FROM ({rewritten.sql}) AS __src({', '.join(aliases)})"
    ctx.lineage = rewritten.lineage(outputs=[fields[n.lower()].name for n in names])
    return InsertSource(sql, rewritten.sql, aliases, names, fields)


def write_source(
    ctx: Context,
    target: Target,
    source: exp.Expression,
    columns: list[str] | None,
    constants: dict[str, exp.Expression] | None = None,
) -> tuple[list[DataFile], int]:
    """Write the INSERT's rows as data files; returns the files and the row count.

    DuckDB writes the Parquet directly when it can (parallel, nothing passes through Python);
    NOT NULL columns are then checked from the written files' null counts.
    """
    prepared = insert_source(ctx, target, source, columns, constants)
    table = target.table
    if not duckdb_can_write(table):
        try:
            rows = run_duckdb(ctx.con, prepared.sql).to_arrow_table()
        except SchemaMismatch as exc:
            raise prepared.explain(ctx, exc) from exc
        return write_rows(target, rows), rows.num_rows
    try:
        added = write_query(lambda sql: run_duckdb(ctx.con, sql), table, prepared.sql)
    except SchemaMismatch as exc:
        raise prepared.explain(ctx, exc) from exc
    for f in table.schema().fields:
        nulls = sum((d.null_value_counts or {}).get(f.field_id, 0) for d in added)
        if f.required and nulls:
            remove_files(table, added)
            raise SchemaMismatch(
                f"Column '{f.name}' of {target.label} is NOT NULL but {nulls} row(s) have NULL",
                hint="filter out or fill the NULLs, or ALTER the column to allow NULL",
            )
    return added, sum(d.record_count for d in added)


def _find_bad_column(ctx: Context, source_sql: str, aliases: list[str], names: list[str], fields: dict[str, NestedField]) -> str:
    for alias, name in zip(aliases, names, strict=True):
        field = fields[name.lower()]
        check = (
            f"SELECT count(*) FROM ({source_sql}) AS __src({', '.join(aliases)}) "
            f"WHERE {alias} IS NOT NULL AND TRY_CAST({alias} AS {iceberg_to_duckdb(field.field_type)}) IS NULL"
        )
        try:
            if run_duckdb(ctx.con, check).fetchone()[0]:  # type: ignore[index]  # count(*) returns one row
                return f"Column '{field.name}' ({field.field_type}): "
        except Exception:  # noqa: BLE001 - best effort diagnosis only
            continue
    return ""


def _target_and_columns(ctx: Context, node: exp.Insert) -> tuple[exp.Table, Target, list[str] | None]:
    this = node.this
    if isinstance(this, exp.Schema):
        return this.this, resolve_target(ctx, _unpartitioned(this.this)), [c.name for c in this.expressions]
    return this, resolve_target(ctx, _unpartitioned(this)), None


def _unpartitioned(node: exp.Table) -> exp.Table:
    """The table node without its ``PARTITION (…)`` clause."""
    if isinstance(node, exp.Table) and node.args.get("partition") is not None:
        node = node.copy()
        node.set("partition", None)
    return node


def _partition_clause(node: exp.Expression, target: Target) -> tuple[dict[str, exp.Expression], list[str]]:
    """``PARTITION (a = 'x', b)``: static values by column (lower case) and the dynamic columns."""
    clause = node.args.get("partition") if isinstance(node, exp.Table) else None
    if clause is None:
        return {}, []
    spec = target.table.spec()
    schema = target.table.schema()
    identity = {schema.find_field(f.source_id).name.lower() for f in spec.fields if str(f.transform) == "identity"}
    static: dict[str, exp.Expression] = {}
    dynamic: list[str] = []
    for item in clause.expressions:
        column = item.this if isinstance(item, exp.EQ) else item
        name = column.name.lower() if isinstance(column, (exp.Column, exp.Identifier)) else ""
        if name not in identity:
            raise InvalidArgument(
                f"PARTITION ({item.sql('duckdb')}): '{column.sql('duckdb')}' is not an identity partition column "
                f"of {target.label}",
                hint=f"identity partition columns: {', '.join(sorted(identity)) or 'none'}",
            )
        if isinstance(item, exp.EQ):
            static[name] = item.expression
        else:
            dynamic.append(name)
    return static, dynamic


def _files_to_replace(ctx: Context, target: Target, added: list[DataFile]) -> list[DataFile]:
    """INSERT OVERWRITE: every file (unpartitioned), or files in the partitions being written (dynamic)."""
    snapshot_id = target.snapshot_id
    if snapshot_id is None:
        return []
    existing = [f.data_file for f in ctx.planner.plan(target.table, snapshot_id).files]
    if target.table.spec().is_unpartitioned():
        return existing
    # Files just written carry the current spec; replace only files of that spec in those partitions.
    spec_id = target.table.spec().spec_id
    written = {_values(f.partition) for f in added}
    return [f for f in existing if f.spec_id == spec_id and _values(f.partition) in written]


def _values(partition: Record) -> tuple[Any, ...]:
    # Record is iterable only through the legacy __getitem__ protocol, which its type does not declare.
    return tuple(partition[i] for i in range(len(partition)))


@handles(exp.Insert, kind="insert")
def run_insert(ctx: Context, node: exp.Insert) -> Result:
    """INSERT INTO / INSERT OVERWRITE, with Spark's ``PARTITION (…)`` clause and overwrite modes.

    ``INSERT OVERWRITE`` replaces, in ``static`` mode (Spark's default), every row matching the
    static partition values (the whole table without any); in ``dynamic`` mode
    (``SET spark.sql.sources.partitionOverwriteMode = dynamic``), the partitions the new rows
    fall in. Either way: one snapshot.
    """
    overwrite = bool(node.args.get("overwrite"))
    if overwrite:
        ctx.statement.kind = "insert_overwrite"
    if node.expression is None:
        raise SqlParseError(
            "INSERT needs the rows to write", sql=ctx.statement.text, hint="INSERT INTO t VALUES (…) or INSERT INTO t SELECT …"
        )
    table_node, target, columns = _target_and_columns(ctx, node)
    static, _dynamic = _partition_clause(table_node, target)
    added, count = write_source(ctx, target, node.expression, columns, static)
    snapshot: Snapshot | None
    if not overwrite:
        snapshot = commit(ctx, target, added=added)
    elif ctx.session.partition_overwrite_mode == "dynamic" and not target.table.spec().is_unpartitioned():
        snapshot = commit(ctx, target, added=added, removed=_files_to_replace(ctx, target, added))
    else:
        from wharf.sql.delete import delete_where
        from wharf.sql.update import TargetScan

        scan = TargetScan.of(ctx, _unpartitioned(table_node))  # type: ignore[arg-type]  # a table node
        matches = [exp.EQ(this=exp.column(c, table=scan.alias), expression=v.copy()) for c, v in static.items()]
        condition = cast(exp.Expression, exp.and_(*matches)) if matches else None
        try:
            _rewrite, snapshot = delete_where(scan, condition, added=added)
        except BaseException:
            remove_files(target.table, added)
            raise
        if snapshot is None and added:
            snapshot = commit(ctx, target, added=added)
    return Result(
        pa.table({"rows_inserted": [count]}),
        rowcount=count,
        snapshot_id=snapshot.snapshot_id if snapshot else None,
    )
