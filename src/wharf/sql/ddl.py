"""Table and namespace DDL: CREATE/DROP/ALTER TABLE, CTAS, CREATE/DROP/ALTER SCHEMA, properties."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

import pyarrow as pa
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NamespaceNotEmptyError, NoSuchNamespaceError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.update.schema import UpdateSchema
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    TruncateTransform,
    YearTransform,
)
from pyiceberg.types import NestedField
from sqlglot import exp
from sqlglot.errors import ParseError

from wharf import pyiceberg_compat as compat
from wharf.errors import AccessDenied, AlreadyExists, InvalidArgument, NotFound, SchemaMismatch, UnsupportedStatement
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.parser import TokenStream, dialect_types, extension
from wharf.sql.pipeline import compile_query, resolve_reference
from wharf.tables.commit import conform, private
from wharf.tables.loader import split_name
from wharf.tables.optimizer_policy import check_properties
from wharf.tables.types import check_promotion, sql_type_to_iceberg


def ok(message: str) -> Result:
    return Result(pa.table({"status": [message]}), rowcount=0, message=message)


def table_name(node: exp.Table) -> tuple[str, str]:
    parts = [p.name for p in node.parts]
    if len(parts) > 2:
        raise InvalidArgument(f"Table name {'.'.join(parts)} has too many parts; use namespace.table")
    return split_name(tuple(parts))


# --- partition transforms, as data -------------------------------------------------------------

_TRANSFORMS: dict[str, tuple[type[Transform[Any, Any]], str]] = {
    "years": (YearTransform, "year"),
    "year": (YearTransform, "year"),
    "months": (MonthTransform, "month"),
    "month": (MonthTransform, "month"),
    "days": (DayTransform, "day"),
    "day": (DayTransform, "day"),
    "date": (DayTransform, "day"),
    "hours": (HourTransform, "hour"),
    "hour": (HourTransform, "hour"),
    "date_hour": (HourTransform, "hour"),
}


def partition_spec(schema: Schema, items: list[exp.Expression]) -> PartitionSpec:
    """Build a spec from ``PARTITIONED BY (col, months(ts), bucket(16, id), truncate(4, s))``."""
    fields = []
    ids = count(1000)
    for item in items:
        transform: Transform[Any, Any]
        if isinstance(item, (exp.Column, exp.Identifier)):
            column, transform, suffix = item.name, IdentityTransform(), ""
        else:
            fname, args = _transform_call(item)
            if fname in _TRANSFORMS:
                if len(args) != 1 or not isinstance(args[0], (exp.Column, exp.Identifier)):
                    raise InvalidArgument(f"{fname}() takes one column, got {item.sql()}", hint=f"{fname}(ts)")
                klass, suffix = _TRANSFORMS[fname]
                column, transform = args[0].name, klass()
                suffix = "_" + suffix
            elif fname in ("bucket", "truncate"):
                if len(args) != 2:
                    raise InvalidArgument(f"{fname}() takes (n, column), got {item.sql()}", hint=f"{fname}(16, id)")
                n_node, col_node = args if isinstance(args[0], exp.Literal) else args[::-1]
                if not (isinstance(n_node, exp.Literal) and n_node.name.isdigit() and int(n_node.name) > 0):
                    raise InvalidArgument(f"{fname}() needs a positive whole number, got {item.sql()}", hint=f"{fname}(16, id)")
                if not isinstance(col_node, (exp.Column, exp.Identifier)):
                    raise InvalidArgument(f"{fname}() needs a column, got {item.sql()}", hint=f"{fname}(16, id)")
                n = int(n_node.name)
                column = col_node.name
                transform = BucketTransform(n) if fname == "bucket" else TruncateTransform(n)
                suffix = f"_{fname}"
            else:
                raise UnsupportedStatement(
                    f"Unknown partition transform {item.sql()}",
                    hint="use col, years(c), months(c), days(c), hours(c), bucket(n, c) or truncate(n, c)",
                )
        try:
            source = schema.find_field(column, case_sensitive=False)
        except ValueError as exc:
            raise NotFound(f"Partition column '{column}' is not a column of the table") from exc
        fields.append(
            PartitionField(source_id=source.field_id, field_id=next(ids), transform=transform, name=source.name + suffix)
        )
    return PartitionSpec(*fields)


# sqlglot gives some transforms their own node types; map them back to the Iceberg names.
_TRANSFORM_NODES: dict[type[exp.Expression], str] = {
    exp.PartitionedByBucket: "bucket",
    exp.PartitionByTruncate: "truncate",
    exp.Trunc: "truncate",
    exp.Year: "years",
    exp.Month: "months",
    exp.Day: "days",
    exp.Hour: "hours",
}
# Conversions a dialect wraps a transform's column in (Spark reads year(ts) as year(to_date(ts))).
_WRAPPERS = (exp.Cast, exp.TsOrDsToDate, exp.TsOrDsToTimestamp, exp.TryCast)


def _transform_call(item: exp.Expression) -> tuple[str, list[exp.Expression]]:
    """``(transform name, [arguments])`` of a partition item such as ``bucket(16, id)``."""
    if isinstance(item, exp.Anonymous):
        name, args = item.name.lower(), list(item.expressions)
    else:
        for klass, known in _TRANSFORM_NODES.items():
            if isinstance(item, klass):
                name = known
                keys = ("this", "decimals") if isinstance(item, exp.Trunc) else ("this", "expression")
                args = [a for a in (item.args.get(k) for k in keys) if a is not None]
                break
        else:
            name, args = item.key.lower(), [a for a in item.args.values() if isinstance(a, exp.Expression)]
    return name, [a.this if isinstance(a, _WRAPPERS) else a for a in args]


_FORMATS = ("iceberg", "parquet")
MUST_EXIST = "wharf.must_exist"  # meta of a CREATE node parsed from REPLACE TABLE (the table must exist)


@extension(lambda s: s.word() == "REPLACE" and s.word(1) == "TABLE")
def _parse_replace(s: TokenStream) -> exp.Expr:
    """Spark's ``REPLACE TABLE … [AS SELECT …]``: ``CREATE OR REPLACE TABLE`` of a table that must exist."""
    import sqlglot

    text = "CREATE OR " + s.text[s.tokens[0].start :]
    try:
        node = dialect_types(sqlglot.parse_one(text, read=s.dialect), s.dialect)
    except ParseError as exc:
        s.fail(f"Cannot read REPLACE TABLE: {str(exc).splitlines()[0]}")
    node.meta[MUST_EXIST] = True
    return node


