"""Compiled queries, reused by the next statement of the same text while everything it resolved is unchanged.

A query's compiled form — the references it resolved, their snapshots and scan plans, the DuckDB
SQL — depends on the statement text, who runs it (principal, policies, session settings,
registered DataFrames) and the catalog answers its resolution got: the metadata location of each
table it named, and each view. The cache is keyed on the first and validated on the second, so a
commit invalidates exactly the statements that read the table it changed: a commit, a branch or
tag move, DDL, a view replaced or dropped, a table created under a name that was a view or free —
from this process or any other (the lookups are re-checked once the catalog database changed,
``wharf.catalog.freshness``; while it has not, validation costs one ``PRAGMA``).

The compiled SQL is kept as a *template*: fragments between slots, one slot per table reference
(its relation: a subquery over the planned files) and one per parameter. A repeated statement
fills the slots with the cached relations; a prepared statement (``lake.sql(text, params)``)
fills the parameter slots with the values' SQL literals — exactly what binding them into the tree
produced — and re-plans only the references whose pushed-down predicates hold a parameter, so a
key lookup with a new key still opens only the files that may hold it. Slot markers carry a
random per-process nonce, so no text a user writes can be taken for one.

Not cached: statements reading metadata tables (their rows are registered per statement),
time travel to a computed point in time (``TIMESTAMP AS OF now() - …``), parameters inside a
table reference (``FOR VERSION AS OF ?``), and statements under a policy that exposes no
``cache_version`` (governance hook: a policy whose decisions can change declares a version that
changes with them; without one, statements it sees are compiled every time).
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

from sqlglot import exp

from wharf.errors import InvalidArgument
from wharf.sql import generate as generation
from wharf.sql import system_tables
from wharf.sql.context import Context
from wharf.sql.literals import SqlLiteral
from wharf.sql.pipeline import Compilation, authorize_pass, guard_pass, qualify_pass, resolve_pass
from wharf.sql.plan import plan_reference, pushdown_filter
from wharf.sql.references import Reference
from wharf.statement import TableRead

MAX_ENTRIES = 256  # each holds its tables' metadata objects: a long history's is MBs
_NONCE = os.urandom(6).hex()
_RELATION = f"__wharf_rel_{_NONCE}_"
_PARAM = f"__wharf_prm_{_NONCE}_"
_ORDER = f"__wharf_ord_{_NONCE}_"
_SLOT = re.compile(f"({_RELATION}|{_PARAM})(\\d+)_")
# Functions of DuckDB SQL whose value changes from call to call (found in the generated SQL, so in views too).
_VOLATILE = re.compile(
    r"\b(?:random|rand|uuid|gen_random_uuid|uuidv4|uuidv7|now|get_current_timestamp|get_current_time|"
    r"transaction_timestamp|setseed|nextval|currval|today)\s*\(|"
    r"\b(?:current_timestamp|current_date|current_time|localtime|localtimestamp|current_localtimestamp)\b",
    re.IGNORECASE,
)
_PARAM_KEY = "wharf.param"  # meta of a placeholder node: its position among the statement's placeholders

Params = list[Any] | dict[str, Any] | None


@dataclass
class Compiled:
    """One statement's compiled form: the SQL template, its references and what their resolution saw."""

    fragments: tuple[str, ...]  # text around the slots: len(slots) + 1 pieces
    slots: tuple[tuple[str, int], ...]  # ("rel", reference index) | ("param", placeholder position)
    references: tuple[Reference, ...]
    relations: tuple[str | None, ...]  # per reference: its relation SQL (None: re-planned for each call's parameters)
    placeholders: tuple[str | int, ...]  # per placeholder: its parameter (list position or name)
    tables: tuple[tuple[tuple[str, str], str | None], ...]  # (namespace, name) → metadata location it resolved to
    views: tuple[tuple[tuple[str, str], Any], ...]  # (namespace, name) → the view's metadata (None: no view)
    lineage_source: Any  # what column lineage is derived from (qualified tree, schema, references)
    token: int | None  # the catalog's change token when the lookups were last seen valid
    # Whether the SQL (views expanded) calls a function whose value is not a function of the
    # tables read (random(), now() …): a result cache must not keep its rows.
    volatile: bool = False
    # (SQL, reads) of recent parameter values: a repeated prepared call (or a repeated query whose
    # literals are parameters, ``wharf.sql.literals``) re-plans nothing.
    rendered: OrderedDict[tuple[Any, ...], tuple[str, tuple[TableRead, ...]]] = field(default_factory=OrderedDict)


