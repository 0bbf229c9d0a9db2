"""Names resolve case-insensitively (as in Spark's session catalog and DuckDB), to one stored spelling."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from pyiceberg.catalog import load_catalog

import wharf
from wharf.errors import AccessDenied, AlreadyExists
from wharf.principal import Principal
from wharf.sql.policy import ReferencePolicy
from wharf.sql.references import Reference

pytestmark = pytest.mark.metadata_backends  # SQLite and PostgreSQL metadata (tests/conftest.py)


@pytest.fixture
def shop(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE SCHEMA Shop")
    lake.sql("CREATE TABLE Shop.Orders (id BIGINT, secret VARCHAR)")
    lake.sql("INSERT INTO SHOP.ORDERS VALUES (1, 'x'), (2, 'y')")
    return lake


@pytest.mark.parametrize("dialect", ["duckdb", "spark", "trino"])
def test_any_spelling_reads_and_writes_the_table(shop: wharf.Lakehouse, dialect: str) -> None:
    shop.sql("INSERT INTO shop.orders VALUES (3, 'z')", dialect=dialect)
    shop.sql("UPDATE SHOP.Orders SET secret = 'w' WHERE id = 3", dialect=dialect)
    assert shop.sql("SELECT count(*) FROM shop.orders", dialect=dialect).scalar() == 3
    assert shop.sql("SELECT count(*) FROM SHOP.ORDERS.snapshots", dialect=dialect).scalar() == 3
    assert shop.table("shop.orders").name == shop.table("Shop.Orders").name


def test_one_object_per_folded_name(shop: wharf.Lakehouse) -> None:
    with pytest.raises(AlreadyExists):
        shop.sql("CREATE TABLE SHOP.orders (a INT)")
    with pytest.raises(AlreadyExists):
        shop.sql("CREATE SCHEMA shop")
    with pytest.raises(AlreadyExists):
        shop.sql("CREATE VIEW shop.ORDERS AS SELECT 1")
    # A new table in the namespace goes into its stored spelling.
    shop.sql("CREATE TABLE SHOP.items (id INT)")
    assert shop.sql("SHOW TABLES IN shop").fetchall() == [("Shop", "Orders", False), ("Shop", "items", False)]
    assert ("Shop", "items") in shop.catalog.list_tables("Shop")


def test_events_and_snapshots_carry_the_stored_name(shop: wharf.Lakehouse) -> None:
    seen = []
    stop = shop.events.subscribe("on_statement", seen.append)
    try:
        shop.sql("INSERT INTO shop.orders SELECT id + 10, secret FROM SHOP.ORDERS")
    finally:
        stop()
    [event] = seen
    assert [r.table for r in event.inputs] == ["Shop.Orders"] and [w.table for w in event.outputs] == ["Shop.Orders"]


class HideSecret:
    """A policy written against the stored name."""

    def __call__(self, principal: Principal, ref: Reference) -> ReferencePolicy | None:
        if principal.name != "analyst":
            return None
        if ref.label == "Shop.Orders":
            return ReferencePolicy(masks={"secret": sqlglot.parse_one("'***'")})
        raise AccessDenied(f"no access to {ref.label}")


def test_policies_cannot_be_evaded_by_respelling(shop: wharf.Lakehouse) -> None:
    shop.add_policy(HideSecret())
    shop.sql("GRANT SELECT ON CATALOG TO USER analyst")  # governance lets analyst read; the test policy masks
    analyst = shop.session(user="analyst")
    for name in ("Shop.Orders", "shop.orders", "SHOP.ORDERS", '"shop"."ORDERS"'):
        assert analyst.sql(f"SELECT DISTINCT secret FROM {name}").fetchall() == [("***",)]


def test_renames_drops_and_views_take_any_spelling(shop: wharf.Lakehouse) -> None:
    shop.sql("CREATE VIEW shop.Recent AS SELECT * FROM shop.orders WHERE id > 1")
    assert shop.sql("SELECT count(*) FROM SHOP.RECENT").scalar() == 1
    shop.sql("ALTER VIEW shop.recent RENAME TO shop.Latest")
    shop.sql("ALTER TABLE SHOP.ORDERS RENAME TO shop.Sales")
    assert shop.catalog.list_tables("Shop") == [("Shop", "Sales")]
    assert shop.catalog.list_views("shop") == [("Shop", "Latest")]
    shop.sql("DROP VIEW shop.LATEST")
    shop.sql("DROP TABLE shop.sales")
    shop.sql("DROP SCHEMA SHOP")
    assert shop.sql("SHOW SCHEMAS").fetchall() == [("default",)]


def test_pyiceberg_clients_get_the_same_folding(shop: wharf.Lakehouse) -> None:
    other = load_catalog("other", **{"py-catalog-impl": "wharf.catalog.LakeCatalog", "lake": str(shop.path)})
    assert other.load_table("shop.orders").name() == ("Shop", "Orders")
    assert other.table_exists("SHOP.ORDERS") and other.namespace_exists("SHOP")
    assert not other.table_exists("shop.missing")


def test_a_name_found_to_be_no_view_is_asked_again_once_the_catalog_changed(tmp_path: Path) -> None:
    """load_view remembers misses only while the catalog database is unchanged (catalog.freshness):
    a view created afterwards — by this handle or another process's connection — is found."""
    from pyiceberg.exceptions import NoSuchViewError

    with wharf.connect(tmp_path / "lake", user="a") as first, wharf.connect(tmp_path / "lake", user="a") as other:
        for _ in range(2):  # the second miss is answered from memory
            with pytest.raises(NoSuchViewError):
                first.catalog.load_view(("default", "later"))
        other.sql("CREATE VIEW later AS SELECT 7 AS n")  # another catalog connection
        assert first.sql("SELECT n FROM later").fetchall() == [(7,)]
        first.sql("DROP VIEW later")
        with pytest.raises(NoSuchViewError):
            first.catalog.load_view(("default", "later"))
        first.sql("CREATE VIEW later AS SELECT 8 AS n")  # this handle's own connection
        assert first.sql("SELECT n FROM later").fetchall() == [(8,)]