@handles(exp.TruncateTable, kind="truncate")
def run_truncate(ctx: Context, node: exp.TruncateTable) -> Result:
    """``TRUNCATE TABLE t``: delete every row, in one snapshot (the table and its history stay)."""
    from wharf.sql.delete import delete_where
    from wharf.sql.update import TargetScan, statement_result

    tables = node.expressions
    if len(tables) != 1:
        raise UnsupportedStatement(
            "TRUNCATE TABLE takes one table", hint="one statement commits one table: truncate them one by one"
        )
    if node.args.get("partition") is not None or tables[0].args.get("partition") is not None:
        raise UnsupportedStatement(
            "TRUNCATE TABLE … PARTITION is not supported", hint="DELETE FROM t WHERE <partition column> = …"
        )
    scan = TargetScan.of(ctx, tables[0])
    rewrite, snapshot = delete_where(scan, None)
    return statement_result({"num_affected_rows": rewrite.deleted}, rewrite.deleted, snapshot)


@dataclass(frozen=True)
class CreateOptions:
    """What a CREATE TABLE says beside its columns."""

    partition: list[exp.Expression]
    properties: dict[str, str]
    location: str | None = None
    like: exp.Table | None = None  # CREATE TABLE … LIKE other


def _properties(create: exp.Create) -> CreateOptions:
    """``PARTITIONED BY`` items, table properties, ``LOCATION`` and ``LIKE`` of a CREATE TABLE."""
    partition: list[exp.Expression] = []
    props: dict[str, str] = {}
    location: str | None = None
    like: exp.Table | None = None
    properties = create.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.LikeProperty) and isinstance(prop.this, exp.Table):
            like = prop.this
        elif isinstance(prop, exp.PartitionedByProperty):
            inner = prop.this
            partition = list(inner.expressions) if isinstance(inner, (exp.Schema, exp.Tuple)) else [inner]
        elif isinstance(prop, exp.FileFormatProperty):
            # USING iceberg (Spark), WITH (format = 'PARQUET') (Trino): the only formats Wharf writes.
            fmt = prop.this.name if isinstance(prop.this, exp.Expression) else str(prop.this)
            if fmt.lower() not in _FORMATS:
                raise UnsupportedStatement(f"Wharf tables are Iceberg tables of Parquet files, not {fmt}", hint="USING iceberg")
        elif isinstance(prop, exp.LocationProperty):
            location = prop.this.name
        elif isinstance(prop, exp.SchemaCommentProperty):
            props["comment"] = prop.this.name
        elif type(prop) is exp.Property and isinstance(prop.args.get("value"), exp.Expression):
            props[prop.name] = prop.args["value"].name
        else:
            raise UnsupportedStatement(
                f"CREATE TABLE option '{prop.sql()}' is not supported",
                hint="use PARTITIONED BY (…), TBLPROPERTIES (…), LOCATION '…' or COMMENT '…'",
            )
    return CreateOptions(partition, props, location, like)


