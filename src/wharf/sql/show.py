"""Catalog introspection: SHOW SCHEMAS / TABLES / CREATE TABLE / TBLPROPERTIES and DESCRIBE.

Column names follow Spark (``namespace``, ``tableName``, ``col_name``/``data_type``/``comment``,
``createtab_stmt``, ``key``/``value``). Types are shown as the SQL types Wharf accepts in
``CREATE TABLE`` (DuckDB names), so ``SHOW CREATE TABLE`` output runs as written. ``DESCRIBE``
lists the columns, then Spark-Iceberg's ``# Partitioning`` section (``Part 0 | days(ts)``);
``DESCRIBE EXTENDED`` adds ``# Detailed Table Information``. ``DESCRIBE`` of anything that is not
a plain Wharf table (a query, a metadata table, ``t.branch_x``, a DuckDB table) describes the
columns DuckDB sees.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import pyarrow as pa
import sqlglot
from pyiceberg.partitioning import PartitionField
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    TruncateTransform,
    VoidTransform,
    YearTransform,
)
from pyiceberg.types import NestedField
from pyiceberg.view import View
from sqlglot.errors import ParseError

from wharf.errors import NotFound, SqlParseError
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.parser import TokenStream, extension
from wharf.sql.pipeline import compile_query, resolve_reference
from wharf.tables.loader import split_name
from wharf.tables.scan import quote_ident, quote_str
from wharf.tables.types import iceberg_to_duckdb

DEFAULT_NAMESPACE = "default"
DEFAULT_FORMAT_VERSION = 2


@dataclass(frozen=True)
class ShowNamespaces:
    like: str | None = None


@dataclass(frozen=True)
class ShowTables:
    namespace: str | None = None
    like: str | None = None
    views: bool = False  # SHOW VIEWS


@dataclass(frozen=True)
class ShowCreateTable:
    table: str


@dataclass(frozen=True)
class ShowProperties:
    table: str
    key: str | None = None


@dataclass(frozen=True)
class Describe:
    """``DESCRIBE [TABLE] [EXTENDED] t``; ``query`` is set for anything other than a plain table name."""

    table: str | None
    query: str | None = None
    extended: bool = False


_SHOW_WORDS = ("SCHEMAS", "NAMESPACES", "DATABASES", "TABLES", "VIEWS", "CREATE", "TBLPROPERTIES")


def _like(s: TokenStream) -> str | None:
    if s.accept("LIKE"):
        pattern = s.literal()
        return str(pattern)
    if not s.done() and (tok := s.peek()) is not None and tok.token_type.name == "STRING":
        return str(s.literal())  # Spark allows SHOW TABLES 'pattern'
    return None


@extension(lambda s: s.word() == "SHOW" and len(s.tokens) > 1 and s.command_tail().word() in _SHOW_WORDS)
def _parse_show(s: TokenStream) -> ShowNamespaces | ShowTables | ShowCreateTable | ShowProperties:
    t = s.command_tail()
    if t.accept("SCHEMAS") or t.accept("NAMESPACES") or t.accept("DATABASES"):
        like = _like(t)
        t.expect_end()
        return ShowNamespaces(like)
    views = t.accept("VIEWS")
    if views or t.accept("TABLES"):
        namespace = t.dotted_name() if t.accept("IN") or t.accept("FROM") else None
        like = _like(t)
        t.expect_end()
        return ShowTables(namespace, like, views)
    if t.accept("CREATE"):
        t.expect("TABLE")
        table = t.dotted_name()
        t.accept("AS", "SERDE")
        t.expect_end()
        return ShowCreateTable(table)
    t.expect("TBLPROPERTIES")
    table = t.dotted_name()
    key = None
    if t.accept("("):
        key = str(t.literal())
        t.expect(")")
    t.expect_end()
    return ShowProperties(table, key)


@extension(lambda s: s.word() in ("DESCRIBE", "DESC"))
def _parse_describe(s: TokenStream) -> Describe:
    s.i += 1
    s.accept("TABLE")
    extended = s.accept("EXTENDED") or s.accept("FORMATTED")
    if s.done():
        s.fail("Expected a table name or a query after DESCRIBE")
    start = s.i
    if s.word() not in ("SELECT", "WITH", "FROM", "VALUES", "(", "TABLE"):
        name = s.dotted_name()
        if s.done():
            return Describe(name, None, extended)
        s.i = start
    rest = s.rest()
    query = rest if s.word() in ("SELECT", "WITH", "FROM", "VALUES", "(") else f"SELECT * FROM {rest}"
    try:
        sqlglot.parse_one(query, read=s.dialect)
    except ParseError as exc:
        s.fail(f"Cannot describe '{rest.strip()}': {str(exc).splitlines()[0]}")
    return Describe(None, sqlglot.parse_one(query, read=s.dialect).sql("duckdb"), extended)


def _matches(name: str, pattern: str | None) -> bool:
    """Spark's SHOW … LIKE: ``*`` is any text, ``|`` separates alternatives, case-insensitive."""
    if pattern is None:
        return True
    return any(fnmatch.fnmatchcase(name.lower(), alt.strip().lower()) for alt in pattern.split("|"))


