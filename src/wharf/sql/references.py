"""Resolve table references in a query and replace them with DuckDB relations over planned files.

Handles ``ns.t``, ``t`` (default namespace), ``t FOR VERSION|TIMESTAMP AS OF …``, ``t.branch_x``,
``t.tag_x``, metadata tables (``t.snapshots`` …) and the session branch. Each data reference is
planned with the predicates that can safely be pushed to it, so only files that may match are read.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Set
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg import expressions as ie
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from sqlglot import exp

from wharf.errors import InvalidArgument, NotFound
from wharf.sql.context import Context
from wharf.tables import predicates
from wharf.tables.refs import Version, parse_timestamp_ms, resolve_snapshot, version_from_literal
from wharf.tables.scan import ScanPlan

MetadataTable = Callable[[Table, int | None], pa.Table]

# Names that DuckDB owns; references under them are passed through untouched.
_DUCKDB_SCHEMAS = {"main", "information_schema", "pg_catalog", "temp", "memory", "system"}


def _inspect(name: str, with_snapshot: bool = False) -> MetadataTable:
    def run(table: Table, snapshot_id: int | None) -> pa.Table:
        method = getattr(table.inspect, name)
        data = method(snapshot_id) if with_snapshot and snapshot_id is not None else method()
        return pa.table({n: _no_empty_structs(c) for n, c in zip(data.column_names, data.columns, strict=True)})

    return run


def _no_empty_structs(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """DuckDB cannot read a struct without fields (``partition`` of an unpartitioned table): make it NULL."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if not pa.types.is_struct(kind) or not _has_empty_struct(kind):
        return array
    if kind.num_fields == 0:
        return pa.nulls(len(array))
    children = [_no_empty_structs(child) for child in array.flatten()]
    fields = [pa.field(kind.field(i).name, child.type) for i, child in enumerate(children)]
    return pa.StructArray.from_arrays(children, fields=fields, mask=array.is_null())


def _has_empty_struct(kind: pa.DataType) -> bool:
    return pa.types.is_struct(kind) and (
        kind.num_fields == 0 or any(_has_empty_struct(kind.field(i).type) for i in range(kind.num_fields))
    )


METADATA_TABLES: dict[str, MetadataTable] = {
    "snapshots": _inspect("snapshots"),
    "history": _inspect("history"),
    "refs": _inspect("refs"),
    "files": _inspect("files", True),
    "data_files": _inspect("data_files", True),
    "delete_files": _inspect("delete_files", True),
    "manifests": _inspect("manifests"),
    "partitions": _inspect("partitions", True),
    "metadata_log_entries": _inspect("metadata_log_entries"),
    "entries": _inspect("entries", True),
}


@dataclass
class Reference:
    """One resolved table reference in a statement."""

    node: exp.Table
    namespace: str
    name: str
    table: Table
    version: Version
    metadata: str | None = None

    @property
    def label(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def alias(self) -> str:
        return self.node.alias_or_name if self.node.alias else self.node.name


def _literal_value(node: exp.Expression) -> object:
    if isinstance(node, exp.Literal):
        return int(node.this) if not node.is_string and node.this.lstrip("-").isdigit() else node.this
    if isinstance(node, exp.Cast):
        return _literal_value(node.this)
    if isinstance(node, (exp.Column, exp.Identifier)):
        return node.name
    raise InvalidArgument(f"Expected a literal in AS OF clause, got {node.sql()}")


def _version_of(node: exp.Table, table: Table) -> Version:
    clause = node.args.get("version")
    if not clause:
        return Version()
    value = _literal_value(clause.expression)
    if clause.name.upper() == "TIMESTAMP" or clause.this.upper() in ("TIMESTAMP", "SYSTEM_TIME"):
        return Version(timestamp_ms=parse_timestamp_ms(value if isinstance(value, (int, str)) else str(value)))
    return version_from_literal(table, value)


def cte_names(expression: exp.Expr) -> set[str]:
    return {cte.alias_or_name.lower() for cte in expression.find_all(exp.CTE)}


def resolve_table(
    ctx: Context, node: exp.Table, *, ctes: Set[str] = frozenset(), required: bool = True
) -> Reference | None:
    """Resolve one ``exp.Table`` to a Wharf reference (None for CTEs / DuckDB objects)."""
    if not isinstance(node.this, exp.Identifier):
        return None  # table function such as read_parquet(...)
    parts = [p.name for p in node.parts]
    find = ctx.find_table
    if len(parts) == 1:
        if parts[0].lower() in ctes:
            return None
        if (table := find("default", parts[0])) is not None:
            return Reference(node, "default", parts[0], table, _version_of(node, table))
    elif len(parts) == 2:
        ns, name = parts
        if (table := find(ns, name)) is not None:
            return Reference(node, ns, name, table, _version_of(node, table))
        if ns.lower() in _DUCKDB_SCHEMAS:
            return None
        if find("default", ns) is not None:
            return _suffixed(ctx, node, "default", ns, name)
    elif len(parts) == 3:
        ns, name, suffix = parts
        if ns.lower() in _DUCKDB_SCHEMAS:
            return None
        if find(ns, name) is not None:
            return _suffixed(ctx, node, ns, name, suffix)
    if not required:
        return None
    if len(parts) == 1 and _duckdb_has(ctx, parts[0]):
        return None
    raise NotFound(
        f"Table {'.'.join(parts)} does not exist",
        hint="list tables with SHOW TABLES [IN namespace]; names are namespace.table (namespace 'default' if omitted)",
    )


def _duckdb_has(ctx: Context, name: str) -> bool:
    row = ctx.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE lower(table_name) = lower(?) "
        "UNION ALL SELECT count(*) FROM duckdb_views() WHERE lower(view_name) = lower(?)",
        [name, name],
    ).fetchall()
    return any(r[0] for r in row)


