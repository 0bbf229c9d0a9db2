"""The qualify pass: which columns each reference uses, and which predicates constrain it alone.

sqlglot's ``qualify`` resolves every column of the statement against the Iceberg schemas of the
resolved references (and the Arrow schemas of registered DataFrames). The pass runs on a *copy*:
the statement DuckDB executes is never regenerated from sqlglot's normalised form (which would
change the case of result column names), so qualification cannot change what a query means; it
only informs

- ``Reference.columns`` — the columns the statement reads from each table (statement events,
  column-level lineage, and later column privileges), None when it reads all of them (``*``)
  or the pass could not tell;
- ``Reference.pushdown`` — the WHERE / ON conjuncts that constrain only that reference, now also
  when a join writes its columns unqualified (``WHERE amount > 10`` over ``a JOIN b``).

When sqlglot cannot qualify a statement (DuckDB syntax it does not know), the pass leaves both
unset and planning falls back to the syntactic rule (qualified columns, or a single source).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.optimizer.qualify import qualify as sqlglot_qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from wharf.sql.references import REF_META, Reference
from wharf.tables import predicates
from wharf.tables.types import iceberg_to_duckdb

if TYPE_CHECKING:
    from wharf.sql.pipeline import Compilation

log = logging.getLogger(__name__)

SYNTHETIC = "__wharf_t{}"  # the name each Wharf reference gets in the copy (one schema per reference)


@dataclass(frozen=True)
class Qualification:
    """What the pass found for one statement shape (shared between statements: never mutated)."""

    qualified: exp.Expression | None
    schema: dict[str, object]
    columns: tuple[tuple[str, ...] | None, ...]
    pushdown: tuple[list[exp.Expr] | None, ...]


# Statements of the same shape over the same table schemas qualify the same way: dashboards and
# jobs repeat their statements, and sqlglot's qualification costs more than everything else in
# the pipeline. Keyed by the statement's structure (sqlglot hashes and compares the tree) and the
# schema each reference reads with.
_CACHE: OrderedDict[tuple[object, ...], Qualification] = OrderedDict()
_CACHE_MAX = 512
_CACHE_LOCK = threading.Lock()


def qualify_references(expression: exp.Expression, c: Compilation, extra_schemas: dict[str, dict[str, str]]) -> None:
    """Fill ``columns`` and ``pushdown`` of ``c.references`` (and the compilation's qualified copy)."""
    refs = c.references
    key = (
        expression,
        tuple((r.label, r.metadata, r.schema.schema_id if r.schema is not None else None, r.alias) for r in refs),
        tuple((name, tuple(columns)) for name, columns in sorted(extra_schemas.items())),
    )
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
    if found is None:
        found = _qualify(expression, refs, extra_schemas)
        # The live tree is rewritten by later passes: the cache keeps its own copy as the key.
        stored = (expression.copy(), *key[1:])
        with _CACHE_LOCK:
            _CACHE[stored] = found
            if len(_CACHE) > _CACHE_MAX:
                _CACHE.popitem(last=False)
    c.qualified, c.schema = found.qualified, dict(found.schema)
    for ref, columns, pushdown in zip(refs, found.columns, found.pushdown, strict=True):
        if ref.columns is None:
            ref.columns = columns
        if ref.pushdown is None:
            ref.pushdown = pushdown


def _qualify(expression: exp.Expression, refs: list[Reference], extra_schemas: dict[str, dict[str, str]]) -> Qualification:
    # Work on throw-away references: the result is shared by every statement of this shape.
    scratch = [Reference(r.node, r.namespace, r.name, r.table, r.version, r.metadata, schema=r.schema) for r in refs]
    result = qualified_copy(expression, scratch, extra_schemas)
    if result is None:
        return Qualification(None, {}, tuple(None for _ in refs), tuple(None for _ in refs))
    qualified, schema = result
    annotate(qualified, scratch)
    return Qualification(qualified, schema, tuple(r.columns for r in scratch), tuple(r.pushdown for r in scratch))


def qualified_copy(
    expression: exp.Expression, references: list[Reference], extra_schemas: dict[str, dict[str, str]]
) -> tuple[exp.Expression, dict[str, object]] | None:
    """The statement with every column qualified (on a copy), and the schema it was qualified with; None on failure."""
    copy = expression.copy()
    schema: dict[str, object] = dict(extra_schemas)
    for node in copy.find_all(exp.Table):
        index = node.meta.get(REF_META)
        if index is None:
            continue
        ref = references[index]
        name = SYNTHETIC.format(index)
        if not node.args.get("alias"):  # keep an alias and its column names (FROM t AS x(a, b))
            node.set("alias", exp.TableAlias(this=exp.to_identifier(node.name)))
        node.set("this", exp.to_identifier(name))
        node.set("db", None)
        node.set("catalog", None)
        node.set("version", None)
        if ref.metadata is None and ref.schema is not None:
            schema[name] = {f.name: _type(f.field_type) for f in ref.schema.fields}
    try:
        qualified = sqlglot_qualify(
            copy,
            dialect="duckdb",
            schema=schema,
            expand_stars=False,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
    except Exception as exc:  # noqa: BLE001 - analysis only: the statement still runs, with less pushdown
        log.debug("qualify failed, falling back to syntactic pushdown: %s", exc)
        return None
    return qualified, schema


def _type(field_type: object) -> str:
    try:
        return iceberg_to_duckdb(field_type)  # type: ignore[arg-type]  # an Iceberg type
    except Exception:  # noqa: BLE001 - a type sqlglot need not understand to qualify names
        return "UNKNOWN"


def annotate(qualified: exp.Expression, references: list[Reference]) -> None:
    """Fill ``columns`` and ``pushdown`` of every reference from the qualified copy."""
    used: dict[int, set[str] | None] = {}
    for scope in traverse_scope(qualified):
        _collect_columns(scope, used)
        for source in scope.sources.values():
            if isinstance(source, exp.Table) and source.meta.get(REF_META) is not None:
                index = source.meta[REF_META]
                references[index].pushdown = _pushdown(source)
                used.setdefault(index, set())
    for index, columns in used.items():
        ref = references[index]
        if columns is None or ref.metadata is not None:
            ref.columns = None
            continue
        real = {ref.column(c) for c in columns}
        if None in real or ref.schema is None:
            ref.columns = None  # a name that is no column of the table: be safe, assume everything
            continue
        ref.columns = tuple(f.name for f in ref.schema.fields if f.name in real)


def _owner(scope: Scope | None, alias: str) -> exp.Table | None:
    """The table source an alias names, looking outwards from ``scope`` (correlated subqueries)."""
    while scope is not None:
        source = scope.sources.get(alias)
        if source is not None:
            return source if isinstance(source, exp.Table) else None
        scope = scope.parent
    return None


def _ref_index(table: exp.Table | None) -> int | None:
    return table.meta.get(REF_META) if table is not None else None


def _collect_columns(scope: Scope, used: dict[int, set[str] | None]) -> None:
    def mark_all(index: int | None) -> None:
        if index is not None:
            used[index] = None

    def add(index: int | None, name: str) -> None:
        if index is None:
            return
        known = used.setdefault(index, set())
        if known is not None:
            known.add(name)

    def mark_scope() -> None:
        for source in scope.sources.values():
            if isinstance(source, exp.Table):
                mark_all(_ref_index(source))

    select = scope.expression
    if isinstance(select, exp.Select):
        for projection in select.expressions:
            if isinstance(projection, exp.Star):
                mark_scope()
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                mark_all(_ref_index(_owner(scope, projection.table)))
        # DuckDB's COLUMNS(…) selects columns by pattern or lambda: any column may be read.
        if any(select.find_all(exp.Columns)):
            mark_scope()
    for column in scope.columns:
        if isinstance(column.this, exp.Star):
            continue
        if not column.table:
            # sqlglot could not place it: any table of the scope may provide it.
            mark_scope()
            continue
        add(_ref_index(_owner(scope, column.table)), column.name)


def _pushdown(table: exp.Table) -> list[exp.Expr]:
    """The conjuncts of the enclosing SELECT that constrain only ``table`` (qualified copy)."""
    parent = table.parent
    select = parent.parent if isinstance(parent, (exp.From, exp.Join)) else None
    if not isinstance(select, exp.Select):
        return []
    joins = select.args.get("joins") or []
    if not pushdown_safe(joins):
        return []
    candidates: list[exp.Expr] = []
    if isinstance(parent, exp.Join):
        if parent.side not in ("", None) and parent.side != "LEFT":
            return []  # the null-supplying side of a RIGHT / FULL join: no condition restricts it
        candidates += predicates.conjuncts(parent.args.get("on"))
        if parent.side == "LEFT":
            # Only ON conditions restrict the null-supplying side of a LEFT JOIN.
            return _own(candidates, table.alias_or_name)
    if not any(j.side in ("RIGHT", "FULL") for j in joins):
        where = select.args.get("where")
        candidates += predicates.conjuncts(where.this if where is not None else None)
    return _own(candidates, table.alias_or_name)


def pushdown_safe(joins: list[exp.Join]) -> bool:
    """Whether removing rows before these joins is invisible: not for ASOF (a removed row may be the
    nearest match, and a farther one would take its place) nor POSITIONAL joins (rows pair up by position)."""
    return not any((j.method or "").upper() in ("ASOF", "POSITIONAL") for j in joins)


def _own(candidates: list[exp.Expr], alias: str) -> list[exp.Expr]:
    own = []
    for c in candidates:
        columns = list(c.find_all(exp.Column))
        if not columns or c.find(exp.Subquery, exp.Select):
            continue
        if all(col.table == alias for col in columns):
            own.append(c)
    return own
