"""Views: ``CREATE [OR REPLACE] VIEW``, ``ALTER VIEW``, ``DROP VIEW``, ``SHOW VIEWS``; expanded by the pipeline.

A view is an Iceberg view in the lake's catalog (``wharf.catalog.views``): its SQL is stored once
per dialect (the dialect it was written in, plus DuckDB's and Spark's translations), with its
output schema, so PyIceberg and other engines see the same object. When a statement names a
view, the resolve pass replaces the name by the view's query (``expand_views``); the tables inside
then take every pass — so policies on those tables apply through views, whoever defined them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import sqlglot
from pyiceberg.exceptions import NoSuchViewError, ViewAlreadyExistsError
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField
from pyiceberg.view import View
from pyiceberg.view.metadata import SQLViewRepresentation, ViewRepresentation, ViewVersion
from sqlglot import exp
from sqlglot.errors import ParseError

from wharf.errors import AlreadyExists, InvalidArgument, NotFound, SchemaMismatch, UnsupportedStatement
from wharf.identifiers import check_identifier
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.history_tables import annotate
from wharf.sql.parser import TokenStream, dialect_types, extension
from wharf.tables.loader import split_name
from wharf.tables.types import sql_type_to_iceberg

DEFAULT_NAMESPACE = ("default",)
# Dialects every view is stored in, besides the one it was written in: Wharf's own engine and Spark's.
STORED_DIALECTS = ("duckdb", "spark")
MAX_DEPTH = 32  # views of views of …: deeper is almost certainly a cycle


def _ok(message: str) -> Result:
    return Result(pa.table({"status": [message]}), rowcount=0, message=message)


def _label(parts: tuple[str, ...]) -> str:
    return ".".join(parts)


# --- expansion (called by the resolve pass) ------------------------------------------------------


def find_view(ctx: Context, node: exp.Table) -> tuple[tuple[str, str], View] | None:
    """The view a table node names (``v``, ``ns.v``, ``catalog.ns.v``), if it names no table."""
    parts = [p.name for p in node.parts]
    candidates: list[tuple[str, str]] = []
    if len(parts) == 1:
        candidates = [("default", parts[0])]
    elif len(parts) == 2:
        candidates = [(parts[0], parts[1])]
    elif len(parts) == 3:
        candidates = [(parts[1], parts[2])]
    for ns, name in candidates:
        if ctx.find_table(ns, name) is not None:
            return None
        view = ctx.find_view(ns, name)
        if view is not None:
            stored = view.name()  # the catalog's spelling: names resolve case-insensitively
            return (".".join(stored[:-1]), stored[-1]), view
    return None


def view_query(view: View) -> exp.Query:
    """The view's query as a sqlglot tree (DuckDB's representation when stored, else translated)."""
    representations = [r.root for r in view.current_version().representations]
    chosen = next((r for r in representations if r.dialect == "duckdb"), None) or representations[0]
    dialect = chosen.dialect if chosen.dialect in sqlglot.Dialect.classes else "spark"
    try:
        query = dialect_types(sqlglot.parse_one(chosen.sql, read=dialect), dialect)
    except ParseError as exc:
        raise UnsupportedStatement(
            f"View {_label(view.name())} has SQL Wharf cannot read ({chosen.dialect}): {str(exc).splitlines()[0]}"
        ) from exc
    if not isinstance(query, exp.Query):
        raise UnsupportedStatement(f"View {_label(view.name())} is not a query")
    namespace = tuple(view.current_version().default_namespace) or DEFAULT_NAMESPACE
    ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        # Iceberg views resolve a one-part name in their default namespace.
        if isinstance(table.this, exp.Identifier) and not table.args.get("db") and table.name.lower() not in ctes:
            table.set("db", exp.to_identifier(".".join(namespace)))
    return query


def expand_views(ctx: Context, expression: exp.Expr, chain: tuple[str, ...] = ()) -> None:
    """Replace every view a statement names by its query, views inside views too."""
    ctes = {c.alias_or_name.lower() for c in expression.find_all(exp.CTE)}
    for node in list(expression.find_all(exp.Table)):
        if not isinstance(node.this, (exp.Identifier, exp.Dot)) or node.meta.get("wharf.ref") is not None:
            continue
        if len(node.parts) == 1 and node.name.lower() in ctes:
            continue
        found = find_view(ctx, node)
        if found is None:
            continue
        (ns, name), view = found
        label = f"{ns}.{name}"
        if node.args.get("version") is not None:
            raise UnsupportedStatement(f"{label} is a view: views have no history to travel in", hint="time-travel its tables")
        if label in chain or len(chain) >= MAX_DEPTH:
            raise InvalidArgument(
                f"View {label} refers to itself (through {' → '.join((*chain, label))})",
                hint="a view may read other views, but not, directly or through them, itself",
            )
        query = view_query(view)
        annotate(query, view.metadata.properties)  # changelog / SCD2 views: their options
        expand_views(ctx, query, (*chain, label))
        if ctx.policies:  # governed: the view's tables are checked with its owner's grants (not for the lake owner)
            from wharf.governance.enforce import mark_view

            mark_view(ctx, query, label)
        # The view's columns are the ones stored when it was defined (by position, as Spark does):
        # a column added to a table its query selects with * does not change the view.
        names = [f.name for f in view.schema().fields]
        inner = exp.TableAlias(this=exp.to_identifier("__wharf_view"), columns=[exp.to_identifier(n) for n in names])
        body = exp.select(*(exp.column(n, quoted=True) for n in names)).from_(exp.Subquery(this=query, alias=inner))
        alias = exp.TableAlias(this=exp.to_identifier(node.alias_or_name))
        node.replace(exp.Subquery(this=body, alias=alias))


# --- CREATE / ALTER / DROP -------------------------------------------------------------------------


def _schema_of(ctx: Context, query: exp.Expr, names: list[str] | None, comments: dict[str, str]) -> Schema:
    """The output schema of ``query`` as DuckDB computes it, renamed by the view's column list."""
    from wharf.sql.pipeline import compile_query

    compiled = compile_query(ctx, query)
    try:
        described = run_duckdb(ctx.con, f"DESCRIBE {compiled.sql}").fetchall()
    finally:
        for name in compiled.registered:
            ctx.con.unregister(name)
    columns = [row[0] for row in described]
    if names is not None:
        if len(names) != len(columns):
            raise SchemaMismatch(f"The view lists {len(names)} column(s) but its query returns {len(columns)}")
        columns = names
    ids = iter(range(1, 10_000_000))
    fields = []
    for column, row in zip(columns, described, strict=True):
        field_type = sql_type_to_iceberg(exp.DataType.build(row[1], dialect="duckdb"), column=column)
        fields.append(NestedField(next(ids), column, field_type, required=False, doc=comments.get(column)))
    from pyiceberg.schema import assign_fresh_schema_ids

    return assign_fresh_schema_ids(Schema(*fields))


