"""Conditions two ways: as SQL predicates over a row value, and as Python checks of a metric.

NULL semantics follow AWS Glue: a NULL value fails every operator except ``!=`` and ``not in``
(unless the condition names ``NULL`` itself: ``= NULL``, ``in [.., NULL]``, ``!= NULL``).
``between`` is exclusive on both ends, ``not between`` its complement.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wharf.errors import InvalidArgument
from wharf.quality.model import (
    EMPTY,
    NULL,
    WHITESPACES_ONLY,
    BinaryOp,
    Call,
    Condition,
    DateLiteral,
    Duration,
    Keyword,
    Now,
    Number,
    Operand,
    String,
    TimeLiteral,
)

NEGATIVE_OPS = ("!=", "not in")


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def timestamp_literal(moment: datetime) -> str:
    """A naive UTC TIMESTAMP literal for ``moment``."""
    utc = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return f"TIMESTAMP '{utc.isoformat(sep=' ')}'"


def resolve_date(operand: Operand, now: datetime) -> datetime:
    """The instant a date operand stands for (naive UTC)."""
    base = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    if isinstance(operand, DateLiteral):
        return datetime.fromisoformat(operand.value)
    if isinstance(operand, Now):
        if operand.offset is None:
            return base
        delta = timedelta(seconds=operand.offset.seconds())
        return base - delta if operand.sign == "-" else base + delta
    if isinstance(operand, TimeLiteral):
        text = operand.value
        if text.endswith(("AM", "PM")):
            parsed = datetime.strptime(text, "%I:%M %p")
        else:
            parsed = datetime.strptime(text, "%H:%M")
        return base.replace(hour=parsed.hour, minute=parsed.minute, second=0, microsecond=0)
    raise InvalidArgument(f"{operand} is not a date")


def _literal(operand: Operand, kind: str, now: datetime) -> str:
    if kind == "date":
        return timestamp_literal(resolve_date(operand, now))
    if kind == "duration":
        assert isinstance(operand, Duration)
        return repr(float(operand.seconds()))
    if isinstance(operand, Number):
        return str(operand)
    if isinstance(operand, String):
        return sql_string(operand.value)
    if isinstance(operand, (Call, BinaryOp)):
        raise InvalidArgument(
            f"'{operand}': dynamic values (last, avg, …) compare dataset metrics, not row values",
            hint="use them in rules such as RowCount, Mean or Completeness",
        )
    raise InvalidArgument(f"Cannot use {operand} here")


def _keyword_test(value: str, keyword: Keyword) -> str:
    if keyword == NULL:
        return f"({value} IS NULL)"
    if keyword == EMPTY:
        return f"({value} = '')"
    if keyword == WHITESPACES_ONLY:
        return f"regexp_full_match({value}, '\\s+')"
    raise InvalidArgument(f"Unknown keyword {keyword}")


def row_predicate(value: str, condition: Condition, now: datetime) -> str:
    """A SQL boolean (never NULL) saying whether a row's ``value`` (SQL text) satisfies ``condition``.

    ``value`` must already be of the condition's kind: VARCHAR for string conditions, a number
    for number conditions, a TIMESTAMP for date conditions, seconds for duration conditions.
    """
    op, operands, kind = condition.op, condition.operands, condition.kind
    null_listed = any(o == NULL for o in operands)
    if op in ("=", "!=", "in", "not in"):
        # One IN list for the literal values (DuckDB tests it far faster than a chain of ORs).
        literals = [_literal(o, kind, now) for o in operands if not isinstance(o, Keyword)]
        tests = [_keyword_test(value, o) for o in operands if isinstance(o, Keyword)]
        if len(literals) == 1:
            tests.insert(0, f"({value} = {literals[0]})")
        elif literals:
            tests.insert(0, f"({value} IN ({', '.join(literals)}))")
        positive = tests[0] if len(tests) == 1 else "(" + " OR ".join(tests) + ")"
        if op in ("=", "in"):
            return f"coalesce({positive}, FALSE)"
        # != / not in: a NULL value passes unless NULL is among the values it must differ from.
        if null_listed:
            return f"coalesce(NOT {positive}, FALSE)"
        return f"coalesce(NOT {positive}, TRUE)"
    if op in ("matches", "not matches"):
        operand = operands[0]
        assert isinstance(operand, String)
        test = f"regexp_full_match({value}, {sql_string(operand.value)})"
        return f"coalesce({test}, FALSE)" if op == "matches" else f"coalesce(NOT {test}, FALSE)"
    if op in ("between", "not between"):
        if any(isinstance(o, Keyword) for o in operands):
            return "FALSE"
        low, high = (_literal(o, kind, now) for o in operands)
        inside = f"({value} > {low} AND {value} < {high})"
        return f"coalesce({inside}, FALSE)" if op == "between" else f"coalesce(NOT {inside}, FALSE)"
    if isinstance(operands[0], Keyword):
        return "FALSE"
    return f"coalesce({value} {op} {_literal(operands[0], kind, now)}, FALSE)"


def check(value: float | None, condition: Condition, bounds: list[float | None]) -> bool:
    """Whether a metric ``value`` satisfies a number ``condition`` whose operands evaluated to ``bounds``."""
    op = condition.op
    if op in ("in", "not in"):
        listed = value in [b for b in bounds if b is not None] or (value is None and None in bounds)
        return listed if op == "in" else not listed
    if op == "=" and bounds[0] is None:
        return value is None
    if op == "!=" and bounds[0] is None:
        return value is not None
    if value is None or any(b is None for b in bounds):
        return op == "!="
    first = bounds[0]
    assert first is not None
    if op == "=":
        return value == first
    if op == "!=":
        return value != first
    if op == ">":
        return value > first
    if op == ">=":
        return value >= first
    if op == "<":
        return value < first
    if op == "<=":
        return value <= first
    second = bounds[1]
    assert second is not None
    inside = first < value < second
    if op == "between":
        return inside
    if op == "not between":
        return not inside
    raise InvalidArgument(f"Operator {op} does not compare numbers")


def describe_bounds(condition: Condition, bounds: list[float | None]) -> str:
    """The condition with dynamic operands replaced by their values, for failure reasons."""

    def show(b: float | None) -> str:
        return "NULL" if b is None else f"{b:g}"

    if condition.op in ("between", "not between"):
        return f"{condition.op} {show(bounds[0])} and {show(bounds[1])}"
    if condition.op in ("in", "not in"):
        return f"{condition.op} [{', '.join(show(b) for b in bounds)}]"
    return f"{condition.op} {show(bounds[0])}"