@handles(ShowNamespaces, kind="show")
def show_namespaces(ctx: Context, stmt: ShowNamespaces) -> Result:
    names = sorted(".".join(n) for n in ctx.catalog.list_namespaces())
    return Result(pa.table({"namespace": pa.array([n for n in names if _matches(n, stmt.like)], pa.string())}))


@handles(ShowTables, kind="show")
def show_tables(ctx: Context, stmt: ShowTables) -> Result:
    namespace = stmt.namespace or DEFAULT_NAMESPACE
    if not ctx.catalog.namespace_exists(namespace):
        raise NotFound(f"Namespace '{namespace}' does not exist", hint="list namespaces with SHOW SCHEMAS")
    namespace = ".".join(ctx.catalog.canonical_namespace(namespace))
    listed = ctx.catalog.list_views(namespace) if stmt.views else ctx.catalog.list_tables(namespace)
    rows = {(ident[-1], False) for ident in listed}
    if stmt.views:
        # This handle's temporary views (CREATE TEMPORARY VIEW, changelog views) are views too, as in Spark.
        rows |= {(name, True) for (ns, name) in ctx.temp_views if ns == namespace.lower()}
    listed_rows = sorted((name, temporary) for name, temporary in rows if _matches(name, stmt.like))
    # Spark's columns: SHOW TABLES has tableName, SHOW VIEWS viewName.
    return Result(
        pa.table(
            {
                "namespace": pa.array([namespace] * len(listed_rows), pa.string()),
                "viewName" if stmt.views else "tableName": pa.array([n for n, _ in listed_rows], pa.string()),
                "isTemporary": pa.array([t for _, t in listed_rows], pa.bool_()),
            }
        )
    )


# --- table descriptions ---------------------------------------------------------------------------

_TIME_TRANSFORMS = {YearTransform: "years", MonthTransform: "months", DayTransform: "days", HourTransform: "hours"}


def transform_sql(field: PartitionField, schema: Schema) -> str | None:
    """A partition field as ``PARTITIONED BY`` syntax: ``id``, ``days(ts)``, ``bucket(16, id)``; None for void."""
    column = quote_ident(schema.find_column_name(field.source_id) or str(field.source_id))
    transform = field.transform
    if isinstance(transform, IdentityTransform):
        return column
    if isinstance(transform, VoidTransform):
        return None
    if isinstance(transform, BucketTransform):
        return f"bucket({transform.num_buckets}, {column})"
    if isinstance(transform, TruncateTransform):
        return f"truncate({transform.width}, {column})"
    for klass, name in _TIME_TRANSFORMS.items():
        if isinstance(transform, klass):
            return f"{name}({column})"
    return f"{transform}({column})"


def column_type(field: NestedField) -> str:
    return iceberg_to_duckdb(field.field_type) + (" NOT NULL" if field.required else "")


def _load(ctx: Context, name: str) -> tuple[str, Table]:
    ns, tbl = split_name(name)
    return f"{ns}.{tbl}", resolve_reference(ctx, (ns, tbl), role="describe").table


def _partition_items(table: Table) -> list[str]:
    schema = table.schema()
    return [item for f in table.spec().fields if (item := transform_sql(f, schema)) is not None]


@handles(Describe, kind="describe")
def describe(ctx: Context, stmt: Describe) -> Result:
    if stmt.table is not None:
        ns, tbl = split_name(stmt.table) if stmt.table.count(".") < 2 else ("", "")
        if ns and ctx.loader.exists(ns, tbl):
            return _describe_table(ctx, stmt)
        if ns and (view := ctx.find_view(ns, tbl)) is not None:
            return _describe_view(view, f"{ns}.{tbl}", stmt.extended)
        query = f"SELECT * FROM {stmt.table}"
    else:
        query = stmt.query or ""
    return _describe_query(ctx, query)


def _describe_table(ctx: Context, stmt: Describe) -> Result:
    label, table = _load(ctx, stmt.table or "")
    schema = table.schema()
    rows: list[tuple[str, str, str | None]] = [(f.name, column_type(f), f.doc) for f in schema.fields]
    parts = _partition_items(table)
    if parts:
        rows += [("", "", ""), ("# Partitioning", "", "")]
        rows += [(f"Part {i}", p.replace('"', ""), "") for i, p in enumerate(parts)]
    if stmt.extended:
        snapshot = table.metadata.current_snapshot()
        identifiers = [schema.find_column_name(i) for i in schema.identifier_field_ids]
        details = [
            ("Name", label),
            ("Location", table.location()),
            ("Metadata Location", table.metadata_location),
            ("Provider", "iceberg"),
            ("Format Version", str(table.metadata.format_version)),
            ("Current Snapshot", str(snapshot.snapshot_id) if snapshot else ""),
            ("Identifier Fields", "[" + ", ".join(n for n in identifiers if n) + "]"),
            ("Table Properties", "[" + ",".join(f"{k}={v}" for k, v in sorted(table.properties.items())) + "]"),
        ]
        rows += [("", "", ""), ("# Detailed Table Information", "", "")] + [(k, v, "") for k, v in details]
    return _describe_rows(rows)


