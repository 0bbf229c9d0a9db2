"""CALL system.register_table / add_files / snapshot / migrate / ancestors_of / rewrite_manifests / compute_table_stats.

Real files throughout: Parquet and DuckDB databases written by DuckDB, Iceberg tables written by
DuckDB's iceberg extension (when its pip package loads) and by PyIceberg; then the rows Wharf
reads and the snapshot summaries it committed.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table
from pyiceberg.table.puffin import PuffinFile

import wharf
from tests.tables.delete_files import commit_delete_files, data_files, position_delete_file
from wharf.catalog import TableChange
from wharf.errors import (
    AccessDenied,
    AlreadyExists,
    CommitRejected,
    InvalidArgument,
    NotFound,
    SchemaMismatch,
    UnsupportedStatement,
    ValidationError,
)
from wharf.tables.scan import local_path


@pytest.fixture
def ext(lake: wharf.Lakehouse, tmp_path: Path) -> Path:
    """A directory outside the warehouse that the lake owner registered."""
    root = tmp_path / "external"
    root.mkdir()
    lake.register_location(str(root))
    return root


def copy_parquet(target: Path | str, query: str, options: str = "") -> None:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect().execute(f"COPY ({query}) TO '{target}' (FORMAT parquet{options})")


def summary(table: Table) -> dict[str, str]:
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    return {"operation": snapshot.summary.operation.value, **snapshot.summary.additional_properties}


def live_paths(table: Table) -> list[str]:
    return sorted(local_path(f.file_path) for f in data_files(table))


def rows(lake: wharf.Lakehouse, sql: str) -> list[tuple[Any, ...]]:
    return sorted(lake.sql(sql).fetchall())


def iceberg(lake: wharf.Lakehouse, name: str) -> Table:
    return lake.table(name).iceberg


def duckdb_iceberg() -> duckdb.DuckDBPyConnection | None:
    """A DuckDB connection with the iceberg extension (from its pip package), or None if it does not load."""
    from wharf.engine import load_extension

    con = duckdb.connect()
    try:
        load_extension(con, "iceberg")
    except Exception:  # noqa: BLE001 - the extension's pip package is optional
        return None
    return con


# --- register_table ---------------------------------------------------------------------------------


def test_register_a_table_duckdb_wrote_then_read_and_write_it(lake: wharf.Lakehouse, ext: Path) -> None:
    con = duckdb_iceberg()
    if con is None:
        pytest.skip("duckdb-extension-iceberg==1.5.5 is not installed")
    con.execute("CREATE TABLE src AS SELECT range AS id, 'n' || range AS name FROM range(10)")
    con.execute(f"COPY src TO '{ext / 'ice'}' (FORMAT iceberg)")
    [original] = glob.glob(str(ext / "ice" / "metadata" / "*.metadata.json"))
    before = Path(original).read_text()
    assert json.loads(before)["sort-orders"] == []  # the quirk: the default order 0 is not listed

    result = lake.sql(f"CALL system.register_table(table => 'ice', metadata_file => '{original}')")
    assert result.columns == ["current_snapshot_id", "total_records_count", "total_data_files_count"]
    table = iceberg(lake, "ice")
    assert result.fetchall() == [(table.metadata.current_snapshot_id, 10, 1)]
    assert lake.sql("SELECT count(*), sum(id) FROM ice").fetchone() == (10, 45)

    # Writable: the registered metadata lists the unsorted order; the original file is untouched and logged.
    assert Path(original).read_text() == before
    assert [o.order_id for o in table.metadata.sort_orders] == [0] and table.metadata.default_sort_order_id == 0
    assert [e.metadata_file for e in table.metadata.metadata_log] == [original]
    lake.sql("INSERT INTO ice VALUES (100, 'new')")
    assert summary(iceberg(lake, "ice"))["wharf.user"] == "tester"
    lake.sql("UPDATE ice SET name = 'changed' WHERE id < 3")
    lake.sql("DELETE FROM ice WHERE id = 9")
    expected = [(i, "changed" if i < 3 else f"n{i}") for i in range(9)] + [(100, "new")]
    assert rows(lake, "SELECT id, name FROM ice") == expected
    # Still a standard table: DuckDB reads Wharf's newest metadata file, PyIceberg reads the table.
    newest = local_path(iceberg(lake, "ice").metadata_location)
    assert sorted(con.execute(f"SELECT id, name FROM iceberg_scan('{newest}')").fetchall()) == expected
    assert sorted(iceberg(lake, "ice").scan().to_arrow().to_pylist(), key=lambda r: r["id"])[0] == {"id": 0, "name": "changed"}


def test_register_a_table_pyiceberg_wrote(lake: wharf.Lakehouse, ext: Path) -> None:
    other = SqlCatalog("other", uri=f"sqlite:///{ext / 'other.db'}", warehouse=(ext / "wh").as_uri())
    other.create_namespace("db")
    t = other.create_table("db.people", schema=pa.schema([("id", pa.int64()), ("name", pa.string())]))
    t.append(pa.table({"id": [1, 2], "name": ["ann", "bo"]}))
    t.append(pa.table({"id": [3], "name": ["cy"]}))

    result = lake.sql(f"CALL system.register_table('default.people', '{t.metadata_location}')")
    assert result.fetchall() == [(t.metadata.current_snapshot_id, 3, 2)]
    lake.sql("INSERT INTO people VALUES (4, 'di')")
    assert rows(lake, "SELECT * FROM people") == [(1, "ann"), (2, "bo"), (3, "cy"), (4, "di")]
    assert summary(iceberg(lake, "people"))["total-records"] == "4"
    assert iceberg(lake, "people").metadata_location == lake.catalog.load_table("default.people").metadata_location


def test_register_table_errors(lake: wharf.Lakehouse, ext: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        lake.sql(f"CALL system.register_table('t', '{ext / 'nope.metadata.json'}')")
    (ext / "bad.metadata.json").write_text('{"format-version": 2}')
    with pytest.raises(InvalidArgument, match="is not an Iceberg table metadata file"):
        lake.sql(f"CALL system.register_table('t', '{ext / 'bad.metadata.json'}')")
    lake.sql("CREATE TABLE t (x INT)")
    with pytest.raises(AlreadyExists, match="default.t already exists"):
        lake.sql(f"CALL system.register_table('t', '{ext / 'bad.metadata.json'}')")
    with pytest.raises(NotFound, match="Namespace 'nowhere'"):
        lake.sql(f"CALL system.register_table('nowhere.t', '{ext / 'bad.metadata.json'}')")
    # A metadata file outside the lake's roots is refused before anything is registered.
    outside = tmp_path / "outside"
    other = SqlCatalog("o", uri=f"sqlite:///{tmp_path / 'o.db'}", warehouse=outside.as_uri())
    other.create_namespace("db")
    o = other.create_table("db.o", schema=pa.schema([("x", pa.int32())]))
    with pytest.raises(AccessDenied, match="outside the lake's warehouse") as caught:
        lake.sql(f"CALL system.register_table('o', '{o.metadata_location}')")
    assert "register_location" in str(caught.value)
    assert not lake.catalog.table_exists("default.o")
    # Reading files by path is for principals with external access only.
    with pytest.raises(AccessDenied, match="may not read files by path"):
        lake.session(user="ana").sql(f"CALL system.register_table('p', '{o.metadata_location}')")


# --- add_files -------------------------------------------------------------------------------------------


def test_add_files_adds_parquet_files_in_place(lake: wharf.Lakehouse, ext: Path) -> None:
    copy_parquet(ext / "batch" / "a.parquet", "SELECT range AS id, 'a' AS v FROM range(3)")
    copy_parquet(ext / "batch" / "b.parquet", "SELECT range + 3 AS id, 'b' AS v FROM range(2)")
    (ext / "batch" / "_SUCCESS").write_text("")
    lake.sql("CREATE TABLE t (id BIGINT, v VARCHAR)")
    lake.sql("INSERT INTO t VALUES (100, 'own')")

    result = lake.sql(f"CALL system.add_files(table => 't', source_table => '`parquet`.`{ext / 'batch'}`')")
    assert result.columns == ["added_files_count", "changed_partition_count"]
    assert result.fetchall() == [(2, 1)]
    assert rows(lake, "SELECT * FROM t") == [(0, "a"), (1, "a"), (2, "a"), (3, "b"), (4, "b"), (100, "own")]
    table = iceberg(lake, "t")
    assert {str(ext / "batch" / "a.parquet"), str(ext / "batch" / "b.parquet")} <= set(live_paths(table))  # not copied
    s = summary(table)
    assert s["operation"] == "append" and s["added-data-files"] == "2" and s["added-records"] == "5"
    assert s["wharf.adopted-files"] == "2" and s["wharf.imported-from"] == f"parquet:{ext / 'batch'}"
    assert "schema.name-mapping.default" in table.properties  # other engines read id-less files by name

    # A plain path works too; the same file again is refused, unless check_duplicate_files => false.
    with pytest.raises(AlreadyExists, match="already in table default.t"):
        lake.sql(f"CALL system.add_files('t', '{ext / 'batch' / 'a.parquet'}')")
    lake.sql(f"CALL system.add_files('t', '{ext / 'batch' / 'a.parquet'}', check_duplicate_files => false)")
    assert lake.sql("SELECT count(*) FROM t").scalar() == 9


def test_add_files_infers_partitions_and_filters_them(lake: wharf.Lakehouse, ext: Path) -> None:
    copy_parquet(
        ext / "events",
        "SELECT range AS id, CASE WHEN range % 2 = 0 THEN 'eu' ELSE 'us' END AS region FROM range(10)",
        ", PARTITION_BY (region), WRITE_PARTITION_COLUMNS true",
    )
    lake.sql("CREATE TABLE ev (id BIGINT, region VARCHAR) PARTITIONED BY (region)")
    result = lake.sql(f"CALL system.add_files('ev', '`parquet`.`{ext / 'events'}`', MAP {{'region': 'eu'}})")
    assert result.fetchall() == [(1, 1)]
    assert rows(lake, "SELECT region, count(*) FROM ev GROUP BY region") == [("eu", 5)]
    lake.sql(f"CALL spark_catalog.system.add_files('ev', '`parquet`.`{ext / 'events'}`', map('region', 'us'))", dialect="spark")
    assert rows(lake, "SELECT region, count(*) FROM ev GROUP BY region") == [("eu", 5), ("us", 5)]
    # partition pruning works on the inferred values
    assert "1 of 2 data file(s)" in lake.explain("SELECT * FROM ev WHERE region = 'us'")
    with pytest.raises(InvalidArgument, match="no directory under .* is named 'day=…'"):
        lake.sql(f"CALL system.add_files('ev', '`parquet`.`{ext / 'events'}`', MAP {{'day': '1'}})")
    with pytest.raises(NotFound, match="match partition_filter"):
        lake.sql(f"CALL system.add_files('ev', '`parquet`.`{ext / 'events'}`', MAP {{'region': 'ap'}})")


def test_add_files_refuses_what_does_not_fit(lake: wharf.Lakehouse, ext: Path, tmp_path: Path) -> None:
    lake.sql("CREATE TABLE ev (id BIGINT, region VARCHAR) PARTITIONED BY (region)")
    copy_parquet(ext / "mixed.parquet", "SELECT 1::BIGINT AS id, 'eu' AS region UNION ALL SELECT 2, 'us'")
    with pytest.raises(InvalidArgument, match="one partition"):
        lake.sql(f"CALL system.add_files('ev', '{ext / 'mixed.parquet'}')")
    copy_parquet(ext / "wide.parquet", "SELECT 1::BIGINT AS id, 'eu' AS region, 3 AS extra")
    with pytest.raises(SchemaMismatch, match="does not fit the schema of default.ev"):
        lake.sql(f"CALL system.add_files('ev', '{ext / 'wide.parquet'}')")
    (ext / "notes.txt").write_text("not parquet")
    with pytest.raises(InvalidArgument, match="is not a readable Parquet file"):
        lake.sql(f"CALL system.add_files('ev', '{ext / 'notes.txt'}')")
    with pytest.raises(NotFound, match="does not exist"):
        lake.sql(f"CALL system.add_files('ev', '{ext / 'missing'}')")
    with pytest.raises(InvalidArgument, match="is relative"):
        lake.sql("CALL system.add_files('ev', 'relative/dir')")
    with pytest.raises(UnsupportedStatement, match="Source format 'orc'"):
        lake.sql(f"CALL system.add_files('ev', '`orc`.`{ext}`')")
    with pytest.raises(UnsupportedStatement, match="a DuckDB table has none"):
        lake.sql(f"CALL system.add_files('ev', '`duckdb`.`{ext / 'x.duckdb'}`.t')")
    # Outside the allowed roots: refused, with the hint to register the location.
    copy_parquet(tmp_path / "elsewhere" / "f.parquet", "SELECT 1::BIGINT AS id, 'eu' AS region")
    with pytest.raises(AccessDenied, match="outside the lake's warehouse") as caught:
        lake.sql(f"CALL system.add_files('ev', '{tmp_path / 'elsewhere'}')")
    assert "lake.register_location" in str(caught.value)
    assert iceberg(lake, "ev").current_snapshot() is None  # nothing was committed


def test_a_refused_add_files_leaves_the_files_where_they_were(lake: wharf.Lakehouse, ext: Path) -> None:
    copy_parquet(ext / "keep" / "a.parquet", "SELECT 1::BIGINT AS id")
    lake.sql("CREATE TABLE t (id BIGINT)")

    def refuse(change: TableChange) -> None:
        if change.added_snapshots:
            raise CommitRejected("no new data today")

    stop = lake.events.subscribe("before_commit", refuse)
    with pytest.raises(CommitRejected, match="no new data today"):
        lake.sql(f"CALL system.add_files('t', '{ext / 'keep'}')")
    stop()
    assert (ext / "keep" / "a.parquet").exists()  # a refused commit removes only files Wharf wrote
    assert lake.sql("SELECT count(*) FROM t").scalar() == 0


# --- snapshot -----------------------------------------------------------------------------------------------


def test_snapshot_of_a_parquet_directory(lake: wharf.Lakehouse, ext: Path) -> None:
    source = ext / "events"
    copy_parquet(
        source,
        "SELECT range AS id, CASE WHEN range % 2 = 0 THEN 'eu' ELSE 'us' END AS region FROM range(10)",
        ", PARTITION_BY (region), WRITE_PARTITION_COLUMNS true",
    )
    files = sorted(glob.glob(str(source / "**" / "*.parquet"), recursive=True))
    result = lake.sql(f"CALL system.snapshot('`parquet`.`{source}`', 'snap', properties => MAP {{'owner': 'data-eng'}})")
    assert result.columns == ["imported_files_count"] and result.fetchall() == [(2,)]
    table = iceberg(lake, "snap")
    assert live_paths(table) == files  # the source's own files
    assert table.properties["gc.enabled"] == "false" and table.properties["owner"] == "data-eng"
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("region", "identity")]
    s = summary(table)
    assert s["added-data-files"] == "2" and s["total-records"] == "10" and s["wharf.adopted-files"] == "2"
    assert rows(lake, "SELECT region, count(*) FROM snap GROUP BY region") == [("eu", 5), ("us", 5)]
    # Writes go to the snapshot's own location; the source directory does not change.
    lake.sql("INSERT INTO snap VALUES (100, 'eu')")
    lake.sql("DELETE FROM snap WHERE id = 0")
    assert sorted(glob.glob(str(source / "**" / "*"), recursive=True)) == sorted(
        [str(source / "region=eu"), str(source / "region=us"), *files]
    )
    assert lake.sql("SELECT count(*) FROM snap").scalar() == 10
    with pytest.raises(InvalidArgument, match="overlaps the source"):
        lake.sql(f"CALL system.snapshot('{source}', 'snap2', '{source / 'copy'}')")
    with pytest.raises(AlreadyExists, match="default.snap already exists"):
        lake.sql(f"CALL system.snapshot('{source}', 'snap')")


def test_snapshot_refuses_hive_directories_without_partition_columns(lake: wharf.Lakehouse, ext: Path) -> None:
    copy_parquet(ext / "hive", "SELECT range AS id, 'eu' AS region FROM range(3)", ", PARTITION_BY (region)")
    with pytest.raises(UnsupportedStatement, match="do not hold column 'region'") as caught:
        lake.sql(f"CALL system.snapshot('{ext / 'hive'}', 'h')")
    assert "hive_partitioning = true" in str(caught.value)
    assert not lake.catalog.table_exists("default.h")


def test_snapshot_of_a_duckdb_table_copies_its_rows(lake: wharf.Lakehouse, ext: Path) -> None:
    db = ext / "shop.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA sales")
    con.execute(
        "CREATE TABLE sales.orders AS SELECT range AS id, range * 1.5 AS amount, DATE '2024-01-01' + range::INT AS day "
        "FROM range(50)"
    )
    con.close()
    result = lake.sql(f"CALL system.snapshot('`duckdb`.`{db}`.sales.orders', 'orders')")
    assert result.fetchall() == [(1,)]
    assert lake.sql("SELECT count(*), sum(amount), max(day) FROM orders").fetchone()[:2] == (50, 1837.5)
    table = iceberg(lake, "orders")
    assert all(p.startswith(local_path(table.location())) for p in live_paths(table))  # copies the table owns
    assert "gc.enabled" not in table.properties
    s = summary(table)
    assert s["added-records"] == "50" and s["wharf.imported-from"] == f"duckdb:{db}:sales.orders"
    assert "wharf.adopted-files" not in s
    # The name form without backticks; a missing table lists what is there.
    lake.sql(f"CALL system.snapshot('{db}.sales.orders', 'orders2')")
    assert lake.sql("SELECT count(*) FROM orders2").scalar() == 50
    with pytest.raises(InvalidArgument, match="name the table in it"):
        lake.sql(f"CALL system.snapshot('{db}', 'orders3')")
    with pytest.raises(NotFound, match="tables there: sales.orders"):
        lake.sql(f"CALL system.snapshot('{db}.nope', 'orders3')")
    assert duckdb.connect(str(db)).execute("SELECT count(*) FROM sales.orders").fetchone() == (50,)


# --- migrate -----------------------------------------------------------------------------------------------


def test_migrate_a_parquet_directory_in_place(lake: wharf.Lakehouse, ext: Path) -> None:
    source = ext / "mig"
    copy_parquet(source / "a.parquet", "SELECT range AS k FROM range(5)")
    copy_parquet(source / "b.parquet", "SELECT range + 5 AS k FROM range(5)")
    result = lake.sql(f"CALL system.migrate(table => 'mig', source_table => '`parquet`.`{source}`')")
    assert result.columns == ["migrated_files_count"] and result.fetchall() == [(2,)]
    table = iceberg(lake, "mig")
    assert local_path(table.location()) == str(source) and "gc.enabled" not in table.properties
    assert live_paths(table) == [str(source / "a.parquet"), str(source / "b.parquet")]
    assert summary(table)["wharf.adopted-files"] == "2"
    lake.sql("INSERT INTO mig VALUES (99)")
    assert lake.sql("SELECT count(*), sum(k) FROM mig").fetchone() == (11, 144)
    assert glob.glob(str(source / "data" / "*.parquet"))  # the table's new files live in the directory
    with pytest.raises(ValidationError, match="looks like an Iceberg table"):
        lake.sql(f"CALL system.migrate(table => 'mig2', source_table => '{source}')")
    with pytest.raises(InvalidArgument, match="needs parameter 'source_table'"):
        lake.sql("CALL system.migrate('mig3')")


def test_migrate_a_duckdb_table_and_drop_the_backup(lake: wharf.Lakehouse, ext: Path) -> None:
    db = ext / "app.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE users AS SELECT range AS id, 'u' || range AS name FROM range(7)")
    con.close()
    result = lake.sql(f"CALL system.migrate('users', MAP {{'team': 'crm'}}, true, '{db}.users')")
    assert result.fetchall() == [(1,)]
    assert lake.sql("SELECT count(*) FROM users").scalar() == 7
    assert iceberg(lake, "users").properties["team"] == "crm"
    tables = duckdb.connect(str(db)).execute("SELECT table_name FROM information_schema.tables").fetchall()
    assert tables == []  # drop_backup => true: the DuckDB original is gone


# --- ancestors_of ---------------------------------------------------------------------------------------


def test_ancestors_of_follows_parents_newest_first(lake: wharf.Lakehouse) -> None:
    from tests.conftest import past_last_commit

    lake.sql("CREATE TABLE t (id BIGINT)")
    ids = []
    for i in range(3):
        past_last_commit(lake, "t")
        lake.sql(f"INSERT INTO t VALUES ({i})")
        ids.append(iceberg(lake, "t").metadata.current_snapshot_id)
    result = lake.sql("CALL system.ancestors_of('t')")
    assert result.columns == ["snapshot_id", "timestamp"]
    got = result.fetchall()
    assert [r[0] for r in got] == ids[::-1]
    assert got[0][1] == iceberg(lake, "t").current_snapshot().timestamp_ms and got[0][1] > got[1][1] > got[2][1]
    # After a rollback and a new commit, the old head's line is still reachable by its id (Spark's example).
    lake.sql(f"CALL system.rollback_to_snapshot('t', {ids[0]})")
    lake.sql("INSERT INTO t VALUES (9)")
    new = iceberg(lake, "t").metadata.current_snapshot_id
    assert [r[0] for r in lake.sql("CALL system.ancestors_of('t')").fetchall()] == [new, ids[0]]
    assert [r[0] for r in lake.sql(f"CALL system.ancestors_of(snapshot_id => {ids[2]}, table => 't')").fetchall()] == ids[::-1]
    with pytest.raises(NotFound, match="Snapshot 42 does not exist"):
        lake.sql("CALL system.ancestors_of('t', 42)")
    lake.sql("CREATE TABLE empty (x INT)")
    assert lake.sql("CALL system.ancestors_of('empty')").fetchall() == []


# --- rewrite_manifests ----------------------------------------------------------------------------------


def test_rewrite_manifests_keeps_the_data_and_deletes(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT, region VARCHAR) PARTITIONED BY (region)")
    for i in range(6):
        lake.sql(f"INSERT INTO t VALUES ({i}, '{'eu' if i % 2 else 'us'}'), ({i + 10}, '{'eu' if i % 2 else 'us'}')")
    table = iceberg(lake, "t")
    # A merge-on-read delete (as Spark would write): it must still apply after the rewrite.
    target = next(f for f in data_files(table) if f.record_count == 2)
    commit_delete_files(table, [position_delete_file(table, [(target, [0])])])
    table = iceberg(lake, "t")
    before_rows = rows(lake, "SELECT * FROM t")
    before_files = live_paths(table)
    before_manifests = table.current_snapshot().manifests(table.io)
    assert len(before_manifests) == 7 and len(before_rows) == 11

    result = lake.sql("CALL system.rewrite_manifests('t')")
    assert result.columns == ["rewritten_manifests_count", "added_manifests_count"]
    assert result.fetchall() == [(6, 1)]
    table = iceberg(lake, "t")
    manifests = table.current_snapshot().manifests(table.io)
    assert len(manifests) == 2  # one data manifest, and the delete manifest as it was
    assert rows(lake, "SELECT * FROM t") == before_rows
    assert live_paths(table) == before_files
    s = summary(table)
    assert s["operation"] == "replace" and s["manifests-replaced"] == "6" and s["manifests-created"] == "1"
    assert s["manifests-kept"] == "1" and s["entries-processed"] == "6" and s["total-records"] == "12"
    assert s["wharf.user"] == "tester"  # stamped by the commit path
    # Nothing left to gain: no new snapshot.
    head = table.metadata.current_snapshot_id
    assert lake.sql("CALL system.rewrite_manifests(table => 't', use_caching => false)").fetchall() == [(0, 0)]
    assert iceberg(lake, "t").metadata.current_snapshot_id == head
    with pytest.raises(NotFound, match="Partition spec 7 does not exist"):
        lake.sql("CALL system.rewrite_manifests(table => 't', spec_id => 7)")


def test_rewrite_manifests_honours_the_target_size(lake: wharf.Lakehouse) -> None:
    # Automatic manifest merging off: eight one-file manifests are what rewrite_manifests must pack.
    lake.sql(
        "CREATE TABLE t (id BIGINT) TBLPROPERTIES "
        "('commit.manifest.target-size-bytes' = '9000', 'commit.manifest-merge.enabled' = 'false')"
    )
    for i in range(8):
        lake.sql(f"INSERT INTO t VALUES ({i})")
    table = iceberg(lake, "t")
    sizes = [m.manifest_length for m in table.current_snapshot().manifests(table.io)]
    expected = -(-sum(sizes) // 9000)
    assert 1 < expected < 8
    assert lake.sql("CALL system.rewrite_manifests('t')").fetchall() == [(8, expected)]
    assert lake.sql("SELECT count(*) FROM t").scalar() == 8


# --- compute_table_stats ----------------------------------------------------------------------------------


def test_compute_table_stats_writes_a_puffin_file_pyiceberg_reads(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT, name VARCHAR, day DATE, price DECIMAL(10, 2), flag BOOLEAN)")
    lake.sql(
        "INSERT INTO t SELECT range, 'n' || (range % 7), DATE '2024-01-01' + (range % 30)::INT, "
        "(range % 11) / 4, range % 2 = 0 FROM range(1000)"
    )
    lake.sql("INSERT INTO t VALUES (NULL, NULL, NULL, NULL, NULL)")
    [(path,)] = lake.sql("CALL system.compute_table_stats('t')").fetchall()
    table = iceberg(lake, "t")
    [stats] = table.metadata.statistics
    assert stats.statistics_path == path and stats.snapshot_id == table.metadata.current_snapshot_id
    ids = {f.name: f.field_id for f in table.schema().fields}
    ndv = {b.fields[0]: b.properties for b in stats.blob_metadata}
    assert ndv == {ids["id"]: {"ndv": "1000"}, ids["name"]: {"ndv": "7"}, ids["day"]: {"ndv": "30"},
                   ids["price"]: {"ndv": "11"}, ids["flag"]: {"ndv": "2"}}  # fmt: skip
    assert {b.type for b in stats.blob_metadata} == {"apache-datasketches-theta-v1"}

    with table.io.new_input(path).open() as stream:
        content = stream.read()
    assert len(content) == stats.file_size_in_bytes
    puffin = PuffinFile(content)
    assert [b.fields for b in puffin.footer.blobs] == [b.fields for b in stats.blob_metadata]
    datasketches = pytest.importorskip("datasketches")
    for blob in puffin.footer.blobs:
        sketch = datasketches.compact_theta_sketch.deserialize(puffin.get_blob_payload(blob))
        assert round(sketch.get_estimate()) == int(blob.properties["ndv"])


def test_compute_table_stats_for_chosen_columns_and_an_older_snapshot(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT, name VARCHAR)")
    lake.sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    first = iceberg(lake, "t").metadata.current_snapshot_id
    lake.sql("INSERT INTO t VALUES (3, 'c')")
    lake.sql(f"CALL system.compute_table_stats(table => 't', snapshot_id => {first}, columns => ['NAME'])")
    [stats] = iceberg(lake, "t").metadata.statistics
    assert stats.snapshot_id == first
    assert [(b.fields, b.properties) for b in stats.blob_metadata] == [([2], {"ndv": "2"})]
    assert lake.sql("SELECT count(*) FROM t").scalar() == 3  # statistics change no data
    with pytest.raises(NotFound, match="Column 'nope' does not exist"):
        lake.sql("CALL system.compute_table_stats(table => 't', columns => ['nope'])")
    lake.sql("CREATE TABLE empty (x INT)")
    with pytest.raises(NotFound, match="no snapshot"):
        lake.sql("CALL system.compute_table_stats('empty')")


def test_written_parquet_files_still_read_by_other_engines(lake: wharf.Lakehouse, ext: Path) -> None:
    """Adopted files without field ids carry a name mapping PyIceberg applies when it reads the table."""
    copy_parquet(ext / "d" / "a.parquet", "SELECT range AS id FROM range(3)")
    lake.sql(f"CALL system.snapshot('{ext / 'd'}', 'd')")
    assert pq.read_schema(ext / "d" / "a.parquet").field("id").metadata is None
    assert sorted(iceberg(lake, "d").scan().to_arrow().column("id").to_pylist()) == [0, 1, 2]
    assert os.path.exists(ext / "d" / "a.parquet")


def test_adopted_files_without_field_ids_survive_a_schema_change(lake: wharf.Lakehouse, ext: Path) -> None:
    copy_parquet(ext / "e" / "a.parquet", "SELECT range AS id FROM range(3)")
    lake.sql(f"CALL system.snapshot('{ext / 'e'}', 'e')")
    lake.sql("ALTER TABLE e ADD COLUMN extra INT")
    assert rows(lake, "SELECT id FROM e") == [(0,), (1,), (2,)]
    # The name mapping keeps the old name: a renamed and widened column still finds its data.
    lake.sql("ALTER TABLE e RENAME COLUMN id TO key")
    lake.sql("INSERT INTO e VALUES (10, 1)")
    assert rows(lake, "SELECT key, extra FROM e ORDER BY key") == [(0, None), (1, None), (2, None), (10, 1)]
    # Row-level changes read the adopted file by name too (positions and values).
    lake.sql("DELETE FROM e WHERE key = 1")
    lake.sql("UPDATE e SET extra = 7 WHERE key = 2")
    assert rows(lake, "SELECT key, extra FROM e ORDER BY key") == [(0, None), (2, 7), (10, 1)]
