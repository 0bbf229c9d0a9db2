"""Golden tests for SQL → Iceberg filter translation (tests/fixtures/predicates.sql)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from pyiceberg.schema import Schema
from pyiceberg.types import DateType, DecimalType, DoubleType, LongType, NestedField, StringType, TimestampType

from wharf.tables.predicates import combine, conjuncts, to_iceberg

SCHEMA = Schema(
    NestedField(1, "id", LongType()),
    NestedField(2, "name", StringType()),
    NestedField(3, "day", DateType()),
    NestedField(4, "at", TimestampType()),
    NestedField(5, "price", DoubleType()),
    NestedField(6, "amount", DecimalType(15, 2)),
)


def _cases() -> list[tuple[str, str]]:
    text = (Path(__file__).parent.parent / "fixtures" / "predicates.sql").read_text()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("--")]
    return list(zip(lines[0::2], lines[1::2], strict=True))


@pytest.mark.parametrize(("condition", "expected"), _cases())
def test_translation(condition: str, expected: str) -> None:
    where = sqlglot.parse_one(f"SELECT * FROM t WHERE {condition}", read="duckdb").args["where"].this
    parts = [to_iceberg(c, SCHEMA, lambda col: col.name) for c in conjuncts(where)]
    assert repr(combine(parts)) == expected


def test_columns_of_other_tables_are_not_translated() -> None:
    where = sqlglot.parse_one("SELECT * FROM t WHERE o.id = 1", read="duckdb").args["where"].this
    assert repr(to_iceberg(where, SCHEMA, lambda col: None if col.table == "o" else col.name)) == "AlwaysTrue()"