def _schema_from_columns(defs: list[exp.ColumnDef]) -> Schema:
    ids = count(1)
    nested = count(10_000)
    fields = []
    for d in defs:
        if not isinstance(d, exp.ColumnDef):
            continue
        constraints = d.args.get("constraints") or []
        required = any(
            isinstance(c.kind, (exp.NotNullColumnConstraint, exp.PrimaryKeyColumnConstraint))
            and not c.kind.args.get("allow_null")
            for c in constraints
        )
        comment = next((c.kind.name for c in constraints if isinstance(c.kind, exp.CommentColumnConstraint)), None)
        if d.args.get("kind") is None:
            raise SchemaMismatch(f"Column '{d.name}' needs a type, e.g. {d.name} VARCHAR")
        fields.append(
            NestedField(
                field_id=next(ids),
                name=d.name,
                field_type=sql_type_to_iceberg(d.args["kind"], nested, d.name),
                required=required,
                doc=comment,
            )
        )
    return Schema(*fields)


@handles(exp.Create, kind="create_table")
def run_create(ctx: Context, node: exp.Create) -> Result:
    kind = (node.args.get("kind") or "").upper()
    if kind in ("SCHEMA", "DATABASE"):
        ctx.statement.kind = "create_namespace"
        return create_namespace(ctx, CreateNamespace(node.this.name, bool(node.args.get("exists"))))
    if kind == "VIEW":
        from wharf.sql.views import create_view

        return create_view(ctx, node)
    if kind != "TABLE":
        raise UnsupportedStatement(f"CREATE {kind} is not supported", hint="Wharf creates TABLEs, VIEWs and SCHEMAs")
    target = node.this.this if isinstance(node.this, exp.Schema) else node.this
    ns, name = table_name(target)
    if not ctx.catalog.namespace_exists(ns):
        raise NotFound(f"Namespace '{ns}' does not exist", hint=f"CREATE SCHEMA {ns}")
    exists = ctx.loader.exists(ns, name)
    if not exists and ctx.catalog.view_exists((ns, name)):
        raise AlreadyExists(f"{ns}.{name} is a view", hint="choose another name, or DROP VIEW it first")
    replace = bool(node.args.get("replace"))
    if exists and node.args.get("exists"):
        return ok(f"Table {ns}.{name} already exists")
    if exists and not replace:
        raise AlreadyExists(f"Table {ns}.{name} already exists", hint="use CREATE TABLE IF NOT EXISTS or CREATE OR REPLACE TABLE")
    if not exists and node.meta.get(MUST_EXIST):
        raise NotFound(
            f"Table {ns}.{name} does not exist: REPLACE TABLE replaces an existing table", hint="CREATE OR REPLACE TABLE"
        )
    options = _properties(node)
    partition_items, props, location = options.partition, options.properties, options.location
    check_properties(props)
    if options.like is not None:
        return _create_like(ctx, (ns, name), options.like, location)
    query = node.expression
    rows: pa.Table | None = None
    if query is not None:
        ctx.statement.kind = "create_table_as"
        compiled = compile_query(ctx, query)
        ctx.lineage = compiled.lineage()
        rows = run_duckdb(ctx.con, compiled.sql).to_arrow_table()
        schema = Schema(*compat.arrow_to_iceberg_fields(rows.schema))
    else:
        schema = _schema_from_columns(list(node.this.expressions))
    spec = partition_spec(schema, partition_items)
    if exists and replace:
        from wharf.tables.replace import replace_table

        ctx.statement.kind = "replace_table"
        existing = resolve_reference(ctx, (ns, name), role="alter").table
        replace_table(existing, schema, spec, props, rows, f"{ns}.{name}")
        ctx.forget_table(ns, name)
        return ok(f"Replaced table {ns}.{name}")
    try:
        create_table(ctx, (ns, name), schema, spec, props, rows, location=location)
    except AlreadyExists:
        if node.args.get("exists"):  # created concurrently by another statement: IF NOT EXISTS holds
            return ok(f"Table {ns}.{name} already exists")
        raise
    return Result(pa.table({"status": [f"Created table {ns}.{name}"]}), rowcount=rows.num_rows if rows is not None else 0)