def _version(ctx: Context, query: exp.Expr, namespace: tuple[str, ...]) -> ViewVersion:
    from wharf import __version__

    written = ctx.dialect
    sql = {written: query.sql(dialect=written)}
    for dialect in STORED_DIALECTS:
        sql.setdefault(dialect, query.sql(dialect=dialect))
    representations = [ViewRepresentation(SQLViewRepresentation(type="sql", sql=text, dialect=d)) for d, text in sql.items()]
    return ViewVersion(
        schema_id=0,
        summary={"engine-name": "wharf", "engine-version": __version__},
        representations=representations,
        default_namespace=namespace,
    )


def create_view(ctx: Context, node: exp.Create) -> Result:
    ctx.statement.kind = "create_view"
    target = node.this.this if isinstance(node.this, exp.Schema) else node.this
    parts = tuple(p.name for p in target.parts)
    if len(parts) > 2:
        parts = parts[-2:]
    ns, name = split_name(parts)
    check_identifier((ns, name), "view")
    query = node.expression
    if not isinstance(query, exp.Query):
        raise UnsupportedStatement("CREATE VIEW needs AS <query>")
    names = comments = None
    if isinstance(node.this, exp.Schema):
        defs = node.this.expressions
        names = [d.name for d in defs]
        comments = {
            d.name: c.kind.name
            for d in defs
            for c in (d.args.get("constraints") or [])
            if isinstance(c.kind, exp.CommentColumnConstraint)
        }
    properties: dict[str, str] = {}
    temporary = False
    props = node.args.get("properties")
    for prop in props.expressions if props else []:
        if isinstance(prop, exp.SchemaCommentProperty):
            properties["comment"] = prop.this.name
        elif type(prop) is exp.Property and isinstance(prop.args.get("value"), exp.Expr):
            properties[prop.name] = prop.args["value"].name
        elif isinstance(prop, exp.MaterializedProperty):
            raise UnsupportedStatement(
                "materialized views are not supported",
                hint="CREATE VIEW stores the query; CREATE TABLE … AS SELECT materializes its result",
            )
        elif isinstance(prop, exp.TemporaryProperty):
            temporary = True
        else:
            raise UnsupportedStatement(f"CREATE VIEW does not take {prop.sql('spark')!r}", hint="see docs/sql.md#views")
    if ctx.find_table(ns, name) is not None:
        raise AlreadyExists(f"{ns}.{name} is a table", hint="choose another name for the view")
    expand_views(ctx, query.copy(), (f"{ns}.{name}",))  # a view that would read itself is refused now
    schema = _schema_of(ctx, query, names, comments or {})
    if temporary:
        return create_temporary_view(
            ctx,
            (ns, name),
            query,
            schema,
            properties,
            replace=bool(node.args.get("replace")),
            if_not_exists=bool(node.args.get("exists")),
        )
    version = _version(ctx, query, DEFAULT_NAMESPACE)
    exists = ctx.catalog.view_exists((ns, name))
    if exists and node.args.get("exists"):
        return _ok(f"View {ns}.{name} already exists")
    if exists and not node.args.get("replace"):
        raise AlreadyExists(f"View {ns}.{name} already exists", hint="use CREATE OR REPLACE VIEW or CREATE VIEW IF NOT EXISTS")
    if exists:
        ctx.catalog.replace_view((ns, name), schema, version, properties)
        return _ok(f"Replaced view {ns}.{name}")
    try:
        ctx.catalog.create_view((ns, name), schema, version, properties=properties)
    except ViewAlreadyExistsError as exc:
        if node.args.get("exists"):
            return _ok(f"View {ns}.{name} already exists")
        raise AlreadyExists(f"View {ns}.{name} already exists (created concurrently)") from exc
    return _ok(f"Created view {ns}.{name}")


