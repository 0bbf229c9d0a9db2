"""Other dialects are transpiled with sqlglot; Iceberg syntax works in all of them."""

from __future__ import annotations

import pytest

import wharf
from wharf.errors import UnsupportedStatement


@pytest.fixture
def people(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE SCHEMA hr")
    lake.sql("CREATE TABLE hr.people (id BIGINT, name VARCHAR, born DATE, tags VARCHAR[])")
    lake.sql("INSERT INTO hr.people VALUES (1, 'ann', DATE '1990-05-01', ['a', 'b']), (2, 'bob', DATE '1985-01-20', ['c'])")
    return lake


def test_spark_dialect(people: wharf.Lakehouse) -> None:
    rows = people.sql(
        "SELECT `name`, date_format(born, 'yyyy') AS y, size(tags) AS n, nvl(NULL, 1) AS one "
        "FROM hr.people WHERE id IN (1, 2) ORDER BY id",
        dialect="spark",
    ).fetchall()
    assert rows == [("ann", "1990", 2, 1), ("bob", "1985", 1, 1)]
    people.sql("INSERT INTO hr.people SELECT 3, upper('cy'), to_date('2000-02-02'), array('x')", dialect="spark")
    assert people.sql("SELECT name FROM hr.people WHERE id = 3").scalar() == "CY"


def test_spark_time_travel_syntax(people: wharf.Lakehouse) -> None:
    first = people.table("hr.people").current_snapshot_id()
    people.sql("INSERT INTO hr.people VALUES (9, 'z', NULL, NULL)")
    assert people.sql(f"SELECT count(*) FROM hr.people VERSION AS OF {first}", dialect="spark").scalar() == 2
    assert people.sql(f"SELECT count(*) FROM hr.people FOR VERSION AS OF {first}", dialect="trino").scalar() == 2


def test_trino_dialect(people: wharf.Lakehouse) -> None:
    rows = people.sql(
        "SELECT name, year(born) AS y, cardinality(tags) AS n FROM hr.people ORDER BY id OFFSET 1 ROWS FETCH FIRST 1 ROWS ONLY",
        dialect="trino",
    ).fetchall()
    assert rows == [("bob", 1985, 1)]
    assert people.sql("SELECT date_diff('day', DATE '2024-01-01', DATE '2024-01-31')", dialect="trino").scalar() == 30


def test_postgres_and_redshift_dialects(people: wharf.Lakehouse) -> None:
    assert people.sql("SELECT name::TEXT FROM hr.people WHERE id = 1", dialect="postgres").scalar() == "ann"
    assert people.sql("SELECT NVL2(NULL, 1, 2)", dialect="redshift").scalar() == 2
    assert people.sql("SELECT count(*) FROM hr.people", dialect="athena").scalar() == 2


def test_unknown_dialect(lake: wharf.Lakehouse) -> None:
    with pytest.raises(UnsupportedStatement, match="dialect"):
        lake.sql("SELECT 1", dialect="cobol")
