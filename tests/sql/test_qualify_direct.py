"""The qualify pass's direct resolution agrees with sqlglot's qualification, and leaves it every statement it cannot be sure of.

The direct resolution (``wharf.sql.qualify._direct``) binds the columns of a single SELECT over
Wharf tables from the tables' schemas; sqlglot's ``qualify`` (the general path) is several times
slower. Each statement here is compiled both ways: the columns each reference reads, the
conjuncts pushed to it, the files planned, the SQL DuckDB runs and the column lineage must agree.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
import sqlglot

import wharf
from wharf.sql import pipeline, qualify
from wharf.sql.pipeline import Compilation
from wharf.statement import Statement, running


@pytest.fixture
def shop(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE TABLE sales (id BIGINT, customer BIGINT, region VARCHAR, amount DOUBLE) PARTITIONED BY (region)")
    lake.sql("CREATE TABLE customers (id BIGINT, name VARCHAR, country VARCHAR)")
    lake.sql("INSERT INTO sales VALUES (1, 10, 'eu', 5.0), (2, 11, 'us', 25.0), (3, 10, 'eu', 30.0)")
    lake.sql("ALTER TABLE sales CREATE TAG first")
    lake.sql("ALTER TABLE sales CREATE BRANCH dev")
    lake.sql("INSERT INTO sales VALUES (4, 12, 'ap', 50.0)")
    lake.sql("INSERT INTO customers VALUES (10, 'Ann', 'FR'), (11, 'Bob', 'DE'), (12, 'Cy', 'JP')")
    lake.sql("CREATE VIEW big AS SELECT * FROM sales WHERE amount > 20")
    lake.register("targets", pa.table({"country": ["FR", "DE"], "goal": [1, 2]}))
    return lake


DIRECT = [
    "SELECT id, amount FROM sales WHERE region = 'eu' AND amount > 10",
    "SELECT name, sum(amount) FROM sales s JOIN customers c ON s.customer = c.id "
    "WHERE region = 'us' AND country = 'DE' GROUP BY name",
    "SELECT c.name, s.amount FROM customers c LEFT JOIN sales s ON s.customer = c.id AND s.region = 'eu' WHERE c.country = 'FR'",
    "SELECT c.name, s.amount FROM customers c RIGHT JOIN sales s ON s.customer = c.id WHERE s.region = 'eu'",
    "SELECT * FROM sales WHERE id = 3",
    "SELECT s.*, c.name FROM sales s, customers c WHERE s.customer = c.id AND c.name = 'Ann'",
    "SELECT count(*) FROM sales",
    "SELECT REGION, Sum(AMOUNT) AS total FROM Sales WHERE \"Region\" <> 'ap' GROUP BY region ORDER BY total DESC",
    "SELECT amount * 2 AS twice, twice + 1 AS more FROM sales WHERE customer = 10 ORDER BY more",
    "SELECT DISTINCT region FROM sales WHERE customer = 10 OR region = 'us' ORDER BY 1 LIMIT 2",
    "SELECT region, count(*) FROM sales GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL",
    "SELECT id, row_number() OVER (PARTITION BY region ORDER BY amount) AS rn FROM sales QUALIFY rn = 1 ORDER BY id",
    "SELECT count(*) FROM sales FOR VERSION AS OF 'first' WHERE region = 'eu'",
    "SELECT region FROM sales.branch_dev WHERE amount BETWEEN 1 AND 26 ORDER BY region",
    "SELECT a.amount, b.country FROM sales a, customers b LIMIT 0",
    "SELECT s.amount FROM default.sales AS s JOIN customers ON customers.id = s.customer WHERE customers.name IN ('Ann', 'Bob')",
]

# Statements whose binding the direct resolution cannot be sure of from the schemas alone.
TO_SQLGLOT = [
    "WITH x AS (SELECT * FROM sales) SELECT count(*) FROM x",
    "SELECT count(*) FROM sales WHERE customer IN (SELECT id FROM customers)",
    "SELECT id FROM sales UNION ALL SELECT id FROM customers",
    "SELECT count(*) FROM sales JOIN customers USING (id)",
    "SELECT count(*) FROM sales NATURAL JOIN customers",
    "SELECT * FROM customers c ASOF JOIN sales s ON s.customer = c.id AND s.id >= c.id",
    "SELECT count(*) FROM big",
    "SELECT c.name AS country FROM customers c WHERE country = 'FR'",  # output alias and a column: DuckDB decides
    "SELECT id FROM sales s JOIN customers c ON s.customer = c.id",  # ambiguous: DuckDB refuses it
    "SELECT c.name FROM customers c JOIN targets t ON c.country = t.country WHERE goal > 1",
    "SELECT operation FROM sales.snapshots",
    "SELECT * EXCLUDE (id) FROM sales",
    "SELECT count(*) FROM sales AS x(amount) WHERE amount = 3",
    "SELECT list_transform([amount], v -> v + 1) FROM sales",
    "SELECT COLUMNS('am.*') FROM sales",
    "SELECT count(*) FROM sales, range(3)",
]


def _compile(shop: wharf.Lakehouse, text: str) -> tuple[Compilation, Any]:
    statement = Statement(text, shop.principal)
    ctx = shop._context(statement)
    with running(statement):
        compiled = pipeline.compile_query(ctx, sqlglot.parse_one(text, read="duckdb"))
    return compiled, ctx


def _summary(c: Compilation) -> list[tuple[object, ...]]:
    return [
        (
            r.label,
            r.columns,
            None if r.pushdown is None else [p.sql("duckdb").lower() for p in r.pushdown],
            str(r.row_filter),
            sorted(f.path for f in r.plan.files) if r.plan is not None else None,
        )
        for r in c.references
    ]


@pytest.mark.parametrize("text", DIRECT)
def test_direct_resolution_agrees_with_sqlglot(shop: wharf.Lakehouse, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    direct, _ = _compile(shop, text)
    assert isinstance(direct.analysis, qualify.Deferred), "this statement should not need sqlglot's qualify"
    lineage_direct = direct.lineage()()
    with monkeypatch.context() as m:
        m.setattr(qualify, "_direct", lambda *args: False)
        general, _ = _compile(shop, text)
    assert not isinstance(general.analysis, qualify.Deferred)
    assert _summary(direct) == _summary(general)
    assert direct.sql == general.sql
    assert lineage_direct == general.lineage()()
    # The qualified copy made on demand is sqlglot's own.
    assert direct.qualified is not None and general.qualified is not None
    assert direct.qualified.sql("duckdb") == general.qualified.sql("duckdb")
    shop.sql(text).fetchall()  # and the statement runs


@pytest.mark.parametrize("text", TO_SQLGLOT)
def test_uncertain_bindings_go_to_sqlglot(shop: wharf.Lakehouse, text: str) -> None:
    compiled, _ = _compile(shop, text)
    assert not isinstance(compiled.analysis, qualify.Deferred)


def test_an_output_alias_that_is_also_a_column_keeps_duckdbs_meaning(shop: wharf.Lakehouse) -> None:
    # DuckDB binds WHERE country to the table's column, ORDER BY country to the output: both must survive.
    rows = shop.sql(
        "SELECT c.name AS country FROM customers c WHERE country = 'FR' OR country = 'DE' ORDER BY country"
    ).fetchall()
    assert rows == [("Ann",), ("Bob",)]


def test_the_statement_cache_derives_lineage_only_when_asked(shop: wharf.Lakehouse) -> None:
    events: list[Any] = []
    unsubscribe = shop.events.subscribe("on_statement", events.append)
    try:
        text = (
            "SELECT c.name, sum(s.amount) AS total FROM sales s JOIN customers c ON s.customer = c.id "
            "WHERE c.country = 'FR' GROUP BY c.name"
        )
        assert shop.sql(text).fetchall() == [("Ann", 35.0)]
        assert shop.sql(text).fetchall() == [("Ann", 35.0)]  # from the statement cache
    finally:
        unsubscribe()
    expected = {"name": ("default.customers.name",), "total": ("default.sales.amount",)}
    assert [dict(e.column_lineage()) for e in events] == [expected, expected]
    assert [read.columns for read in events[0].inputs] == [("customer", "amount"), ("id", "name", "country")]