def create_temporary_view(
    ctx: Context,
    ident: tuple[str, str],
    query: exp.Expr,
    schema: Schema,
    properties: dict[str, str],
    *,
    replace: bool = False,
    if_not_exists: bool = False,
) -> Result:
    """A view that lives in this lake handle only (``CREATE TEMPORARY VIEW``; changelog views by default).

    It is an Iceberg view object like a catalog view — the same expansion, ``SHOW CREATE TABLE``
    and ``DROP VIEW`` — kept in the handle's memory, so other handles and engines never see it.
    """
    import uuid

    from pyiceberg.view.metadata import ViewMetadata

    key = (ident[0].lower(), ident[1].lower())
    if key in ctx.temp_views and not replace:
        if if_not_exists:
            return _ok(f"Temporary view {_label(ident)} already exists")
        raise AlreadyExists(f"Temporary view {_label(ident)} already exists", hint="use CREATE OR REPLACE TEMPORARY VIEW")
    version = _version(ctx, query, DEFAULT_NAMESPACE).model_copy(update={"version_id": 1, "schema_id": 0})
    metadata = ViewMetadata(
        view_uuid=str(uuid.uuid4()),
        format_version=1,
        location=f"memory://{_label(ident)}",
        schemas=[Schema(*schema.fields, schema_id=0)],
        current_version_id=1,
        versions=[version],
        version_log=[],
        properties=dict(properties),
    )
    ctx.temp_views[key] = View(ident, metadata)
    return _ok(f"Created temporary view {_label(ident)}")


def drop_view(ctx: Context, node: exp.Drop) -> Result:
    ctx.statement.kind = "drop_view"
    dropped = []
    for target in node.args.get("tables") or [node.this]:
        ns, name = split_name(tuple(p.name for p in target.parts)[-2:])
        if ctx.temp_views.pop((ns.lower(), name.lower()), None) is not None:
            dropped.append(f"{ns}.{name}")
            continue
        try:
            ctx.catalog.drop_view((ns, name))
        except NoSuchViewError as exc:
            if ctx.find_table(ns, name) is not None:
                raise InvalidArgument(f"{ns}.{name} is a table, not a view", hint=f"use DROP TABLE {ns}.{name}") from exc
            if node.args.get("exists"):
                continue
            raise NotFound(
                f"View {ns}.{name} does not exist", hint="SHOW VIEWS lists the views; use DROP VIEW IF EXISTS"
            ) from exc
        dropped.append(f"{ns}.{name}")
    return _ok(f"Dropped view {', '.join(dropped)}" if dropped else "No view to drop")


