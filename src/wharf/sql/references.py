"""The resolve pass: find every Wharf table reference in a statement and pin it to a snapshot.

Handles ``ns.t``, ``t`` (default namespace), ``t FOR VERSION|TIMESTAMP AS OF …``, ``t.branch_x``,
``t.tag_x``, metadata tables (``t.snapshots`` …) and the session branch. Each resolved reference
is a ``Reference``; the later passes of the pipeline (``wharf.sql.pipeline``) fill in which
columns it uses, its policy, its scan plan and the relation DuckDB reads.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
from pyiceberg import expressions as ie
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.refs import SnapshotRefType
from sqlglot import exp

from wharf.errors import InvalidArgument, NotFound
from wharf.sql.context import Context
from wharf.sql.metadata_tables import METADATA_TABLES
from wharf.tables.refs import Version, parse_timestamp_ms, ref_snapshot_id, resolve_snapshot, version_from_literal
from wharf.tables.scan import ScanPlan

if TYPE_CHECKING:
    from wharf.sql.policy import ReferencePolicy

# Names that DuckDB owns; references under them are passed through untouched.
DUCKDB_SCHEMAS = frozenset({"main", "information_schema", "pg_catalog", "temp", "memory", "system"})

# What a statement does with a table it names; the policy pass maps roles to privileges.
ROLES = ("read", "write", "describe", "alter", "maintain", "drop")

REF_META = "wharf.ref"  # key in an exp.Table's meta: the index of its Reference in the compilation


@dataclass
class Reference:
    """One resolved table reference in a statement, filled in pass by pass."""

    node: exp.Table
    namespace: str
    name: str
    table: Table
    version: Version
    metadata: str | None = None  # a metadata table (snapshots, files, …) of the table
    role: str = "read"
    # resolve: the snapshot read (None: the table or branch has no data) and the schema read with.
    snapshot_id: int | None = None
    schema: Schema | None = None
    # qualify: the columns the statement uses (None: all / unknown) and the conjuncts that
    # constrain only this reference (None: use the syntactic fallback).
    columns: tuple[str, ...] | None = None
    pushdown: list[exp.Expr] | None = None
    # authorize: row filter and column masks that apply to the principal (None: no policy).
    policy: ReferencePolicy | None = None
    # plan: the Iceberg filter planned with, and the plan (data) or rows (metadata tables).
    row_filter: ie.BooleanExpression | None = None
    plan: ScanPlan | None = None
    data: pa.Table | None = None
    # DML targets: the relation also carries each row's file and position.
    with_position: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Names resolve case-insensitively: the reference carries the catalog's spelling, since
        # policies, events and error messages match on it.
        identifier = self.table.name()
        if len(identifier) >= 2:
            self.namespace, self.name = ".".join(identifier[:-1]), identifier[-1]

    @property
    def label(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def alias(self) -> str:
        return self.node.alias_or_name if self.node.alias else self.node.name

    @property
    def renamed(self) -> dict[str, str]:
        """Column aliases of ``FROM t AS x(a, b)``: visible name (lower case) → the schema's column, by position."""
        alias = self.node.args.get("alias")
        names = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) and alias.columns else []
        if not names or self.schema is None:
            return {}
        fields = [f.name for f in self.schema.fields]
        visible = {name.lower(): name for name in fields[len(names) :]}
        visible.update({alias_name.lower(): field for alias_name, field in zip(names, fields, strict=False)})
        return visible

    def column(self, visible: str) -> str | None:
        """The schema column a name the statement uses refers to (None: not a column of this reference)."""
        renamed = self.renamed
        if renamed:
            return renamed.get(visible.lower())
        if self.schema is None or self.metadata is not None:
            return visible
        for f in self.schema.fields:
            if f.name.lower() == visible.lower():
                return f.name
        return None

    @property
    def is_time_travel(self) -> bool:
        return self.version.snapshot_id is not None or self.version.timestamp_ms is not None


