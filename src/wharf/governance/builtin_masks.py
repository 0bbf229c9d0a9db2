"""Built-in masks: ``SET MASK hash | null | redact | email | date_year | partial(show_first, show_last)``.

Each keeps the column's type (the masked value is cast back to it), so queries and views that
read the column keep working. A stored function of the same name takes precedence.
"""

from __future__ import annotations

import functools
import re

from sqlglot import exp

from wharf.errors import InvalidArgument

BUILTIN_MASKS = ("hash", "null", "redact", "email", "date_year", "partial")
_CALL = re.compile(r"^\s*(\w+)\s*(?:\(\s*([^)]*)\))?\s*$")


def parse_builtin(spec: str) -> tuple[str, tuple[int, ...]] | None:
    """``partial(2, 2)`` → ``("partial", (2, 2))``; None when ``spec`` is not a built-in mask."""
    match = _CALL.match(spec)
    if match is None or match.group(1).lower() not in BUILTIN_MASKS:
        return None
    name = match.group(1).lower()
    raw = [a.strip() for a in (match.group(2) or "").split(",") if a.strip()]
    try:
        args = tuple(int(a) for a in raw)
    except ValueError as exc:
        raise InvalidArgument(f"Mask {spec}: arguments are whole numbers", hint="partial(show_first, show_last)") from exc
    if (name == "partial") != (len(args) == 2) or any(a < 0 for a in args):
        raise InvalidArgument(f"Mask {spec}: partial takes (show_first, show_last); the others take no arguments")
    return name, args


def builtin_mask(name: str, args: tuple[int, ...], column: str, sql_type: str) -> exp.Expression:
    """The masked value of ``column`` (of DuckDB type ``sql_type``), cast back to that type (a tree of its own)."""
    return _parsed_mask(name, args, column, sql_type).copy()


@functools.lru_cache(maxsize=1024)
def _parsed_mask(name: str, args: tuple[int, ...], column: str, sql_type: str) -> exp.Expression:
    # Parsed once per (mask, column, type): parsing cost ~1 ms, and masks apply on every statement.
    col = exp.column(column, quoted=True).sql("duckdb")
    kind = sql_type.upper()
    text = kind.startswith(("VARCHAR", "STRING", "TEXT"))
    numeric = kind.startswith(("TINYINT", "SMALLINT", "INT", "BIGINT", "HUGEINT", "DECIMAL", "DOUBLE", "FLOAT", "REAL"))
    temporal = kind.startswith(("DATE", "TIMESTAMP"))
    if name == "null":
        body = "NULL"
    elif name == "hash":
        body = f"sha256(CAST({col} AS VARCHAR))" if text else f"hash({col}) % 1000" if numeric else "NULL"
    elif name == "redact":
        body = f"regexp_replace({col}, '.', '*', 'g')" if text else "NULL"
    elif name == "email":
        body = f"regexp_replace({col}, '^.*@', '***@')" if text else "NULL"
    elif name == "date_year":
        body = f"date_trunc('year', {col})" if temporal else f"left({col}, 4)" if text else "NULL"
    elif not text:
        body = "NULL"
    else:
        first, last = args
        body = (
            f"CASE WHEN length({col}) <= {first + last} THEN repeat('*', length({col})) "
            f"ELSE left({col}, {first}) || repeat('*', length({col}) - {first + last}) || right({col}, {last}) END"
        )
    import sqlglot

    expression: exp.Expression = sqlglot.parse_one(f"CAST({body} AS {sql_type})", read="duckdb")  # type: ignore[assignment]
    return exp.paren(expression, copy=False)
