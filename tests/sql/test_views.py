"""Views: Iceberg view metadata in the lake's catalog, expanded into every statement that reads them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlglot
from pyiceberg.catalog import load_catalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField
from pyiceberg.view.metadata import SQLViewRepresentation, ViewRepresentation, ViewVersion
from sqlglot import exp

import wharf
from wharf.catalog.changes import TableChange
from wharf.errors import AccessDenied, AlreadyExists, CommitRejected, InvalidArgument, NotFound, UnsupportedStatement
from wharf.events import StatementEvent
from wharf.principal import Principal
from wharf.sql.policy import ReferencePolicy
from wharf.sql.references import Reference


@pytest.fixture
def shop(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE SCHEMA shop")
    lake.sql("CREATE TABLE shop.orders (id BIGINT, region VARCHAR, amount DOUBLE)")
    lake.sql("INSERT INTO shop.orders VALUES (1, 'eu', 10), (2, 'us', 20), (3, 'eu', 5)")
    lake.sql("CREATE VIEW shop.eu AS SELECT id, amount FROM shop.orders WHERE region = 'eu'")
    return lake


def rows(lake: wharf.Lakehouse, sql: str) -> list[tuple[object, ...]]:
    return lake.sql(sql).fetchall()


def test_a_view_reads_its_query_in_every_query_shape(shop: wharf.Lakehouse) -> None:
    assert rows(shop, "SELECT sum(amount) FROM shop.eu") == [(15.0,)]
    assert rows(shop, "SELECT e.id, o.region FROM shop.eu e JOIN shop.orders o USING (id) ORDER BY 1") == [(1, "eu"), (3, "eu")]
    assert rows(shop, "WITH x AS (SELECT * FROM shop.eu) SELECT count(*) FROM x") == [(2,)]
    assert rows(shop, "SELECT count(*) FROM shop.orders WHERE id IN (SELECT id FROM shop.eu)") == [(2,)]
    # Spark's catalog.namespace.view names it too.
    assert rows(shop, "SELECT count(*) FROM lake.shop.eu") == [(2,)]
    # The view's query sees new data: it stores the query, not its result.
    shop.sql("INSERT INTO shop.orders VALUES (4, 'eu', 1)")
    assert rows(shop, "SELECT count(*) FROM shop.eu") == [(3,)]


def test_views_on_views_follow_the_current_definition(shop: wharf.Lakehouse) -> None:
    shop.sql("CREATE VIEW shop.eu_big AS SELECT * FROM shop.eu WHERE amount > 6")
    assert rows(shop, "SELECT id FROM shop.eu_big") == [(1,)]
    shop.sql("ALTER VIEW shop.eu AS SELECT id, amount * 2 AS amount FROM shop.orders WHERE region = 'eu'")
    assert rows(shop, "SELECT id FROM shop.eu_big ORDER BY id") == [(1,), (3,)]


def test_column_list_comments_and_properties(shop: wharf.Lakehouse) -> None:
    shop.sql(
        "CREATE OR REPLACE VIEW shop.eu (order_id COMMENT 'the order', amount) COMMENT 'EU orders' "
        "TBLPROPERTIES ('owner' = 'sales') AS SELECT id, amount FROM shop.orders WHERE region = 'eu'"
    )
    assert rows(shop, "SELECT order_id FROM shop.eu ORDER BY 1") == [(1,), (3,)]
    assert rows(shop, "DESCRIBE shop.eu") == [("order_id", "BIGINT", "the order"), ("amount", "DOUBLE", None)]
    view = shop.catalog.load_view(("shop", "eu"))
    assert view.metadata.properties["owner"] == "sales" and view.metadata.properties["comment"] == "EU orders"
    assert view.schema().find_field("order_id").doc == "the order"
    shop.sql("ALTER VIEW shop.eu SET TBLPROPERTIES ('team' = 'emea')")
    shop.sql("ALTER VIEW shop.eu UNSET TBLPROPERTIES ('owner')")
    properties = shop.catalog.load_view(("shop", "eu")).metadata.properties
    assert properties.get("team") == "emea" and "owner" not in properties
    with pytest.raises(NotFound):
        shop.sql("ALTER VIEW shop.eu UNSET TBLPROPERTIES ('owner')")
    shop.sql("ALTER VIEW shop.eu UNSET TBLPROPERTIES IF EXISTS ('owner')")


def test_show_create_table_of_a_view_recreates_it(shop: wharf.Lakehouse) -> None:
    shop.sql(
        "CREATE OR REPLACE VIEW shop.eu (order_id COMMENT 'it''s the order', amount) COMMENT 'EU orders' "
        "TBLPROPERTIES ('owner' = 'sales') AS SELECT id, amount FROM shop.orders WHERE region = 'eu'"
    )
    ddl = shop.sql("SHOW CREATE TABLE shop.eu").scalar()
    before = shop.catalog.load_view(("shop", "eu"))
    shop.sql("DROP VIEW shop.eu")
    shop.sql(ddl)
    after = shop.catalog.load_view(("shop", "eu"))
    assert rows(shop, "SELECT * FROM shop.eu ORDER BY 1") == [(1, 10.0), (3, 5.0)]
    assert after.schema().fields == before.schema().fields
    assert after.metadata.properties["owner"] == "sales" and after.metadata.properties["comment"] == "EU orders"


def test_the_view_keeps_the_columns_it_was_defined_with(shop: wharf.Lakehouse) -> None:
    shop.sql("CREATE VIEW shop.everything AS SELECT * FROM shop.orders")
    shop.sql("ALTER TABLE shop.orders ADD COLUMN note VARCHAR")
    assert shop.sql("SELECT * FROM shop.everything").columns == ["id", "region", "amount"]


def test_names_are_checked_and_views_are_listed(shop: wharf.Lakehouse) -> None:
    with pytest.raises(AlreadyExists):
        shop.sql("CREATE VIEW shop.eu AS SELECT 1")
    shop.sql("CREATE VIEW IF NOT EXISTS shop.eu AS SELECT 1 AS one")
    assert rows(shop, "SELECT count(*) FROM shop.eu") == [(2,)]  # unchanged
    with pytest.raises(AlreadyExists, match="is a table"):
        shop.sql("CREATE VIEW shop.orders AS SELECT 1")
    with pytest.raises(AlreadyExists, match="is a view"):
        shop.sql("CREATE TABLE shop.eu (a INT)")
    with pytest.raises(NotFound):
        shop.sql("CREATE VIEW nowhere.v AS SELECT 1")
    with pytest.raises(InvalidArgument):
        shop.sql('CREATE VIEW shop."a/b" AS SELECT 1')
    shop.sql("CREATE VIEW top AS SELECT 1 AS one")
    assert rows(shop, "SHOW VIEWS IN shop") == [("shop", "eu", False)]
    assert rows(shop, "SHOW VIEWS") == [("default", "top", False)]
    # Views are not tables: SHOW TABLES and the Python API's table listing leave them out.
    assert ("shop", "eu") not in [tuple(r[:2]) for r in rows(shop, "SHOW TABLES IN shop")]
    with pytest.raises(UnsupportedStatement, match="materialized"):
        shop.sql("CREATE MATERIALIZED VIEW m AS SELECT 1")


def test_a_view_cannot_read_itself(shop: wharf.Lakehouse) -> None:
    with pytest.raises(InvalidArgument, match="refers to itself"):
        shop.sql("CREATE OR REPLACE VIEW shop.eu AS SELECT * FROM shop.eu")
    shop.sql("CREATE VIEW shop.a AS SELECT * FROM shop.eu")
    with pytest.raises(InvalidArgument, match=r"shop\.eu → shop\.a → shop\.eu"):
        shop.sql("ALTER VIEW shop.eu AS SELECT * FROM shop.a")
    assert rows(shop, "SELECT count(*) FROM shop.a") == [(2,)]  # nothing changed


def test_statements_that_need_a_table_refuse_a_view(shop: wharf.Lakehouse) -> None:
    for sql in [
        "INSERT INTO shop.eu VALUES (9, 9)",
        "UPDATE shop.eu SET amount = 0",
        "DELETE FROM shop.eu",
        "MERGE INTO shop.eu t USING shop.orders s ON t.id = s.id WHEN MATCHED THEN DELETE",
        "TRUNCATE TABLE shop.eu",
        "ALTER TABLE shop.eu ADD COLUMN x INT",
        "CALL system.expire_snapshots('shop.eu')",
    ]:
        with pytest.raises(InvalidArgument, match="is a view"):
            shop.sql(sql)
    with pytest.raises(InvalidArgument, match="DROP VIEW"):
        shop.sql("DROP TABLE shop.eu")
    with pytest.raises(InvalidArgument, match="DROP TABLE"):
        shop.sql("DROP VIEW shop.orders")
    with pytest.raises(UnsupportedStatement, match="no history"):
        shop.sql("SELECT * FROM shop.eu VERSION AS OF 1")
    assert rows(shop, "SELECT count(*) FROM shop.orders") == [(3,)]


def test_rename_and_drop(shop: wharf.Lakehouse) -> None:
    shop.sql("ALTER VIEW shop.eu RENAME TO shop.europe")
    assert rows(shop, "SELECT count(*) FROM shop.europe") == [(2,)]
    with pytest.raises(NotFound):
        shop.sql("SELECT * FROM shop.eu")
    shop.sql("DROP VIEW shop.europe")
    shop.sql("DROP VIEW IF EXISTS shop.europe")
    with pytest.raises(NotFound):
        shop.sql("DROP VIEW shop.europe")
    assert rows(shop, "SHOW VIEWS IN shop") == []


def test_views_written_in_spark_sql_store_every_dialect(shop: wharf.Lakehouse) -> None:
    shop.sql("CREATE VIEW shop.named AS SELECT nvl(region, 'none') AS r, id FROM shop.orders", dialect="spark")
    representations = {
        r.root.dialect: r.root.sql for r in shop.catalog.load_view(("shop", "named")).current_version().representations
    }
    assert {"spark", "duckdb"} <= set(representations)
    # Each representation is valid in its dialect (sqlglot writes Spark's nvl as COALESCE).
    for dialect, text in representations.items():
        assert sqlglot.parse_one(text, read=dialect).find(exp.Coalesce) is not None
    assert rows(shop, "SELECT count(*) FROM shop.named WHERE r = 'eu'") == [(2,)]


def test_a_view_another_engine_created_reads_through_its_sql(shop: wharf.Lakehouse) -> None:
    """Spark or Trino store one representation in their own dialect; Wharf transpiles it."""
    version = ViewVersion(
        version_id=1,
        schema_id=0,
        timestamp_ms=1,
        summary={"engine-name": "spark"},
        representations=[
            ViewRepresentation(
                SQLViewRepresentation(type="sql", sql="SELECT id FROM orders WHERE nvl(amount, 0) > 6", dialect="spark")
            )
        ],
        default_namespace=["shop"],
    )
    other = load_catalog("other", **{"py-catalog-impl": "wharf.catalog.LakeCatalog", "lake": str(shop.path)})
    other.create_view(("shop", "from_spark"), Schema(NestedField(1, "id", LongType(), required=False)), version)
    # One-part names inside a view resolve in the view's default namespace (Iceberg's rule).
    assert rows(shop, "SELECT id FROM shop.from_spark ORDER BY id") == [(1,), (2,)]
    # …and the separately loaded catalog lists Wharf's views with their SQL.
    assert ("shop", "eu") in other.list_views("shop")
    assert "shop.orders" in other.load_view(("shop", "eu")).current_version().representations[0].root.sql


class EuOnly:
    """For 'analyst': orders of the eu region only, amounts masked."""

    def __call__(self, principal: Principal, ref: Reference) -> ReferencePolicy | None:
        if principal.name != "analyst":
            return None
        if ref.label == "shop.orders":
            return ReferencePolicy(row_filter=sqlglot.parse_one("region = 'eu'"), masks={"amount": sqlglot.parse_one("0")})
        raise AccessDenied(f"analyst may not read {ref.label}")


def test_policies_apply_to_the_tables_a_view_reads(shop: wharf.Lakehouse) -> None:
    shop.sql("CREATE VIEW shop.all_orders AS SELECT id, region, amount FROM shop.orders")
    shop.sql("CREATE TABLE shop.secret (x INT)")
    shop.sql("CREATE VIEW shop.leak AS SELECT x FROM shop.secret")
    shop.add_policy(EuOnly())
    shop.sql("GRANT SELECT ON CATALOG TO USER analyst")  # governance lets analyst read; the test policy restricts
    analyst = shop.session(user="analyst")
    # A view runs with the reader's rights: it cannot be used to see rows or values the tables hide.
    assert rows(analyst, "SELECT id, amount FROM shop.all_orders ORDER BY id") == [(1, 0.0), (3, 0.0)]
    with pytest.raises(AccessDenied):
        analyst.sql("SELECT * FROM shop.leak")
    assert rows(shop, "SELECT count(*) FROM shop.all_orders") == [(3,)]


@pytest.fixture
def changes(shop: wharf.Lakehouse) -> Iterator[list[TableChange]]:
    seen: list[TableChange] = []
    stop = shop.events.subscribe("before_commit", seen.append)
    yield seen
    stop()


def test_view_changes_pass_the_commit_gates(shop: wharf.Lakehouse, changes: list[TableChange]) -> None:
    shop.sql("CREATE VIEW shop.v AS SELECT 1 AS one")
    shop.sql("ALTER VIEW shop.v AS SELECT 2 AS two")
    shop.sql("ALTER VIEW shop.v SET TBLPROPERTIES ('a' = 'b')")
    shop.sql("ALTER VIEW shop.v RENAME TO shop.w")
    shop.sql("DROP VIEW shop.w")
    assert [(c.kind, c.table, c.principal.name) for c in changes] == [
        ("create_view", "shop.v", "tester"),
        ("replace_view", "shop.v", "tester"),
        ("replace_view", "shop.v", "tester"),
        ("rename_view", "shop.v", "tester"),
        ("drop_view", "shop.w", "tester"),
    ]

    def refuse(change: TableChange) -> None:
        if change.kind == "create_view":
            raise CommitRejected("views need review", table=change.table)

    shop.events.subscribe("before_commit", refuse)
    with pytest.raises(CommitRejected):
        shop.sql("CREATE VIEW shop.unreviewed AS SELECT 1 AS one")
    assert rows(shop, "SHOW VIEWS IN shop") == [("shop", "eu", False)]


def test_view_statements_emit_events(shop: wharf.Lakehouse) -> None:
    events: list[StatementEvent] = []
    stop = shop.events.subscribe("on_statement", events.append)
    try:
        shop.sql("CREATE VIEW shop.v AS SELECT id FROM shop.orders")
        shop.sql("SELECT * FROM shop.v")
    finally:
        stop()
    assert [e.kind for e in events] == ["create_view", "select"]
    # Lineage reaches through the view to the table it reads.
    assert [r.table for r in events[1].inputs] == ["shop.orders"]
    assert events[1].column_lineage() == {"id": ("shop.orders.id",)}