def _create_like(ctx: Context, identifier: tuple[str, str], like: exp.Table, location: str | None) -> Result:
    """``CREATE TABLE t LIKE s``: s's schema, partitioning, sort order and properties; no data."""
    source = resolve_reference(ctx, like, role="describe").table
    tx = ctx.catalog.create_table_transaction(
        identifier,
        schema=source.schema(),
        location=location,
        partition_spec=source.spec(),
        sort_order=source.sort_order(),
        properties=dict(source.properties),
    )
    tx.commit_transaction()
    ctx.forget_table(*identifier)
    return ok(f"Created table {'.'.join(identifier)} like {'.'.join(source.name())}")


def create_table(
    ctx: Context,
    identifier: tuple[str, str],
    schema: Schema,
    spec: PartitionSpec,
    props: dict[str, str],
    rows: pa.Table | None,
    *,
    location: str | None = None,
) -> None:
    """Create a table, with its first rows if given (CTAS), as one catalog commit: all or nothing."""
    check_properties(props)
    tx = ctx.catalog.create_table_transaction(identifier, schema=schema, location=location, partition_spec=spec, properties=props)
    if rows is not None and rows.num_rows:
        tx.append(conform(rows, tx.table_metadata.schema(), table_name=".".join(identifier)))
    tx.commit_transaction()
    ctx.forget_table(*identifier)


@handles(exp.Drop, kind="drop_table")
def run_drop(ctx: Context, node: exp.Drop) -> Result:
    kind = (node.args.get("kind") or "").upper()
    if kind == "VIEW":
        from wharf.sql.views import drop_view

        return drop_view(ctx, node)
    if kind in ("SCHEMA", "DATABASE"):
        ctx.statement.kind = "drop_namespace"
        return drop_namespace(ctx, DropNamespace(node.this.name, bool(node.args.get("exists")), bool(node.args.get("cascade"))))
    if kind != "TABLE":
        raise UnsupportedStatement(f"DROP {kind} is not supported")
    names = [table_name(t) for t in (node.args.get("tables") or [node.this])]
    missing = [f"{ns}.{name}" for ns, name in names if not ctx.loader.exists(ns, name)]
    views = [label for label in missing if ctx.catalog.view_exists(split_name(label))]
    if views:
        raise InvalidArgument(f"{views[0]} is a view, not a table", hint=f"use DROP VIEW {views[0]}")
    if missing and not node.args.get("exists"):
        raise NotFound(f"Table {missing[0]} does not exist", hint="use DROP TABLE IF EXISTS")
    dropped = []
    for ns, name in names:
        if f"{ns}.{name}" in missing:
            continue
        resolve_reference(ctx, (ns, name), role="drop")
        if node.args.get("purge"):
            ctx.catalog.purge_table((ns, name))
        else:
            ctx.catalog.drop_table((ns, name))
        ctx.forget_table(ns, name)
        dropped.append(f"{ns}.{name}")
    return ok(f"Dropped table {', '.join(dropped)}" if dropped else f"Table {', '.join(missing)} does not exist")