_cache: OrderedDict[tuple[Any, ...], Compiled] = OrderedDict()
_lock = threading.Lock()


def clear() -> None:
    """Forget every compiled statement (tests)."""
    with _lock:
        _cache.clear()


def cache_key(ctx: Context, text: str, position: int, params: Params) -> tuple[Any, ...] | None:
    """What a compiled statement depends on besides the catalog (None: do not cache this statement)."""
    policies: tuple[Any, ...] = ()
    if ctx.policies:
        versions = tuple(getattr(p, "cache_version", None) for p in ctx.policies)
        if any(v is None for v in versions):
            return None
        policies = tuple(zip((id(p) for p in ctx.policies), versions, strict=True))
    registered = tuple((name, tuple(data.schema.names)) for name, data in sorted(ctx.registered.items()))
    shape: Any = None if params is None else (len(params) if isinstance(params, list) else tuple(sorted(params)))
    catalog = ctx.catalog.freshness.catalog_id  # one lake's compiled statements never serve another's
    return (catalog, text, position, ctx.dialect, ctx.principal, ctx.session, registered, policies, shape)


def lookup(ctx: Context, key: tuple[Any, ...]) -> Compiled | None:
    """The compiled statement for ``key`` if everything it resolved is unchanged, else None."""
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
    if found is None:
        return None
    token = ctx.catalog.freshness.current()
    if token is not None and token == found.token:
        return found
    stale = any(ctx.loader.metadata_location(namespace, name) != location for (namespace, name), location in found.tables)
    if not stale:
        for (namespace, name), metadata in found.views:
            view = ctx.find_view(namespace, name)
            if (view.metadata if view is not None else None) != metadata:
                stale = True
                break
    if stale:
        with _lock:  # do not keep the old metadata alive until it is evicted
            if _cache.get(key) is found:
                del _cache[key]
        return None
    found.token = token
    return found


def peek(ctx: Context, text: str, position: int, params: Params) -> Compiled | None:
    """The valid compiled form of a statement if the cache holds one (nothing is compiled)."""
    key = cache_key(ctx, text, position, params)
    return lookup(ctx, key) if key is not None else None


def snapshot_reads(compiled: Compiled) -> tuple[tuple[str, int | None, str | None], ...]:
    """(table, snapshot id, ref) of each table ``compiled`` reads, sorted and without repeats."""
    reads = {(ref.label, ref.snapshot_id, ref.version.ref) for ref in compiled.references if ref.role in ("read", "write")}
    return tuple(sorted(reads, key=repr))


def view_versions(compiled: Compiled) -> tuple[tuple[str, str, Any], ...]:
    """(view, uuid, version id) of each view ``compiled`` expanded (a replaced view has a new version)."""
    found = []
    for (namespace, name), metadata in compiled.views:
        if metadata is not None:
            uuid = str(getattr(metadata, "view_uuid", ""))
            found.append((f"{namespace}.{name}", uuid, getattr(metadata, "current_version_id", None)))
    return tuple(sorted(found, key=repr))


def store(key: tuple[Any, ...], compiled: Compiled) -> None:
    with _lock:
        _cache[key] = compiled
        _cache.move_to_end(key)
        while len(_cache) > MAX_ENTRIES:
            _cache.popitem(last=False)


def placeholders(node: exp.Expr) -> list[exp.Expr]:
    """The statement's ``?`` / ``$name`` placeholders, in the order parameters bind to them: the text's.

    sqlglot's ``find_all`` walks the tree breadth-first, so ``a = ? + 1 AND b = ?`` would find the
    second ``?`` first (the first one sits deeper) and bind the values crosswise. The SQL generated
    from the tree keeps the text's order of clauses and operands: each placeholder is marked, the
    tree generated once, and the placeholders sorted by where their marks land (depth-first order
    if the tree cannot be generated).
    """
    found: list[exp.Expr] = list(node.find_all(exp.Placeholder, exp.Parameter))
    if len(found) < 2:
        return found
    marked = node.copy()
    for index, copy in enumerate(list(marked.find_all(exp.Placeholder, exp.Parameter))):  # the same walk
        copy.replace(exp.var(f"{_ORDER}{index}_"))
    try:
        text = marked.sql("duckdb")
    except Exception:  # noqa: BLE001 - an extension node sqlglot cannot generate: its depth-first order
        return list(node.find_all(exp.Placeholder, exp.Parameter, bfs=False))
    where = [text.find(f"{_ORDER}{index}_") for index in range(len(found))]
    if min(where) < 0:
        return list(node.find_all(exp.Placeholder, exp.Parameter, bfs=False))
    return [found[index] for index in sorted(range(len(found)), key=where.__getitem__)]


