"""UPDATE, DELETE and MERGE INTO: copy-on-write semantics, branches, pruning, atomicity."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo, IsNull

import wharf
from wharf.errors import InvalidArgument, MergeCardinalityError, SchemaMismatch, UnsupportedStatement
from wharf.events import StatementEvent


def rows(lake: wharf.Lakehouse, sql: str) -> list[tuple]:
    return lake.sql(sql).fetchall()


def table_rows(lake: wharf.Lakehouse, name: str = "t") -> list[tuple]:
    return rows(lake, f"SELECT * FROM {name} ORDER BY ALL")


def snapshot_ids(lake: wharf.Lakehouse, name: str = "t") -> list[int]:
    return [r[0] for r in rows(lake, f"SELECT snapshot_id FROM {name}.snapshots ORDER BY committed_at")]


def data_files(lake: wharf.Lakehouse, name: str = "t") -> set[str]:
    return set(lake.table(name).iceberg.inspect.files()["file_path"].to_pylist())


def summary(lake: wharf.Lakehouse, name: str = "t") -> dict[str, str]:
    ice = lake.table(name).iceberg
    snap = ice.current_snapshot()
    assert snap is not None and snap.summary is not None
    return {"operation": snap.summary.operation.value, **snap.summary.additional_properties}


def create_branch(lake: wharf.Lakehouse, name: str, table: str = "t") -> None:
    ice = lake.table(table).iceberg
    ice.manage_snapshots().create_branch(ice.metadata.current_snapshot_id, name).commit()


@pytest.fixture
def t(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    """``t(id, name, qty)`` in three data files (one per INSERT), with a NULL qty."""
    lake.sql("CREATE TABLE t (id BIGINT, name VARCHAR, qty INT)")
    lake.sql("INSERT INTO t VALUES (1, 'a', 10), (2, 'b', 20)")
    lake.sql("INSERT INTO t VALUES (3, 'c', NULL), (4, 'd', 40)")
    lake.sql("INSERT INTO t VALUES (5, 'e', 50)")
    return lake


@pytest.fixture
def parts(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    """``p(id, region, amount)`` partitioned by region, one file per region."""
    lake.sql("CREATE TABLE p (id BIGINT, region VARCHAR, amount DOUBLE) PARTITIONED BY (region)")
    lake.sql(
        "INSERT INTO p SELECT range, CASE range % 3 WHEN 0 THEN 'eu' WHEN 1 THEN 'us' ELSE 'ap' END, range * 1.5 FROM range(30)"
    )
    return lake


# --- UPDATE ------------------------------------------------------------------------------------


def test_update_sets_matching_rows_and_reports_count(t: wharf.Lakehouse) -> None:
    result = t.sql("UPDATE t SET qty = qty + 1, name = upper(name) WHERE id IN (1, 4)")
    assert result.rowcount == 2
    assert result.fetchall() == [(2,)]
    assert result.columns == ["num_affected_rows"]
    assert table_rows(t) == [(1, "A", 11), (2, "b", 20), (3, "c", None), (4, "D", 41), (5, "e", 50)]


def test_update_where_keeps_null_rows(t: wharf.Lakehouse) -> None:
    t.sql("UPDATE t SET name = 'big' WHERE qty > 15")
    assert table_rows(t) == [(1, "a", 10), (2, "big", 20), (3, "c", None), (4, "big", 40), (5, "big", 50)]


def test_update_without_where_updates_all(t: wharf.Lakehouse) -> None:
    assert t.sql("UPDATE t SET qty = 0").rowcount == 5
    assert rows(t, "SELECT DISTINCT qty FROM t") == [(0,)]


def test_update_with_alias_and_qualified_columns(t: wharf.Lakehouse) -> None:
    t.sql("UPDATE default.t AS x SET qty = x.qty * 2 WHERE x.name = 'b'")
    t.sql("UPDATE default.t SET qty = t.qty + 1 WHERE default.t.id = 5")
    assert rows(t, "SELECT id, qty FROM t WHERE id IN (2, 5) ORDER BY id") == [(2, 40), (5, 51)]


def test_update_rewrites_only_affected_file(t: wharf.Lakehouse) -> None:
    before = data_files(t)
    t.sql("UPDATE t SET name = 'z' WHERE id = 5")
    after = data_files(t)
    assert len(before - after) == 1 and len(after - before) == 1
    s = summary(t)
    assert s["operation"] == "overwrite"
    assert s["deleted-data-files"] == "1" and s["added-data-files"] == "1"
    assert s["wharf.statement"] == "UPDATE t SET name = 'z' WHERE id = 5"


def test_update_nothing_matched_makes_no_snapshot(t: wharf.Lakehouse) -> None:
    before = snapshot_ids(t)
    result = t.sql("UPDATE t SET qty = 1 WHERE id = 999")
    assert result.rowcount == 0 and result.snapshot_id is None
    assert snapshot_ids(t) == before


def test_update_casts_to_column_type(t: wharf.Lakehouse) -> None:
    t.sql("UPDATE t SET qty = '7', name = 42 WHERE id = 1")
    assert rows(t, "SELECT name, qty, typeof(qty) FROM t WHERE id = 1") == [("42", 7, "INTEGER")]


def test_update_bad_cast_fails_and_leaves_table(t: wharf.Lakehouse) -> None:
    before, snaps = table_rows(t), snapshot_ids(t)
    with pytest.raises(SchemaMismatch):
        t.sql("UPDATE t SET qty = 'many' WHERE id = 1")
    assert table_rows(t) == before and snapshot_ids(t) == snaps


def test_update_not_null_violation_names_column_and_is_atomic(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE r (id BIGINT NOT NULL, v VARCHAR)")
    lake.sql("INSERT INTO r VALUES (1, 'a'), (2, 'b')")
    snaps, files = snapshot_ids(lake, "r"), data_files(lake, "r")
    with pytest.raises(SchemaMismatch, match="'id'"):
        lake.sql("UPDATE r SET id = NULL WHERE v = 'b'")
    assert table_rows(lake, "r") == [(1, "a"), (2, "b")]
    assert snapshot_ids(lake, "r") == snaps and data_files(lake, "r") == files


def test_update_unknown_column(t: wharf.Lakehouse) -> None:
    with pytest.raises(SchemaMismatch, match="nope"):
        t.sql("UPDATE t SET nope = 1")


def test_update_with_subquery_over_wharf_table(t: wharf.Lakehouse) -> None:
    t.sql("CREATE TABLE vip (id BIGINT)")
    t.sql("INSERT INTO vip VALUES (2), (3)")
    t.sql("UPDATE t SET name = 'vip' WHERE id IN (SELECT id FROM vip)")
    assert rows(t, "SELECT id FROM t WHERE name = 'vip' ORDER BY id") == [(2,), (3,)]


def test_update_from(t: wharf.Lakehouse) -> None:
    t.sql("CREATE TABLE prices (id BIGINT, qty INT)")
    t.sql("INSERT INTO prices VALUES (1, 100), (5, 500), (9, 900)")
    assert t.sql("UPDATE t SET qty = p.qty FROM prices p WHERE t.id = p.id").rowcount == 2
    assert rows(t, "SELECT id, qty FROM t WHERE id IN (1, 5) ORDER BY id") == [(1, 100), (5, 500)]
    t.sql("INSERT INTO prices VALUES (1, 101)")
    snaps = snapshot_ids(t)
    with pytest.raises(MergeCardinalityError, match="default.t"):
        t.sql("UPDATE t SET qty = p.qty FROM prices p WHERE t.id = p.id")
    assert snapshot_ids(t) == snaps


def test_update_from_join_and_subquery(t: wharf.Lakehouse) -> None:
    t.sql("CREATE TABLE a (id BIGINT, k INT)")
    t.sql("INSERT INTO a VALUES (1, 10), (2, 20)")
    t.sql("CREATE TABLE b (k INT, label VARCHAR)")
    t.sql("INSERT INTO b VALUES (10, 'ten'), (20, 'twenty')")
    assert t.sql("UPDATE t SET name = b.label FROM a JOIN b ON a.k = b.k WHERE t.id = a.id AND b.k > 10").rowcount == 1
    t.sql("UPDATE t SET name = q.v FROM (SELECT 3 AS id, 'three' AS v) q WHERE t.id = q.id")
    assert rows(t, "SELECT id, name FROM t WHERE id <= 3 ORDER BY id") == [(1, "a"), (2, "twenty"), (3, "three")]


def test_update_partition_column_moves_rows(parts: wharf.Lakehouse) -> None:
    parts.sql("UPDATE p SET region = 'eu' WHERE region = 'us' AND id < 10")
    counts = dict(rows(parts, "SELECT region, count(*) FROM p GROUP BY region"))
    assert counts == {"eu": 13, "us": 7, "ap": 10}
    partitions = {r[0] for r in rows(parts, "SELECT partition.region FROM p.files")}
    assert partitions == {"eu", "us", "ap"}


def test_update_prunes_partitions(parts: wharf.Lakehouse) -> None:
    before = data_files(parts, "p")
    parts.sql("UPDATE p SET amount = 0 WHERE region = 'ap'")
    after = data_files(parts, "p")
    assert len(before - after) == 1
    assert rows(parts, "SELECT count(*) FROM p WHERE amount = 0 AND region = 'ap'") == [(10,)]
    assert rows(parts, "SELECT count(*) FROM p WHERE amount = 0") == [(11,)]  # id 0 is in 'eu' with amount 0.0
    parts.sql("UPDATE p SET amount = -1 WHERE id = 0")
    assert rows(parts, "SELECT count(*) FROM p WHERE amount = 0") == [(10,)]


def test_update_branch_leaves_main(t: wharf.Lakehouse) -> None:
    create_branch(t, "b")
    main_before = table_rows(t)
    t.sql("UPDATE t.branch_b SET qty = -1 WHERE id = 1")
    assert table_rows(t) == main_before
    assert rows(t, "SELECT qty FROM t.branch_b WHERE id = 1") == [(-1,)]


def test_update_session_branch(t: wharf.Lakehouse) -> None:
    create_branch(t, "audit")
    t.sql("SET wharf.branch = 'audit'")
    try:
        t.sql("UPDATE t SET name = 'audited' WHERE id = 2")
        assert rows(t, "SELECT name FROM t WHERE id = 2") == [("audited",)]
    finally:
        t.sql("RESET wharf.branch")
    assert rows(t, "SELECT name FROM t WHERE id = 2") == [("b",)]
    assert rows(t, "SELECT name FROM t.branch_audit WHERE id = 2") == [("audited",)]


def test_update_on_tag_is_refused(t: wharf.Lakehouse) -> None:
    ice = t.table("t").iceberg
    ice.manage_snapshots().create_tag(ice.metadata.current_snapshot_id, "v1").commit()
    with pytest.raises(InvalidArgument, match="tag"):
        t.sql("UPDATE t.tag_v1 SET qty = 1")


def test_python_update_and_delete(t: wharf.Lakehouse) -> None:
    table = t.table("t")
    assert table.update({"qty": "qty * 10"}, where="id = 1").rowcount == 1
    assert table.delete("id > 3").rowcount == 2
    assert table_rows(t) == [(1, "a", 100), (2, "b", 20), (3, "c", None)]


# --- DELETE ------------------------------------------------------------------------------------


def test_delete_keeps_null_rows(t: wharf.Lakehouse) -> None:
    result = t.sql("DELETE FROM t WHERE qty > 15")
    assert result.rowcount == 3 and result.fetchall() == [(3,)]
    assert table_rows(t) == [(1, "a", 10), (3, "c", None)]


def test_delete_not_condition_keeps_nulls_too(t: wharf.Lakehouse) -> None:
    t.sql("DELETE FROM t WHERE NOT (qty > 15)")
    assert table_rows(t) == [(2, "b", 20), (3, "c", None), (4, "d", 40), (5, "e", 50)]


def test_delete_whole_file_is_removed_without_rewrite(t: wharf.Lakehouse) -> None:
    before = data_files(t)
    t.sql("DELETE FROM t WHERE id = 5")
    s = summary(t)
    assert s["operation"] == "delete"
    assert s["deleted-data-files"] == "1" and "added-data-files" not in s
    assert data_files(t) < before


def test_delete_partial_file_rewrites_only_that_file(t: wharf.Lakehouse) -> None:
    before = data_files(t)
    t.sql("DELETE FROM t WHERE id = 1")
    after = data_files(t)
    assert len(before - after) == 1 and len(after - before) == 1
    assert summary(t)["deleted-records"] == "2" and summary(t)["added-records"] == "1"


def test_delete_all_rows(t: wharf.Lakehouse) -> None:
    assert t.sql("DELETE FROM t").rowcount == 5
    assert table_rows(t) == []
    assert data_files(t) == set()


def test_delete_nothing_matched_makes_no_snapshot(t: wharf.Lakehouse) -> None:
    before = snapshot_ids(t)
    assert t.sql("DELETE FROM t WHERE name = 'zzz'").rowcount == 0
    assert t.sql("DELETE FROM t WHERE qty IS NULL AND qty > 0").rowcount == 0
    assert snapshot_ids(t) == before


def test_delete_on_empty_table(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE e (id INT)")
    assert lake.sql("DELETE FROM e WHERE id = 1").rowcount == 0
    assert lake.sql("UPDATE e SET id = 2").rowcount == 0
    assert snapshot_ids(lake, "e") == []


def test_delete_partitioned_drops_partition_files_only(parts: wharf.Lakehouse) -> None:
    before = data_files(parts, "p")
    parts.sql("DELETE FROM p WHERE region = 'us'")
    after = data_files(parts, "p")
    assert after < before and len(before - after) == 1
    assert summary(parts, "p")["operation"] == "delete"
    assert rows(parts, "SELECT DISTINCT region FROM p ORDER BY 1") == [("ap",), ("eu",)]


def test_delete_with_subquery_and_alias(t: wharf.Lakehouse) -> None:
    t.sql("CREATE TABLE gone (id BIGINT)")
    t.sql("INSERT INTO gone VALUES (2), (4)")
    t.sql("DELETE FROM t AS x WHERE x.id IN (SELECT id FROM gone) OR x.name = 'e'")
    assert [r[0] for r in table_rows(t)] == [1, 3]


def test_delete_branch_and_session_branch(t: wharf.Lakehouse) -> None:
    create_branch(t, "b")
    t.sql("DELETE FROM t.branch_b WHERE id <= 2")
    assert len(table_rows(t)) == 5
    assert [r[0] for r in rows(t, "SELECT id FROM t.branch_b ORDER BY id")] == [3, 4, 5]
    t.sql("SET wharf.branch = 'b'")
    try:
        t.sql("DELETE FROM t WHERE id = 3")
    finally:
        t.sql("RESET wharf.branch")
    assert len(table_rows(t)) == 5
    assert [r[0] for r in rows(t, "SELECT id FROM t.branch_b ORDER BY id")] == [4, 5]


def test_delete_after_time_travel_reads_current_data(t: wharf.Lakehouse) -> None:
    first = snapshot_ids(t)[0]
    t.sql("DELETE FROM t WHERE id = 1")
    assert rows(t, f"SELECT count(*) FROM t FOR VERSION AS OF {first}") == [(2,)]
    assert rows(t, "SELECT count(*) FROM t") == [(4,)]


# --- MERGE -------------------------------------------------------------------------------------


@pytest.fixture
def src(t: wharf.Lakehouse) -> wharf.Lakehouse:
    t.sql("CREATE TABLE s (id BIGINT, name VARCHAR, qty INT, op VARCHAR)")
    t.sql("INSERT INTO s VALUES (1, 'A', 11, 'u'), (2, NULL, NULL, 'd'), (6, 'F', 60, 'i'), (7, 'G', 70, 'x')")
    return t


def test_merge_upsert(src: wharf.Lakehouse) -> None:
    result = src.sql(
        "MERGE INTO t USING s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET name = s.name, qty = s.qty "
        "WHEN NOT MATCHED THEN INSERT (id, name, qty) VALUES (s.id, s.name, s.qty)"
    )
    assert result.columns == ["num_affected_rows", "num_updated_rows", "num_deleted_rows", "num_inserted_rows"]
    assert result.fetchall() == [(4, 2, 0, 2)] and result.rowcount == 4
    assert table_rows(src) == [
        (1, "A", 11),
        (2, None, None),
        (3, "c", None),
        (4, "d", 40),
        (5, "e", 50),
        (6, "F", 60),
        (7, "G", 70),
    ]


def test_merge_every_clause_kind_first_match_wins(src: wharf.Lakehouse) -> None:
    result = src.sql(
        "MERGE INTO t AS tgt USING s AS src ON tgt.id = src.id "
        "WHEN MATCHED AND src.op = 'd' THEN DELETE "
        "WHEN MATCHED AND src.op = 'u' THEN UPDATE SET qty = src.qty, name = 'upd' "
        "WHEN MATCHED THEN UPDATE SET name = 'never' "
        "WHEN NOT MATCHED AND src.op = 'i' THEN INSERT * "
        "WHEN NOT MATCHED BY TARGET THEN INSERT (id, name) VALUES (src.id * 100, 'other') "
        "WHEN NOT MATCHED BY SOURCE AND tgt.qty IS NULL THEN DELETE "
        "WHEN NOT MATCHED BY SOURCE AND qty > 45 THEN UPDATE SET name = 'old' "
        "WHEN NOT MATCHED BY SOURCE THEN UPDATE SET qty = qty + 1"
    )
    assert result.fetchall() == [(7, 3, 2, 2)]
    assert table_rows(src) == [(1, "upd", 11), (4, "d", 41), (5, "old", 50), (6, "F", 60), (700, "other", None)]


def test_merge_update_set_star_and_delete_only(src: wharf.Lakehouse) -> None:
    src.sql("CREATE TABLE s2 AS SELECT id, name, qty FROM s")
    src.sql("MERGE INTO t USING s2 ON t.id = s2.id WHEN MATCHED THEN UPDATE SET *")
    assert rows(src, "SELECT * FROM t WHERE id IN (1, 2) ORDER BY id") == [(1, "A", 11), (2, None, None)]
    assert src.sql("MERGE INTO t USING s2 ON t.id = s2.id WHEN MATCHED THEN DELETE").rowcount == 2
    assert [r[0] for r in table_rows(src)] == [3, 4, 5]


def test_merge_insert_star_needs_all_columns(src: wharf.Lakehouse) -> None:
    with pytest.raises(SchemaMismatch, match="qty"):
        src.sql("MERGE INTO t USING (SELECT id, name FROM s) s ON t.id = s.id WHEN NOT MATCHED THEN INSERT *")


def test_merge_insert_only_is_an_append(src: wharf.Lakehouse) -> None:
    before = data_files(src)
    result = src.sql(
        "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, name, qty) VALUES (s.id, s.name, s.qty)"
    )
    assert result.fetchall() == [(2, 0, 0, 2)]
    assert summary(src)["operation"] == "append"
    assert before < data_files(src)


def test_merge_nothing_to_do_makes_no_snapshot(src: wharf.Lakehouse) -> None:
    before = snapshot_ids(src)
    result = src.sql("MERGE INTO t USING s ON t.id = s.id AND s.op = 'none' WHEN MATCHED THEN DELETE")
    assert result.rowcount == 0
    result = src.sql(
        "MERGE INTO t USING (SELECT * FROM s WHERE false) s ON t.id = s.id "
        "WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT *"
    )
    assert result.rowcount == 0
    assert snapshot_ids(src) == before


def test_merge_cardinality_violation_is_atomic(src: wharf.Lakehouse) -> None:
    src.sql("INSERT INTO s VALUES (1, 'A2', 12, 'u')")
    before, snaps, files = table_rows(src), snapshot_ids(src), data_files(src)
    with pytest.raises(MergeCardinalityError, match="default.t") as info:
        src.sql(
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND s.op = 'zz' THEN UPDATE SET qty = 0 "
            "WHEN NOT MATCHED THEN INSERT *"
        )
    assert isinstance(info.value, InvalidArgument)
    assert table_rows(src) == before and snapshot_ids(src) == snaps and data_files(src) == files
    # Several matches are fine for a lone unconditional DELETE, and for inserts only.
    assert src.sql("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE").rowcount == 2
    assert [r[0] for r in table_rows(src)] == [3, 4, 5]


def test_merge_not_null_violation_is_atomic(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE r (id BIGINT NOT NULL, v VARCHAR)")
    lake.sql("INSERT INTO r VALUES (1, 'a')")
    snaps = snapshot_ids(lake, "r")
    with pytest.raises(SchemaMismatch, match="'id'"):
        lake.sql("MERGE INTO r USING (SELECT 2 AS k, 'b' AS v) s ON r.id = s.k WHEN NOT MATCHED THEN INSERT (v) VALUES (s.v)")
    assert snapshot_ids(lake, "r") == snaps and table_rows(lake, "r") == [(1, "a")]


def test_merge_composite_key(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE c (a INT, b VARCHAR, v DOUBLE)")
    lake.sql("INSERT INTO c VALUES (1, 'x', 1.0), (1, 'y', 2.0), (2, 'x', 3.0)")
    lake.sql(
        "MERGE INTO c USING (VALUES (1, 'y', 20.0), (2, 'y', 40.0), (2, 'x', 30.0)) AS s(a, b, v) "
        "ON c.a = s.a AND c.b = s.b WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *"
    )
    assert table_rows(lake, "c") == [(1, "x", 1.0), (1, "y", 20.0), (2, "x", 30.0), (2, "y", 40.0)]


def test_merge_source_time_travel_and_branch(src: wharf.Lakehouse) -> None:
    old = snapshot_ids(src, "s")[-1]
    src.sql("DELETE FROM s WHERE id = 1")
    src.sql(
        f"MERGE INTO t USING s FOR VERSION AS OF {old} AS o ON t.id = o.id "
        "WHEN MATCHED AND o.op = 'u' THEN UPDATE SET qty = o.qty"
    )
    assert rows(src, "SELECT qty FROM t WHERE id = 1") == [(11,)]
    create_branch(src, "dev", table="s")
    src.sql("UPDATE s.branch_dev SET qty = 999 WHERE id = 6")
    src.sql("MERGE INTO t USING s.branch_dev AS d ON t.id = d.id WHEN NOT MATCHED THEN INSERT (id, qty) VALUES (d.id, d.qty)")
    assert rows(src, "SELECT qty FROM t WHERE id IN (6, 7) ORDER BY id") == [(999,), (70,)]


def test_merge_source_registered_data_and_duckdb_functions(t: wharf.Lakehouse) -> None:
    t.register("incoming", pa.table({"id": [5, 8], "qty": [5, 8]}))
    t.sql(
        "MERGE INTO t USING incoming i ON t.id = i.id WHEN MATCHED THEN UPDATE SET qty = i.qty "
        "WHEN NOT MATCHED THEN INSERT (id, qty) VALUES (i.id, i.qty)"
    )
    t.unregister("incoming")
    t.sql("MERGE INTO t USING range(2) r(x) ON t.id = r.x WHEN NOT MATCHED THEN INSERT (id, name) VALUES (r.x, 'r')")
    assert rows(t, "SELECT id, name, qty FROM t WHERE id IN (0, 5, 8) ORDER BY id") == [(0, "r", None), (5, "e", 5), (8, None, 8)]


def test_merge_into_branch_leaves_main(src: wharf.Lakehouse) -> None:
    create_branch(src, "b")
    main_before = table_rows(src)
    src.sql("MERGE INTO t.branch_b USING s ON branch_b.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT *")
    assert table_rows(src) == main_before
    assert [r[0] for r in rows(src, "SELECT id FROM t.branch_b ORDER BY id")] == [3, 4, 5, 6, 7]


def files_planned(lake: wharf.Lakehouse, sql: str) -> list[int]:
    """Run ``sql``; the number of data files planned for each table it read (from its statement event)."""
    events: list[StatementEvent] = []
    stop = lake.events.subscribe("on_statement", events.append)
    try:
        lake.sql(sql)
    finally:
        stop()
    return [read.files for read in events[-1].inputs if read.files is not None]


@pytest.mark.parametrize("keys", ["1003", "1003, 1005", "1000 + range * 2 FROM range(5)"])
def test_merge_prunes_files_by_source_keys(parts: wharf.Lakehouse, keys: str) -> None:
    parts.sql("INSERT INTO p SELECT range, 'eu', 0 FROM range(1000, 1010)")
    before = data_files(parts, "p")
    assert len(before) == 4
    source = f"SELECT {keys.split(' FROM ')[0]} AS id, 9.5 AS amount" + (
        f" FROM {keys.split(' FROM ')[1]}" if " FROM " in keys else ""
    )
    if "," in keys:
        source = "SELECT unnest([1003, 1005]) AS id, 9.5 AS amount"
    merge = f"MERGE INTO p USING ({source}) s ON p.id = s.id WHEN MATCHED THEN UPDATE SET amount = s.amount"
    assert files_planned(parts, merge) == [1]
    after = data_files(parts, "p")
    assert len(before - after) == 1
    assert rows(parts, "SELECT count(*) FROM p WHERE amount = 9.5") != [(0,)]


def test_merge_key_pruning_keeps_matches_across_types(parts: wharf.Lakehouse) -> None:
    # String keys compared with a BIGINT column: DuckDB casts; pruning must not lose the match.
    parts.sql("MERGE INTO p USING (SELECT '07' AS id) s ON p.id = s.id WHEN MATCHED THEN DELETE")
    assert rows(parts, "SELECT count(*) FROM p WHERE id = 7") == [(0,)]
    # Only NULL keys: nothing can match, nothing is read or changed.
    before = snapshot_ids(parts, "p")
    parts.sql("MERGE INTO p USING (SELECT NULL::BIGINT AS id) s ON p.id = s.id WHEN MATCHED THEN DELETE")
    assert snapshot_ids(parts, "p") == before


def test_merge_on_target_only_condition_and_non_equi(t: wharf.Lakehouse) -> None:
    t.sql(
        "MERGE INTO t USING (SELECT 1 AS lo, 2 AS hi) s ON t.id BETWEEN s.lo AND s.hi AND t.name <> 'b' "
        "WHEN MATCHED THEN UPDATE SET qty = -t.qty"
    )
    assert rows(t, "SELECT id, qty FROM t WHERE qty < 0") == [(1, -10)]


def test_merge_self_source(t: wharf.Lakehouse) -> None:
    t.sql("MERGE INTO t USING (SELECT id, qty FROM t WHERE qty >= 40) s ON t.id = s.id WHEN MATCHED THEN DELETE")
    assert [r[0] for r in table_rows(t)] == [1, 2, 3]


def test_merge_rejects_misplaced_actions(src: wharf.Lakehouse) -> None:
    with pytest.raises(UnsupportedStatement):
        src.sql("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN UPDATE SET *")


def test_table_merge_and_overwrite(t: wharf.Lakehouse) -> None:
    table = t.table("t")
    table.merge(pa.table({"id": [1, 9], "name": ["m", "n"], "qty": [1, 9]}), on="id")
    assert rows(t, "SELECT id, name FROM t WHERE id IN (1, 9) ORDER BY id") == [(1, "m"), (9, "n")]
    table.merge(pa.table({"id": [9]}), on=["id"], when_matched="delete", when_not_matched=None)
    assert rows(t, "SELECT count(*) FROM t WHERE id = 9") == [(0,)]
    result = table.overwrite(pa.table({"id": [40], "name": ["new"], "qty": [1]}), where="qty >= 40")
    assert result.fetchall() == [(3, 0, 2, 1)]
    assert table_rows(t) == [(1, "m", 1), (2, "b", 20), (3, "c", None), (40, "new", 1)]
    table.overwrite(pa.table({"id": [1], "name": ["only"], "qty": [0]}))
    assert table_rows(t) == [(1, "only", 0)]


def test_merge_partitioned_overwrite_by_partition(parts: wharf.Lakehouse) -> None:
    before = data_files(parts, "p")
    parts.table("p").overwrite(pa.table({"id": [99], "region": ["us"], "amount": [1.0]}), where="region = 'us'")
    after = data_files(parts, "p")
    assert len(before - after) == 1
    assert rows(parts, "SELECT id FROM p WHERE region = 'us'") == [(99,)]
    assert rows(parts, "SELECT count(*) FROM p") == [(21,)]


def test_merge_unconditional_clause_must_be_last_of_its_kind(src: wharf.Lakehouse) -> None:
    with pytest.raises(UnsupportedStatement, match="last clause"):
        src.sql(
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT * "
            "WHEN MATCHED AND s.op = 'u' THEN UPDATE SET qty = 1"
        )


@pytest.mark.parametrize("extra", ["", ", u UUID"], ids=["duckdb-writer", "arrow-writer"])
def test_rewritten_files_are_standard_iceberg(lake: wharf.Lakehouse, extra: str) -> None:
    """Files written by UPDATE/MERGE read back through PyIceberg itself, with metrics that prune."""
    lake.sql(
        "CREATE TABLE k (id BIGINT NOT NULL, n INT, f FLOAT, d DOUBLE, b BOOLEAN, s VARCHAR, day DATE, "
        f"ts TIMESTAMP, tz TIMESTAMPTZ, amount DECIMAL(10, 2){extra})"
    )
    lake.sql(
        "INSERT INTO k SELECT range, range::INT, range / 2, range / 4, range % 2 = 0, 'v' || range, "
        "DATE '2024-01-01' + range::INT, TIMESTAMP '2024-01-01 10:00:00' + to_seconds(range), "
        "TIMESTAMPTZ '2024-01-01 10:00:00+00' + to_seconds(range), range * 1.25"
        + (", uuid()" if extra else "")
        + " FROM range(100)"
    )
    lake.sql("UPDATE k SET n = -n, s = upper(s), amount = amount + 1 WHERE id % 10 = 3")
    lake.sql(
        "MERGE INTO k USING (SELECT 500 AS id, 'zz' AS s) src ON k.id = src.id "
        "WHEN NOT MATCHED THEN INSERT (id, s, day) VALUES (src.id, src.s, DATE '2030-01-01')"
    )
    ice = lake.table("k").iceberg
    theirs = ice.scan().to_arrow().sort_by("id")
    mine = lake.sql("SELECT * FROM k ORDER BY id").to_arrow()
    assert theirs.num_rows == mine.num_rows == 101
    for name in ("id", "n", "f", "d", "s", "day", "ts", "tz", "amount", "b"):
        assert theirs[name].to_pylist() == mine[name].to_pylist(), name
    assert rows(lake, "SELECT n, s, amount FROM k WHERE id = 13") == [(-13, "V13", Decimal("17.25"))]
    files = [task.file.file_path for task in ice.scan().plan_files()]
    assert len(files) == 2
    assert all(f.endswith("-wharf.parquet") for f in files) == (extra == "")  # which writer ran
    assert len(list(ice.scan(row_filter=EqualTo("id", 500)).plan_files())) == 1
    assert len(list(ice.scan(row_filter=EqualTo("s", "zzz")).plan_files())) == 0
    assert len(list(ice.scan(row_filter=EqualTo("day", "2030-01-01")).plan_files())) == 1
    assert len(list(ice.scan(row_filter=EqualTo("amount", Decimal("999.00"))).plan_files())) == 0
    assert len(list(ice.scan(row_filter=IsNull("n")).plan_files())) == 1


@pytest.mark.parametrize("dialect", ["spark", "trino", "postgres"])
def test_dml_in_other_dialects(src: wharf.Lakehouse, dialect: str) -> None:
    src.sql("UPDATE t SET name = 'x' WHERE id = 1", dialect=dialect)
    src.sql("DELETE FROM t WHERE id = 2", dialect=dialect)
    result = src.sql(
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET qty = s.qty "
        "WHEN NOT MATCHED THEN INSERT (id, name, qty) VALUES (s.id, s.name, s.qty)",
        dialect=dialect,
    )
    assert result.fetchall() == [(4, 1, 0, 3)]
    assert rows(src, "SELECT * FROM t ORDER BY id") == [
        (1, "x", 11),
        (2, None, None),
        (3, "c", None),
        (4, "d", 40),
        (5, "e", 50),
        (6, "F", 60),
        (7, "G", 70),
    ]


@pytest.mark.parametrize(
    ("column_type", "values"),
    [
        ("DATE", ["DATE '2024-01-0{i}'", "DATE '2024-02-01'"]),
        ("TIMESTAMP", ["TIMESTAMP '2024-01-0{i} 10:00:00'", "TIMESTAMP '2024-02-01 00:00:00'"]),
        ("TIMESTAMPTZ", ["TIMESTAMPTZ '2024-01-0{i} 10:00:00+02'", "TIMESTAMPTZ '2024-02-01 00:00:00+00'"]),
        ("DECIMAL(8, 2)", ["{i}.25", "99.99"]),
        ("VARCHAR", ["'k{i}'", "'zz'"]),
    ],
)
def test_merge_key_pruning_per_type(lake: wharf.Lakehouse, column_type: str, values: list[str]) -> None:
    lake.sql(f"CREATE TABLE kt (k {column_type}, v INT)")
    for i in range(1, 5):
        lake.sql(f"INSERT INTO kt VALUES ({values[0].format(i=i)}, {i})")
    new, old = values[1], values[0].format(i=3)
    merge = (
        f"MERGE INTO kt USING (SELECT {old} AS k, 30 AS v UNION ALL SELECT {new}, 5) s ON kt.k = s.k "
        "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *"
    )
    assert files_planned(lake, merge) == [1]
    assert [r[0] for r in rows(lake, "SELECT v FROM kt ORDER BY v")] == [1, 2, 4, 5, 30]


def test_dml_under_wap_id_is_staged(t: wharf.Lakehouse) -> None:
    main_before = table_rows(t)
    t.sql("SET wharf.wap_id = 'job-1'")
    try:
        staged = t.sql("UPDATE t SET qty = 0 WHERE id = 1").snapshot_id
        t.sql("DELETE FROM t WHERE id = 2")
        t.sql("MERGE INTO t USING (SELECT 9 AS id) s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)")
    finally:
        t.sql("RESET wharf.wap_id")
    assert table_rows(t) == main_before
    wap = rows(t, "SELECT snapshot_id FROM t.snapshots WHERE summary['wap.id'] = 'job-1'")
    assert len(wap) == 3 and (staged,) in wap
    assert rows(t, f"SELECT qty FROM t FOR VERSION AS OF {staged} WHERE id = 1") == [(0,)]


def test_delete_from_a_table_with_not_null_columns(lake: wharf.Lakehouse) -> None:
    """A DELETE's changes carry no column values: the NOT NULL check must not look for them."""
    lake.sql("CREATE TABLE nn (id BIGINT NOT NULL, v VARCHAR NOT NULL)")
    lake.sql("INSERT INTO nn VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    assert lake.sql("DELETE FROM nn WHERE id = 2").scalar() == 1
    assert lake.sql("SELECT id FROM nn ORDER BY id").fetchall() == [(1,), (3,)]