@handles(exp.Alter, kind="alter_table")
def run_alter(ctx: Context, node: exp.Alter) -> Result:
    if (node.args.get("kind") or "").upper() == "VIEW":
        from wharf.sql.views import alter_view

        return alter_view(ctx, node)
    ns, name = table_name(node.this)
    table = resolve_reference(ctx, (ns, name), role="alter").table
    actions = node.args.get("actions") or []
    if len(actions) == 1 and isinstance(actions[0], exp.AlterRename):
        new_ns, new_name = table_name(actions[0].this)
        if ctx.loader.exists(new_ns, new_name):
            raise AlreadyExists(f"Table {new_ns}.{new_name} already exists")
        ctx.catalog.rename_table((ns, name), (new_ns, new_name))
        ctx.forget_table(ns, name)
        return ok(f"Renamed {ns}.{name} to {new_ns}.{new_name}")
    dropped = [c.name for a in actions if isinstance(a, exp.Drop) for c in (a.args.get("tables") or [a.this])]
    refuse_dropping_delete_keys(ctx, table, dropped, f"{ns}.{name}")
    with private(table).update_schema() as update:
        for action in actions:
            _schema_action(update, table.schema(), action, f"{ns}.{name}")
    ctx.forget_table(ns, name)
    return ok(f"Altered table {ns}.{name}")


def refuse_dropping_delete_keys(ctx: Context, table: Table, dropped: list[str], label: str) -> None:
    """Dropping a column that live equality delete files match on would make the table unreadable."""
    if not dropped or table.metadata.current_snapshot_id is None:
        return
    schema = table.schema()
    ids: dict[int, str] = {}
    for column in dropped:
        try:
            ids[schema.find_field(column, case_sensitive=False).field_id] = column
        except ValueError:
            continue  # not a column: the schema change reports it
    plan = ctx.planner.plan(table, table.metadata.current_snapshot_id)
    for delete in plan.equality_deletes:
        used = [ids[i] for i in delete.equality_ids if i in ids]
        if used:
            raise InvalidArgument(
                f"Cannot drop column '{used[0]}' of {label}: equality delete files written by another engine match rows on it",
                hint="rewrite the affected data files first (e.g. an UPDATE or DELETE touching them), then drop the column",
            )


def _schema_action(update: UpdateSchema, schema: Schema, action: exp.Expression, label: str) -> None:
    if isinstance(action, exp.ColumnDef):
        field = _schema_from_columns([action]).fields[0]
        if any(f.name.lower() == field.name.lower() for f in schema.fields):
            raise AlreadyExists(f"Column '{field.name}' already exists in {label}")
        if field.required:
            raise SchemaMismatch(f"Cannot add NOT NULL column '{field.name}' to {label}: existing rows have no value")
        update.add_column(field.name, field.field_type, doc=field.doc)
    elif isinstance(action, exp.Schema):
        for column in action.expressions:
            _schema_action(update, schema, column, label)
    elif isinstance(action, exp.Drop):
        for column in action.args.get("tables") or [action.this]:
            update.delete_column(_column(schema, column.name, label))
    elif isinstance(action, exp.RenameColumn):
        update.rename_column(_column(schema, action.this.name, label), action.args["to"].name)
    elif isinstance(action, exp.AlterColumn):
        column = _column(schema, action.this.name, label)
        if action.args.get("dtype") is not None:
            new_type = sql_type_to_iceberg(action.args["dtype"], column=column)
            check_promotion(column, schema.find_field(column).field_type, new_type)
            update.update_column(column, field_type=new_type)
        elif action.args.get("drop"):
            update.make_column_optional(column)
        elif action.args.get("comment") is not None:
            update.update_column(column, doc=action.args["comment"].name)
        else:
            raise UnsupportedStatement(f"ALTER COLUMN {action.sql()} is not supported", hint="use TYPE, DROP NOT NULL or COMMENT")
    else:
        raise UnsupportedStatement(
            f"ALTER TABLE action '{action.sql()}' is not supported",
            hint="use RENAME TO, ADD COLUMN(S), DROP COLUMN, RENAME COLUMN, ALTER COLUMN … TYPE, "
            "SET/UNSET TBLPROPERTIES, SET IDENTIFIER FIELDS",
        )


def _column(schema: Schema, name: str, label: str) -> str:
    for f in schema.fields:
        if f.name.lower() == name.lower():
            return f.name
    raise NotFound(f"Column '{name}' does not exist in {label}", hint=f"columns: {', '.join(f.name for f in schema.fields)}")