def alter_view(ctx: Context, node: exp.Alter) -> Result:
    ctx.statement.kind = "alter_view"
    ns, name = split_name(tuple(p.name for p in node.this.parts)[-2:])
    if not ctx.catalog.view_exists((ns, name)):
        raise NotFound(f"View {ns}.{name} does not exist", hint="SHOW VIEWS lists the views")
    actions = node.args.get("actions") or []
    if len(actions) == 1 and isinstance(actions[0], exp.AlterRename):
        new_ns, new_name = split_name(tuple(p.name for p in actions[0].this.parts)[-2:])
        check_identifier((new_ns, new_name), "view")
        ctx.catalog.rename_view((ns, name), (new_ns, new_name))
        return _ok(f"Renamed view {ns}.{name} to {new_ns}.{new_name}")
    query = node.args.get("expression") or next((a for a in actions if isinstance(a, exp.Query)), None)
    if not isinstance(query, exp.Query):
        raise UnsupportedStatement(
            f"ALTER VIEW {node.sql('duckdb')[:60]} is not supported",
            hint="ALTER VIEW v AS <query>, ALTER VIEW v RENAME TO w, ALTER VIEW v SET|UNSET TBLPROPERTIES (…)",
        )
    expand_views(ctx, query.copy(), (f"{ns}.{name}",))
    schema = _schema_of(ctx, query, None, {})
    ctx.catalog.replace_view((ns, name), schema, _version(ctx, query, DEFAULT_NAMESPACE), {})
    return _ok(f"Altered view {ns}.{name}")


@dataclass(frozen=True)
class SetViewProperties:
    view: str
    properties: dict[str, str]
    unset: tuple[str, ...] = ()
    if_exists: bool = False


def _is_view_properties(s: TokenStream) -> bool:
    if not s.accept("ALTER", "VIEW"):
        return False
    s.dotted_name()
    return s.at("SET", "TBLPROPERTIES") or s.at("UNSET", "TBLPROPERTIES")


@extension(_is_view_properties)
def _parse_view_properties(s: TokenStream) -> SetViewProperties:
    from wharf.sql.ddl import property_list

    s.expect("ALTER", "VIEW")
    view = s.dotted_name()
    if s.accept("UNSET", "TBLPROPERTIES"):
        if_exists = s.accept("IF", "EXISTS")
        keys = tuple(property_list(s, with_values=False))
        s.expect_end()
        return SetViewProperties(view, {}, keys, if_exists)
    s.expect("SET", "TBLPROPERTIES")
    props = property_list(s, with_values=True)
    s.expect_end()
    return SetViewProperties(view, props)


@handles(SetViewProperties, kind="alter_view")
def set_view_properties(ctx: Context, stmt: SetViewProperties) -> Result:
    ns, name = split_name(stmt.view)
    try:
        view = ctx.catalog.load_view((ns, name))
    except NoSuchViewError as exc:
        raise NotFound(f"View {ns}.{name} does not exist", hint="SHOW VIEWS lists the views") from exc
    missing = [k for k in stmt.unset if k not in view.metadata.properties]
    if missing and not stmt.if_exists:
        raise NotFound(f"View {ns}.{name} has no property {missing[0]!r}", hint="use UNSET TBLPROPERTIES IF EXISTS")
    ctx.catalog.set_view_properties((ns, name), set(stmt.unset), stmt.properties)
    return _ok(f"Altered properties of view {ns}.{name}")


def view_sql(view: View) -> str:
    """``CREATE VIEW … AS …`` that recreates ``view`` (SHOW CREATE TABLE)."""
    query = view_query(view)

    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    columns = ", ".join(f'"{f.name}"' + (f" COMMENT {literal(f.doc)}" if f.doc else "") for f in view.schema().fields)
    ident = ".".join(f'"{p}"' for p in view.name())
    properties = dict(view.metadata.properties)
    comment = properties.pop("comment", None)
    clauses = f"\nCOMMENT {literal(comment)}" if comment else ""
    if properties:
        pairs = ", ".join(f"{literal(k)} = {literal(v)}" for k, v in sorted(properties.items()))
        clauses += f"\nTBLPROPERTIES ({pairs})"
    return f"CREATE VIEW {ident} ({columns}){clauses} AS\n{query.sql(dialect='duckdb', pretty=True)}"