def _suffixed(ctx: Context, node: exp.Table, ns: str, name: str, suffix: str) -> Reference:
    table = ctx.find_table(ns, name) or ctx.loader.load(ns, name)
    lowered = suffix.lower()
    if lowered.startswith("branch_"):
        branch = suffix[len("branch_") :]
        from pyiceberg.table.refs import SnapshotRefType

        from wharf.tables.refs import ref_snapshot_id

        ref_snapshot_id(table, branch, kind=SnapshotRefType.BRANCH)
        return Reference(node, ns, name, table, Version(ref=branch))
    if lowered.startswith("tag_"):
        tag = suffix[len("tag_") :]
        from pyiceberg.table.refs import SnapshotRefType

        from wharf.tables.refs import ref_snapshot_id

        ref_snapshot_id(table, tag, kind=SnapshotRefType.TAG)
        return Reference(node, ns, name, table, Version(ref=tag))
    if lowered in METADATA_TABLES:
        return Reference(node, ns, name, table, _version_of(node, table), metadata=lowered)
    raise NotFound(
        f"{ns}.{name} has no branch, tag or metadata table called '{suffix}'",
        hint="use t.branch_<name>, t.tag_<name> or one of: " + ", ".join(sorted(METADATA_TABLES)),
    )


def pushdown_filter(ref: Reference) -> ie.BooleanExpression:
    """The Iceberg filter implied by the WHERE / ON conjuncts that constrain only this reference."""
    node = ref.node
    parent = node.parent
    select = parent.parent if isinstance(parent, (exp.From, exp.Join)) else None
    if not isinstance(select, exp.Select):
        return ie.AlwaysTrue()
    joins = select.args.get("joins") or []
    sources = 1 + len(joins)
    outer = any(j.side in ("RIGHT", "FULL") for j in joins)
    candidates: list[exp.Expr] = []
    if isinstance(parent, exp.Join):
        if parent.side not in ("", None) and parent.side != "LEFT":
            return ie.AlwaysTrue()
        candidates += predicates.conjuncts(parent.args.get("on"))
        if parent.side == "LEFT":
            # Only ON conditions restrict the null-supplying side of a LEFT JOIN.
            return _translate(ref, candidates, sources)
    if not outer and not (isinstance(parent, exp.From) and any(j.side in ("RIGHT", "FULL") for j in joins)):
        candidates += predicates.conjuncts(select.args.get("where") and select.args["where"].this)
    return _translate(ref, candidates, sources)


def _translate(ref: Reference, candidates: list[exp.Expr], sources: int) -> ie.BooleanExpression:
    alias = ref.alias.lower()
    schema = ref.table.schema()

    def resolve(col: exp.Column) -> str | None:
        if col.table:
            return col.name if col.table.lower() == alias else None
        return col.name if sources == 1 else None

    filters = []
    for c in candidates:
        cols = list(c.find_all(exp.Column))
        if not cols or any(resolve(col) is None for col in cols) or c.find(exp.Subquery, exp.Select):
            continue
        filters.append(predicates.to_iceberg(c, schema, resolve))
    return predicates.combine(filters)


@dataclass
class RewrittenQuery:
    sql: str
    references: list[Reference]
    plans: list[ScanPlan]
    registered: list[str]


_counter = itertools.count()


def rewrite_query(ctx: Context, expression: exp.Expr, *, branch_default: bool = True) -> RewrittenQuery:
    """Return DuckDB SQL for ``expression`` with every Wharf table replaced by its planned relation."""
    expression = expression.copy()
    ctes = cte_names(expression)
    refs = [r for node in list(expression.find_all(exp.Table)) if (r := resolve_table(ctx, node, ctes=ctes))]
    substitutions: dict[str, str] = {}
    plans: list[ScanPlan] = []
    registered: list[str] = []
    session_branch = ctx.session.branch if branch_default else None
    for ref in refs:
        placeholder = f"__wharf_ref_{next(_counter)}"
        snapshot_id = resolve_snapshot(ref.table, ref.version, session_branch=session_branch)
        if ref.metadata:
            data = METADATA_TABLES[ref.metadata](ref.table, snapshot_id if not ref.version.is_default else None)
            ctx.con.register(placeholder, data)
            registered.append(placeholder)
            relation = f'"{placeholder}"'
        else:
            plan = ctx.planner.plan(ref.table, snapshot_id, pushdown_filter(ref), schema=_schema_for(ref, snapshot_id))
            plans.append(plan)
            relation = plan.relation_sql()
        alias = ref.node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(ref.node.name))
        replacement = exp.Table(this=exp.to_identifier(placeholder, quoted=True), alias=alias)
        ref.node.replace(replacement)
        substitutions[f'"{placeholder}"'] = relation
    sql = expression.sql("duckdb")
    for key, relation in substitutions.items():
        sql = sql.replace(key, relation, 1)
    return RewrittenQuery(sql, refs, plans, registered)


def _schema_for(ref: Reference, snapshot_id: int | None) -> Schema:
    """Time travel reads with the schema of that snapshot (Iceberg semantics); branches use the table schema."""
    if ref.version.snapshot_id is None and ref.version.timestamp_ms is None:
        return ref.table.schema()
    snapshot = ref.table.metadata.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    if snapshot is not None and snapshot.schema_id is not None:
        for schema in ref.table.metadata.schemas:
            if schema.schema_id == snapshot.schema_id:
                return schema
    return ref.table.schema()
