"""The reference pipeline: every table reference of every statement passes the same ordered passes.

::

    guard      DuckDB file/network functions only for principals allowed external access (first, virtual
               system tables such as system.grants become their rows for this principal)
    resolve    each reference → table, snapshot (branch, tag, time travel, session branch), schema
    qualify    the columns each reference uses; the predicates that constrain it alone
    authorize  policies: refuse, or restrict with a row filter and column masks (governance)
    plan       Iceberg scan planning and pruning → the files each reference reads
    generate   each reference → a Relation node over its files; the statement → DuckDB SQL

Each pass is a function ``(expression, compilation) -> expression`` listed in ``PASSES``, as in
sqlglot's optimizer ``RULES``. Queries, INSERT/CTAS/MERGE sources and UPDATE/DELETE/MERGE
statements run all of them (``compile_query``); DML targets, ``DESCRIBE``/``SHOW``, procedure
arguments and the Python/CLI inspection of a table run the first passes on the one reference
(``resolve_reference``), so a policy sees every way a statement can name a table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlglot import exp

from wharf.errors import InvalidArgument, NotFound
from wharf.governance.functions import Invoker, bind_context, mentions_context
from wharf.sql import generate as generation
from wharf.sql import guard, qualify
from wharf.sql.context import Context
from wharf.sql.plan import plan_reference
from wharf.sql.policy import authorize_reference
from wharf.sql.references import REF_META, Reference, cte_names, pin, resolve_table
from wharf.sql.system_tables import SYSTEM_TABLES, replace_system_tables
from wharf.statement import TableRead


@dataclass
class Compilation:
    """The state the passes share for one expression."""

    ctx: Context
    references: list[Reference] = field(default_factory=list)
    role: str = "read"
    branch_default: bool = True  # unqualified references read the session branch
    analysis: qualify.Analysis | None = None  # the qualify pass's qualified copy (made on demand: lineage, explain)
    # The tree the passes' working copy was made from, when it is never changed afterwards (the
    # parser's shared tree): the qualified copy is then made from it if and when it is asked for.
    source: exp.Expression | None = None
    registered: list[str] = field(default_factory=list)  # metadata tables registered on the cursor
    sql: str = ""

    @property
    def qualified(self) -> exp.Expression | None:
        """The statement with every column qualified (None: not qualified; planning used the syntactic rule)."""
        return self.analysis.qualified if self.analysis is not None else None

    @property
    def schema(self) -> dict[str, object]:
        """The schema ``qualified`` was qualified with (synthetic table name → column types)."""
        return self.analysis.schema if self.analysis is not None else {}

    def lineage(self, outputs: Sequence[str] | None = None) -> Callable[[], dict[str, tuple[str, ...]]]:
        """A function computing this query's column lineage (renamed to ``outputs`` by position, if given)."""
        from wharf.sql.lineage import column_lineage

        return lambda: column_lineage(self, outputs)


Pass = Callable[[exp.Expression, Compilation], exp.Expression]


def guard_pass(expression: exp.Expression, c: Compilation) -> exp.Expression:
    guard.check(expression, c.ctx.principal, lambda ns, name: c.ctx.find_table(ns, name) is not None)
    return expression


def resolve_pass(expression: exp.Expression, c: Compilation) -> exp.Expression:
    from wharf.sql.views import expand_views

    expand_views(c.ctx, expression)  # a view's query replaces its name; its tables resolve below
    if mentions_context(expression):  # current_user() …: constants for this principal (the cache key holds it)
        expression = bind_context(expression, invoker_for(c.ctx))
        c.source = None  # the working tree no longer matches the parser's
    if SYSTEM_TABLES:
        registered = replace_system_tables(c.ctx, expression)  # system.audit_log …: rows from the metadata database
        if registered:
            c.registered.extend(registered)
            c.source = None  # the working tree no longer matches the parser's
    ctes = cte_names(expression)
    session_branch = c.ctx.session.branch if c.branch_default else None
    for node in list(expression.find_all(exp.Table)):
        if node.meta.get(REF_META) is not None:
            continue  # resolved before (a DML target)
        ref = resolve_table(c.ctx, node, ctes=ctes, role=c.role)
        if ref is None:
            continue
        node.meta[REF_META] = len(c.references)
        c.references.append(ref)
        pin(ref, session_branch)
    return expression


