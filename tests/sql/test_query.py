"""The read path: any DuckDB query shape over Wharf tables, with file pruning and streaming."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

import wharf
from wharf.events import StatementEvent


@pytest.fixture
def shop(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE SCHEMA shop")
    lake.sql("CREATE TABLE shop.customers (id BIGINT, name VARCHAR, country VARCHAR)")
    lake.sql("CREATE TABLE shop.orders (id BIGINT, customer_id BIGINT, amount DOUBLE, day DATE) PARTITIONED BY (day)")
    lake.sql("INSERT INTO shop.customers VALUES (1, 'Ann', 'FR'), (2, 'Bob', 'DE'), (3, 'Cy', 'FR')")
    for d in range(1, 6):
        lake.sql(
            f"INSERT INTO shop.orders SELECT {d} * 100 + range, range % 3 + 1, range * 1.5, DATE '2024-03-0{d}' FROM range(10)"
        )
    return lake


def _duckdb_copy(lake: wharf.Lakehouse) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA shop")
    for t in ("customers", "orders"):
        data = lake.sql(f"SELECT * FROM shop.{t}").to_arrow()
        con.register("src", data)
        con.execute(f"CREATE TABLE shop.{t} AS SELECT * FROM src")
        con.unregister("src")
    return con


QUERIES = [
    "SELECT c.name, sum(o.amount) AS total FROM shop.orders o JOIN shop.customers c ON o.customer_id = c.id "
    "GROUP BY c.name ORDER BY c.name",
    "WITH fr AS (SELECT id FROM shop.customers WHERE country = 'FR') SELECT count(*) FROM shop.orders "
    "WHERE customer_id IN (SELECT id FROM fr)",
    "SELECT id, amount, rank() OVER (PARTITION BY day ORDER BY amount DESC, id) AS r FROM shop.orders QUALIFY r <= 2 ORDER BY id",
    "SELECT id FROM shop.customers UNION ALL SELECT customer_id FROM shop.orders WHERE day = DATE '2024-03-02' ORDER BY 1",
    "SELECT c.id, count(o.id) FROM shop.customers c LEFT JOIN shop.orders o ON o.customer_id = c.id "
    "AND o.day = DATE '2024-03-05' GROUP BY c.id ORDER BY c.id",
    "SELECT c.id, o.id FROM shop.customers c LEFT JOIN shop.orders o ON o.customer_id = c.id WHERE o.id IS NULL",
    "SELECT * FROM (SELECT day, max(amount) m FROM shop.orders GROUP BY day) WHERE m > 10 ORDER BY day",
    "SELECT o.id, r.range FROM shop.orders o JOIN range(3) r ON o.id % 3 = r.range WHERE o.day = '2024-03-01' ORDER BY 1",
    "SELECT count(*) FROM shop.orders WHERE day BETWEEN DATE '2024-03-02' AND DATE '2024-03-03' AND amount >= 3",
    "SELECT day, count(*) FROM shop.orders WHERE day IN ('2024-03-01', '2024-03-04') OR amount > 13 GROUP BY day ORDER BY day",
]


@pytest.mark.parametrize("query", QUERIES)
def test_query_shapes_agree_with_duckdb(shop: wharf.Lakehouse, query: str) -> None:
    expected = _duckdb_copy(shop).execute(query).fetchall()
    assert shop.sql(query).fetchall() == expected


def _files_scanned(lake: wharf.Lakehouse, query: str) -> int:
    seen: list[StatementEvent] = []
    stop = lake.events.subscribe("on_statement", seen.append)
    try:
        lake.sql(query).to_arrow()
    finally:
        stop()
    return sum(read.files or 0 for read in seen[-1].inputs)


def test_partition_pruning_opens_only_matching_files(shop: wharf.Lakehouse) -> None:
    assert _files_scanned(shop, "SELECT * FROM shop.orders") == 5
    assert _files_scanned(shop, "SELECT * FROM shop.orders WHERE day = DATE '2024-03-02'") == 1
    assert _files_scanned(shop, "SELECT * FROM shop.orders WHERE day >= '2024-03-04'") == 2
    assert _files_scanned(shop, "SELECT * FROM shop.orders o WHERE o.day IN ('2024-03-01', '2024-03-03')") == 2


def test_column_stats_pruning(shop: wharf.Lakehouse) -> None:
    # ids are 100..109, 200..209, … one range per file: min/max stats exclude the others
    assert _files_scanned(shop, "SELECT * FROM shop.orders WHERE id = 305") == 1
    assert _files_scanned(shop, "SELECT * FROM shop.orders WHERE id > 400") == 2


def test_pruning_is_never_wrong_for_null_sensitive_predicates(shop: wharf.Lakehouse) -> None:
    shop.sql("INSERT INTO shop.orders VALUES (999, NULL, NULL, NULL)")
    assert shop.sql("SELECT id FROM shop.orders WHERE amount IS NULL").fetchall() == [(999,)]
    assert shop.sql("SELECT count(*) FROM shop.orders WHERE NOT (amount > 5)").scalar() == 20
    # RIGHT JOIN: WHERE on the preserved side must not prune the other side's files wrongly
    rows = shop.sql(
        "SELECT c.id, o.id FROM shop.orders o RIGHT JOIN shop.customers c ON o.customer_id = c.id "
        "WHERE o.day IS NULL ORDER BY c.id"
    ).fetchall()
    assert rows == []


def test_params_are_bound_and_prune(shop: wharf.Lakehouse) -> None:
    assert shop.sql("SELECT count(*) FROM shop.orders WHERE day = ?", ["2024-03-03"]).scalar() == 10
    assert shop.sql("SELECT count(*) FROM shop.orders WHERE id = $id", {"id": 101}).scalar() == 1
    assert _files_scanned(shop, "SELECT * FROM shop.orders WHERE id = 101") == 1


def test_result_streams_batches_and_converts(shop: wharf.Lakehouse) -> None:
    shop.sql("CREATE TABLE big AS SELECT range AS x FROM range(300000)")
    result = shop.sql("SELECT x FROM big")
    batches = list(result.iter_batches())
    assert len(batches) > 1
    assert sum(b.num_rows for b in batches) == 300000
    result = shop.sql("SELECT name FROM shop.customers ORDER BY id")
    assert result.columns == ["name"]
    assert isinstance(result.to_arrow(), pa.Table)
    assert list(result.to_pandas()["name"]) == ["Ann", "Bob", "Cy"]
    assert result.to_polars()["name"].to_list() == ["Ann", "Bob", "Cy"]
    assert result.fetchall() == [("Ann",), ("Bob",), ("Cy",)]
    assert "Ann" in repr(result) and "<table>" in result._repr_html_()


def test_registered_dataframes_join_wharf_tables(shop: wharf.Lakehouse) -> None:
    shop.register("targets", pa.table({"country": ["FR"], "goal": [5]}))
    rows = shop.sql("SELECT t.goal, count(*) FROM shop.customers c JOIN targets t USING (country) GROUP BY t.goal").fetchall()
    assert rows == [(5, 2)]


def test_plan_cache_reuses_plans_until_table_changes(shop: wharf.Lakehouse) -> None:
    shop.sql("SELECT * FROM shop.customers").to_arrow()
    cached = len(shop.planner._cache)
    shop.sql("SELECT * FROM shop.customers").to_arrow()
    assert len(shop.planner._cache) == cached
    shop.sql("INSERT INTO shop.customers VALUES (4, 'Di', 'IT')")
    assert shop.sql("SELECT count(*) FROM shop.customers").scalar() == 4


def test_multiple_statements_return_the_last_result(lake: wharf.Lakehouse) -> None:
    result = lake.sql("CREATE TABLE t (a INT); INSERT INTO t VALUES (1), (2); SELECT sum(a) FROM t;")
    assert result.scalar() == 3


def test_casts_in_predicates_do_not_prune_matching_files(lake: wharf.Lakehouse) -> None:
    """Regression: pruning once ignored casts, so CAST(… AS DATE) on a timestamp lost rows."""
    lake.sql("CREATE TABLE t (ts TIMESTAMP, d DOUBLE)")
    lake.sql("INSERT INTO t VALUES (TIMESTAMP '2024-01-01 05:00:00', 1.8)")
    assert lake.sql("SELECT count(*) FROM t WHERE ts >= CAST('2024-01-01 10:00' AS DATE)").scalar() == 1
    assert lake.sql("SELECT count(*) FROM t WHERE d < CAST(1.7 AS INT)").scalar() == 1
