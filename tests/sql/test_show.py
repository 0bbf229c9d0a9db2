"""Introspection (SHOW SCHEMAS/TABLES/CREATE TABLE/TBLPROPERTIES, DESCRIBE) and session settings (SET/RESET)."""

from __future__ import annotations

from pathlib import Path

import pytest

import wharf
from wharf.errors import InvalidArgument, NotFound, SqlError, SqlParseError


@pytest.fixture
def sales(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE SCHEMA sales")
    lake.sql(
        "CREATE TABLE sales.orders (id BIGINT NOT NULL COMMENT 'order id', customer VARCHAR, amount DECIMAL(10, 2), "
        "ts TIMESTAMP, tags VARCHAR[], attrs STRUCT(channel VARCHAR, score DOUBLE)) "
        "PARTITIONED BY (days(ts), bucket(8, id), truncate(2, customer)) "
        "TBLPROPERTIES ('owner' = 'finance', 'write.parquet.compression-codec' = 'zstd')"
    )
    lake.sql("CREATE TABLE sales.customers (id BIGINT, name VARCHAR)")
    lake.sql("CREATE TABLE plain (x INTEGER)")
    return lake


# --- SHOW SCHEMAS / TABLES -----------------------------------------------------------------------


@pytest.mark.parametrize("word", ["SCHEMAS", "NAMESPACES", "DATABASES"])
def test_show_schemas(sales: wharf.Lakehouse, word: str) -> None:
    result = sales.sql(f"SHOW {word}")
    assert result.columns == ["namespace"]
    assert [r[0] for r in result.fetchall()] == ["default", "sales"]
    assert sales.sql(f"SHOW {word} LIKE 'sal*'").fetchall() == [("sales",)]


def test_show_tables(sales: wharf.Lakehouse) -> None:
    result = sales.sql("SHOW TABLES IN sales")
    assert result.columns == ["namespace", "tableName", "isTemporary"]
    assert result.fetchall() == [("sales", "customers", False), ("sales", "orders", False)]
    assert sales.sql("SHOW TABLES FROM sales LIKE 'ord*|nothing'").fetchall() == [("sales", "orders", False)]
    # without IN: the current namespace, 'default' (Spark semantics)
    assert sales.sql("SHOW TABLES").fetchall() == [("default", "plain", False)]
    with pytest.raises(NotFound, match="Namespace 'nope' does not exist"):
        sales.sql("SHOW TABLES IN nope")


def test_show_works_in_every_dialect(sales: wharf.Lakehouse) -> None:
    for dialect in ("spark", "trino", "postgres"):
        assert len(sales.sql("SHOW TABLES IN sales", dialect=dialect)) == 2
    assert len(sales.sql("SHOW TABLES IN `sales`", dialect="spark")) == 2


# --- DESCRIBE ------------------------------------------------------------------------------------


def test_describe_lists_columns_then_partitioning(sales: wharf.Lakehouse) -> None:
    result = sales.sql("DESCRIBE TABLE sales.orders")
    assert result.columns == ["col_name", "data_type", "comment"]
    assert result.fetchall() == [
        ("id", "BIGINT NOT NULL", "order id"),
        ("customer", "VARCHAR", None),
        ("amount", "DECIMAL(10,2)", None),
        ("ts", "TIMESTAMP", None),
        ("tags", "VARCHAR[]", None),
        ("attrs", 'STRUCT("channel" VARCHAR, "score" DOUBLE)', None),
        ("", "", ""),
        ("# Partitioning", "", ""),
        ("Part 0", "days(ts)", ""),
        ("Part 1", "bucket(8, id)", ""),
        ("Part 2", "truncate(2, customer)", ""),
    ]
    assert sales.sql("DESC plain").fetchall() == [("x", "INTEGER", None)]


def test_describe_extended_adds_table_details(sales: wharf.Lakehouse) -> None:
    sales.sql("INSERT INTO plain VALUES (1)")
    rows = {r[0]: r[1] for r in sales.sql("DESCRIBE EXTENDED plain").fetchall()}
    assert rows["Name"] == "default.plain"
    assert rows["Provider"] == "iceberg"
    assert rows["Current Snapshot"] == str(sales.table("plain").current_snapshot_id())
    assert rows["Location"].endswith("default/plain")
    assert "# Detailed Table Information" in rows


def test_describe_queries_metadata_tables_and_refs(sales: wharf.Lakehouse) -> None:
    sales.sql("INSERT INTO plain VALUES (1)")
    sales.sql("ALTER TABLE plain CREATE BRANCH b")
    assert sales.sql("DESCRIBE plain.branch_b").fetchall() == [("x", "INTEGER", None)]
    described = {r[0]: r[1] for r in sales.sql("DESCRIBE plain.snapshots").fetchall()}
    assert described["snapshot_id"] == "BIGINT"
    assert sales.sql("DESCRIBE SELECT x + 1 AS y, 'a' AS z FROM plain").fetchall() == [
        ("y", "INTEGER", None),
        ("z", "VARCHAR", None),
    ]
    with pytest.raises(NotFound):
        sales.sql("DESCRIBE nope")
    with pytest.raises(SqlParseError):
        sales.sql("DESCRIBE")


# --- SHOW CREATE TABLE / TBLPROPERTIES -------------------------------------------------------------


def test_show_create_table_round_trips(sales: wharf.Lakehouse, tmp_path: Path) -> None:
    sales.sql("CREATE TABLE sales.keyed (id BIGINT NOT NULL, region VARCHAR NOT NULL, v DOUBLE) PARTITIONED BY (region)")
    sales.sql("ALTER TABLE sales.keyed SET IDENTIFIER FIELDS id, region")
    result = sales.sql("SHOW CREATE TABLE sales.orders")
    assert result.columns == ["createtab_stmt"]
    with wharf.connect(tmp_path / "other") as other:
        other.sql("CREATE SCHEMA sales")
        for name in ("sales.orders", "sales.keyed"):
            ddl = sales.sql(f"SHOW CREATE TABLE {name}").scalar()
            other.sql(ddl)
            original, copy = sales.table(name).iceberg, other.table(name).iceberg
            assert copy.schema() == original.schema()
            assert copy.schema().identifier_field_ids == original.schema().identifier_field_ids
            assert copy.spec() == original.spec()
            assert copy.properties == original.properties
            assert other.sql(f"SHOW CREATE TABLE {name}").scalar() == ddl


def test_show_tblproperties(sales: wharf.Lakehouse) -> None:
    result = sales.sql("SHOW TBLPROPERTIES sales.orders")
    assert result.columns == ["key", "value"]
    props = dict(result.fetchall())
    assert props["owner"] == "finance"
    assert props["format"] == "iceberg/parquet"
    assert props["format-version"] == "2"
    assert "current-snapshot-id" not in props  # no data yet
    assert sales.sql("SHOW TBLPROPERTIES sales.orders ('owner')").fetchall() == [("owner", "finance")]
    with pytest.raises(NotFound, match="has no property 'nope'"):
        sales.sql("SHOW TBLPROPERTIES sales.orders ('nope')")
    sales.sql("ALTER TABLE sales.orders SET TBLPROPERTIES ('owner' = 'ops')")
    assert dict(sales.sql("SHOW TBLPROPERTIES sales.orders").fetchall())["owner"] == "ops"


def test_show_of_a_missing_table(sales: wharf.Lakehouse) -> None:
    with pytest.raises(NotFound, match="sales.nope does not exist"):
        sales.sql("SHOW CREATE TABLE sales.nope")


# --- SET / RESET ---------------------------------------------------------------------------------


def test_set_lists_and_shows_wharf_settings(lake: wharf.Lakehouse) -> None:
    result = lake.sql("SET")
    assert result.columns == ["key", "value"]
    assert dict(result.fetchall()) == {
        "wharf.branch": None,
        "wharf.wap_id": None,
        "wharf.partition_overwrite_mode": "static",
        "wharf.dialect": "duckdb",
        "wharf.user": "tester",
    }
    lake.sql("SET wharf.branch = 'audit'")
    assert lake.sql("SET wharf.branch").fetchall() == [("wharf.branch", "audit")]
    assert lake.settings.branch == "audit"
    lake.sql("RESET wharf.branch")
    assert lake.settings.branch is None


def test_spark_wap_settings_are_aliases(lake: wharf.Lakehouse) -> None:
    lake.sql("SET spark.wap.branch = audit", dialect="spark")
    assert lake.settings.branch == "audit"
    lake.sql("RESET spark.wap.branch", dialect="spark")
    lake.sql("SET spark.wap.id = 'w1'")
    assert lake.settings.wap_id == "w1"
    lake.sql("RESET")
    assert lake.settings.wap_id is None and lake.settings.branch is None


def test_set_dialect_changes_how_later_statements_are_read(lake: wharf.Lakehouse) -> None:
    lake.sql("SET wharf.dialect = 'spark'")
    assert lake.settings.dialect == "spark"
    assert lake.sql("SELECT `a` FROM (SELECT 1 AS a)").scalar() == 1
    lake.sql("RESET wharf.dialect")
    assert lake.settings.dialect == "duckdb"
    with pytest.raises(InvalidArgument, match="Unknown SQL dialect 'cobol'"):
        lake.sql("SET wharf.dialect = 'cobol'")


def test_user_cannot_be_changed_by_sql(lake: wharf.Lakehouse) -> None:
    with pytest.raises(InvalidArgument, match="wharf.user cannot be changed"):
        lake.sql("SET wharf.user = 'admin'")
    assert lake.principal.name == "tester"


def test_branch_and_wap_id_are_exclusive(lake: wharf.Lakehouse) -> None:
    lake.sql("SET wharf.branch = 'audit'")
    with pytest.raises(InvalidArgument, match="cannot both be set"):
        lake.sql("SET wharf.wap_id = 'x'")
    assert lake.settings.wap_id is None


def test_unknown_wharf_setting(lake: wharf.Lakehouse) -> None:
    with pytest.raises(InvalidArgument, match="Unknown setting 'wharf.nope'"):
        lake.sql("SET wharf.nope = 1")


def test_other_settings_pass_through_to_duckdb(lake: wharf.Lakehouse) -> None:
    lake.sql("SET threads = 3")
    assert lake.sql("SET threads").fetchall() == [("threads", "3")]
    assert lake.sql("SELECT current_setting('threads')").scalar() == 3
    lake.sql("RESET threads")
    with pytest.raises(SqlError):
        lake.sql("SET no_such_duckdb_option = 1")