def value_node(value: Any) -> exp.Expr:
    """A parameter value as a tree node (a literal taken from the text: as parsing the text gives it)."""
    return value.node() if isinstance(value, SqlLiteral) else exp.convert(value)


def literal_sql(value: Any) -> str:
    """A parameter value as the DuckDB literal binding it into the tree generates (a taken literal: as written)."""
    if isinstance(value, SqlLiteral):
        return value.sql
    node = exp.convert(value)
    text = node.sql("duckdb")
    return text if isinstance(node, (exp.Literal, exp.Boolean, exp.Null)) and not text.startswith("-") else f"({text})"


def parameter_values(compiled_placeholders: Sequence[str | int], params: Params) -> list[Any]:
    """The value of each placeholder (raising the same errors as binding them into the tree)."""
    if params is None:
        return []
    if isinstance(params, list):
        if len(params) < len(compiled_placeholders):
            raise InvalidArgument("Fewer parameters than ? placeholders")
        return [params[i] for i in compiled_placeholders]  # type: ignore[index]  # positions for a list of parameters
    values = []
    for name in compiled_placeholders:
        if name not in params:
            raise InvalidArgument(f"No value for parameter ${name}")
        values.append(params[name])  # type: ignore[index]  # names for a dict of parameters
    return values


def compile_statement(ctx: Context, shared: exp.Expression, params: Params) -> tuple[Compiled, bool] | None:
    """Compile ``shared`` (the parser's tree: copied, never changed) into a template; (compiled, cacheable).

    None when the statement cannot take this path (a parameter inside a table reference): the
    caller binds the parameters into the tree and runs it as before.
    """
    if system_tables.mentions(shared):
        return None  # virtual system tables register their rows on the statement's cursor
    tree: exp.Expression = shared.copy()
    # Numbered in walk order here; which value each takes (positional: the text's order) is read
    # from the generated template below, which keeps the text's order (see ``placeholders``).
    found: list[exp.Expr] = list(tree.find_all(exp.Placeholder, exp.Parameter))
    for index, node in enumerate(found):
        if node.find_ancestor(exp.Table) is not None:
            return None
        node.meta[_PARAM_KEY] = index
    values = parameter_values([i if isinstance(params, list) else n.name for i, n in enumerate(found)], params)
    c = Compilation(ctx, source=shared)
    for run in (guard_pass, resolve_pass, qualify_pass, authorize_pass):
        tree = run(tree, c)
    relations: list[str | None] = []
    for ref in c.references:
        if ref.metadata is not None or ref.data is not None:
            return None  # metadata tables register their rows on the statement's cursor
        if _parametrised(ref):
            relations.append(None)
        else:
            plan_reference(ctx, ref)
            relations.append(generation.relation_sql(ref))
    tree = generation.replace_references(tree, {i: f"{_RELATION}{i}_" for i in range(len(c.references))})
    for node in found:  # still in the tree: no pass replaces a placeholder outside a table reference
        node.replace(exp.var(f"{_PARAM}{node.meta[_PARAM_KEY]}_"))
    pieces = _SLOT.split(generation.to_duckdb(tree, copy=False))  # the tree is thrown away after this
    fragments = tuple(pieces[0::3])
    slots = tuple(
        ("rel" if kind == _RELATION else "param", int(index)) for kind, index in zip(pieces[1::3], pieces[2::3], strict=True)
    )
    names: list[str | int] = [node.name for node in found]
    if isinstance(params, list):
        in_text: list[int] = []  # walk numbers of the placeholders in the order the SQL names them
        for kind, index in slots:
            if kind == "param" and index not in in_text:
                in_text.append(index)
        if sorted(in_text) != list(range(len(found))):
            return None  # a placeholder the template does not show: bind the values into the tree instead
        position = {walk: rank for rank, walk in enumerate(in_text)}
        names = [position[walk] for walk in range(len(found))]
    compiled = Compiled(
        fragments=fragments,
        slots=slots,
        references=tuple(c.references),
        relations=tuple(relations),
        placeholders=tuple(names),
        tables=tuple((key, table.metadata_location if table is not None else None) for key, table in ctx._tables.items()),
        views=tuple((key, view.metadata if view is not None else None) for key, view in ctx._views.items()),
        lineage_source=(c.analysis, c.references),  # qualified only if lineage is asked for
        token=None,
        volatile=any(_VOLATILE.search(fragment) is not None for fragment in fragments),
    )
    del values  # checked above: missing parameters fail before anything runs
    return compiled, ctx.cacheable


