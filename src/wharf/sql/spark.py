"""Spark semantics for statements written with ``dialect='spark'`` (and Databricks/Hive).

sqlglot transpiles Spark SQL to DuckDB's syntax; this module corrects what survives the
translation with DuckDB's *meaning* instead of Spark's (applied to the parsed tree, before
anything runs):

- result types: ``date_add``/``date_sub``/``add_months``/``trunc`` return ``DATE`` (DuckDB: a
  timestamp); date parts, ``datediff`` and ``size`` return ``INT`` (DuckDB: ``BIGINT``);
- ``dayofweek`` counts from 1 = Sunday;
- ``trunc``/``date_trunc`` accept Spark's unit spellings (``'MM'``, ``'YY'``, ``'MON'``, ``'DD'`` …);
- ``unix_timestamp(ts)`` of a timestamp gives its epoch seconds (sqlglot: a string parse);
  ``timestamp_seconds``/``timestamp_millis``/``timestamp_micros`` build timestamps;
- result column names: an unnamed expression is named as Spark prints it (``count(1)``,
  ``date_sub(d, 3)``, ``(id + 1)``), not by DuckDB's rewrite of it.

Differences that remain are listed in docs/sql.md ("Spark semantics").
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

SPARK_DIALECTS = frozenset({"spark", "spark2", "databricks", "hive"})

# Functions whose Spark result is a DATE, and those whose Spark result is an INT.
_RETURNS_DATE: tuple[type[exp.Expr], ...] = (exp.TsOrDsAdd, exp.AddMonths, exp.DateTrunc)
_RETURNS_INT: tuple[type[exp.Expr], ...] = (
    exp.Year,
    exp.Quarter,
    exp.Month,
    exp.Day,
    exp.DayOfMonth,
    exp.DayOfWeek,
    exp.DayOfYear,
    exp.WeekOfYear,
    exp.Hour,
    exp.Minute,
    exp.Second,
    exp.DateDiff,
    exp.ArraySize,
)

# Spark's unit spellings (trunc, date_trunc) → DuckDB's.
_UNITS = {
    "YEAR": "YEAR",
    "YYYY": "YEAR",
    "YY": "YEAR",
    "QUARTER": "QUARTER",
    "MONTH": "MONTH",
    "MM": "MONTH",
    "MON": "MONTH",
    "WEEK": "WEEK",
    "DAY": "DAY",
    "DD": "DAY",
    "HOUR": "HOUR",
    "MINUTE": "MINUTE",
    "SECOND": "SECOND",
    "MILLISECOND": "MILLISECOND",
    "MICROSECOND": "MICROSECOND",
}


# How sqlglot spells the format of unix_timestamp(x) written without one.
_DEFAULT_FORMAT = sqlglot.parse_one("unix_timestamp(x)", read="spark").args["format"].sql()

# Spark's timestamp_seconds(n) / timestamp_millis(n) / timestamp_micros(n): sqlglot leaves them unknown.
_EPOCH_FUNCTIONS = {"timestamp_seconds": 0, "timestamp_millis": 3, "timestamp_micros": 6}

# Niladic functions Spark prints with parentheses (DuckDB would read the bare name as a column).
_NILADIC: dict[type[exp.Expr], str] = {exp.CurrentDate: "current_date()", exp.CurrentTimestamp: "current_timestamp()"}


def apply(node: exp.Expr) -> exp.Expr:
    """Give a statement parsed as Spark SQL Spark's result names, types and unit spellings."""
    for select in list(node.find_all(exp.Select)):
        _name_projections(select)
    for unit_node in list(node.find_all(exp.DateTrunc, exp.TimestampTrunc)):
        unit = unit_node.args.get("unit")
        if isinstance(unit, (exp.Literal, exp.Var)) and unit.name.upper() in _UNITS:
            unit_node.set("unit", exp.var(_UNITS[unit.name.upper()]))
    for anonymous in list(node.find_all(exp.Anonymous)):
        scale = _EPOCH_FUNCTIONS.get(anonymous.name.lower())
        if scale is not None and len(anonymous.expressions) == 1:
            anonymous.replace(exp.UnixToTime(this=anonymous.expressions[0].copy(), scale=exp.Literal.number(scale)))
    for to_unix in list(node.find_all(exp.StrToUnix)):
        if to_unix.args.get("format") is None or to_unix.args["format"].sql() == _DEFAULT_FORMAT:
            # Without a format Spark reads a timestamp (or a 'yyyy-MM-dd HH:mm:ss' string) as epoch seconds.
            seconds = exp.func("epoch", exp.cast(to_unix.this.copy(), exp.DataType.build("TIMESTAMP")))
            to_unix.replace(exp.cast(seconds, exp.DataType.build("BIGINT")))
    for weekday in list(node.find_all(exp.DayOfWeek)):
        if weekday.find_ancestor(exp.Properties) is None:
            # Spark counts 1 = Sunday … 7 = Saturday; DuckDB's dayofweek 0 = Sunday … 6 = Saturday.
            weekday.replace(exp.paren(exp.Add(this=weekday.copy(), expression=exp.Literal.number(1))))
    for klass, to in ((_RETURNS_DATE, "DATE"), (_RETURNS_INT, "INT")):
        for call in list(node.find_all(*klass)):
            if isinstance(call.parent, exp.Cast) or call.find_ancestor(exp.Properties) is not None:
                continue  # PARTITIONED BY (hour(ts)) names a transform, not a call
            call.replace(exp.cast(call.copy(), exp.DataType.build(to)))
    return node


def _name_projections(select: exp.Select) -> None:
    projections = list(select.expressions)
    for i, projection in enumerate(projections):
        if isinstance(projection, (exp.Alias, exp.Column, exp.Star)) or (isinstance(projection, exp.Dot) and projection.is_star):
            continue  # named already, or named by their columns
        projections[i] = exp.alias_(projection, spark_name(projection), quoted=True)
    select.set("expressions", projections)


def spark_name(expression: exp.Expr) -> str:
    """The name Spark gives an unnamed result column: the expression, as Spark prints it."""

    def spark_form(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            return exp.column(node.name)  # Spark names t.id just id
        if isinstance(node, exp.Count) and isinstance(node.this, exp.Star):
            return exp.Anonymous(this="count", expressions=[exp.Literal.number(1)])
        if isinstance(node, exp.TsOrDsAdd) and isinstance(node.expression, exp.Mul):
            if node.expression.expression.sql() == "-1":  # how sqlglot reads date_sub(d, n)
                return exp.Anonymous(this="date_sub", expressions=[node.this, node.expression.this])
        if isinstance(node, exp.Literal) and node.is_string:
            return exp.var(node.this)  # Spark prints a string argument without quotes
        niladic = _NILADIC.get(type(node))
        if niladic is not None:
            return exp.var(niladic)
        return node

    e = expression.copy().transform(spark_form)
    text = e.sql(dialect="spark", normalize_functions="lower")
    if isinstance(e, (exp.Binary, exp.Not, exp.Is, exp.In, exp.Between)) and not text.startswith("("):
        text = f"({text})"
    return text