def invoker_for(ctx: Context) -> Invoker:
    """What the context functions answer for the statement's principal: governance's view of it, if governed."""
    for policy in ctx.policies:
        invoker = getattr(policy, "invoker", None)
        if invoker is not None:
            found: Invoker = invoker(ctx.principal)
            return found
    principal = ctx.principal
    return Invoker(principal.name, lambda name: name in principal.groups, lambda key: None)


def qualify_pass(expression: exp.Expression, c: Compilation) -> exp.Expression:
    if not c.references:
        return expression
    qualify.qualify_references(expression, c, _registered_schemas(c.ctx), c.source)
    return expression


def authorize_pass(expression: exp.Expression, c: Compilation) -> exp.Expression:
    for ref in c.references:
        if ref.extra.get("authorized"):
            continue
        authorize_reference(c.ctx.policies, c.ctx.principal, ref)
        ref.extra["authorized"] = True
    return expression


def plan_pass(expression: exp.Expression, c: Compilation) -> exp.Expression:
    for ref in c.references:
        if ref.plan is None and ref.data is None and "relation" not in ref.extra:
            plan_reference(c.ctx, ref)
    return expression


def generate_pass(expression: exp.Expression, c: Compilation) -> exp.Expression:
    relations: dict[int, str] = {}
    for index, ref in enumerate(c.references):
        name = None
        if ref.metadata is not None and "relation" not in ref.extra:
            name = generation.metadata_name()
            c.ctx.con.register(name, ref.data)
            c.registered.append(name)
        relations[index] = generation.relation_sql(ref, name)
    expression = generation.replace_references(expression, relations)
    c.sql = generation.to_duckdb(expression, copy=False)  # the passes' own working tree
    return expression


PASSES: tuple[Pass, ...] = (guard_pass, resolve_pass, qualify_pass, authorize_pass, plan_pass, generate_pass)
# The passes a single named table takes when nothing is read from it yet (DESCRIBE, DML targets, …).
REFERENCE_PASSES: tuple[Pass, ...] = (guard_pass, resolve_pass, authorize_pass)


def compile_query(
    ctx: Context,
    expression: exp.Expr,
    *,
    targets: Sequence[Reference] = (),
    branch_default: bool = True,
    passes: Sequence[Pass] = PASSES,
    copy: bool = True,
) -> Compilation:
    """Run the passes over (a copy of) ``expression``: DuckDB SQL in ``.sql``, references in ``.references``.

    ``targets`` are references resolved and planned before (DML targets): a table node whose
    meta names one of them (``REF_META`` = its position) is generated from it as it is.
    ``copy=False`` lets the passes rewrite ``expression`` itself (a statement's own parsed tree).
    """
    c = Compilation(ctx, list(targets), branch_default=branch_default)
    tree: exp.Expression = expression.copy() if copy else expression  # type: ignore[assignment]  # statements are Expressions
    for run in passes:
        tree = run(tree, c)
    record_reads(ctx, c.references)
    return c


def table_node(namespace: str, name: str) -> exp.Table:
    """An ``exp.Table`` for ``namespace.name`` (quoted: any name round-trips)."""
    return exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(namespace, quoted=True))


# What to do instead, when a statement that needs a table names a view.
_VIEW_HINTS = {
    "write": "views are read-only: write to the tables its query reads (SHOW CREATE TABLE shows it)",
    "alter": "use ALTER VIEW (… AS <query>, RENAME TO, SET/UNSET TBLPROPERTIES)",
    "drop": "use DROP VIEW",
    "maintain": "views have no files of their own; maintain the tables its query reads",
}


def _refuse_view(ctx: Context, table: exp.Table, role: str) -> None:
    """A statement that works on a table's data or metadata must not reach through a view's name."""
    from wharf.sql.views import find_view

    found = find_view(ctx, table)
    if found is not None:
        ns, name = found[0]
        raise InvalidArgument(
            f"{ns}.{name} is a view, not a table", hint=_VIEW_HINTS.get(role, "SHOW CREATE TABLE shows the view's query")
        )


def resolve_reference(ctx: Context, node: exp.Table | str | tuple[str, str], *, role: str = "describe") -> Reference:
    """Resolve one named table through the reference passes (guard, resolve, authorize).

    ``node`` is a table node of a statement, a ``(namespace, name)`` pair, or a dotted name
    (``'db.t'``, ``'t'``, ``'db.t.branch_x'``) as procedure arguments and the Python API give it.
    """
    if isinstance(node, tuple):
        table = table_node(*node)
    elif isinstance(node, str):
        table = exp.to_table(node, dialect="duckdb")
    else:
        table = node
    _refuse_view(ctx, table, role)
    c = Compilation(ctx, role=role, branch_default=role in ("read", "write"))
    tree: exp.Expression = exp.select("*").from_(table.copy())
    for run in REFERENCE_PASSES:
        tree = run(tree, c)
    if not c.references:
        raise NotFound(
            f"Table {table.sql('duckdb')} does not exist",
            hint="list tables with SHOW TABLES [IN namespace]; names are namespace.table",
        )
    ref = c.references[0]
    ref.node = table
    return ref