# --- Wharf extension grammars ---------------------------------------------------------------


@dataclass(frozen=True)
class CreateNamespace:
    name: str
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropNamespace:
    name: str
    if_exists: bool = False
    cascade: bool = False


@dataclass(frozen=True)
class SetProperties:
    table: str
    properties: dict[str, str]
    unset: tuple[str, ...] = ()
    if_exists: bool = False


@dataclass(frozen=True)
class SetNamespaceProperties:
    namespace: str
    properties: dict[str, str]
    unset: tuple[str, ...] = ()
    if_exists: bool = False


@dataclass(frozen=True)
class DescribeNamespace:
    namespace: str
    extended: bool = False


@dataclass(frozen=True)
class SetIdentifierFields:
    table: str
    columns: tuple[str, ...]


_NS_WORDS = ("SCHEMA", "NAMESPACE", "DATABASE")


@extension(lambda s: s.word() in ("CREATE", "DROP") and s.word(1) in _NS_WORDS)
def _parse_namespace(s: TokenStream) -> CreateNamespace | DropNamespace:
    creating = s.accept("CREATE")
    if not creating:
        s.expect("DROP")
    s.i += 1  # SCHEMA | NAMESPACE | DATABASE
    if creating:
        if_not = s.accept("IF", "NOT", "EXISTS")
        name = s.dotted_name()
        s.expect_end()
        return CreateNamespace(name, if_not)
    if_exists = s.accept("IF", "EXISTS")
    name = s.dotted_name()
    cascade = s.accept("CASCADE")
    s.accept("RESTRICT")
    s.expect_end()
    return DropNamespace(name, if_exists, cascade)


def _is_alter(*words: str) -> Callable[[TokenStream], bool]:
    def matches(s: TokenStream) -> bool:
        if not s.accept("ALTER", "TABLE"):
            return False
        s.dotted_name() if not s.done() else None
        return any(s.at(*w.split()) for w in words)

    return matches


def _safe(matcher: Callable[[TokenStream], object]) -> Callable[[TokenStream], bool]:
    def run(s: TokenStream) -> bool:
        try:
            return bool(matcher(s))
        except Exception:  # noqa: BLE001 - a matcher only says "not mine"
            return False

    return run


def property_list(s: TokenStream, with_values: bool) -> dict[str, str]:
    s.expect("(")
    props: dict[str, str] = {}
    while True:
        key = str(s.literal())
        value = ""
        if with_values:
            s.accept("=")
            value = str(s.literal())
        props[key] = value
        if s.accept(","):
            continue
        s.expect(")")
        return props


@extension(_safe(_is_alter("SET TBLPROPERTIES", "UNSET TBLPROPERTIES", "SET PROPERTIES")))
def _parse_properties(s: TokenStream) -> SetProperties:
    s.expect("ALTER", "TABLE")
    table = s.dotted_name()
    if s.accept("UNSET"):
        s.expect("TBLPROPERTIES")
        if_exists = s.accept("IF", "EXISTS")
        keys = tuple(property_list(s, with_values=False))
        s.expect_end()
        return SetProperties(table, {}, keys, if_exists)
    s.expect("SET")
    if not s.accept("TBLPROPERTIES"):
        s.expect("PROPERTIES")
    props = property_list(s, with_values=True)
    s.expect_end()
    return SetProperties(table, props)


def _is_namespace_properties(s: TokenStream) -> bool:
    if not (s.accept("ALTER") and s.word() in _NS_WORDS):
        return False
    s.i += 1
    s.dotted_name()
    return s.word() in ("SET", "UNSET") and s.word(1) in ("PROPERTIES", "DBPROPERTIES")


@extension(_safe(_is_namespace_properties))
def _parse_namespace_properties(s: TokenStream) -> SetNamespaceProperties:
    """Spark's ``ALTER {NAMESPACE|SCHEMA|DATABASE} db {SET|UNSET} {PROPERTIES|DBPROPERTIES} (…)``."""
    s.expect("ALTER")
    s.i += 1  # NAMESPACE | SCHEMA | DATABASE
    namespace = s.dotted_name()
    unsetting = s.accept("UNSET")
    if not unsetting:
        s.expect("SET")
    s.i += 1  # PROPERTIES | DBPROPERTIES
    if unsetting:
        if_exists = s.accept("IF", "EXISTS")
        keys = tuple(property_list(s, with_values=False))
        s.expect_end()
        return SetNamespaceProperties(namespace, {}, keys, if_exists)
    props = property_list(s, with_values=True)
    s.expect_end()
    return SetNamespaceProperties(namespace, props)


