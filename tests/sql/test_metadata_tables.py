"""Metadata tables (t.snapshots, t.history, t.refs, t.files, …) are readable like tables and joinable."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType, StructType

import wharf
from tests.tables.delete_files import (
    POSITION_DELETE_SCHEMA,
    _write,
    commit_delete_files,
    data_files,
    position_delete_file,
)
from tests.tables.test_delete_files import THREE_FILES, ids_at, seed
from wharf.errors import InvalidArgument, UnsupportedStatement
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


# --- the all_* tables and position_deletes (Iceberg's names and columns) ------------------------

FILE_COLUMNS = [
    "content",
    "file_path",
    "file_format",
    "spec_id",
    "partition",
    "record_count",
    "file_size_in_bytes",
    "column_sizes",
    "value_counts",
    "null_value_counts",
    "nan_value_counts",
    "lower_bounds",
    "upper_bounds",
    "key_metadata",
    "split_offsets",
    "equality_ids",
    "sort_order_id",
    "readable_metrics",
]
ENTRY_COLUMNS = ["status", "snapshot_id", "sequence_number", "file_sequence_number", "data_file", "readable_metrics"]
MANIFEST_COLUMNS = [
    "content",
    "path",
    "length",
    "partition_spec_id",
    "added_snapshot_id",
    "added_data_files_count",
    "existing_data_files_count",
    "deleted_data_files_count",
    "added_delete_files_count",
    "existing_delete_files_count",
    "deleted_delete_files_count",
    "partition_summaries",
]
COLUMNS = {
    "all_data_files": FILE_COLUMNS,
    "all_delete_files": FILE_COLUMNS,
    "all_files": FILE_COLUMNS,
    "all_manifests": [*MANIFEST_COLUMNS, "reference_snapshot_id", "key_metadata"],
    "all_entries": ENTRY_COLUMNS,
    "entries": ENTRY_COLUMNS,
    "position_deletes": ["file_path", "pos", "row", "partition", "spec_id", "delete_file_path"],
}
EVERY_SNAPSHOT = sorted(n for n in COLUMNS if n.startswith("all_"))


def paths(lake: wharf.Lakehouse, sql: str) -> set[str]:
    return {r[0] for r in lake.sql(sql).fetchall()}


@pytest.fixture
def cow(lake: wharf.Lakehouse) -> list[int]:
    """Table c changed copy-on-write: two INSERTs, an UPDATE and a DELETE, each rewriting one file; its snapshot ids."""
    lake.sql("CREATE TABLE c (id BIGINT, v VARCHAR)")
    lake.sql("INSERT INTO c VALUES (1, 'a'), (2, 'b')")
    lake.sql("INSERT INTO c VALUES (3, 'c'), (4, 'd')")
    lake.sql("UPDATE c SET v = 'z' WHERE id = 1")
    lake.sql("DELETE FROM c WHERE id = 3")
    return [s.snapshot_id for s in lake.table("c").iceberg.snapshots()]


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_new_metadata_tables_have_icebergs_columns_also_when_empty(lake: wharf.Lakehouse, cow: list[int], name: str) -> None:
    lake.sql("CREATE TABLE e (id BIGINT, v VARCHAR)")
    empty = lake.sql(f"SELECT * FROM e.{name}")
    assert (empty.columns, len(empty)) == (COLUMNS[name], 0)
    assert lake.sql(f"SELECT * FROM c.{name}").columns == COLUMNS[name]


def test_all_data_files_are_the_data_files_of_every_snapshot(lake: wharf.Lakehouse, cow: list[int]) -> None:
    every = set().union(*(paths(lake, f"SELECT file_path FROM c.data_files FOR VERSION AS OF {s}") for s in cow))
    assert len(every) == 4  # two inserted, one rewritten by the UPDATE, one by the DELETE
    assert paths(lake, "SELECT file_path FROM c.all_data_files") == every
    assert lake.sql("SELECT count(*), sum(record_count) FROM c.all_data_files").fetchone() == (4, 7)
    assert paths(lake, "SELECT file_path FROM c.all_files") == every
    assert lake.sql("SELECT count(*) FROM c.all_delete_files").scalar() == 0  # copy-on-write writes none
    current = paths(lake, "SELECT file_path FROM c.files")
    assert len(current) == 2 and current < every
    # an unpartitioned table's partition reads as NULL, as in t.files
    assert lake.sql("SELECT count(*) FROM c.all_files WHERE partition IS NULL AND content = 0").scalar() == 4


def test_all_entries_holds_each_manifest_entry_once(lake: wharf.Lakehouse, cow: list[int]) -> None:
    per_snapshot = [
        lake.sql(f"SELECT status, snapshot_id, data_file.file_path FROM c.entries FOR VERSION AS OF {s}").fetchall() for s in cow
    ]
    rows = lake.sql("SELECT status, snapshot_id, data_file.file_path FROM c.all_entries").fetchall()
    # later snapshots reuse earlier manifests: their entries are listed once, as Iceberg does
    assert sorted(rows) == sorted({r for entries in per_snapshot for r in entries})
    assert len(rows) < sum(len(entries) for entries in per_snapshot)
    added_by: dict[str, int] = {}
    deleted_by: dict[str, int] = {}
    for status, snapshot_id, path in rows:
        (added_by if status == 1 else deleted_by)[path] = snapshot_id
    assert sorted(added_by.values()) == sorted(cow) and len(deleted_by) == 2
    # the UPDATE and the DELETE each removed a file an INSERT had added
    assert set(deleted_by.values()) == set(cow[2:]) and {added_by[p] for p in deleted_by} == set(cow[:2])
    # every entry of the current snapshot is among them, with the same columns and values
    assert lake.sql("SELECT count(*) FROM (SELECT * FROM c.entries EXCEPT SELECT * FROM c.all_entries)").scalar() == 0
    metrics = lake.sql(
        "SELECT readable_metrics.id.lower_bound, readable_metrics.v.upper_bound, data_file.record_count "
        f"FROM c.all_entries WHERE snapshot_id = {cow[2]} AND status = 1"
    ).fetchall()
    assert metrics == [(1, "z", 2)]  # the UPDATE's rewrite of (1, 'a'), (2, 'b')


def test_all_manifests_lists_the_manifests_of_every_snapshot(lake: wharf.Lakehouse, cow: list[int]) -> None:
    table = lake.table("c").iceberg
    expected = sorted((s.snapshot_id, m.manifest_path) for s in table.snapshots() for m in s.manifests(table.io))
    assert sorted(lake.sql("SELECT reference_snapshot_id, path FROM c.all_manifests").fetchall()) == expected
    current = paths(lake, f"SELECT path FROM c.all_manifests WHERE reference_snapshot_id = {cow[-1]}")
    assert current == paths(lake, "SELECT path FROM c.manifests")
    added = lake.sql(
        "SELECT sum(added_data_files_count) FROM (SELECT DISTINCT path, added_data_files_count FROM c.all_manifests)"
    )
    assert added.scalar() == 4


@pytest.mark.parametrize("name", EVERY_SNAPSHOT)
def test_all_tables_cover_every_snapshot_not_one(lake: wharf.Lakehouse, cow: list[int], name: str) -> None:
    with pytest.raises(InvalidArgument, match="every snapshot"):
        lake.sql(f"SELECT * FROM c.{name} FOR VERSION AS OF {cow[0]}")


def test_a_snapshot_without_manifests(lake: wharf.Lakehouse, cow: list[int]) -> None:
    """PyIceberg commits an empty append as a snapshot without manifests; its metadata tables have no rows."""
    from pyiceberg.catalog import load_catalog

    lake.sql("DELETE FROM c")
    catalog = load_catalog("lake", **{"py-catalog-impl": "wharf.catalog.LakeCatalog", "lake": str(lake.path)})
    catalog.load_table("default.c").append(pa.table({"id": pa.array([], pa.int64()), "v": pa.array([], pa.string())}))
    assert not lake.table("c").iceberg.current_snapshot().manifests(lake.table("c").iceberg.io)
    for name in ALL:
        assert lake.sql(f"SELECT * FROM c.{name}").columns, name
    for name in ("files", "data_files", "delete_files", "entries", "manifests", "partitions", "position_deletes"):
        assert lake.sql(f"SELECT count(*) FROM c.{name}").scalar() == 0, name
    assert lake.sql("SELECT count(*) FROM c.all_data_files").scalar() == 4


# --- position_deletes: positional delete files written the way Spark writes them -----------------


def test_position_deletes_lists_every_deleted_position(lake: wharf.Lakehouse) -> None:
    t = seed(lake, *THREE_FILES)
    a, b, c = data_files(t)
    first = position_delete_file(t, [(b, [0, 1])])
    commit_delete_files(t, [first])
    before = t.current_snapshot().snapshot_id
    second = position_delete_file(t, [(c, [9, 0]), (b, [9])])
    commit_delete_files(t, [second])
    rows = lake.sql("SELECT file_path, pos, delete_file_path, spec_id FROM t.position_deletes ORDER BY ALL").fetchall()
    assert rows == sorted(
        [(b.file_path, 0, first.file_path, 0), (b.file_path, 1, first.file_path, 0)]
        + [(b.file_path, 9, second.file_path, 0), (c.file_path, 0, second.file_path, 0), (c.file_path, 9, second.file_path, 0)]
    )
    # Spark writes no deleted row; an unpartitioned table has no partition
    assert lake.sql("SELECT count(*) FROM t.position_deletes WHERE row IS NULL AND partition IS NULL").scalar() == 5
    assert lake.sql("SELECT count(*) FROM t").scalar() + lake.sql("SELECT count(*) FROM t.position_deletes").scalar() == 30
    assert a.file_path not in paths(lake, "SELECT file_path FROM t.position_deletes")
    # the delete files are the table's delete files, then and now
    assert paths(lake, "SELECT DISTINCT delete_file_path FROM t.position_deletes") == paths(
        lake, "SELECT file_path FROM t.delete_files"
    )
    assert paths(lake, "SELECT file_path FROM t.all_delete_files") == {first.file_path, second.file_path}
    old = lake.sql(f"SELECT delete_file_path, count(*) FROM t.position_deletes FOR VERSION AS OF {before} GROUP BY ALL")
    assert old.fetchall() == [(first.file_path, 2)]


def test_position_deletes_of_a_partitioned_table(lake: wharf.Lakehouse) -> None:
    t = seed(
        lake,
        "CREATE TABLE t (id BIGINT, region VARCHAR) PARTITIONED BY (region)",
        "INSERT INTO t SELECT i, CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END FROM range(10) r(i)",
    )
    files = {f.partition[0]: f for f in data_files(t)}
    commit_delete_files(
        t,
        [
            position_delete_file(t, [(files["eu"], ids_at(t, files["eu"], {0, 4}))]),
            position_delete_file(t, [(files["us"], ids_at(t, files["us"], {7}))]),
        ],
    )
    rows = lake.sql("SELECT partition.region, count(*) FROM t.position_deletes GROUP BY ALL ORDER BY ALL").fetchall()
    assert rows == [("eu", 2), ("us", 1)]
    assert sorted(r[0] for r in lake.sql("SELECT id FROM t").fetchall()) == [1, 2, 3, 5, 6, 8, 9]
    # joinable with the files they delete from
    joined = lake.sql(
        "SELECT f.partition.region, sum(f.record_count) FROM t.data_files f "
        "JOIN (SELECT DISTINCT file_path FROM t.position_deletes) d USING (file_path) GROUP BY ALL ORDER BY ALL"
    )
    assert joined.fetchall() == [("eu", 5), ("us", 5)]


def test_position_deletes_with_the_deleted_rows(lake: wharf.Lakehouse) -> None:
    """Some writers keep the deleted row in the delete file (column ``row``): it is read by column name."""
    t = seed(lake, *THREE_FILES[:2])
    [f] = data_files(t)
    row = StructType(*(NestedField(i, n, lt, required=False) for i, n, lt in ((1, "id", LongType()), (2, "name", StringType()))))
    schema = Schema(*POSITION_DELETE_SCHEMA.fields, NestedField(2147483544, "row", row, required=False))
    written = pa.table(
        {"file_path": [f.file_path] * 2, "pos": [3, 5], "row": [{"id": 3, "name": "n3"}, {"id": 5, "name": "n5"}]},
        schema=schema_to_pyarrow(schema),
    )
    deletes = _write(
        t, schema, written, DataFileContent.POSITION_DELETES, partition=f.partition, spec_id=f.spec_id, equality_ids=None
    )
    commit_delete_files(t, [deletes])
    rows = lake.sql("SELECT pos, row.id, row.name, row.v FROM t.position_deletes ORDER BY pos").fetchall()
    assert rows == [(3, 3, "n3", None), (5, 5, "n5", None)]  # v was not written: NULL


def test_position_deletes_refuses_deletion_vectors(lake: wharf.Lakehouse) -> None:
    t = seed(lake, *THREE_FILES[:2])
    [f] = data_files(t)
    vector = DataFile.from_args(
        content=DataFileContent.POSITION_DELETES,
        file_path=t.location() + "/data/deletes.puffin",
        file_format=FileFormat.PUFFIN,
        partition=f.partition,
        record_count=1,
        file_size_in_bytes=100,
        referenced_data_file=f.file_path,
        content_offset=4,
        content_size_in_bytes=40,
    )
    vector.spec_id = f.spec_id
    commit_delete_files(t, [vector])
    with pytest.raises(UnsupportedStatement, match="deletion vectors"):
        lake.sql("SELECT * FROM t.position_deletes")