def bind(node: Any, params: list[Any] | dict[str, Any]) -> Any:
    """Replace ``?`` / ``$name`` placeholders with literals (so planning can prune on them too)."""
    if not isinstance(node, exp.Expression):
        return node
    node = node.copy()
    positional = iter(params) if isinstance(params, list) else None
    named = params if not isinstance(params, list) else {}
    for placeholder in placeholders(node):  # the text's order: positional values bind left to right
        if positional is not None:
            try:
                value = next(positional)
            except StopIteration as exc:
                raise InvalidArgument("Fewer parameters than ? placeholders") from exc
        else:
            key = placeholder.name
            if key not in named:
                raise InvalidArgument(f"No value for parameter ${key}")
            value = named[key]
        placeholder.replace(value_node(value))
    return node


def _parametrised(ref: Reference) -> bool:
    """Whether the predicates pushed to ``ref`` hold a parameter (its plan depends on the values)."""
    if ref.pushdown is None:
        return False  # the syntactic fallback: a placeholder translates to no filter, the plan stays valid
    return any(c.find(exp.Placeholder, exp.Parameter) is not None for c in ref.pushdown)


def _bound(ref: Reference, values: list[Any]) -> Reference:
    """``ref`` with the parameters of its pushed-down predicates replaced by their values (a copy)."""
    pushdown: list[exp.Expr] = []
    for conjunct in ref.pushdown or []:
        copy: exp.Expr = conjunct.copy()
        for node in list(copy.find_all(exp.Placeholder, exp.Parameter)):  # numbered already: any order
            bound = value_node(values[node.meta[_PARAM_KEY]])
            if node is copy:
                copy = bound
            else:
                node.replace(bound)
        pushdown.append(copy)
    return replace(ref, pushdown=pushdown, plan=None, row_filter=None)


_RENDERED_MAX = 16  # per compiled statement


def render(ctx: Context, compiled: Compiled, params: Params) -> tuple[str, list[TableRead]]:
    """The DuckDB SQL for this call, and the reads to record (files planned for these parameter values)."""
    values = parameter_values(compiled.placeholders, params)
    key: tuple[Any, ...] | None = tuple((type(v), v) for v in values)  # 1, 1.0 and True render differently
    try:
        hash(key)
    except TypeError:
        key = None  # a list or dict value: render it every time
    if key is not None:
        with _lock:
            found = compiled.rendered.get(key)
        if found is not None:
            return found[0], list(found[1])
    sql, reads = _render(ctx, compiled, values)
    if key is not None:
        with _lock:
            compiled.rendered[key] = (sql, tuple(reads))
            while len(compiled.rendered) > _RENDERED_MAX:
                compiled.rendered.popitem(last=False)
    return sql, reads


def _render(ctx: Context, compiled: Compiled, values: list[Any]) -> tuple[str, list[TableRead]]:
    relations = list(compiled.relations)
    plans = [ref.plan for ref in compiled.references]
    for index, ref in enumerate(compiled.references):
        if relations[index] is None:
            bound = _bound(ref, values)
            plan_reference(ctx, bound, row_filter=pushdown_filter(bound))
            relations[index] = generation.relation_sql(bound)
            plans[index] = bound.plan
    parts = [compiled.fragments[0]]
    for (kind, index), fragment in zip(compiled.slots, compiled.fragments[1:], strict=True):
        parts.append(relations[index] if kind == "rel" else literal_sql(values[index]))  # type: ignore[arg-type]
        parts.append(fragment)
    reads = [
        TableRead(
            ref.label,
            ref.snapshot_id,
            ref.version.ref,
            ref.columns,
            len(plan.files) if plan is not None else None,
            ref.policy.names if ref.policy is not None else (),
        )
        for ref, plan in zip(compiled.references, plans, strict=True)
        if ref.role in ("read", "write")
    ]
    return "".join(parts), reads


def lineage(compiled: Compiled) -> Callable[[], dict[str, tuple[str, ...]]]:
    from wharf.sql.lineage import column_lineage

    analysis, references = compiled.lineage_source

    def derive() -> dict[str, tuple[str, ...]]:
        qualified, schema = (analysis.qualified, analysis.schema) if analysis is not None else (None, {})
        view: Any = SimpleNamespace(qualified=qualified, schema=schema, references=references)  # what lineage reads
        return column_lineage(view, None)

    return derive