def _literal_value(node: exp.Expression) -> object:
    if isinstance(node, exp.Literal):
        return int(node.this) if not node.is_string and node.this.lstrip("-").isdigit() else node.this
    if isinstance(node, exp.Cast):
        return _literal_value(node.this)
    if isinstance(node, (exp.Column, exp.Identifier)):
        return node.name
    raise InvalidArgument(f"Expected a literal in AS OF clause, got {node.sql()}")


def _version_of(ctx: Context, node: exp.Table, table: Table) -> Version:
    """``FOR VERSION AS OF …`` / ``FOR TIMESTAMP AS OF …`` (and Spark's ``VERSION AS OF``, ``FOR SYSTEM_TIME AS OF`` …)."""
    clause = node.args.get("version")
    if not clause:
        return Version()
    if clause.expression is None:
        raise InvalidArgument(
            f"{clause.sql('duckdb')} needs a value", hint="FOR VERSION AS OF <snapshot id or ref>, FOR TIMESTAMP AS OF '<time>'"
        )
    if clause.name.upper() == "TIMESTAMP" or clause.this.upper() in ("TIMESTAMP", "SYSTEM_TIME"):
        return Version(timestamp_ms=_timestamp_ms(ctx, clause.expression))
    return version_from_literal(table, _literal_value(clause.expression))


def _timestamp_ms(ctx: Context, value: exp.Expression) -> int:
    """A point in time: a timestamp literal, epoch *seconds* (as Iceberg documents ``TIMESTAMP AS OF 499162860``),
    or a constant expression such as ``current_timestamp - INTERVAL 1 DAY`` (evaluated by DuckDB)."""
    node = value.this if isinstance(value, exp.Paren) else value
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return int(float(node.this) * 1000)
        except ValueError as exc:
            raise InvalidArgument(f"'{node.this}' is not a point in time") from exc
    if isinstance(node, exp.Literal) or (isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal)):
        text = node.this if isinstance(node, exp.Literal) else node.this.this
        return parse_timestamp_ms(str(text))
    if node.find(exp.Table, exp.Subquery, exp.Select, exp.Column):
        raise InvalidArgument(
            f"TIMESTAMP AS OF needs a constant, got {value.sql('duckdb')}",
            hint="a timestamp literal, epoch seconds, or an expression such as current_timestamp - INTERVAL 1 DAY",
        )
    from wharf.sql.executor import run_duckdb

    ctx.cacheable = False  # the point in time moves with the clock: never reuse this resolution
    # Epoch milliseconds in DuckDB itself: no time-zone objects cross into Python.
    row = run_duckdb(ctx.con, f"SELECT epoch_ms(CAST({node.sql('duckdb')} AS TIMESTAMPTZ))").fetchone()
    if row is None or row[0] is None:
        raise InvalidArgument(f"TIMESTAMP AS OF {value.sql('duckdb')} is NULL")
    return int(row[0])


def cte_names(expression: exp.Expr) -> set[str]:
    return {cte.alias_or_name.lower() for cte in expression.find_all(exp.CTE)}


