"""Policy functions: ``CREATE FUNCTION name(arg TYPE, …) RETURNS TYPE RETURN <expr>``, used as row filters and masks.

A function's body is one SQL expression over its arguments. Besides DuckDB's scalar functions it
may call ``current_user()``, ``is_member('group_or_role')`` and ``current_user_attribute('key')``:
they are evaluated for the principal running the statement *when the statement is compiled* and
substituted as constants, so the compiled filter is plain SQL (and prunes files like any filter).
A body may not read tables (no subqueries): everything a policy decides is visible in its text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from wharf.errors import InvalidArgument, SqlParseError

CONTEXT_FUNCTIONS = ("current_user", "is_member", "current_user_attribute")


@dataclass(frozen=True)
class PolicyFunction:
    """A stored policy function."""

    name: str
    parameters: tuple[tuple[str, str], ...]  # (name, SQL type)
    returns: str
    body: str

    @property
    def signature(self) -> str:
        args = ", ".join(f"{n} {t}" for n, t in self.parameters)
        return f"{self.name}({args}) RETURNS {self.returns}"

    def parameters_json(self) -> str:
        return json.dumps([list(p) for p in self.parameters])


@functools.lru_cache(maxsize=1024)
def parse_body(body: str) -> exp.Expression:
    """The parsed body, shared between calls (memoized: a policy is applied on every statement): never mutate it."""
    import sqlglot

    try:
        parsed: exp.Expression = sqlglot.parse_one(body, read="duckdb")  # type: ignore[assignment]  # an expression's tree
        return parsed
    except Exception as exc:
        raise SqlParseError(f"Cannot read the function body: {exc}", sql=body) from exc


def check_function(function: PolicyFunction) -> None:
    """Refuse a body that reads tables or names a column that is not an argument."""
    if not function.parameters:
        raise InvalidArgument(f"Function {function.name} needs at least one argument", hint="the column(s) it decides on")
    names = {n.lower() for n, _ in function.parameters}
    if len(names) != len(function.parameters):
        raise InvalidArgument(f"Function {function.name} names an argument twice")
    exp.DataType.build(function.returns, dialect="duckdb")
    for _, kind in function.parameters:
        exp.DataType.build(kind, dialect="duckdb")
    body = parse_body(function.body)
    if body.find(exp.Table, exp.Select, exp.Subquery, exp.Query) is not None:
        raise InvalidArgument(
            f"The body of {function.name} reads a table",
            hint="a policy function is one expression over its arguments (and current_user(), is_member(), "
            "current_user_attribute())",
        )
    for column in body.find_all(exp.Column):
        if column.table or column.name.lower() not in names:
            raise InvalidArgument(
                f"The body of {function.name} uses {column.sql('duckdb')}, which is not one of its arguments",
                hint=f"arguments: {', '.join(n for n, _ in function.parameters)}",
            )


@dataclass(frozen=True)
class Invoker:
    """What the context functions answer for one principal."""

    name: str
    is_member: Callable[[str], bool]
    attribute: Callable[[str], str | None]


def _string_argument(node: exp.Expression, call: str) -> str:
    args = node.expressions if isinstance(node, exp.Anonymous) else []
    if len(args) != 1 or not isinstance(args[0], exp.Literal) or not args[0].is_string:
        raise InvalidArgument(f"{call}() takes one string literal", hint=f"e.g. {call}('admins')")
    return str(args[0].this)


def compile_call(function: PolicyFunction, columns: Sequence[str], invoker: Invoker) -> exp.Expression:
    """The function applied to ``columns`` of the table, for ``invoker``: an expression over those columns."""
    if len(columns) != len(function.parameters):
        raise InvalidArgument(
            f"{function.name} takes {len(function.parameters)} argument(s), {len(columns)} column(s) given",
            hint=function.signature,
        )
    by_name = {p.lower(): c for (p, _), c in zip(function.parameters, columns, strict=True)}
    body = parse_body(function.body)

    def substitute(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in by_name:
            return exp.column(by_name[node.name.lower()], quoted=True)
        return _context_value(node, invoker) or node

    return exp.paren(body.transform(substitute), copy=False)


def _context_value(node: exp.Expression, invoker: Invoker) -> exp.Expression | None:
    """The constant a context function call stands for, for ``invoker``; None if ``node`` is not one."""
    if isinstance(node, exp.CurrentUser):
        return exp.Literal.string(invoker.name)
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name == "current_user":
            return exp.Literal.string(invoker.name)
        if name == "is_member":
            return exp.Boolean(this=invoker.is_member(_string_argument(node, name)))
        if name == "current_user_attribute":
            value = invoker.attribute(_string_argument(node, name))
            return exp.Literal.string(value) if value is not None else exp.cast(exp.null(), "VARCHAR")
    return None


def mentions_context(expression: exp.Expression) -> bool:
    """Whether ``expression`` calls ``current_user()``, ``is_member()`` or ``current_user_attribute()``."""
    return any(
        isinstance(node, exp.CurrentUser) or str(node.name).lower() in CONTEXT_FUNCTIONS
        for node in expression.find_all(exp.CurrentUser, exp.Anonymous)
    )


def bind_context(expression: exp.Expression, invoker: Invoker) -> exp.Expression:
    """``expression`` with every context function call replaced by its value for ``invoker`` (in place).

    The same functions as in policies answer in any statement (``SELECT current_user()``, a view
    ``WHERE owner = current_user()``): DuckDB's own ``current_user`` would answer ``duckdb``.
    """
    return expression.transform(lambda node: _context_value(node, invoker) or node, copy=False)