def record_reads(ctx: Context, references: Sequence[Reference]) -> None:
    """Tell the running statement which tables it read, at which snapshots, which columns."""
    for ref in references:
        if ref.role not in ("read", "write"):
            continue
        label = ref.label if ref.metadata is None else f"{ref.label}.{ref.metadata}"
        files = len(ref.plan.files) if ref.plan is not None else None
        policies = ref.policy.names if ref.policy is not None else ()
        ctx.statement.record_read(TableRead(label, ref.snapshot_id, ref.version.ref, ref.columns, files, policies))


def _registered_schemas(ctx: Context) -> dict[str, dict[str, str]]:
    """Column names of DataFrames registered on the statement's connection, so qualify can place their columns."""
    schemas: dict[str, dict[str, str]] = {}
    for name, data in ctx.registered.items():
        schemas[name] = {f.name: "UNKNOWN" for f in data.schema}
    return schemas


def explain(ctx: Context, expression: exp.Expr) -> list[tuple[str, str]]:
    """Run the passes over ``expression`` and describe the state after each: ``[(pass name, text), …]``.

    What ``lake.explain(sql)`` prints, and what the golden tests pin down: which table each
    reference resolved to, the columns and predicates qualification found, the policy applied,
    the files planned and the SQL DuckDB runs.
    """
    c = Compilation(ctx)
    tree: exp.Expression = expression.copy()  # type: ignore[assignment]  # sqlglot statements are Expressions
    steps: list[tuple[str, str]] = []
    for run in PASSES:
        tree = run(tree, c)
        name = run.__name__.removesuffix("_pass")
        steps.append((name, _describe(name, tree, c)))
    return steps


def _describe(name: str, tree: exp.Expression, c: Compilation) -> str:
    refs = c.references
    if name == "guard":
        return "allowed" if c.ctx.principal.external_access else "allowed (no DuckDB file, network or engine functions)"
    if name == "resolve":
        lines = [
            f"{r.node.sql('duckdb')} -> {r.label}{'.' + r.metadata if r.metadata else ''} @ "
            f"{r.snapshot_id if r.snapshot_id is not None else 'empty'}"
            f"{' (' + r.version.ref + ')' if r.version.ref else ''}"
            for r in refs
        ]
        return "\n".join(lines) or "(no Wharf tables)"
    if name == "qualify":
        if c.qualified is None:
            return "(not qualified: syntactic pushdown)" if refs else "(nothing to qualify)"
        lines = [c.qualified.sql("duckdb")]
        for r in refs:
            columns = "*" if r.columns is None else ", ".join(r.columns) or "(none)"
            pushed = " AND ".join(p.sql("duckdb") for p in r.pushdown or []) or "(none)"
            lines.append(f"{r.label} AS {r.alias}: columns {columns}; constrained by {pushed}")
        return "\n".join(lines)
    if name == "authorize":
        lines = []
        for r in refs:
            policy = r.policy
            if policy is None:
                lines.append(f"{r.label}: no policy")
                continue
            parts = []
            if policy.row_filter is not None:
                parts.append(f"rows where {policy.row_filter.sql('duckdb')}")
            parts += [f"{column} masked as {mask.sql('duckdb')}" for column, mask in policy.masks.items()]
            lines.append(f"{r.label}: {'; '.join(parts)}")
        return "\n".join(lines) or "(no Wharf tables)"
    if name == "plan":
        lines = []
        for r in refs:
            if r.plan is None:
                lines.append(f"{r.label}.{r.metadata}: {r.data.num_rows if r.data is not None else 0} metadata row(s)")
                continue
            lines.append(
                f"{r.label}: filter {r.row_filter}; {len(r.plan.files)} of {r.plan.files_considered} data file(s)"
                + (f", {len(r.plan.position_deletes)} positional delete file(s)" if r.plan.position_deletes else "")
                + (f", {len(r.plan.equality_deletes)} equality delete file(s)" if r.plan.equality_deletes else "")
            )
        return "\n".join(lines) or "(no Wharf tables)"
    return c.sql
