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

Most statements need no sqlglot at all: a single SELECT over Wharf tables (no subquery, CTE,
view, lambda, USING or special join) whose every column either names its table or belongs to
exactly one of them is resolved directly against the tables' schemas (``_direct``), at a small
fraction of the cost. The qualified copy that column lineage and ``explain`` read is then made
only when one of them asks (``Deferred``).
"""

from __future__ import annotations

import functools
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


class Analysis:
    """The qualify pass's qualified copy of a statement and the schema it was qualified with (lineage, explain)."""

    def __init__(self, qualified: exp.Expression | None, schema: dict[str, object]) -> None:
        self._qualified = qualified
        self._schema = schema

    @property
    def qualified(self) -> exp.Expression | None:
        return self._qualified

    @property
    def schema(self) -> dict[str, object]:
        return self._schema


class Deferred(Analysis):
    """The analysis of a statement the direct resolution handled: sqlglot qualifies a copy of the
    statement only when lineage or ``explain`` first asks (most statements are never asked)."""

    def __init__(
        self,
        source: exp.Expression,
        tables: tuple[int | None, ...],
        references: list[Reference],
        extra_schemas: dict[str, dict[str, str]],
    ) -> None:
        # ``source`` is never changed after this (the parser's shared tree, or a private snapshot);
        # ``tables`` is the reference index of each of its table nodes, in ``find_all`` order.
        super().__init__(None, {})
        self._source = source
        self._tables = tables
        self._references = references
        self._extra_schemas = extra_schemas

    @functools.cached_property
    def _result(self) -> tuple[exp.Expression | None, dict[str, object]]:
        copy = self._source.copy()
        nodes = list(copy.find_all(exp.Table))
        if len(nodes) != len(self._tables):
            return None, {}
        for node, index in zip(nodes, self._tables, strict=True):
            if index is not None:
                node.meta[REF_META] = index
        result = qualified_copy(copy, self._references, self._extra_schemas, copy=False)
        return result if result is not None else (None, {})

    @property
    def qualified(self) -> exp.Expression | None:
        return self._result[0]

    @property
    def schema(self) -> dict[str, object]:
        return self._result[1]


def qualify_references(
    expression: exp.Expression,
    c: Compilation,
    extra_schemas: dict[str, dict[str, str]],
    source: exp.Expression | None = None,
) -> None:
    """Fill ``columns`` and ``pushdown`` of ``c.references`` (and the compilation's analysis).

    ``source``: the tree ``expression`` was copied from, if it is never changed afterwards (the
    parser's shared tree); a deferred analysis copies it instead of snapshotting ``expression``.
    """
    refs = c.references
    if _direct(expression, c, extra_schemas, source):
        return
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
    c.analysis = Analysis(found.qualified, dict(found.schema))
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
    expression: exp.Expression, references: list[Reference], extra_schemas: dict[str, dict[str, str]], *, copy: bool = True
) -> tuple[exp.Expression, dict[str, object]] | None:
    """The statement with every column qualified (on a copy), and the schema it was qualified with; None on failure.

    ``copy=False`` qualifies ``expression`` itself (a private copy of the caller's).
    """
    tree = expression.copy() if copy else expression
    schema: dict[str, object] = dict(extra_schemas)
    for node in tree.find_all(exp.Table):
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
            tree,
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
    return _own(_candidates(table), table.alias_or_name)


def _candidates(table: exp.Table) -> list[exp.Expr]:
    """The WHERE / ON conjuncts of the enclosing SELECT that may be pushed to ``table`` if they constrain only it."""
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
            return candidates
    if not any(j.side in ("RIGHT", "FULL") for j in joins):
        where = select.args.get("where")
        candidates += predicates.conjuncts(where.this if where is not None else None)
    return candidates


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


# --- direct resolution: the common statement without sqlglot's qualify ---------------------------

# Nodes whose columns may not be plain columns of the FROM tables (subqueries and CTEs see other
# scopes, lambdas bind their own names, USING / NATURAL merge columns, COLUMNS(…) and struct
# access by ``a.b.c`` need real binding): a statement holding one goes to sqlglot.
_NOT_DIRECT = (
    exp.Query,
    exp.DerivedTable,  # subqueries, VALUES, table functions in FROM
    exp.With,
    exp.CTE,
    exp.Lambda,
    exp.Lateral,
    exp.Unnest,
    exp.Pivot,
    exp.Columns,
    exp.Dot,
    exp.Into,
)
_FIELDS: OrderedDict[int, tuple[object, dict[str, str]]] = OrderedDict()  # id(schema) → (schema, lower name → name)
_FIELDS_MAX = 256
_FIELDS_LOCK = threading.Lock()


def _fields(ref: Reference) -> dict[str, str]:
    """The reference's columns by lower-case name (DuckDB names are case-insensitive, quoted or not)."""
    schema = ref.schema
    assert schema is not None
    with _FIELDS_LOCK:
        found = _FIELDS.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    names = {f.name.lower(): f.name for f in schema.fields}
    with _FIELDS_LOCK:
        _FIELDS[id(schema)] = (schema, names)  # the schema is kept: its id cannot be reused meanwhile
        while len(_FIELDS) > _FIELDS_MAX:
            _FIELDS.popitem(last=False)
    return names


