"""Merge-on-read tables written by other engines: Wharf's read path applies their delete files.

Positional and equality delete files are built by the Iceberg spec and committed as another
engine would (``tests/tables/delete_files.py``); every query result is checked against the
rows that must remain, and for positional deletes against PyIceberg's own reader. Copy-on-write
DML on such a table is checked differentially against a plain DuckDB table holding the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.manifest import DataFile, FileFormat
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation
from pyiceberg.transforms import IdentityTransform

import wharf
from tests.tables.delete_files import (
    commit_delete_files,
    data_files,
    equality_delete_file,
    file_rows,
    live_entries,
    position_delete_file,
)
from wharf.errors import ConflictError, InvalidArgument, UnsupportedStatement
from wharf.tables.commit import commit_files, write_data_files
from wharf.tables.scan import ScanPlanner


def iceberg(lake: wharf.Lakehouse, name: str = "t") -> Table:
    return lake.table(name).iceberg


def ordered(values: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows sorted, NULLs last."""
    return sorted(values, key=lambda r: [(v is None, 0 if v is None else v) for v in r])


def rows(lake: wharf.Lakehouse, sql: str) -> list[tuple[Any, ...]]:
    return ordered(lake.sql(sql).fetchall())


def by_pyiceberg(table: Table, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """The table read by PyIceberg's own reader (which applies positional deletes itself)."""
    table = table.refresh()
    arrow = table.scan(selected_fields=columns).to_arrow()
    return ordered(list(zip(*(arrow[c].to_pylist() for c in columns), strict=True)))


def ids_at(table: Table, data_file: DataFile, wanted: set[int], column: str = "id") -> list[int]:
    """Positions in ``data_file`` of the rows whose ``column`` is in ``wanted``."""
    return [i for i, r in enumerate(file_rows(table, data_file)) if r[column] in wanted]


def seed(lake: wharf.Lakehouse, ddl: str, *inserts: str, name: str = "t") -> Table:
    lake.sql(ddl)
    for insert in inserts:
        lake.sql(insert)
    return iceberg(lake, name)


ALL_IDS = set(range(30))
THREE_FILES = (
    "CREATE TABLE t (id BIGINT, name VARCHAR, v INT)",
    "INSERT INTO t SELECT i, 'n' || i, i * 10 FROM range(0, 10) r(i)",
    "INSERT INTO t SELECT i, 'n' || i, i * 10 FROM range(10, 20) r(i)",
    "INSERT INTO t SELECT i, 'n' || i, i * 10 FROM range(20, 30) r(i)",
)


# --- positional deletes --------------------------------------------------------------------------


def test_positional_deletes_unpartitioned(lake: wharf.Lakehouse) -> None:
    t = seed(lake, *THREE_FILES[:2])
    [f] = data_files(t)
    # positions are looked up in the file itself (row i of the Parquet file has position i)
    gone = {1, 4, 5, 9}
    commit_delete_files(t, [position_delete_file(t, [(f, ids_at(t, f, gone))])])
    expected = sorted((i, f"n{i}", i * 10) for i in range(10) if i not in gone)
    assert rows(lake, "SELECT id, name, v FROM t") == expected
    assert by_pyiceberg(t, ("id", "name", "v")) == expected
    assert lake.sql("SELECT count(*) FROM t").scalar() == 6
    assert lake.table("t").count() == 6


def test_positional_deletes_partitioned(lake: wharf.Lakehouse) -> None:
    t = seed(
        lake,
        "CREATE TABLE t (id BIGINT, region VARCHAR, v DOUBLE) PARTITIONED BY (region)",
        "INSERT INTO t SELECT i, CASE WHEN i % 3 = 0 THEN 'eu' WHEN i % 3 = 1 THEN 'us' ELSE 'ap' END, i / 2 FROM range(30) r(i)",
    )
    files = {f.partition[0]: f for f in data_files(t)}
    assert set(files) == {"eu", "us", "ap"}
    gone_eu, gone_us = {0, 3, 27}, {1, 28}
    commit_delete_files(
        t,
        [
            position_delete_file(t, [(files["eu"], ids_at(t, files["eu"], gone_eu))]),
            position_delete_file(t, [(files["us"], ids_at(t, files["us"], gone_us))]),
        ],
    )
    gone = gone_eu | gone_us
    expected = ordered([(i, ["eu", "us", "ap"][i % 3]) for i in range(30) if i not in gone])
    assert rows(lake, "SELECT id, region FROM t") == expected
    assert by_pyiceberg(t, ("id", "region")) == expected
    # partition pruning keeps each partition's own delete file
    assert rows(lake, "SELECT id FROM t WHERE region = 'eu'") == [(i,) for i in sorted(range(0, 30, 3)) if i not in gone]
    assert rows(lake, "SELECT id FROM t WHERE region = 'ap'") == [(i,) for i in range(2, 30, 3)]
    assert rows(lake, "SELECT region, count(*) FROM t GROUP BY region") == [("ap", 10), ("eu", 7), ("us", 8)]


def test_several_delete_files_each_hit_only_its_data_file(lake: wharf.Lakehouse) -> None:
    t = seed(lake, *THREE_FILES)
    a, b, c = data_files(t)
    assert [r["id"] for r in file_rows(t, b)] == list(range(10, 20))
    # Two commits deleting positions of B, then one delete file covering B and C: the same
    # positions exist in A, whose rows must all stay.
    commit_delete_files(t, [position_delete_file(t, [(b, [0, 1])])])
    commit_delete_files(t, [position_delete_file(t, [(b, [2])])])
    commit_delete_files(t, [position_delete_file(t, [(c, [9, 0]), (b, [9])])])
    gone = {10, 11, 12, 19, 20, 29}
    expected = sorted((i, i * 10) for i in ALL_IDS - gone)
    assert rows(lake, "SELECT id, v FROM t") == expected
    assert by_pyiceberg(t, ("id", "v")) == expected
    assert sum(1 for e in live_entries(t) if e.data_file.content.name == "POSITION_DELETES") == 3
    # One file's rows alone, and a filter that prunes the other data files.
    assert rows(lake, "SELECT id FROM t WHERE id BETWEEN 10 AND 19") == [(i,) for i in range(13, 19)]
    assert rows(lake, "SELECT id FROM t WHERE id < 10") == [(i,) for i in range(10)]


def test_positional_delete_of_every_row_of_a_file(lake: wharf.Lakehouse) -> None:
    t = seed(lake, *THREE_FILES[:3])
    _a, b = data_files(t)
    commit_delete_files(t, [position_delete_file(t, [(b, range(10))])])
    assert rows(lake, "SELECT id FROM t") == [(i,) for i in range(10)]
    assert lake.sql("SELECT count(*), sum(v) FROM t WHERE id >= 10").fetchone() == (0, None)
    assert by_pyiceberg(t, ("id",)) == [(i,) for i in range(10)]


# --- equality deletes ----------------------------------------------------------------------------


def test_equality_deletes_on_one_column(lake: wharf.Lakehouse) -> None:
    t = seed(lake, *THREE_FILES)
    gone = {3, 14, 15, 29}
    commit_delete_files(t, [equality_delete_file(t, ["id"], [(i,) for i in sorted(gone)] + [(99,)])])
    assert rows(lake, "SELECT id, name FROM t") == sorted((i, f"n{i}") for i in ALL_IDS - gone)
    # the same key in a second delete file and a delete of a value that never existed are harmless
    commit_delete_files(t, [equality_delete_file(t, ["id"], [(3,), (-1,)]), equality_delete_file(t, ["name"], [("n5",)])])
    gone |= {5}
    assert rows(lake, "SELECT id FROM t") == [(i,) for i in sorted(ALL_IDS - gone)]
    assert lake.sql("SELECT count(*), sum(id) FROM t").fetchone() == (len(ALL_IDS - gone), sum(ALL_IDS - gone))


def test_equality_deletes_on_two_columns_match_nulls(lake: wharf.Lakehouse) -> None:
    t = seed(
        lake,
        "CREATE TABLE t (id BIGINT, name VARCHAR, region VARCHAR)",
        "INSERT INTO t VALUES (1, 'a', 'eu'), (2, 'a', 'us'), (3, NULL, 'eu'), (4, NULL, 'us'), (5, 'b', NULL), "
        "(6, NULL, NULL), (7, 'b', 'eu')",
    )
    commit_delete_files(
        t,
        [
            equality_delete_file(
                t,
                ["name", "region"],
                # ('a','eu') → 1; (NULL,'eu') → 3 only; ('b',NULL) → 5 only; (NULL,NULL) → 6; ('c','eu') → none
                [("a", "eu"), (None, "eu"), ("b", None), (None, None), ("c", "eu")],
            )
        ],
    )
    assert rows(lake, "SELECT id FROM t") == [(2,), (4,), (7,)]
    assert rows(lake, "SELECT id FROM t WHERE name IS NULL") == [(4,)]
    assert rows(lake, "SELECT id FROM t WHERE region IS NULL") == []


def test_equality_deletes_do_not_apply_to_rows_added_later(lake: wharf.Lakehouse) -> None:
    t = seed(lake, *THREE_FILES[:2])
    commit_delete_files(t, [equality_delete_file(t, ["id"], [(2,), (3,)])])
    lake.sql("INSERT INTO t VALUES (2, 'again', 0), (3, 'again', 0)")
    assert rows(lake, "SELECT id, name FROM t WHERE id IN (2, 3)") == [(2, "again"), (3, "again")]
    assert lake.sql("SELECT count(*) FROM t").scalar() == 10
    # a later equality delete does apply to them (and to nothing else)
    commit_delete_files(t, [equality_delete_file(t, ["id"], [(3,)])])
    assert rows(lake, "SELECT id, name FROM t WHERE id IN (2, 3)") == [(2, "again")]
    # positional deletes committed later apply to the earlier file only at their positions
    [first, _again] = sorted(data_files(t), key=lambda f: f.record_count, reverse=True)
    commit_delete_files(t, [position_delete_file(t, [(first, [0])])])
    assert rows(lake, "SELECT id FROM t") == [(1,), (2,), (4,), (5,), (6,), (7,), (8,), (9,)]


def test_equality_deletes_stay_within_their_partition(lake: wharf.Lakehouse) -> None:
    t = seed(
        lake,
        "CREATE TABLE t (k INT, region VARCHAR, v INT) PARTITIONED BY (region)",
        "INSERT INTO t VALUES (1, 'eu', 10), (2, 'eu', 20), (1, 'us', 30), (2, 'us', 40), (1, 'ap', 50)",
    )
    files = {f.partition[0]: f for f in data_files(t)}
    commit_delete_files(t, [equality_delete_file(t, ["k"], [(1,)], partition=files["eu"].partition, spec_id=0)])
    assert rows(lake, "SELECT k, region FROM t") == [(1, "ap"), (1, "us"), (2, "eu"), (2, "us")]
    assert rows(lake, "SELECT v FROM t WHERE k = 1") == [(30,), (50,)]


def test_global_equality_delete_after_partition_evolution(lake: wharf.Lakehouse) -> None:
    """A delete file of the unpartitioned spec applies to every partition; a partitioned one to its own."""
    t = seed(lake, "CREATE TABLE t (k INT, region VARCHAR)", "INSERT INTO t VALUES (1, 'eu'), (2, 'us'), (3, 'eu')")
    with t.update_spec() as update:
        update.add_field("region", IdentityTransform(), "region")
    lake.sql("INSERT INTO t VALUES (1, 'us'), (2, 'eu'), (3, 'us'), (4, 'eu')")
    t = iceberg(lake)
    assert {f.spec_id for f in data_files(t)} == {0, 1}
    us = next(f for f in data_files(t) if f.spec_id == 1 and f.partition[0] == "us")
    commit_delete_files(
        t,
        [
            equality_delete_file(t, ["k"], [(1,)], partition=None, spec_id=0),  # global
            equality_delete_file(t, ["k"], [(3,)], partition=us.partition, spec_id=1),  # only us (spec 1)
        ],
    )
    # (3, 'eu') was written with spec 0, so the spec-1 'us' delete cannot reach it, nor (3, 'us')'s twin in eu
    assert rows(lake, "SELECT k, region FROM t") == [(2, "eu"), (2, "us"), (3, "eu"), (4, "eu")]


def test_equality_delete_survives_a_column_rename(lake: wharf.Lakehouse) -> None:
    t = seed(lake, *THREE_FILES[:2])
    commit_delete_files(t, [equality_delete_file(t, ["name"], [("n4",), ("n6",)])])
    lake.sql("ALTER TABLE t RENAME COLUMN name TO label")
    assert rows(lake, "SELECT id FROM t") == [(i,) for i in range(10) if i not in (4, 6)]
    assert rows(lake, "SELECT label FROM t WHERE id = 5") == [("n5",)]


# --- queries over tables with delete files --------------------------------------------------------


@pytest.fixture
def mixed(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    """Three data files of 10 rows; ids 1, 2, 12 positionally deleted, 7, 15 and 25 by equality."""
    t = seed(lake, *THREE_FILES)
    a, b, _c = data_files(t)
    commit_delete_files(t, [position_delete_file(t, [(a, ids_at(t, a, {1, 2})), (b, ids_at(t, b, {12}))])])
    commit_delete_files(t, [equality_delete_file(t, ["id"], [(7,), (15,)]), equality_delete_file(t, ["name"], [("n25",)])])
    return lake


MIXED_GONE = {1, 2, 7, 12, 15, 25}
MIXED_IDS = sorted(ALL_IDS - MIXED_GONE)


def test_aggregates_filters_and_joins_respect_deletes(mixed: wharf.Lakehouse) -> None:
    lake = mixed
    assert rows(lake, "SELECT id FROM t") == [(i,) for i in MIXED_IDS]
    assert lake.sql("SELECT count(*), sum(v), min(id), max(id) FROM t").fetchone() == (
        len(MIXED_IDS),
        sum(i * 10 for i in MIXED_IDS),
        0,
        29,
    )
    assert rows(lake, "SELECT id // 10 AS d, count(*) FROM t GROUP BY d") == [(0, 7), (1, 8), (2, 9)]
    for deleted in sorted(MIXED_GONE):
        assert lake.sql(f"SELECT count(*) FROM t WHERE id = {deleted}").scalar() == 0, deleted
    assert rows(lake, "SELECT id FROM t WHERE id BETWEEN 5 AND 16") == [(i,) for i in MIXED_IDS if 5 <= i <= 16]
    assert rows(lake, "SELECT id FROM t WHERE name IN ('n2', 'n3', 'n25', 'n26')") == [(3,), (26,)]
    lake.sql("CREATE TABLE u (id BIGINT, tag VARCHAR)")
    lake.sql("INSERT INTO u SELECT i, 't' || i FROM range(0, 30, 3) r(i)")
    assert rows(lake, "SELECT t.id, u.tag FROM t JOIN u ON t.id = u.id") == [(i, f"t{i}") for i in MIXED_IDS if i % 3 == 0]
    assert rows(lake, "SELECT u.id FROM u LEFT JOIN t ON t.id = u.id WHERE t.id IS NULL") == [(12,), (15,)]
    # the table against itself, a window, a subquery and a UNION
    assert lake.sql("SELECT count(*) FROM t a JOIN t b ON a.id = b.id + 1").scalar() == sum(
        1 for i in MIXED_IDS if i - 1 in MIXED_IDS
    )
    assert lake.sql("SELECT max(rn) FROM (SELECT row_number() OVER (ORDER BY id) AS rn FROM t)").scalar() == len(MIXED_IDS)
    assert rows(lake, "SELECT id FROM u WHERE id NOT IN (SELECT id FROM t)") == [(12,), (15,)]
    assert lake.sql("SELECT count(*) FROM (SELECT id FROM t UNION ALL SELECT id FROM t)").scalar() == 2 * len(MIXED_IDS)
    assert lake.table("t").to_arrow(where="id < 10").num_rows == 7


def test_time_travel_before_the_deletes_shows_the_rows(mixed: wharf.Lakehouse) -> None:
    lake = mixed
    t = iceberg(lake)
    history = [s.snapshot_id for s in t.snapshots()]
    assert len(history) == 5  # three appends, the positional delete, the equality deletes
    appended, positional, _equality = history[2], history[3], history[4]
    assert rows(lake, f"SELECT id FROM t FOR VERSION AS OF {appended}") == [(i,) for i in sorted(ALL_IDS)]
    assert rows(lake, f"SELECT id FROM t FOR VERSION AS OF {positional}") == [(i,) for i in sorted(ALL_IDS - {1, 2, 12})]
    assert rows(lake, "SELECT id FROM t") == [(i,) for i in MIXED_IDS]
    lake.sql(f"ALTER TABLE t CREATE TAG before_deletes AS OF VERSION {appended}")
    assert lake.sql("SELECT count(*) FROM t.tag_before_deletes").scalar() == 30
    assert lake.table("t").to_arrow(snapshot_id=positional).num_rows == 27


# --- copy-on-write DML on top of delete files -----------------------------------------------------

DML = [
    # filters whose Iceberg translation prunes the equality delete files by their column metrics
    "UPDATE t SET v = -1 WHERE id = 3",
    "UPDATE t SET v = -1 WHERE id = 16",
    "UPDATE t SET v = v + 1 WHERE id IN (0, 13, 26)",
    "UPDATE t SET v = 0",
    "UPDATE t SET name = 'x' WHERE name = 'n24'",
    "DELETE FROM t WHERE id = 3",
    "DELETE FROM t WHERE id = 18",
    "DELETE FROM t WHERE id >= 3 AND id < 5",
    "DELETE FROM t WHERE v > 100",
    "DELETE FROM t",
    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v "
    "WHEN NOT MATCHED THEN INSERT (id, name, v) VALUES (s.id, 'new', s.v)",
    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
    "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE AND t.id < 10 THEN DELETE",
]
SOURCE = "SELECT * FROM (VALUES (3, 333), (16, 1616), (7, 777), (40, 4040)) AS v(id, v)"


@pytest.mark.parametrize("statement", DML)
def test_dml_on_a_table_with_delete_files_matches_duckdb(mixed: wharf.Lakehouse, statement: str) -> None:
    """Rewritten files must not resurrect deleted rows; affected counts ignore deleted rows."""
    lake = mixed
    lake.sql(f"CREATE TABLE s AS {SOURCE}")
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id BIGINT, name VARCHAR, v INT)")
    con.execute(f"INSERT INTO t SELECT i, 'n' || i, i * 10 FROM range(30) r(i) WHERE i NOT IN {tuple(MIXED_GONE)}")
    con.execute(f"CREATE TABLE s AS {SOURCE}")
    expected_count = con.execute(statement).fetchall()
    expected = ordered(con.execute("SELECT id, name, v FROM t").fetchall())
    result = lake.sql(statement)
    assert rows(lake, "SELECT id, name, v FROM t") == expected
    assert result.rowcount == expected_count[0][0]
    # and once more, now that the rewritten files have higher sequence numbers than the deletes
    lake.sql("UPDATE t SET v = v * 2 WHERE id < 5")
    con.execute("UPDATE t SET v = v * 2 WHERE id < 5")
    assert rows(lake, "SELECT id, name, v FROM t") == ordered(con.execute("SELECT id, name, v FROM t").fetchall())


def test_delete_all_then_reinsert_deleted_keys(mixed: wharf.Lakehouse) -> None:
    lake = mixed
    assert lake.sql("DELETE FROM t").rowcount == len(MIXED_IDS)
    assert lake.sql("SELECT count(*) FROM t").scalar() == 0
    # the equality-deleted keys come back as new rows (their sequence number is higher)
    lake.sql("INSERT INTO t VALUES (7, 'n7', 70), (15, 'n15', 150), (1, 'n1', 10)")
    assert rows(lake, "SELECT id FROM t") == [(1,), (7,), (15,)]


# --- paths and schema changes ---------------------------------------------------------------------


def test_positional_deletes_match_the_exact_data_file_path(lake: wharf.Lakehouse, tmp_path: Path) -> None:
    """Spark (Hadoop FileIO) writes ``file:/path`` URIs; a positional delete names the path exactly so."""
    t = seed(lake, "CREATE TABLE t (id BIGINT, name VARCHAR)")
    local = lake.path.resolve() / "warehouse" / "default" / "t" / "data" / "external.parquet"  # inside the lake
    local.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": pa.array(range(5), pa.int64()), "name": [f"n{i}" for i in range(5)]}), local)
    t.add_files([f"file:{local}"])
    [f] = data_files(t)
    assert f.file_path == f"file:{local}"
    commit_delete_files(t, [position_delete_file(t, [(f, [0, 3])])])
    assert rows(lake, "SELECT id FROM t") == [(1,), (2,), (4,)]
    assert by_pyiceberg(t, ("id",)) == [(1,), (2,), (4,)]


def test_dropping_an_equality_delete_column_is_a_clear_error(lake: wharf.Lakehouse) -> None:
    """Matching on the remaining columns only would delete rows the delete file never named."""
    t = seed(lake, *THREE_FILES[:2])
    commit_delete_files(t, [equality_delete_file(t, ["id", "name"], [(3, "n3"), (4, "other")])])
    assert rows(lake, "SELECT id FROM t WHERE id IN (3, 4)") == [(4,)]
    before = iceberg(lake).metadata.current_snapshot_id
    # Dropping the column is refused up front: the table stays readable, nothing changes.
    with pytest.raises(InvalidArgument, match="'name'.*equality delete"):
        lake.sql("ALTER TABLE t DROP COLUMN name")
    assert iceberg(lake).schema().find_field("name") is not None
    lake.sql("ALTER TABLE t DROP COLUMN v")  # columns the deletes do not use can go
    assert rows(lake, "SELECT id FROM t WHERE id IN (3, 4)") == [(4,)]
    # If the column is gone anyway (another engine dropped it), reads fail clearly instead of
    # matching on the remaining columns; the snapshot's own schema still has the column.
    with iceberg(lake).update_schema() as update:
        update.delete_column("name")
    with pytest.raises(UnsupportedStatement, match="field id"):
        lake.sql("SELECT id FROM t")
    assert rows(lake, f"SELECT id FROM t FOR VERSION AS OF {before} WHERE id IN (3, 4)") == [(4,)]


def test_upsert_equality_delete_spares_data_of_its_own_snapshot(lake: wharf.Lakehouse) -> None:
    """A Flink-style upsert commits the new row and the equality delete of the old one together:
    the delete must not remove the new row (same sequence number, not strictly lower)."""
    t = seed(lake, *THREE_FILES[:2])
    new_rows = pa.table({"id": pa.array([2, 11], pa.int64()), "name": ["upserted", "new"], "v": pa.array([-2, -11], pa.int32())})
    added = write_data_files(t, new_rows)
    upsert = commit_delete_files(
        t, [equality_delete_file(t, ["id"], [(2,), (11,)])], added_data=added, operation=Operation.OVERWRITE
    )
    picked = "SELECT id, name, v FROM t WHERE id IN (1, 2, 11)"
    assert rows(lake, picked) == [(1, "n1", 10), (2, "upserted", -2), (11, "new", -11)]
    assert lake.sql("SELECT count(*) FROM t").scalar() == 11
    assert upsert.summary is not None and upsert.summary["added-data-files"] == "1"
    # and copy-on-write on top keeps exactly the upserted row
    lake.sql("UPDATE t SET v = 0 WHERE id = 2")
    assert rows(lake, picked) == [(1, "n1", 10), (2, "upserted", 0), (11, "new", -11)]


@pytest.mark.parametrize("kind", ["position", "equality"])
def test_rewrite_racing_a_delete_file_commit_is_a_conflict(tmp_path: Path, kind: str) -> None:
    """A copy-on-write rewrite planned before another engine's delete commit must not land over it."""
    a = wharf.connect(tmp_path / "lake")
    a.sql("CREATE TABLE t (id BIGINT, name VARCHAR)")
    a.sql("INSERT INTO t SELECT i, 'n' || i FROM range(10) r(i)")
    stale = iceberg(a)
    planned = [f.data_file for f in ScanPlanner().plan(stale, stale.metadata.current_snapshot_id).files]
    other = iceberg(wharf.connect(tmp_path / "lake"))
    [f] = data_files(other)
    delete = position_delete_file(other, [(f, [3])]) if kind == "position" else equality_delete_file(other, ["id"], [(3,)])
    commit_delete_files(other, [delete])
    rewritten = write_data_files(stale, pa.table({"id": pa.array(range(10), pa.int64()), "name": [f"n{i}" for i in range(10)]}))
    with pytest.raises(ConflictError, match="delete files"):
        commit_files(stale, added=rewritten, removed=planned)
    assert a.sql("SELECT count(*) FROM t WHERE id = 3").scalar() == 0
    assert a.sql("SELECT count(*) FROM t").scalar() == 9


def test_dml_on_a_partitioned_table_with_delete_files(lake: wharf.Lakehouse) -> None:
    t = seed(
        lake,
        "CREATE TABLE t (k INT, region VARCHAR, v INT) PARTITIONED BY (region)",
        "INSERT INTO t SELECT i % 5, CASE WHEN i < 10 THEN 'eu' ELSE 'us' END, i FROM range(20) r(i)",
    )
    files = {f.partition[0]: f for f in data_files(t)}
    commit_delete_files(
        t,
        [
            position_delete_file(t, [(files["eu"], ids_at(t, files["eu"], {0, 1}, column="v"))]),
            equality_delete_file(t, ["k"], [(4,)], partition=files["us"].partition, spec_id=0),
        ],
    )
    visible = [(i % 5, "eu" if i < 10 else "us", i) for i in range(20) if i not in (0, 1, 14, 19)]
    assert rows(lake, "SELECT k, region, v FROM t") == ordered(visible)
    assert lake.sql("UPDATE t SET v = v + 100 WHERE region = 'us' AND k = 0").rowcount == 2
    assert lake.sql("DELETE FROM t WHERE region = 'eu' AND k = 2").rowcount == 2
    assert lake.sql("UPDATE t SET v = -v WHERE v = 3").rowcount == 1
    expected = [(k, r, v + 100 if (r, k) == ("us", 0) else -v if v == 3 else v) for k, r, v in visible if (r, k) != ("eu", 2)]
    assert rows(lake, "SELECT k, region, v FROM t") == ordered(expected)


@pytest.mark.parametrize("fmt", [FileFormat.PUFFIN, FileFormat.AVRO])
def test_deletes_wharf_cannot_apply_are_refused_not_ignored(lake: wharf.Lakehouse, fmt: FileFormat) -> None:
    """Format v3 deletion vectors live in Puffin files: skipping them would resurrect deleted rows."""
    t = seed(lake, *THREE_FILES[:2])
    [f] = data_files(t)
    # Recorded as a v3 writer records a deletion vector (or an engine its Avro delete file).
    commit_delete_files(t, [position_delete_file(t, [(f, ids_at(t, f, {1}))], file_format=fmt)])
    for sql in ("SELECT count(*) FROM t", "DELETE FROM t WHERE id = 2", "SELECT * FROM t.files"):
        if sql.endswith(".files"):
            assert lake.sql(sql).fetchall()  # metadata stays inspectable
            continue
        with pytest.raises(UnsupportedStatement, match="cannot apply"):
            lake.sql(sql)
