"""The changelog (``system.create_changelog_view``, ``t.changes``, ``Table.changes``) on the product example.

Every way of recording the history (copy-on-write, merge-on-read, equality deletes, a branch, a
compaction afterwards) must give the same changes, and a rewrite's carried-over rows none.
"""

from __future__ import annotations

import pytest

import wharf
from tests.history.conftest import MODES, build, rows
from wharf.errors import InvalidArgument, NotFound

EXPECTED = [  # (product_id, price, change type, ordinal)
    *((pid, price, "INSERT", 0) for pid, price in [("00001", 250), ("00002", 40), ("00003", 120), ("00004", 80), ("00005", 60)]),
    ("00001", 250, "UPDATE_BEFORE", 1),
    ("00001", 500, "UPDATE_AFTER", 1),
    ("00006", 30, "INSERT", 1),
    ("00003", 120, "DELETE", 2),
]


@pytest.mark.parametrize("mode", MODES)
def test_the_product_history_in_every_mode(lake: wharf.Lakehouse, mode: str) -> None:
    source = build(lake, mode)
    out = lake.sql(
        f"CALL system.create_changelog_view(table => '{source}', changelog_view => 'product_changes', "
        "identifier_columns => array('product_id'))"
    )
    assert out.columns == ["changelog_view"] and out.fetchall() == [("product_changes",)]
    got = rows(lake, "SELECT product_id, price, _change_type, _change_ordinal FROM product_changes")
    assert got == sorted(EXPECTED, key=repr)
    # One record's history, in order, with its commit times.
    history = lake.sql(
        "SELECT _change_type, price, _commit_timestamp FROM product_changes WHERE product_id = '00001' "
        "ORDER BY _change_ordinal, _change_type DESC"
    ).fetchall()
    assert [(t, p) for t, p, _ in history] == [("INSERT", 250), ("UPDATE_BEFORE", 250), ("UPDATE_AFTER", 500)]
    assert history[0][2] < history[1][2] == history[2][2]
    # The commits named are the table's snapshots.
    snapshots = {r[0] for r in lake.sql("SELECT snapshot_id FROM products.snapshots").fetchall()}
    assert {r[0] for r in lake.sql("SELECT DISTINCT _commit_snapshot_id FROM product_changes").fetchall()} <= snapshots


def test_metadata_table_and_python_api(lake: wharf.Lakehouse) -> None:
    build(lake, "copy-on-write")
    # t.changes: the full history, updates paired by the table's identifier fields.
    assert rows(lake, "SELECT product_id, price, _change_type, _change_ordinal FROM products.changes") == sorted(
        EXPECTED, key=repr
    )
    assert lake.sql("SELECT count(*) FROM products.changes WHERE product_id = '00001'").scalar() == 3
    table = lake.table("products")
    first, second, third = (r[0] for r in lake.sql("SELECT snapshot_id FROM products.snapshots ORDER BY committed_at").fetchall())
    # start exclusive, end inclusive
    only_merge = table.changes(start=first, end=second).fetchall()
    assert sorted((r[0], r[2], r[3]) for r in only_merge) == [
        ("00001", 250, "UPDATE_BEFORE"),
        ("00001", 500, "UPDATE_AFTER"),
        ("00006", 30, "INSERT"),
    ]
    assert {r[4] for r in only_merge} == {0}  # ordinals count from the range's first snapshot
    without_updates = table.changes(start=first, compute_updates=False).fetchall()
    assert sorted((r[0], r[2], r[3]) for r in without_updates) == [
        ("00001", 250, "DELETE"),
        ("00001", 500, "INSERT"),
        ("00003", 120, "DELETE"),
        ("00006", 30, "INSERT"),
    ]
    # net changes: 00003's delete cancels its insert; 00001's first price never shows.
    net = table.changes(net=True).to_arrow()
    assert sorted(zip(net["product_id"].to_pylist(), net["price"].to_pylist(), net["_change_type"].to_pylist(), strict=True)) == [
        ("00001", 500, "INSERT"),
        ("00002", 40, "INSERT"),
        ("00004", 80, "INSERT"),
        ("00005", 60, "INSERT"),
        ("00006", 30, "INSERT"),
    ]
    # by time: everything after the first commit
    after = lake.sql(f"SELECT committed_at FROM products.snapshots WHERE snapshot_id = {first}").scalar()
    assert len(table.changes(start=str(after)).fetchall()) == 4
    assert table.changes(start=third).fetchall() == []