def _in_projection(node: exp.Expr, select: exp.Select) -> bool:
    while node.parent is not None and node.parent is not select:
        node = node.parent
    return node.parent is select and node.arg_key == "expressions"


def _direct(
    expression: exp.Expression, c: Compilation, extra_schemas: dict[str, dict[str, str]], source: exp.Expression | None
) -> bool:
    """Resolve the columns of a single SELECT over Wharf tables directly; False: not this kind of statement.

    Conservative by construction: any column whose binding is not certain from the tables'
    schemas alone (a name in no table or in several, a name that is both a column and an output
    alias outside the select list, an unknown table qualifier) sends the statement to sqlglot.
    A name only an output alias has reads no column; a conjunct holding one is not pushed down.
    """
    if not isinstance(expression, exp.Select) or expression.args.get("kind"):
        return False
    refs = c.references
    sources: dict[str, int] = {}  # alias (lower case) → reference index
    tables: list[exp.Table] = []
    columns: list[exp.Column] = []
    star = False
    node: exp.Expr
    for node in expression.walk():
        if node is expression:
            continue
        if isinstance(node, _NOT_DIRECT):
            return False
        if isinstance(node, exp.Table):
            index = node.meta.get(REF_META)
            if index is None:
                return False  # a table function, registered data, a DuckDB object
            ref = refs[index]
            parent = node.parent
            if (
                ref.metadata is not None
                or ref.schema is None
                or node.arg_key != "this"
                or not isinstance(parent, (exp.From, exp.Join))
                or parent.parent is not expression
                or any(node.args.get(k) for k in ("laterals", "joins", "pivots", "rows_from"))
            ):
                return False
            alias = node.args.get("alias")
            if isinstance(alias, exp.TableAlias) and alias.columns:
                return False  # FROM t AS x(a, b): renamed columns
            key = ref.alias.lower()
            if key in sources:
                return False
            sources[key] = index
            tables.append(node)
        elif isinstance(node, exp.Join):
            if any(node.args.get(k) for k in ("using", "method", "match_condition", "expressions", "pivots")):
                return False  # USING / NATURAL / ASOF / POSITIONAL joins
        elif isinstance(node, exp.Column):
            columns.append(node)
        elif isinstance(node, exp.Star):
            if any(node.args.values()):
                return False  # * EXCLUDE / REPLACE / RENAME
            if node.parent is expression:
                star = True  # SELECT *: every column of every table
    if not tables:
        return False
    outputs = {e.alias.lower() for e in expression.expressions if isinstance(e, exp.Alias)}
    fields = {index: _fields(refs[index]) for index in sources.values()}
    used: dict[int, set[str] | None] = {index: (None if star else set()) for index in sources.values()}
    owner_of: dict[int, int] = {}  # id(column) → reference index
    for column in columns:
        if column.args.get("db") or column.args.get("catalog"):
            return False
        qualifier = column.table
        if isinstance(column.this, exp.Star):  # t.*
            owner = sources.get(qualifier.lower())
            if owner is None:
                return False
            used[owner] = None
            continue
        if not isinstance(column.this, exp.Identifier):
            return False
        name = column.name.lower()
        if qualifier:
            owner = sources.get(qualifier.lower())
            if owner is None or name not in fields[owner]:
                return False  # a struct field (s.f), or a name DuckDB will refuse: let sqlglot see it
        else:
            owners = [index for index, names in fields.items() if name in names]
            if name in outputs:
                if not owners:
                    continue  # an output alias (ORDER BY total, a lateral alias): reads nothing itself
                if not _in_projection(column, expression):
                    return False  # ORDER BY / WHERE / GROUP BY name both an output and a column
            if len(owners) != 1:
                return False
            owner = owners[0]
        owner_of[id(column)] = owner
        known = used[owner]
        if known is not None:
            known.add(fields[owner][name])
    for table in tables:
        index = table.meta[REF_META]
        ref = refs[index]
        names = used[index]
        ref.columns = None if names is None else tuple(f.name for f in ref.schema.fields if f.name in names)  # type: ignore[union-attr]
        ref.pushdown = _own_direct(_candidates(table), index, owner_of, ref.alias)
    snapshot = source if source is not None else expression.copy()
    order = tuple(node.meta.get(REF_META) for node in expression.find_all(exp.Table))
    c.analysis = Deferred(snapshot, order, list(refs), extra_schemas)
    return True


def _own_direct(candidates: list[exp.Expr], index: int, owner_of: dict[int, int], alias: str) -> list[exp.Expr]:
    """The candidates whose every column belongs to reference ``index``, as copies with the columns qualified."""
    own: list[exp.Expr] = []
    for candidate in candidates:
        found = list(candidate.find_all(exp.Column))
        if not found or not all(owner_of.get(id(col)) == index for col in found):
            continue
        copy: exp.Expr = candidate.copy()
        for col in copy.find_all(exp.Column):
            col.set("table", exp.to_identifier(alias))
        own.append(copy)
    return own