def _is_describe_namespace(s: TokenStream) -> bool:
    after = s.peek(2)  # DESCRIBE schema.t describes a table called t
    return s.word() in ("DESCRIBE", "DESC") and s.word(1) in _NS_WORDS and after is not None and after.text != "."


@extension(_safe(_is_describe_namespace))
def _parse_describe_namespace(s: TokenStream) -> DescribeNamespace:
    s.i += 2
    extended = s.accept("EXTENDED")
    namespace = s.dotted_name()
    s.expect_end()
    return DescribeNamespace(namespace, extended)


@extension(_safe(_is_alter("SET IDENTIFIER FIELDS", "DROP IDENTIFIER FIELDS")))
def _parse_identifier_fields(s: TokenStream) -> SetIdentifierFields:
    s.expect("ALTER", "TABLE")
    table = s.dotted_name()
    dropping = s.accept("DROP")
    if not dropping:
        s.expect("SET")
    s.expect("IDENTIFIER", "FIELDS")
    parens = s.accept("(")  # the form: SET IDENTIFIER FIELDS (a, b); Spark's has none
    columns = [s.identifier()]
    while s.accept(","):
        columns.append(s.identifier())
    if parens:
        s.expect(")")
    s.expect_end()
    return SetIdentifierFields(table, tuple(columns) if not dropping else tuple("-" + c for c in columns))


@handles(CreateNamespace, kind="create_namespace")
def create_namespace(ctx: Context, stmt: CreateNamespace) -> Result:
    governed = ctx.lake is not None and not ctx.principal.is_owner
    if governed:
        ctx.lake.governance.create_namespace_check(stmt.name)  # type: ignore[union-attr]  # governed: a handle
    try:
        ctx.catalog.create_namespace(stmt.name)
    except NamespaceAlreadyExistsError as exc:
        if stmt.if_not_exists:
            return ok(f"Namespace {stmt.name} already exists")
        raise AlreadyExists(f"Namespace '{stmt.name}' already exists", hint="use CREATE SCHEMA IF NOT EXISTS") from exc
    if governed:
        ctx.lake.governance.namespace_created(stmt.name)  # type: ignore[union-attr]  # governed: a handle
    return ok(f"Created namespace {stmt.name}")


@handles(DropNamespace, kind="drop_namespace")
def drop_namespace(ctx: Context, stmt: DropNamespace) -> Result:
    if not ctx.catalog.namespace_exists(stmt.name):
        if stmt.if_exists:
            return ok(f"Namespace {stmt.name} does not exist")
        raise NotFound(f"Namespace '{stmt.name}' does not exist")
    if ctx.lake is not None and not ctx.principal.is_owner:
        ctx.lake.governance.check("DROP", "namespace", stmt.name)
    tables = ctx.catalog.list_tables(stmt.name)
    if tables and not stmt.cascade:
        raise InvalidArgument(
            f"Namespace '{stmt.name}' is not empty ({len(tables)} table(s))",
            hint=f"drop its tables first or use DROP SCHEMA {stmt.name} CASCADE",
        )
    for ident in tables:
        resolve_reference(ctx, (stmt.name, ident[-1]), role="drop")
        ctx.catalog.drop_table(ident)
        ctx.forget_table(stmt.name, ident[-1])
    try:
        ctx.catalog.drop_namespace(stmt.name)
    except (NamespaceNotEmptyError, NoSuchNamespaceError) as exc:
        raise InvalidArgument(str(exc)) from exc
    return ok(f"Dropped namespace {stmt.name}")