def test_views_are_temporary_unless_persisted(lake: wharf.Lakehouse) -> None:
    build(lake, "merge-on-read")
    lake.sql("CALL system.create_changelog_view(table => 'products', changelog_view => 'tmp_changes')")
    assert (
        lake.sql("SELECT count(*) FROM tmp_changes WHERE _change_type IN ('INSERT', 'DELETE')").scalar() == 9
    )  # no identifier columns given: no update pairs
    other = lake.session()
    with pytest.raises(NotFound):
        other.sql("SELECT count(*) FROM tmp_changes")
    lake.sql(
        "CALL system.create_changelog_view(table => 'products', changelog_view => 'kept', net_changes => true, persist => true)"
    )
    assert other.sql("SELECT count(*) FROM kept").scalar() == 5  # a catalog view, with its options
    assert other.sql("SELECT count(*) FROM kept WHERE _change_type = 'INSERT'").scalar() == 5
    # CREATE VIEW over the metadata table persists a changelog too; joins and filters work on it.
    lake.sql(
        "CREATE VIEW price_changes AS SELECT product_id, price, _change_type FROM products.changes "
        "WHERE _change_type LIKE 'UPDATE%'"
    )
    assert sorted(other.sql("SELECT * FROM price_changes").fetchall()) == [
        ("00001", 250, "UPDATE_BEFORE"),
        ("00001", 500, "UPDATE_AFTER"),
    ]
    lake.sql("DROP VIEW tmp_changes")
    with pytest.raises(NotFound):
        lake.sql("SELECT * FROM tmp_changes")
    lake.sql("CREATE TEMPORARY VIEW cheap AS SELECT * FROM products WHERE price < 50")
    assert lake.sql("SELECT count(*) FROM cheap").scalar() == 2
    # SHOW VIEWS lists this handle's temporary views beside the catalog's, marked as Spark marks them.
    assert ("default", "cheap", True) in lake.sql("SHOW VIEWS").fetchall()
    assert ("default", "price_changes", False) in lake.sql("SHOW VIEWS").fetchall()
    assert ("default", "cheap", True) not in other.sql("SHOW VIEWS").fetchall()


def test_bad_arguments_are_clear(lake: wharf.Lakehouse) -> None:
    build(lake, "copy-on-write")
    with pytest.raises(InvalidArgument, match="net_changes and compute_updates"):
        lake.sql("CALL system.create_changelog_view(table => 'products', net_changes => true, compute_updates => true)")
    with pytest.raises(InvalidArgument, match="Unknown changelog option 'start-snapshot'"):
        lake.sql("CALL system.create_changelog_view(table => 'products', options => map('start-snapshot', '1'))")
    with pytest.raises(NotFound, match="no snapshot 42"):
        lake.sql("CALL system.create_changelog_view(table => 'products', options => map('start-snapshot-id', '42'))")
    with pytest.raises(InvalidArgument, match="'sku' is not a column"):
        lake.sql("CALL system.create_changelog_view(table => 'products', identifier_columns => array('sku'))")


def test_a_table_without_snapshots_has_no_changes(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE empty (id BIGINT)")
    assert lake.sql("SELECT * FROM empty.changes").fetchall() == []
    assert lake.sql("SELECT * FROM empty.changes").columns == [
        "id",
        "_change_type",
        "_change_ordinal",
        "_commit_snapshot_id",
        "_commit_timestamp",
    ]
