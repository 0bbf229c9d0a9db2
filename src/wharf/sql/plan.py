"""The plan pass: choose the files (or metadata rows) each reference reads.

A data reference is planned with the Iceberg translation of the predicates that may safely be
pushed to it — from the qualify pass when it succeeded, else the syntactic rule below — plus its
policy's row filter (rows the policy hides need not be read). Conjuncts on a masked column are
never pushed: the query compares the masked value, the files hold the real one.
"""

from __future__ import annotations

from pyiceberg import expressions as ie
from sqlglot import exp

from wharf.sql.context import Context
from wharf.sql.history_tables import HISTORY_TABLES, plan_history
from wharf.sql.metadata_tables import METADATA_TABLES
from wharf.sql.qualify import pushdown_safe
from wharf.sql.references import Reference
from wharf.tables import predicates


def plan_reference(ctx: Context, ref: Reference, row_filter: ie.BooleanExpression | None = None) -> None:
    """Plan ``ref`` (metadata tables: compute their rows). ``row_filter`` overrides the derived pushdown."""
    if ref.metadata in HISTORY_TABLES:
        plan_history(ctx, ref)  # t.changes, t.scd2: SQL over the table's files, not Arrow rows
        return
    if ref.metadata is not None:
        ref.data = METADATA_TABLES[ref.metadata](ref.table, ref.snapshot_id if not ref.version.is_default else None)
        return
    if row_filter is None:
        row_filter = pushdown_filter(ref)
    policy_filter = _policy_filter(ref)
    ref.row_filter = row_filter if policy_filter == ie.AlwaysTrue() else predicates.combine([row_filter, policy_filter])
    ref.plan = ctx.planner.plan(ref.table, ref.snapshot_id, ref.row_filter, schema=ref.schema)


def pushdown_filter(ref: Reference) -> ie.BooleanExpression:
    """The Iceberg filter implied by the conjuncts that constrain only this reference."""
    assert ref.schema is not None
    masked = set(ref.policy.masks) if ref.policy is not None else set()
    resolve: predicates.ColumnResolver
    if ref.pushdown is not None:
        alias = ref.alias.lower()
        candidates = ref.pushdown
        resolve = lambda col: ref.column(col.name) if col.table.lower() == alias else None  # noqa: E731
    else:
        candidates, resolve = _syntactic(ref)
    filters = []
    for c in candidates:
        columns = list(c.find_all(exp.Column))
        if any((resolve(col) or col.name).lower() in masked for col in columns):
            continue
        filters.append(predicates.to_iceberg(c, ref.schema, resolve))
    return predicates.combine(filters)


def _policy_filter(ref: Reference) -> ie.BooleanExpression:
    if ref.policy is None or ref.policy.row_filter is None or ref.schema is None:
        return ie.AlwaysTrue()
    schema = ref.schema
    conjuncts = predicates.conjuncts(ref.policy.row_filter)
    return predicates.combine(predicates.to_iceberg(c, schema, lambda col: None if col.table else col.name) for c in conjuncts)


def _syntactic(ref: Reference) -> tuple[list[exp.Expr], predicates.ColumnResolver]:
    """The fallback when qualification failed: explicitly qualified columns, or any column of a lone source."""
    node = ref.node
    parent = node.parent
    select = parent.parent if isinstance(parent, (exp.From, exp.Join)) else None
    none: tuple[list[exp.Expr], predicates.ColumnResolver] = ([], lambda col: None)
    if not isinstance(select, exp.Select):
        return none
    joins = select.args.get("joins") or []
    if not pushdown_safe(joins):
        return none
    sources = 1 + len(joins)
    alias = ref.alias.lower()

    def resolve(col: exp.Column) -> str | None:
        if col.table:
            return ref.column(col.name) if col.table.lower() == alias else None
        return ref.column(col.name) if sources == 1 else None

    candidates: list[exp.Expr] = []
    if isinstance(parent, exp.Join):
        if parent.side not in ("", None) and parent.side != "LEFT":
            return none
        candidates += predicates.conjuncts(parent.args.get("on"))
        if parent.side == "LEFT":
            # Only ON conditions restrict the null-supplying side of a LEFT JOIN.
            return _resolvable(candidates, resolve), resolve
    if not any(j.side in ("RIGHT", "FULL") for j in joins):
        where = select.args.get("where")
        candidates += predicates.conjuncts(where.this if where is not None else None)
    return _resolvable(candidates, resolve), resolve


def _resolvable(candidates: list[exp.Expr], resolve: predicates.ColumnResolver) -> list[exp.Expr]:
    kept = []
    for c in candidates:
        columns = list(c.find_all(exp.Column))
        if columns and all(resolve(col) is not None for col in columns) and not c.find(exp.Subquery, exp.Select):
            kept.append(c)
    return kept