def _describe_view(view: View, label: str, extended: bool) -> Result:
    """A view's stored columns (with their comments); EXTENDED adds Spark's view details."""
    from wharf.sql.views import view_query

    rows: list[tuple[str, str, str | None]] = [(f.name, column_type(f), f.doc) for f in view.schema().fields]
    if extended:
        version = view.current_version()
        details = [
            ("Name", label),
            ("Type", "VIEW"),
            ("View Text", view_query(view).sql(dialect="duckdb")),
            ("View Current Version", str(version.version_id)),
            ("Location", view.metadata.location),
            ("View Properties", "[" + ",".join(f"{k}={v}" for k, v in sorted(view.metadata.properties.items())) + "]"),
        ]
        rows += [("", "", ""), ("# Detailed View Information", "", "")] + [(k, v, "") for k, v in details]
    return _describe_rows(rows)


def _describe_rows(rows: list[tuple[str, str, str | None]]) -> Result:
    names, types, comments = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [])
    return Result(
        pa.table(
            {
                "col_name": pa.array(names, pa.string()),
                "data_type": pa.array(types, pa.string()),
                "comment": pa.array(comments, pa.string()),
            }
        )
    )


def _describe_query(ctx: Context, query: str) -> Result:
    try:
        node = sqlglot.parse_one(query, read="duckdb")
    except ParseError as exc:
        raise SqlParseError(str(exc).splitlines()[0], sql=query) from exc
    rewritten = compile_query(ctx, node)
    try:
        described = run_duckdb(ctx.con, f"DESCRIBE {rewritten.sql}").fetchall()
    finally:
        for name in rewritten.registered:
            ctx.con.unregister(name)
    return _describe_rows([(r[0], r[1] + (" NOT NULL" if r[2] == "NO" else ""), None) for r in described])


@handles(ShowCreateTable, kind="show")
def show_create_table(ctx: Context, stmt: ShowCreateTable) -> Result:
    ns, name = split_name(stmt.table)
    if not ctx.loader.exists(ns, name) and (view := ctx.find_view(ns, name)) is not None:
        from wharf.sql.views import view_sql

        return Result(pa.table({"createtab_stmt": [view_sql(view)]}))
    return Result(pa.table({"createtab_stmt": [create_table_sql(ctx, stmt.table)]}))


def create_table_sql(ctx: Context, name: str) -> str:
    """``CREATE TABLE`` (plus ``SET IDENTIFIER FIELDS``) that recreates ``name``'s schema, spec and properties."""
    label, table = _load(ctx, name)
    ns, tbl = label.split(".", 1)
    schema = table.schema()
    columns = []
    for f in schema.fields:
        comment = f" COMMENT {quote_str(f.doc)}" if f.doc else ""
        columns.append(f"  {quote_ident(f.name)} {column_type(f)}{comment}")
    sql = f"CREATE TABLE {quote_ident(ns)}.{quote_ident(tbl)} (\n" + ",\n".join(columns) + "\n)"
    parts = _partition_items(table)
    if parts:
        sql += f"\nPARTITIONED BY ({', '.join(parts)})"
    props = dict(sorted(table.properties.items()))
    if table.metadata.format_version != DEFAULT_FORMAT_VERSION:
        props["format-version"] = str(table.metadata.format_version)
    if props:
        sql += "\nTBLPROPERTIES (\n" + ",\n".join(f"  {quote_str(k)} = {quote_str(v)}" for k, v in props.items()) + "\n)"
    identifiers = [schema.find_column_name(i) for i in sorted(schema.identifier_field_ids)]
    if identifiers:
        sql += (
            f";\nALTER TABLE {quote_ident(ns)}.{quote_ident(tbl)} SET IDENTIFIER FIELDS "
            f"{', '.join(quote_ident(c) for c in identifiers if c)}"
        )
    return sql


@handles(ShowProperties, kind="show")
def show_properties(ctx: Context, stmt: ShowProperties) -> Result:
    label, table = _load(ctx, stmt.table)
    snapshot = table.metadata.current_snapshot()
    # Like Spark-Iceberg: the reserved properties first, then the table's own.
    props: dict[str, str] = {"format": "iceberg/parquet", "format-version": str(table.metadata.format_version)}
    if snapshot is not None:
        props["current-snapshot-id"] = str(snapshot.snapshot_id)
    props.update(sorted(table.properties.items()))
    if stmt.key is not None:
        if stmt.key not in props:
            raise NotFound(f"Table {label} has no property '{stmt.key}'", hint=f"SHOW TBLPROPERTIES {label}")
        props = {stmt.key: props[stmt.key]}
    return Result(pa.table({"key": pa.array(list(props), pa.string()), "value": pa.array(list(props.values()), pa.string())}))
