"""Metadata tables (t.snapshots, t.history, t.refs, t.files, …) are readable like tables and joinable."""

from __future__ import annotations

import pytest

import wharf
from wharf.errors import InvalidArgument
from wharf.sql.references import METADATA_TABLES

ALL = sorted(METADATA_TABLES)


@pytest.fixture
def t(lake: wharf.Lakehouse) -> list[int]:
    """An unpartitioned table t and a partitioned table p, each with a few commits; returns t's snapshot ids."""
    lake.sql("CREATE TABLE t (id BIGINT, v VARCHAR, s STRUCT(a INTEGER), l INTEGER[])")
    lake.sql("INSERT INTO t VALUES (1, 'a', {'a': 1}, [1]), (2, 'b', {'a': 2}, [2, 3])")
    lake.sql("INSERT INTO t VALUES (3, 'c', NULL, NULL)")
    lake.sql("INSERT OVERWRITE t SELECT id, v, s, l FROM t WHERE id <> 2")
    lake.sql("CREATE TABLE p (id BIGINT, day DATE) PARTITIONED BY (day)")
    lake.sql("INSERT INTO p VALUES (1, DATE '2024-01-01'), (2, DATE '2024-01-02')")
    lake.sql("INSERT INTO p VALUES (3, DATE '2024-01-02')")
    return [r[0] for r in lake.sql("SELECT snapshot_id FROM t.snapshots ORDER BY committed_at").fetchall()]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("table", ["t", "default.p"])
def test_every_metadata_table_is_readable(lake: wharf.Lakehouse, t: list[int], name: str, table: str) -> None:
    result = lake.sql(f"SELECT * FROM {table}.{name}")
    assert result.columns  # has a schema
    counted = lake.sql(f"SELECT count(*) FROM {table}.{name}").scalar()
    assert counted == len(result)


def test_snapshots_and_history_join(lake: wharf.Lakehouse, t: list[int]) -> None:
    rows = lake.sql(
        "SELECT s.snapshot_id, s.operation, h.is_current_ancestor, s.summary['wharf.user'] AS who "
        "FROM t.snapshots s JOIN t.history h ON s.snapshot_id = h.snapshot_id ORDER BY s.committed_at"
    ).fetchall()
    assert [r[0] for r in rows] == t
    assert [r[1] for r in rows] == ["append", "append", "overwrite"]
    assert all(r[2] for r in rows)
    assert {r[3] for r in rows} == {"tester"}


def test_snapshot_summary_records_the_statement(lake: wharf.Lakehouse, t: list[int]) -> None:
    statement = lake.sql(f"SELECT summary['wharf.statement'] FROM t.snapshots WHERE snapshot_id = {t[1]}").scalar()
    assert statement == "INSERT INTO t VALUES (3, 'c', NULL, NULL)"


def test_history_after_rollback(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"CALL system.rollback_to_snapshot('t', {t[0]})")
    rows = dict(lake.sql("SELECT snapshot_id, is_current_ancestor FROM t.history").fetchall())
    assert rows[t[0]] is True and rows[t[2]] is False


def test_refs_lists_branches_and_tags(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"ALTER TABLE t CREATE TAG v1 AS OF VERSION {t[0]}")
    lake.sql("ALTER TABLE t CREATE BRANCH dev RETAIN 2 DAYS")
    rows = lake.sql("SELECT name, type, snapshot_id FROM t.refs ORDER BY name").fetchall()
    assert rows == [("dev", "BRANCH", t[2]), ("main", "BRANCH", t[2]), ("v1", "TAG", t[0])]
    # joinable with the snapshots they point at
    ops = lake.sql("SELECT r.name, s.operation FROM t.refs r JOIN t.snapshots s USING (snapshot_id) ORDER BY r.name").fetchall()
    assert ops == [("dev", "overwrite"), ("main", "overwrite"), ("v1", "append")]


def test_files_match_the_data(lake: wharf.Lakehouse, t: list[int]) -> None:
    assert lake.sql("SELECT sum(record_count) FROM t.files").scalar() == lake.sql("SELECT count(*) FROM t").scalar()
    assert lake.sql("SELECT count(*) FROM t.delete_files").scalar() == 0
    assert lake.sql("SELECT count(*) FROM t.data_files").scalar() == lake.sql("SELECT count(*) FROM t.files").scalar()
    # an unpartitioned table's empty partition struct reads as NULL
    assert lake.sql("SELECT count(*) FROM t.files WHERE partition IS NULL").scalar() >= 1
    assert lake.sql("SELECT sum(record_count) FROM p.files").scalar() == 3


def test_files_at_an_older_snapshot(lake: wharf.Lakehouse, t: list[int]) -> None:
    assert lake.sql(f"SELECT sum(record_count) FROM t.files FOR VERSION AS OF {t[1]}").scalar() == 3
    lake.sql(f"ALTER TABLE t CREATE TAG first AS OF VERSION {t[0]}")
    assert lake.sql("SELECT sum(record_count) FROM t.files FOR VERSION AS OF 'first'").scalar() == 2


def test_partitions_of_a_partitioned_table(lake: wharf.Lakehouse, t: list[int]) -> None:
    rows = lake.sql("SELECT partition.day, record_count, file_count FROM p.partitions ORDER BY partition.day").fetchall()
    assert [(str(r[0]), r[1]) for r in rows] == [("2024-01-01", 1), ("2024-01-02", 2)]


def test_manifests_entries_and_metadata_log(lake: wharf.Lakehouse, t: list[int]) -> None:
    current = t[-1]
    manifests = lake.sql("SELECT added_snapshot_id FROM t.manifests").fetchall()
    assert current in {r[0] for r in manifests}
    statuses = lake.sql("SELECT status, count(*) FROM t.entries GROUP BY status ORDER BY status").fetchall()
    assert statuses  # ADDED / EXISTING / DELETED entries of the current snapshot
    paths = lake.sql("SELECT data_file.file_path FROM t.entries WHERE status <> 2").fetchall()
    assert {r[0] for r in paths} == {r[0] for r in lake.sql("SELECT file_path FROM t.files").fetchall()}
    log = lake.sql("SELECT latest_snapshot_id FROM t.metadata_log_entries ORDER BY timestamp").fetchall()
    assert log[-1][0] == current


def test_metadata_tables_mix_with_data_and_ctes(lake: wharf.Lakehouse, t: list[int]) -> None:
    rows = lake.sql(
        "WITH s AS (SELECT snapshot_id, committed_at FROM t.snapshots) "
        "SELECT (SELECT count(*) FROM t) AS rows_now, count(*) AS snapshots FROM s"
    ).fetchall()
    assert rows == [(2, 3)]
    union = lake.sql("SELECT 't' AS tbl, count(*) FROM t.snapshots UNION ALL SELECT 'p', count(*) FROM p.snapshots")
    assert sorted(union.fetchall()) == [("p", 2), ("t", 3)]


def test_metadata_tables_are_read_only(lake: wharf.Lakehouse, t: list[int]) -> None:
    with pytest.raises(InvalidArgument, match="read-only"):
        lake.sql("INSERT INTO t.snapshots SELECT * FROM t.snapshots")


def test_python_api_history_helpers(lake: wharf.Lakehouse, t: list[int]) -> None:
    table = lake.table("t")
    assert table.snapshots().column("snapshot_id").to_pylist() == t
    assert table.history().column("snapshot_id").to_pylist() == t
    assert table.refs().column("name").to_pylist() == ["main"]
