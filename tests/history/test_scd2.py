"""SCD Type-2 from the snapshots: ``t.scd2``, ``system.create_scd2_view``, ``system.refresh_scd2_table``.

The defining property: the versions valid at a time T are exactly the rows of the table as of T
(``FOR TIMESTAMP AS OF``) — checked with hypothesis over random histories of inserts, updates,
deletes and MERGEs, copy-on-write and merge-on-read, with compactions in between.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wharf
from tests.conftest import past_last_commit
from tests.history.conftest import MODES, MOR, build, rows

PRODUCT = "SELECT product_id, name, price FROM {t}"


@pytest.mark.parametrize("mode", MODES)
def test_the_product_versions_in_every_mode(lake: wharf.Lakehouse, mode: str) -> None:
    source = build(lake, mode)
    out = lake.sql(
        f"CALL system.create_scd2_view(table => '{source}', view => 'products_scd2', identifier_columns => array('product_id'))"
    )
    assert out.fetchall() == [("products_scd2",)]
    versions = lake.sql(
        "SELECT product_id, price, effective_start, effective_end, is_current FROM products_scd2 "
        "ORDER BY product_id, effective_start"
    ).fetchall()
    desk = [v for v in versions if v[0] == "00001"]
    assert [(v[1], v[4]) for v in desk] == [(250, False), (500, True)]
    assert desk[0][3] == desk[1][2] and desk[1][3] is None  # the old price ends when the new one starts
    [chair] = [v for v in versions if v[0] == "00003"]
    assert chair[4] is False and chair[3] is not None and chair[3] > chair[2]
    current = rows(lake, "SELECT product_id, name, price FROM products_scd2 WHERE is_current")
    assert current == rows(lake, PRODUCT.format(t=source))
    assert len(versions) == 7


def test_metadata_table_delete_markers_and_materializing(lake: wharf.Lakehouse) -> None:
    build(lake, "merge-on-read")
    assert lake.sql("SELECT count(*) FROM products.scd2").scalar() == 7  # versioned by the identifier fields
    lake.sql("CALL system.create_scd2_view(table => 'products', view => 'with_markers', delete_markers => true)")
    markers = lake.sql("SELECT product_id, is_current FROM with_markers WHERE is_deleted").fetchall()
    assert markers == [("00003", True)]  # deleted, and still deleted now
    lake.sql("CREATE TABLE dim AS SELECT * FROM products.scd2")
    assert rows(lake, "SELECT * FROM dim") == rows(lake, "SELECT * FROM products.scd2")
    via_python = lake.table("products").scd2().to_arrow()
    assert via_python.num_rows == 7 and via_python.column_names[-3:] == ["effective_start", "effective_end", "is_current"]


def test_incremental_refresh(lake: wharf.Lakehouse) -> None:
    build(lake, "copy-on-write")
    call = "CALL system.refresh_scd2_table(table => 'products', target => 'dim', identifier_columns => array('product_id'))"
    first = lake.sql(call).fetchall()
    assert first[0][1:] == (7, 0)
    assert rows(lake, "SELECT * FROM dim") == rows(lake, "SELECT * FROM products.scd2")
    # Nothing new: nothing to do, no commit.
    commits = lake.sql("SELECT count(*) FROM dim.snapshots").scalar()
    assert lake.sql(call).fetchall()[0][1:] == (0, 0)
    assert lake.sql("SELECT count(*) FROM dim.snapshots").scalar() == commits
    past_last_commit(lake, "products")
    lake.sql("UPDATE products SET price = 45 WHERE product_id = '00002'")
    past_last_commit(lake, "products")
    lake.sql("DELETE FROM products WHERE product_id IN ('00004', '00006')")
    lake.sql("INSERT INTO products VALUES ('00003', 'chair', 130)")  # a deleted key comes back
    head = lake.table("products").current_snapshot_id()
    assert lake.sql(call).fetchall() == [(head, 2, 3)]  # 00002's new price, 00003's return; 00002, 00004, 00006 closed
    assert rows(lake, "SELECT * FROM dim") == rows(lake, "SELECT * FROM products.scd2")
    summary = dict(lake.sql("SELECT summary FROM dim.snapshots ORDER BY committed_at DESC LIMIT 1").scalar())
    assert summary["wharf.scd2.source-snapshot-id"] == str(head) and summary["wharf.scd2.source"] == "default.products"


# --- the point-in-time property ------------------------------------------------------------------

Op = tuple[str, Any]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.lists(st.integers(0, 15), min_size=1, max_size=4, unique=True)),
        st.tuples(st.just("update"), st.integers(0, 15)),
        st.tuples(st.just("delete"), st.integers(0, 15)),
        st.tuples(st.just("merge"), st.lists(st.integers(0, 15), min_size=1, max_size=4, unique=True)),
        st.tuples(st.just("compact"), st.none()),
    ),
    min_size=2,
    max_size=6,
)


def _apply(lake: wharf.Lakehouse, op: Op, step: int) -> None:
    kind, arg = op
    if kind == "insert":
        present = {r[0] for r in lake.sql("SELECT id FROM t").fetchall()}
        values = ", ".join(f"({i}, 'v{step}', {step})" for i in arg if i not in present)
        if values:
            lake.sql(f"INSERT INTO t VALUES {values}")
    elif kind == "update":
        lake.sql(f"UPDATE t SET v = 'u{step}', n = n + 1 WHERE id % 4 = {arg % 4}")
    elif kind == "delete":
        lake.sql(f"DELETE FROM t WHERE id % 5 = {arg % 5}")
    elif kind == "merge":
        source = " UNION ALL ".join(f"SELECT {i} AS id, 'm{step}' AS v, {step} AS n" for i in arg)
        lake.sql(
            f"MERGE INTO t USING ({source}) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v, n = s.n "
            "WHEN NOT MATCHED THEN INSERT *"
        )
    else:
        lake.sql("CALL system.rewrite_data_files(table => 't', options => map('min-input-files', '1'))")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=ops, merge_on_read=st.booleans())
def test_versions_valid_at_a_time_are_the_table_as_of_that_time(history: list[Op], merge_on_read: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, wharf.connect(Path(tmp) / "lake", user="tester") as lake:
        lake.sql("CREATE TABLE t (id BIGINT NOT NULL, v VARCHAR, n BIGINT)")
        lake.sql("ALTER TABLE t SET IDENTIFIER FIELDS id")
        if merge_on_read:
            lake.sql("ALTER TABLE t SET TBLPROPERTIES (" + ", ".join(f"'{k}' = '{v}'" for k, v in MOR.items()) + ")")
        lake.sql("INSERT INTO t VALUES (1, 'a', 0), (2, 'b', 0), (6, 'c', 0), (11, 'd', 0)")
        for step, op in enumerate(history, start=1):
            past_last_commit(lake, "t")
            _apply(lake, op, step)
        times = [r[0] for r in lake.sql("SELECT committed_at FROM t.snapshots ORDER BY committed_at").fetchall()]
        for at in times:
            as_of = rows(lake, f"SELECT id, v, n FROM t FOR TIMESTAMP AS OF '{at}'")
            valid = rows(
                lake,
                f"SELECT id, v, n FROM t.scd2 WHERE TIMESTAMP '{at}' >= effective_start "
                f"AND (effective_end IS NULL OR TIMESTAMP '{at}' < effective_end)",
            )
            assert valid == as_of, f"at {at}"
        # Net changes from the start are the table; applying the changelog replays it.
        net = rows(lake, "SELECT id, v, n, _change_type FROM t.changes WHERE false UNION ALL SELECT id, v, n, 'INSERT' FROM t")
        lake.sql("CALL system.create_changelog_view(table => 't', changelog_view => 'net', net_changes => true)")
        assert rows(lake, "SELECT id, v, n, _change_type FROM net") == net