def resolve_table(
    ctx: Context, node: exp.Table, *, ctes: Set[str] = frozenset(), required: bool = True, role: str = "read"
) -> Reference | None:
    """Resolve one ``exp.Table`` to a Wharf reference (None for CTEs, table functions and DuckDB objects)."""
    if not isinstance(node.this, (exp.Identifier, exp.Dot)):  # a Dot: a name of four parts
        return None  # a table function such as range(…); the guard pass decides whether it may run
    parts = [p.name for p in node.parts]
    find = ctx.find_table
    if len(parts) == 1:
        if parts[0].lower() in ctes:
            return None
        if (table := find("default", parts[0])) is not None:
            return Reference(node, "default", parts[0], table, _version_of(ctx, node, table), role=role)
    elif len(parts) == 2:
        ns, name = parts
        if (table := find(ns, name)) is not None:
            return Reference(node, ns, name, table, _version_of(ctx, node, table), role=role)
        if ns.lower() in DUCKDB_SCHEMAS:
            return None
        if find("default", ns) is not None:
            return _suffixed(ctx, node, "default", ns, name, role)
    elif len(parts) == 3:
        ns, name, suffix = parts
        # A lake table first, as for two parts: system.maintenance_log.files is the optimizer log's.
        if find(ns, name) is not None:
            return _suffixed(ctx, node, ns, name, suffix, role)
        if ns.lower() in DUCKDB_SCHEMAS:
            return None
        # Spark's catalog.namespace.table: the lake is the only catalog, whatever it is called.
        if (table := find(name, suffix)) is not None:
            return Reference(node, name, suffix, table, _version_of(ctx, node, table), role=role)
    elif len(parts) == 4:
        _catalog, ns, name, suffix = parts
        if _catalog.lower() not in DUCKDB_SCHEMAS and find(ns, name) is not None:
            return _suffixed(ctx, node, ns, name, suffix, role)
    if not required:
        return None
    if len(parts) == 1 and (parts[0].lower() in {n.lower() for n in ctx.registered} or duckdb_has(ctx, parts[0])):
        return None  # data registered on the statement's connection (``lake.register``), or DuckDB's own
    raise NotFound(
        f"Table {'.'.join(parts)} does not exist",
        hint="list tables with SHOW TABLES [IN namespace]; names are namespace.table (namespace 'default' if omitted)",
    )


def duckdb_has(ctx: Context, name: str) -> bool:
    """Whether the statement's DuckDB connection has a table or view called ``name`` (registered data)."""
    row = ctx.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE lower(table_name) = lower(?) "
        "UNION ALL SELECT count(*) FROM duckdb_views() WHERE lower(view_name) = lower(?)",
        [name, name],
    ).fetchall()
    return any(r[0] for r in row)


def _suffixed(ctx: Context, node: exp.Table, ns: str, name: str, suffix: str, role: str) -> Reference:
    table = ctx.find_table(ns, name) or ctx.loader.load(ns, name)
    lowered = suffix.lower()
    if lowered.startswith("branch_"):
        branch = suffix[len("branch_") :]
        ref_snapshot_id(table, branch, kind=SnapshotRefType.BRANCH)
        return Reference(node, ns, name, table, Version(ref=branch), role=role)
    if lowered.startswith("tag_"):
        tag = suffix[len("tag_") :]
        ref_snapshot_id(table, tag, kind=SnapshotRefType.TAG)
        return Reference(node, ns, name, table, Version(ref=tag), role=role)
    if lowered in METADATA_TABLES:
        return Reference(node, ns, name, table, _version_of(ctx, node, table), metadata=lowered, role=role)
    raise NotFound(
        f"{ns}.{name} has no branch, tag or metadata table called '{suffix}'",
        hint="use t.branch_<name>, t.tag_<name> or one of: " + ", ".join(sorted(METADATA_TABLES)),
    )


def pin(ref: Reference, session_branch: str | None) -> None:
    """Resolve the snapshot ``ref`` reads and the schema it reads with."""
    ref.snapshot_id = resolve_snapshot(ref.table, ref.version, session_branch=session_branch)
    ref.schema = schema_for(ref, ref.snapshot_id)


def schema_for(ref: Reference, snapshot_id: int | None) -> Schema:
    """Time travel reads with the schema of that snapshot (Iceberg semantics); branches use the table schema."""
    if not ref.is_time_travel:
        return ref.table.schema()
    snapshot = ref.table.metadata.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    if snapshot is not None and snapshot.schema_id is not None:
        for schema in ref.table.metadata.schemas:
            if schema.schema_id == snapshot.schema_id:
                return schema
    return ref.table.schema()
