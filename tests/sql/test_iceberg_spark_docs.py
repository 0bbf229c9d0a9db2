"""The statements of the Apache Iceberg Spark documentation pages, run in Wharf with ``dialect='spark'``.

One section per page — DDL, Queries, Writes, Procedures — with statements written fresh from
each page's descriptions. Every statement must either work, with results checked against
hand-computed expectations (or DuckDB on the same rows), or be refused with a clear
``UnsupportedStatement``. docs/sql.md's support matrix summarises the outcome.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from pyiceberg.transforms import BucketTransform, DayTransform, HourTransform, IdentityTransform
from pyiceberg.types import DoubleType, IntegerType, ListType, LongType, MapType, StructType

import wharf
from wharf.errors import InvalidArgument, NotFound, UnsupportedStatement, WharfError


@pytest.fixture
def spark(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE SCHEMA db")
    return lake


def run(lake: wharf.Lakehouse, sql: str) -> list[tuple[object, ...]]:
    return lake.sql(sql, dialect="spark").fetchall()


def schema(lake: wharf.Lakehouse, name: str):  # type: ignore[no-untyped-def]
    return lake.table(name).iceberg.schema()


def spec_fields(lake: wharf.Lakehouse, name: str) -> list[tuple[str, str, str]]:
    table = lake.table(name).iceberg
    sch = table.schema()
    return [(f.name, type(f.transform).__name__, sch.find_column_name(f.source_id) or "") for f in table.spec().fields]


# --- DDL (spark-ddl) --------------------------------------------------------------------------------


def test_create_table_using_iceberg_with_comments_and_partitioning(spark: wharf.Lakehouse) -> None:
    run(spark, "CREATE TABLE db.sample (id bigint COMMENT 'unique id', data string) USING iceberg")
    assert schema(spark, "db.sample").find_field("id").doc == "unique id"
    run(
        spark,
        "CREATE TABLE db.events (id bigint, data string, category string, ts timestamp) USING iceberg "
        "PARTITIONED BY (bucket(16, id), days(ts), category)",
    )
    transforms = [type(f.transform) for f in spark.table("db.events").iceberg.spec().fields]
    assert transforms == [BucketTransform, DayTransform, IdentityTransform]
    # Spark's singular spellings and the TBLPROPERTIES / LOCATION-less forms.
    run(spark, "CREATE TABLE db.hourly (ts timestamp, v int) USING iceberg PARTITIONED BY (hour(ts)) TBLPROPERTIES ('k'='v')")
    assert [type(f.transform) for f in spark.table("db.hourly").iceberg.spec().fields] == [HourTransform]
    assert spark.table("db.hourly").iceberg.properties["k"] == "v"


def test_ctas_and_rtas_keep_history(spark: wharf.Lakehouse) -> None:
    run(
        spark,
        "CREATE TABLE db.s USING iceberg PARTITIONED BY (part) TBLPROPERTIES ('key'='value') AS SELECT 1 AS id, 'a' AS part",
    )
    first = spark.table("db.s").iceberg.metadata.current_snapshot_id
    run(spark, "REPLACE TABLE db.s USING iceberg AS SELECT 2 AS id, 'b' AS part, 0.5 AS extra")
    assert run(spark, "SELECT * FROM db.s") == [(2, "b", Decimal("0.5"))]
    # The replaced table keeps its history: the old rows stay readable by time travel.
    assert run(spark, f"SELECT id, part FROM db.s VERSION AS OF {first}") == [(1, "a")]
    run(spark, "CREATE OR REPLACE TABLE db.s USING iceberg AS SELECT 3 AS id")
    assert run(spark, "SELECT * FROM db.s") == [(3,)]
    run(spark, "CREATE OR REPLACE TABLE db.fresh USING iceberg AS SELECT 4 AS id")  # creates when missing
    with pytest.raises(NotFound):
        run(spark, "REPLACE TABLE db.never AS SELECT 1 AS id")


def test_create_table_like_copies_the_definition_not_the_rows(spark: wharf.Lakehouse) -> None:
    run(
        spark,
        "CREATE TABLE db.src (id bigint NOT NULL, ts timestamp) USING iceberg PARTITIONED BY (days(ts)) TBLPROPERTIES ('a'='b')",
    )
    run(spark, "ALTER TABLE db.src WRITE ORDERED BY id")
    run(spark, "INSERT INTO db.src VALUES (1, TIMESTAMP '2024-01-01 00:00:00')")
    run(spark, "CREATE TABLE db.copy LIKE db.src")
    source, copy = spark.table("db.src").iceberg, spark.table("db.copy").iceberg
    assert copy.schema().fields == source.schema().fields
    assert spec_fields(spark, "db.copy") == spec_fields(spark, "db.src")
    assert copy.sort_order().fields == source.sort_order().fields
    assert copy.properties["a"] == "b"
    assert run(spark, "SELECT count(*) FROM db.copy") == [(0,)]


def test_truncate_removes_every_row_in_one_snapshot(spark: wharf.Lakehouse) -> None:
    run(spark, "CREATE TABLE db.t (id int) USING iceberg")
    run(spark, "INSERT INTO db.t VALUES (1), (2)")
    before = len(spark.table("db.t").iceberg.metadata.snapshots)
    run(spark, "TRUNCATE TABLE db.t")
    assert run(spark, "SELECT count(*) FROM db.t") == [(0,)]
    assert len(spark.table("db.t").iceberg.metadata.snapshots) == before + 1
    assert run(spark, "SELECT operation FROM db.t.snapshots ORDER BY committed_at DESC LIMIT 1") == [("delete",)]


def test_nested_column_ddl(spark: wharf.Lakehouse) -> None:
    run(spark, "CREATE TABLE db.n (id bigint NOT NULL, data string) USING iceberg")
    run(spark, "INSERT INTO db.n VALUES (1, 'old')")
    run(spark, "ALTER TABLE db.n ADD COLUMNS (new_column string COMMENT 'new_column docs')")
    run(spark, "ALTER TABLE db.n ADD COLUMN point struct<x: double, y: double>")
    run(spark, "ALTER TABLE db.n ADD COLUMN point.z double")
    run(spark, "ALTER TABLE db.n ADD COLUMN points array<struct<x: double, y: double>>")
    run(spark, "ALTER TABLE db.n ADD COLUMN points.element.z double")
    run(spark, "ALTER TABLE db.n ADD COLUMN pmap map<string, struct<a: int>>")
    run(spark, "ALTER TABLE db.n ADD COLUMN pmap.value.b int")
    run(spark, "ALTER TABLE db.n ADD COLUMN first_col int FIRST")
    run(spark, "ALTER TABLE db.n ADD COLUMN after_id int AFTER id")
    run(spark, "ALTER TABLE db.n RENAME COLUMN point.x TO lon")
    run(spark, "ALTER TABLE db.n ALTER COLUMN first_col TYPE bigint COMMENT 'widened'")
    run(spark, "ALTER TABLE db.n ALTER COLUMN data COMMENT 'payload'")
    run(spark, "ALTER TABLE db.n ALTER COLUMN point.y FIRST")
    run(spark, "ALTER TABLE db.n ALTER COLUMN id DROP NOT NULL")
    run(spark, "ALTER TABLE db.n DROP COLUMN point.z")
    s = schema(spark, "db.n")
    assert [f.name for f in s.fields] == ["first_col", "id", "after_id", "data", "new_column", "point", "points", "pmap"]
    assert isinstance(s.find_field("first_col").field_type, LongType) and s.find_field("first_col").doc == "widened"
    assert s.find_field("data").doc == "payload" and s.find_field("new_column").doc == "new_column docs"
    assert not s.find_field("id").required
    point = s.find_field("point").field_type
    assert isinstance(point, StructType) and [f.name for f in point.fields] == ["y", "lon"]
    points = s.find_field("points").field_type
    assert isinstance(points, ListType) and [f.name for f in points.element_field.field_type.fields] == ["x", "y", "z"]
    pmap = s.find_field("pmap").field_type
    assert isinstance(pmap, MapType) and [f.name for f in pmap.value_field.field_type.fields] == ["a", "b"]
    assert isinstance(point.fields[1].field_type, DoubleType) and isinstance(
        pmap.value_field.field_type.fields[1].field_type, IntegerType
    )
    # Old rows read with NULLs for what was added; new rows write the nested fields.
    run(spark, "INSERT INTO db.n (id, data, point) VALUES (2, 'new', named_struct('y', 2.0, 'lon', 1.0))")
    assert run(spark, "SELECT id, data, point.lon, point.y FROM db.n ORDER BY id") == [
        (1, "old", None, None),
        (2, "new", 1.0, 2.0),
    ]


def test_nested_ddl_errors_are_clear(spark: wharf.Lakehouse) -> None:
    run(spark, "CREATE TABLE db.e (id int NOT NULL, point struct<x: double>) USING iceberg")
    for sql, error in [
        ("ALTER TABLE db.e ADD COLUMN point.x double", "AlreadyExists"),
        ("ALTER TABLE db.e ADD COLUMN missing.x double", "NotFound"),
        ("ALTER TABLE db.e ALTER COLUMN point.x TYPE int", "SchemaMismatch"),
        ("ALTER TABLE db.e ALTER COLUMN id SET NOT NULL", "InvalidArgument"),
        ("ALTER TABLE db.e ALTER COLUMN point.x AFTER id", "InvalidArgument"),  # moves stay within a struct
    ]:
        with pytest.raises(WharfError) as info:
            run(spark, sql)
        assert type(info.value).__name__ == error, (sql, info.value)
    assert [f.name for f in schema(spark, "db.e").fields] == ["id", "point"]


def test_partition_evolution_reads_across_specs(spark: wharf.Lakehouse) -> None:
    run(
        spark, "CREATE TABLE db.p (id bigint, data string, category string, ts timestamp) USING iceberg PARTITIONED BY (days(ts))"
    )
    rows = []

    def insert(i: int) -> None:
        ts = f"2024-0{1 + i % 3}-1{i % 9} 0{i % 9}:00:00"
        # Spark's TIMESTAMP is Iceberg's timestamptz: values come back in UTC.
        rows.append((i, f"d{i:02d}xx", f"c{i % 2}", dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC)))
        run(spark, f"INSERT INTO db.p VALUES ({i}, 'd{i:02d}xx', 'c{i % 2}', TIMESTAMP '{ts}')")

    insert(0)
    run(spark, "ALTER TABLE db.p ADD PARTITION FIELD category")
    insert(1)
    run(spark, "ALTER TABLE db.p ADD PARTITION FIELD truncate(4, data)")
    run(spark, "ALTER TABLE db.p ADD PARTITION FIELD bucket(8, id) AS shard")
    insert(2)
    run(spark, "ALTER TABLE db.p DROP PARTITION FIELD category")
    run(spark, "ALTER TABLE db.p DROP PARTITION FIELD truncate(4, data)")
    run(spark, "ALTER TABLE db.p DROP PARTITION FIELD shard")
    insert(3)
    run(spark, "ALTER TABLE db.p REPLACE PARTITION FIELD ts_day WITH hour(ts) AS hour_of_ts")
    insert(4)
    with pytest.raises(InvalidArgument, match="redundant"):
        run(spark, "ALTER TABLE db.p ADD PARTITION FIELD days(ts)")
    with pytest.raises(NotFound):
        run(spark, "ALTER TABLE db.p DROP PARTITION FIELD nope")
    assert spec_fields(spark, "db.p") == [("hour_of_ts", "HourTransform", "ts")]
    # Files of four specs: dropping the added fields returned to the original spec (Iceberg reuses it).
    assert sorted({r[0] for r in run(spark, "SELECT spec_id FROM db.p.files")}) == [0, 1, 3, 6]
    # Every file keeps its own spec; filters on any column prune correctly across all of them.
    assert sorted(run(spark, "SELECT * FROM db.p")) == sorted(rows)
    for where, keep in [
        ("category = 'c0'", lambda r: r[2] == "c0"),
        ("ts >= TIMESTAMP '2024-02-01 00:00:00'", lambda r: r[3] >= dt.datetime(2024, 2, 1, tzinfo=dt.UTC)),
        ("id = 2", lambda r: r[0] == 2),
        ("data LIKE 'd0%'", lambda r: r[1].startswith("d0")),
    ]:
        assert sorted(run(spark, f"SELECT * FROM db.p WHERE {where}")) == sorted(r for r in rows if keep(r)), where


def _file_ids(lake: wharf.Lakehouse, table: str) -> list[list[int]]:
    paths = [r[0] for r in lake.sql(f"SELECT file_path FROM {table}.files ORDER BY file_path").fetchall()]
    return [pq.read_table(p.removeprefix("file://")).column("id").to_pylist() for p in paths]


def test_write_order_is_honoured_by_every_writer(spark: wharf.Lakehouse) -> None:
    run(spark, "CREATE TABLE db.w (id int, v string) USING iceberg")
    run(spark, "ALTER TABLE db.w WRITE ORDERED BY id DESC NULLS LAST")
    table = spark.table("db.w").iceberg
    [field] = table.sort_order().fields
    assert table.schema().find_column_name(field.source_id) == "id" and field.direction.name == "DESC"
    assert table.properties["write.distribution-mode"] == "range"
    run(spark, "INSERT INTO db.w VALUES (3, 'a'), (NULL, 'n'), (9, 'b'), (1, 'c')")
    assert _file_ids(spark, "db.w") == [[9, 3, 1, None]]
    run(spark, "UPDATE db.w SET v = 'z' WHERE id = 3")  # the rewritten file is sorted too
    assert _file_ids(spark, "db.w") == [[9, 3, 1, None]]
    sort_ids = {r[0] for r in run(spark, "SELECT sort_order_id FROM db.w.files")}
    assert sort_ids == {table.sort_order().order_id}
    run(spark, "ALTER TABLE db.w WRITE LOCALLY ORDERED BY v")
    assert spark.table("db.w").iceberg.properties["write.distribution-mode"] == "none"
    run(spark, "ALTER TABLE db.w WRITE DISTRIBUTED BY PARTITION")
    assert spark.table("db.w").iceberg.properties["write.distribution-mode"] == "hash"
    run(spark, "ALTER TABLE db.w WRITE UNORDERED")
    assert spark.table("db.w").iceberg.sort_order().is_unsorted
    with pytest.raises(NotFound):
        run(spark, "ALTER TABLE db.w WRITE ORDERED BY missing")


# --- Queries (spark-queries) ------------------------------------------------------------------------


@pytest.fixture
def history(spark: wharf.Lakehouse) -> list[int]:
    """db.h with three snapshots of one row each, committed at least a second apart."""
    run(spark, "CREATE TABLE db.h (id int) USING iceberg")
    for i in range(3):
        run(spark, f"INSERT INTO db.h VALUES ({i})")
        if i < 2:
            time.sleep(1.05)  # epoch-seconds time travel needs snapshots in different seconds
    return [s.snapshot_id for s in spark.table("db.h").iceberg.metadata.snapshots]


def test_catalog_qualified_names_and_metadata_tables(spark: wharf.Lakehouse, history: list[int]) -> None:
    assert run(spark, "SELECT count(*) FROM prod.db.h") == [(3,)]
    assert run(spark, "SELECT count(*) FROM prod.db.h.history") == [(3,)]
    joined = run(
        spark,
        "SELECT h.snapshot_id, s.operation, h.is_current_ancestor FROM db.h.history h "
        "JOIN db.h.snapshots s ON h.snapshot_id = s.snapshot_id ORDER BY made_current_at",
    )
    assert joined == [(sid, "append", True) for sid in history]
    for name in (
        "files",
        "data_files",
        "delete_files",
        "manifests",
        "partitions",
        "entries",
        "refs",
        "metadata_log_entries",
        "all_data_files",
        "all_delete_files",
        "all_files",
        "all_manifests",
        "all_entries",
        "position_deletes",
    ):
        run(spark, f"SELECT * FROM db.h.{name}")
    assert run(spark, "SELECT count(*) FROM db.h.all_data_files") == [(3,)]


def test_every_time_travel_form(spark: wharf.Lakehouse, history: list[int]) -> None:
    snapshots = spark.table("db.h").iceberg.metadata.snapshots
    second_ms = snapshots[1].timestamp_ms
    stamp = dt.datetime.fromtimestamp(second_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    epoch_seconds = second_ms // 1000 + 1  # within the second snapshot's lifetime (the next is >1.05s later)
    expect = [(0,), (1,)]
    for clause in [
        f"VERSION AS OF {history[1]}",
        f"FOR VERSION AS OF {history[1]}",
        f"FOR SYSTEM_VERSION AS OF {history[1]}",
        f"TIMESTAMP AS OF '{stamp}'",
        f"FOR SYSTEM_TIME AS OF '{stamp}'",
        f"FOR TIMESTAMP AS OF {epoch_seconds}",
        f"TIMESTAMP AS OF timestamp_seconds({epoch_seconds - 1}) + INTERVAL 1 SECONDS",
    ]:
        assert sorted(run(spark, f"SELECT id FROM db.h {clause}")) == expect, clause
    run(spark, f"ALTER TABLE db.h CREATE TAG historic AS OF VERSION {history[1]}")
    assert sorted(run(spark, "SELECT id FROM db.h VERSION AS OF 'historic'")) == expect
    assert sorted(run(spark, "SELECT id FROM db.h FOR SYSTEM_VERSION AS OF 'historic'")) == expect
    assert run(spark, "SELECT count(*) FROM db.h TIMESTAMP AS OF current_timestamp() + INTERVAL 1 DAY") == [(3,)]
    with pytest.raises(NotFound, match="no snapshot"):
        run(spark, "SELECT * FROM db.h TIMESTAMP AS OF current_timestamp() - INTERVAL 3650 DAYS")
    with pytest.raises(NotFound):
        run(spark, "SELECT * FROM db.h VERSION AS OF 'nope'")


# --- Writes (spark-writes) ---------------------------------------------------------------------------


@pytest.fixture
def logs(spark: wharf.Lakehouse) -> wharf.Lakehouse:
    run(spark, "CREATE TABLE db.logs (id int, level string, day date) USING iceberg PARTITIONED BY (day)")
    run(
        spark,
        "INSERT INTO db.logs VALUES (1, 'info', DATE '2024-01-01'), (2, 'warn', DATE '2024-01-01'), "
        "(3, 'info', DATE '2024-01-02'), (4, 'error', DATE '2024-01-03')",
    )
    return spark


def test_insert_overwrite_static_is_sparks_default(logs: wharf.Lakehouse) -> None:
    run(logs, "INSERT OVERWRITE db.logs SELECT 9, 'info', DATE '2024-01-01'")
    assert run(logs, "SELECT id FROM db.logs") == [(9,)]  # static without PARTITION: the whole table


def test_insert_overwrite_static_partition_clause(logs: wharf.Lakehouse) -> None:
    run(logs, "INSERT OVERWRITE db.logs PARTITION (day = '2024-01-01') SELECT 7, 'debug'")
    assert sorted(run(logs, "SELECT id, level, day FROM db.logs")) == [
        (3, "info", dt.date(2024, 1, 2)),
        (4, "error", dt.date(2024, 1, 3)),
        (7, "debug", dt.date(2024, 1, 1)),
    ]
    with pytest.raises(InvalidArgument):
        run(logs, "INSERT OVERWRITE db.logs PARTITION (level = 'x') SELECT 1, DATE '2024-01-01'")


def test_insert_overwrite_dynamic_replaces_only_written_partitions(logs: wharf.Lakehouse) -> None:
    run(logs, "SET spark.sql.sources.partitionOverwriteMode = dynamic")
    run(logs, "INSERT OVERWRITE db.logs SELECT 8, 'info', DATE '2024-01-02'")
    assert sorted(r[0] for r in run(logs, "SELECT id FROM db.logs")) == [1, 2, 4, 8]
    # Compared with DuckDB on the same rows: partitions not written keep every row.
    assert run(logs, "SELECT count(*) FROM db.logs WHERE day <> DATE '2024-01-02'") == [(3,)]


def test_row_level_writes_with_subqueries(logs: wharf.Lakehouse) -> None:
    run(logs, "DELETE FROM db.logs WHERE id < (SELECT max(id) FROM db.logs WHERE level = 'info')")
    assert sorted(r[0] for r in run(logs, "SELECT id FROM db.logs")) == [3, 4]
    run(logs, "CREATE TABLE db.flagged USING iceberg AS SELECT 4 AS id")
    run(logs, "UPDATE db.logs AS t1 SET level = 'seen' WHERE EXISTS (SELECT id FROM db.flagged WHERE t1.id = id)")
    assert run(logs, "SELECT level FROM db.logs WHERE id = 4") == [("seen",)]
    run(
        logs,
        "MERGE INTO db.logs t USING (SELECT 4 AS id, 'gone' AS op UNION ALL SELECT 5, 'new') s ON t.id = s.id "
        "WHEN MATCHED AND s.op = 'gone' THEN DELETE "
        "WHEN NOT MATCHED THEN INSERT (id, level, day) VALUES (s.id, 'info', DATE '2024-01-05')",
    )
    assert sorted(r[0] for r in run(logs, "SELECT id FROM db.logs")) == [3, 5]


def test_writes_to_branches(logs: wharf.Lakehouse) -> None:
    run(logs, "ALTER TABLE db.logs CREATE BRANCH audit")
    run(logs, "INSERT INTO db.logs.branch_audit VALUES (10, 'info', DATE '2024-01-04')")
    run(logs, "DELETE FROM db.logs.branch_audit WHERE id = 1")
    assert run(logs, "SELECT count(*) FROM db.logs") == [(4,)]
    assert run(logs, "SELECT count(*) FROM db.logs VERSION AS OF 'audit'") == [(4,)]
    assert sorted(r[0] for r in run(logs, "SELECT id FROM db.logs.branch_audit")) == [2, 3, 4, 10]


# --- Procedures (spark-procedures) ------------------------------------------------------------------


PROCEDURES_ON_THE_PAGE = {
    "rollback_to_snapshot": "works",
    "rollback_to_timestamp": "works",
    "set_current_snapshot": "works",
    "cherrypick_snapshot": "works",
    "publish_changes": "works",
    "fast_forward": "works",
    "expire_snapshots": "works",
    "remove_orphan_files": "works",
    "rewrite_manifests": "works",
    "snapshot": "works",
    "migrate": "works",
    "add_files": "works",
    "register_table": "works",
    "ancestors_of": "works",
    "compute_table_stats": "works",
    "rewrite_data_files": "works",
    "rewrite_position_delete_files": "works",
    "create_changelog_view": "works",
    "rewrite_table_path": "refused",
    "compute_partition_stats": "refused",
}


@pytest.mark.parametrize("procedure", sorted(PROCEDURES_ON_THE_PAGE))
def test_every_procedure_on_the_page_runs_or_is_refused_clearly(logs: wharf.Lakehouse, procedure: str) -> None:
    from wharf.sql.procedures import PROCEDURES

    if PROCEDURES_ON_THE_PAGE[procedure] == "works":
        assert (
            procedure in PROCEDURES
        )  # each has its own tests (test_procedures, test_adoption_procedures, tables/test_compaction, history/)
        return
    with pytest.raises(UnsupportedStatement, match="not supported yet") as info:
        run(logs, f"CALL prod.system.{procedure}(table => 'db.logs')")
    assert len(str(info.value)) > 60  # says why and what to do instead


def test_procedures_with_named_and_positional_arguments(logs: wharf.Lakehouse) -> None:
    ancestors = run(logs, "CALL prod.system.ancestors_of('db.logs')")
    assert [r[0] for r in ancestors] == [s.snapshot_id for s in reversed(logs.table("db.logs").iceberg.metadata.snapshots)]
    first = ancestors[-1][0]
    run(logs, f"CALL prod.system.rollback_to_snapshot(table => 'db.logs', snapshot_id => {first})")
    assert run(logs, "SELECT count(*) FROM db.logs") == [(4,)]
    stats = run(logs, "CALL prod.system.compute_table_stats(table => 'db.logs')")
    assert stats and str(stats[0][0]).endswith(".stats")
