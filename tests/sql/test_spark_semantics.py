"""Asked to speak Spark (``dialect='spark'``), Wharf answers with Spark's types, defaults and column names."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

import wharf
from wharf.errors import UnsupportedStatement


@pytest.fixture
def t(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE TABLE t (id BIGINT, d DATE, ts TIMESTAMP, amount DECIMAL(10, 2), name VARCHAR)")
    lake.sql("INSERT INTO t VALUES (1, DATE '2024-01-31', TIMESTAMP '2024-01-31 10:30:00', 1.5, 'Ann')")
    return lake


# (expression, Spark's result type, Spark's value for the row above) — from Spark's function reference.
SPARK_FUNCTIONS = [
    ("date_sub(d, 3)", pa.date32(), dt.date(2024, 1, 28)),
    ("date_add(d, 1)", pa.date32(), dt.date(2024, 2, 1)),
    ("dateadd(d, 1)", pa.date32(), dt.date(2024, 2, 1)),
    ("add_months(d, 1)", pa.date32(), dt.date(2024, 2, 29)),
    ("trunc(d, 'MM')", pa.date32(), dt.date(2024, 1, 1)),
    ("trunc(d, 'YY')", pa.date32(), dt.date(2024, 1, 1)),
    ("trunc(d, 'QUARTER')", pa.date32(), dt.date(2024, 1, 1)),
    ("last_day(d)", pa.date32(), dt.date(2024, 1, 31)),
    ("next_day(d, 'Mon')", pa.date32(), dt.date(2024, 2, 5)),
    ("to_date('2024-02-03')", pa.date32(), dt.date(2024, 2, 3)),
    ("datediff(d, DATE '2024-01-01')", pa.int32(), 30),
    ("year(d)", pa.int32(), 2024),
    ("month(d)", pa.int32(), 1),
    ("dayofmonth(d)", pa.int32(), 31),
    ("dayofweek(d)", pa.int32(), 4),  # Spark: 1 = Sunday; 2024-01-31 is a Wednesday
    ("weekofyear(d)", pa.int32(), 5),
    ("quarter(d)", pa.int32(), 1),
    ("hour(ts)", pa.int32(), 10),
    ("minute(ts)", pa.int32(), 30),
    ("size(array(1, 2, 3))", pa.int32(), 3),
    ("unix_timestamp(ts)", pa.int64(), 1706697000),
    ("date_format(ts, 'yyyy-MM-dd HH:mm')", pa.string(), "2024-01-31 10:30"),
    ("CAST(amount AS DECIMAL)", pa.decimal128(10, 0), Decimal("2")),
    ("CAST('x' AS INT)", pa.int32(), None),  # Spark's default (non-ANSI) cast: NULL, not an error
]


@pytest.mark.parametrize(("expression", "arrow_type", "value"), SPARK_FUNCTIONS, ids=[e for e, _, _ in SPARK_FUNCTIONS])
def test_functions_return_sparks_types_and_values(
    t: wharf.Lakehouse, expression: str, arrow_type: pa.DataType, value: object
) -> None:
    result = t.sql(f"SELECT {expression} FROM t", dialect="spark").to_arrow()
    assert result.schema.field(0).type == arrow_type
    assert result.column(0).to_pylist() == [value]


def test_date_trunc_accepts_sparks_unit_spellings(t: wharf.Lakehouse) -> None:
    for unit in ("MM", "MON", "MONTH"):
        assert t.sql(f"SELECT date_trunc('{unit}', ts) FROM t", dialect="spark").scalar() == dt.datetime(2024, 1, 1)
    assert t.sql("SELECT date_trunc('DD', ts) FROM t", dialect="spark").scalar() == dt.datetime(2024, 1, 31)


def test_result_columns_are_named_as_spark_prints_them(t: wharf.Lakehouse) -> None:
    result = t.sql(
        "SELECT count(*), sum(amount), id + 1, upper(t.name), date_sub(d, 3), concat(name, 'x'), name IS NULL, "
        "current_date(), id, amount AS a FROM t GROUP BY id, amount, name, d",
        dialect="spark",
    )
    assert result.columns == [
        "count(1)",
        "sum(amount)",
        "(id + 1)",
        "upper(name)",
        "date_sub(d, 3)",
        "concat(name, x)",
        "(name IS NULL)",
        "current_date()",
        "id",
        "a",
    ]
    # CTAS keeps those names, as Spark's does.
    t.sql("CREATE TABLE counted AS SELECT count(*) FROM t", dialect="spark")
    assert t.sql("SELECT `count(1)` FROM counted", dialect="spark").scalar() == 1


def test_bare_decimal_is_sparks_decimal_10_0(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE s (v DECIMAL, w NUMERIC)", dialect="spark")
    lake.sql("CREATE TABLE d (v DECIMAL)")  # DuckDB's default stays DECIMAL(18, 3)
    spark_types = [str(f.field_type) for f in lake.table("s").iceberg.schema().fields]
    assert spark_types == ["decimal(10, 0)", "decimal(10, 0)"]
    assert str(lake.table("d").iceberg.schema().fields[0].field_type) == "decimal(18, 3)"
    lake.sql("ALTER TABLE s ADD COLUMN x DECIMAL", dialect="spark")
    assert str(lake.table("s").iceberg.schema().find_field("x").field_type) == "decimal(10, 0)"


def test_spark_nested_types_in_spark_only(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE n (p STRUCT<x: DOUBLE, y: DOUBLE>, m MAP<STRING, INT>, a ARRAY<INT>)", dialect="spark")
    assert [f.name for f in lake.table("n").iceberg.schema().find_field("p").field_type.fields] == ["x", "y"]
    # DuckDB's parser cannot read STRUCT<x: …>: a clear error says how to write it instead.
    with pytest.raises(UnsupportedStatement, match="STRUCT\\(x DOUBLE"):
        lake.sql("CREATE TABLE n2 (p STRUCT<x: DOUBLE>)")


def test_duckdb_dialect_keeps_duckdb_semantics(t: wharf.Lakehouse) -> None:
    result = t.sql("SELECT count(*), year(d), dayofweek(d) FROM t GROUP BY d").to_arrow()
    assert result.schema.names[0] == "count_star()"
    assert result.schema.field(1).type == pa.int64()
    assert result.column(2).to_pylist() == [3]  # DuckDB: 0 = Sunday


def test_column_names_writers_store_sanitized_read_back(lake: wharf.Lakehouse) -> None:
    """PyIceberg stores ``a b`` as ``a_x20b`` in Parquet: reads match such columns by field id."""
    lake.sql('CREATE TABLE odd AS SELECT 1 AS "a b", 2 AS "count(1)", 3 AS k')
    lake.sql('UPDATE odd SET "a b" = 10 WHERE k = 3')
    assert lake.sql('SELECT "a b", "count(1)" FROM odd').fetchall() == [(10, 2)]
