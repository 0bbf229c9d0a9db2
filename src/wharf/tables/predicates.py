"""Translate SQL predicates (sqlglot) into PyIceberg expressions for scan planning.

The translation is *inclusive*: it may keep a file that has no matching row, never drop a file
that has one. Anything it does not understand becomes ``AlwaysTrue`` (so an AND simply loses
that conjunct, and an OR containing it keeps everything).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import cast

from pyiceberg import expressions as ie
from pyiceberg import types as it
from pyiceberg.schema import Schema
from sqlglot import exp

ColumnResolver = Callable[[exp.Column], str | None]
"""Maps a column reference to a field name of the scanned table, or None if not this table's."""

# PyIceberg's unbound predicates are pydantic models with their own positional constructors
# (``EqualTo(term, literal)``, ``In(term, literals)``, ``IsNull(term)``), but mypy only sees the
# keyword-per-field ``__init__`` that pydantic's dataclass_transform synthesises. These casts restate
# the real signatures; at runtime each name is the PyIceberg class itself.
LiteralPredicate = Callable[[str, object], ie.BooleanExpression]
equal_to = cast(LiteralPredicate, ie.EqualTo)
not_equal_to = cast(LiteralPredicate, ie.NotEqualTo)
greater_than = cast(LiteralPredicate, ie.GreaterThan)
greater_than_or_equal = cast(LiteralPredicate, ie.GreaterThanOrEqual)
less_than = cast(LiteralPredicate, ie.LessThan)
less_than_or_equal = cast(LiteralPredicate, ie.LessThanOrEqual)
is_in = cast(Callable[[str, Iterable[object]], ie.BooleanExpression], ie.In)
is_null = cast(Callable[[str], ie.BooleanExpression], ie.IsNull)
not_null = cast(Callable[[str], ie.BooleanExpression], ie.NotNull)

_NUMERIC = (it.IntegerType, it.LongType, it.FloatType, it.DoubleType, it.DecimalType)
_TEMPORAL = (it.DateType, it.TimestampType, it.TimestamptzType, it.TimeType)


def _python_value(node: exp.Expr, field_type: it.IcebergType) -> object | None:
    """Return the literal's value converted for ``field_type``, or None if not safely convertible."""
    kind: str | None = None
    if isinstance(node, exp.Cast):
        # A cast changes the value (CAST(1.7 AS INT) is 2, CAST('… 10:00' AS DATE) drops the time):
        # only a cast to exactly the column's type leaves the literal's meaning for pruning.
        if not isinstance(node.this, exp.Literal) or not _cast_matches(node.to, field_type):
            return None
        kind = node.to.this.name if node.to.this else None
        node = node.this
    sign = ""
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        sign, node = "-", node.this
    if not isinstance(node, exp.Literal):
        if isinstance(node, exp.Boolean) and isinstance(field_type, it.BooleanType):
            return bool(node.this)
        return None
    text: str = sign + node.this
    if node.is_string:
        if isinstance(field_type, it.StringType):
            return text
        if isinstance(field_type, it.UUIDType):
            return text
        if isinstance(field_type, _TEMPORAL):
            return _temporal_value(text, field_type, kind)
        return None
    # numeric literal: only into numeric columns, and never a fractional value into an integer column
    if not isinstance(field_type, _NUMERIC):
        return None
    if isinstance(field_type, (it.IntegerType, it.LongType)):
        try:
            return int(text)
        except ValueError:
            return None
    if isinstance(field_type, it.DecimalType):
        # Only a value the column can hold exactly (no rounding: rounding could prune a match).
        try:
            value = Decimal(text)
            exact = value.quantize(Decimal(1).scaleb(-field_type.scale))
        except (InvalidOperation, ValueError):
            return None
        return exact if exact == value else None
    try:
        return float(text)
    except ValueError:
        return None


def _cast_matches(to: exp.DataType, field_type: it.IcebergType) -> bool:
    from wharf.errors import WharfError
    from wharf.tables.types import sql_type_to_iceberg

    try:
        return sql_type_to_iceberg(to) == field_type
    except WharfError:
        return False


def _temporal_value(text: str, field_type: it.IcebergType, cast_kind: str | None) -> object | None:
    try:
        if isinstance(field_type, it.DateType):
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            return None  # '2024-01-01 10:00' compared with a date: leave to DuckDB
        if isinstance(field_type, it.TimeType):
            return dt.time.fromisoformat(text)
        value = dt.datetime.fromisoformat(text.replace(" ", "T") if len(text) > 10 else text)
        if isinstance(field_type, it.TimestamptzType):
            if value.tzinfo is None:  # sessions run in UTC
                value = value.replace(tzinfo=dt.UTC)
            return value
        if value.tzinfo is not None:
            return None
        return value
    except ValueError:
        return None