@handles(SetProperties, kind="alter_table")
def set_properties(ctx: Context, stmt: SetProperties) -> Result:
    ns, name = split_name(stmt.table)
    table = resolve_reference(ctx, (ns, name), role="alter").table
    check_properties(stmt.properties, f"table {ns}.{name}")
    missing = [k for k in stmt.unset if k not in table.properties]
    if missing and not stmt.if_exists:
        raise NotFound(f"Table {ns}.{name} has no property {missing[0]!r}", hint="use UNSET TBLPROPERTIES IF EXISTS")
    with private(table).transaction() as tx:
        if stmt.properties:
            tx.set_properties(stmt.properties)
        present = [k for k in stmt.unset if k in table.properties]
        if present:
            tx.remove_properties(*present)
    ctx.forget_table(ns, name)
    return ok(f"Altered properties of {ns}.{name}")


def _existing_namespace(ctx: Context, name: str) -> str:
    if not ctx.catalog.namespace_exists(name):
        raise NotFound(f"Namespace '{name}' does not exist", hint="list namespaces with SHOW SCHEMAS")
    return ".".join(ctx.catalog.canonical_namespace(name))


@handles(SetNamespaceProperties, kind="alter_namespace")
def set_namespace_properties(ctx: Context, stmt: SetNamespaceProperties) -> Result:
    """Namespace properties: a ``location``, a ``comment``, or defaults for its tables such as the
    optimizer's ``wharf.optimizer.*`` policy (a table's own property overrides its namespace's)."""
    name = _existing_namespace(ctx, stmt.namespace)
    if not ctx.principal.is_owner:
        raise AccessDenied(
            f"{ctx.principal.name} may not alter namespace {name}", hint="only the lake's owner changes namespace properties"
        )
    check_properties(stmt.properties, f"namespace {name}")
    current = ctx.catalog.load_namespace_properties(name)
    missing = [k for k in stmt.unset if k not in current]
    if missing and not stmt.if_exists:
        raise NotFound(f"Namespace {name} has no property {missing[0]!r}", hint="use UNSET PROPERTIES IF EXISTS")
    ctx.catalog.update_namespace_properties(name, {k for k in stmt.unset if k in current}, stmt.properties)
    return ok(f"Altered properties of namespace {name}")


@handles(DescribeNamespace, kind="describe")
def describe_namespace(ctx: Context, stmt: DescribeNamespace) -> Result:
    """Spark's ``DESCRIBE NAMESPACE [EXTENDED]``: (info_name, info_value) rows; EXTENDED adds the properties."""
    name = _existing_namespace(ctx, stmt.namespace)
    props = {k: v for k, v in ctx.catalog.load_namespace_properties(name).items() if k != "exists"}
    rows = [("Namespace Name", name), ("Comment", props.pop("comment", "")), ("Location", props.pop("location", ""))]
    if stmt.extended:
        rows.append(("Properties", "(" + ", ".join(f"({k},{v})" for k, v in sorted(props.items())) + ")"))
    return Result(
        pa.table(
            {"info_name": pa.array([r[0] for r in rows], pa.string()), "info_value": pa.array([r[1] for r in rows], pa.string())}
        )
    )


@handles(SetIdentifierFields, kind="alter_table")
def set_identifier_fields(ctx: Context, stmt: SetIdentifierFields) -> Result:
    ns, name = split_name(stmt.table)
    table = resolve_reference(ctx, (ns, name), role="alter").table
    schema = table.schema()
    if all(c.startswith("-") for c in stmt.columns):
        drop = {_column(schema, c[1:], f"{ns}.{name}") for c in stmt.columns}
        keep: list[str] = []
        for field_id in schema.identifier_field_ids:
            column = schema.find_column_name(field_id)
            if column is None:
                raise NotFound(f"Identifier field id {field_id} of {ns}.{name} is not in its schema")
            keep.append(column)
        columns = [c for c in keep if c not in drop]
    else:
        columns = [_column(schema, c, f"{ns}.{name}") for c in stmt.columns]
    for c in columns:
        if not schema.find_field(c).required:
            raise SchemaMismatch(
                f"Identifier field '{c}' of {ns}.{name} must be NOT NULL",
                hint=f"ALTER TABLE {ns}.{name} ALTER COLUMN {c} SET NOT NULL is not allowed by Iceberg; "
                "create the column NOT NULL",
            )
    with private(table).update_schema() as update:
        update.set_identifier_fields(*columns)
    ctx.forget_table(ns, name)
    return ok(f"Set identifier fields of {ns}.{name} to ({', '.join(columns)})")