def _to_literal(value: object, field_type: it.IcebergType) -> object:
    if isinstance(value, dt.datetime):
        epoch = dt.datetime(1970, 1, 1, tzinfo=value.tzinfo) if value.tzinfo else dt.datetime(1970, 1, 1)
        return (value - epoch) // dt.timedelta(microseconds=1)
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days
    if isinstance(value, dt.time):
        return (value.hour * 3600 + value.minute * 60 + value.second) * 1_000_000 + value.microsecond
    return value


_COMPARISONS: dict[type[exp.Expr], LiteralPredicate] = {
    exp.EQ: equal_to,
    exp.NEQ: not_equal_to,
    exp.GT: greater_than,
    exp.GTE: greater_than_or_equal,
    exp.LT: less_than,
    exp.LTE: less_than_or_equal,
}
_FLIPPED: dict[type[exp.Expr], type[exp.Expr]] = {
    exp.EQ: exp.EQ,
    exp.NEQ: exp.NEQ,
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
}


def to_iceberg(node: exp.Expr, schema: Schema, resolve: ColumnResolver) -> ie.BooleanExpression:
    """Translate ``node`` into an inclusive Iceberg filter over ``schema`` (``AlwaysTrue`` if unknown)."""

    def field(col: exp.Expr) -> tuple[str, it.IcebergType] | None:
        if not isinstance(col, exp.Column):
            return None
        name = resolve(col)
        if name is None:
            return None
        found = schema.find_field(name, case_sensitive=False) if _has(schema, name) else None
        if found is None or not isinstance(found.field_type, it.PrimitiveType):
            return None
        return found.name, found.field_type

    def walk(n: exp.Expr) -> ie.BooleanExpression:
        if isinstance(n, exp.Paren):
            return walk(n.this)
        if isinstance(n, exp.And):
            return ie.And(walk(n.left), walk(n.right))
        if isinstance(n, exp.Or):
            left, right = walk(n.left), walk(n.right)
            if left == ie.AlwaysTrue() or right == ie.AlwaysTrue():
                return ie.AlwaysTrue()
            return ie.Or(left, right)
        if isinstance(n, exp.Binary) and type(n) in _COMPARISONS:
            lhs, rhs = n.left, n.right
            kind: type[exp.Expr] = type(n)
            if not isinstance(lhs, exp.Column) and isinstance(rhs, exp.Column):
                lhs, rhs, kind = rhs, lhs, _FLIPPED[kind]
            f = field(lhs)
            if f is None:
                return ie.AlwaysTrue()
            value = _python_value(rhs, f[1])
            if value is None:
                return ie.AlwaysTrue()
            return _COMPARISONS[kind](f[0], _to_literal(value, f[1]))
        if isinstance(n, exp.Between):
            f = field(n.this)
            if f is None:
                return ie.AlwaysTrue()
            low, high = _python_value(n.args["low"], f[1]), _python_value(n.args["high"], f[1])
            if low is None or high is None:
                return ie.AlwaysTrue()
            return ie.And(greater_than_or_equal(f[0], _to_literal(low, f[1])), less_than_or_equal(f[0], _to_literal(high, f[1])))
        if isinstance(n, exp.In) and not n.args.get("query"):
            f = field(n.this)
            if f is None:
                return ie.AlwaysTrue()
            values = [_python_value(v, f[1]) for v in n.expressions]
            if not values or any(v is None for v in values):
                return ie.AlwaysTrue()
            return is_in(f[0], {_to_literal(v, f[1]) for v in values})
        if isinstance(n, exp.Is) and isinstance(n.expression, exp.Null):
            f = field(n.this)
            return is_null(f[0]) if f else ie.AlwaysTrue()
        if isinstance(n, exp.Not) and isinstance(n.this, exp.Is) and isinstance(n.this.expression, exp.Null):
            f = field(n.this.this)
            return not_null(f[0]) if f else ie.AlwaysTrue()
        return ie.AlwaysTrue()

    try:
        return walk(node)
    except Exception:  # noqa: BLE001 - planning must never fail a query; scan everything instead
        return ie.AlwaysTrue()


def _has(schema: Schema, name: str) -> bool:
    lowered = name.lower()
    return any(f.name.lower() == lowered for f in schema.fields)


def conjuncts(node: exp.Expr | None) -> list[exp.Expr]:
    """Split ``a AND b AND c`` into ``[a, b, c]``."""
    if node is None:
        return []
    if isinstance(node, exp.Paren):
        return conjuncts(node.this)
    if isinstance(node, exp.And):
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def combine(filters: Iterable[ie.BooleanExpression]) -> ie.BooleanExpression:
    """AND together filters, dropping ``AlwaysTrue``."""
    result: ie.BooleanExpression = ie.AlwaysTrue()
    for f in filters:
        if f == ie.AlwaysTrue():
            continue
        result = f if result == ie.AlwaysTrue() else ie.And(result, f)
    return result
