"""Namespaces and table DDL, checked against the Iceberg metadata they produce."""

from __future__ import annotations

import os

import pytest

import wharf
from wharf.errors import AlreadyExists, InvalidArgument, NotFound, SchemaMismatch


def test_namespaces(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE SCHEMA sales")
    lake.sql("CREATE NAMESPACE IF NOT EXISTS sales")
    lake.sql("CREATE DATABASE hr")
    assert lake.namespaces() == ["default", "hr", "sales"]
    with pytest.raises(AlreadyExists):
        lake.sql("CREATE SCHEMA sales")
    lake.sql("CREATE TABLE sales.t (a INT)")
    with pytest.raises(InvalidArgument, match="CASCADE"):
        lake.sql("DROP SCHEMA sales")
    lake.sql("DROP SCHEMA sales CASCADE")
    lake.sql("DROP NAMESPACE IF EXISTS nope")
    assert lake.namespaces() == ["default", "hr"]
    with pytest.raises(NotFound):
        lake.sql("CREATE TABLE missing_ns.t (a INT)")


def test_create_table_types_and_not_null(lake: wharf.Lakehouse) -> None:
    lake.sql(
        """CREATE TABLE t (
            id BIGINT NOT NULL, small INT, flag BOOLEAN, price DECIMAL(12, 3), ratio DOUBLE, f FLOAT,
            name VARCHAR, day DATE, at TIMESTAMP, at_tz TIMESTAMPTZ, t TIME, u UUID, raw BLOB,
            tags VARCHAR[], attrs MAP(VARCHAR, INT), point STRUCT(x DOUBLE, y DOUBLE)
        )"""
    )
    schema = lake.table("t").schema
    types = {f.name: str(f.field_type) for f in schema.fields}
    assert types["id"] == "long" and schema.find_field("id").required
    assert types["price"] == "decimal(12, 3)"
    assert types["at"] == "timestamp" and types["at_tz"] == "timestamptz"
    assert types["tags"].startswith("list<string>")
    assert types["point"].startswith("struct<")
    lake.sql(
        """INSERT INTO t VALUES (1, 2, true, 1.5, 0.25, 1.5, 'n', DATE '2024-01-02', TIMESTAMP '2024-01-02 03:04:05',
           TIMESTAMPTZ '2024-01-02 03:04:05+00', TIME '01:02:03', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ab'::BLOB,
           ['x', 'y'], MAP {'k': 1}, {'x': 1.0, 'y': 2.0})"""
    )
    row = lake.sql("SELECT id, price, tags, attrs['k'], point.y FROM t").fetchone()
    assert row is not None
    assert row[0] == 1 and str(row[1]) == "1.500" and row[2] == ["x", "y"] and row[3] == 1 and row[4] == 2.0


@pytest.mark.parametrize(
    ("clause", "transform"),
    [
        ("region", "identity"),
        ("years(at)", "year"),
        ("months(at)", "month"),
        ("days(at)", "day"),
        ("hours(at)", "hour"),
        ("bucket(8, id)", "bucket[8]"),
        ("truncate(3, region)", "truncate[3]"),
    ],
)
def test_partition_transforms(lake: wharf.Lakehouse, clause: str, transform: str) -> None:
    lake.sql(f"CREATE TABLE t (id BIGINT, region VARCHAR, at TIMESTAMP) PARTITIONED BY ({clause})")
    spec = lake.table("t").iceberg.spec()
    assert [str(f.transform) for f in spec.fields] == [transform]
    lake.sql(
        "INSERT INTO t SELECT range, ['eu', 'us', 'apac'][range % 3 + 1], "
        "TIMESTAMP '2024-01-01' + INTERVAL (range * 100) HOUR FROM range(100)"
    )
    assert lake.sql("SELECT count(*), sum(id) FROM t").fetchone() == (100, 4950)
    files = lake.sql("SELECT count(*) FROM t.files").scalar()
    assert files > 1  # data was split by partition


def test_tblproperties_set_and_unset(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (a INT) TBLPROPERTIES ('owner' = 'data-team', 'write.target-file-size-bytes' = '1048576')")
    props = lake.table("t").iceberg.properties
    assert props["owner"] == "data-team"
    lake.sql("ALTER TABLE t SET TBLPROPERTIES ('owner' = 'me', 'x' = '1')")
    lake.sql("ALTER TABLE t UNSET TBLPROPERTIES ('x')")
    props = lake.table("t").iceberg.properties
    assert props["owner"] == "me" and "x" not in props
    with pytest.raises(NotFound):
        lake.sql("ALTER TABLE t UNSET TBLPROPERTIES ('nope')")
    lake.sql("ALTER TABLE t UNSET TBLPROPERTIES IF EXISTS ('nope')")


def test_ctas_and_replace_keep_history(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t AS SELECT range AS id, 'x' || range AS name FROM range(10)")
    assert lake.sql("SELECT count(*) FROM t").scalar() == 10
    first = lake.table("t").current_snapshot_id()
    commits = lake.sql("SELECT count(*) FROM t.metadata_log_entries").scalar()
    lake.sql("CREATE OR REPLACE TABLE t PARTITIONED BY (bucket(4, id)) AS SELECT range AS id FROM range(3)")
    # schema, spec and data change in one catalog commit: no reader can see one without the other
    assert lake.sql("SELECT count(*) FROM t.metadata_log_entries").scalar() == commits + 1
    assert lake.sql("SELECT id FROM t ORDER BY id").fetchall() == [(0,), (1,), (2,)]
    assert [f.name for f in lake.table("t").schema.fields] == ["id"]
    # history survives the replace: time travel to the first version
    assert lake.sql(f"SELECT count(*) FROM t FOR VERSION AS OF {first}").scalar() == 10
    assert lake.sql("SELECT count(*) FROM t.snapshots").scalar() == 2
    lake.sql("CREATE OR REPLACE TABLE t (a INT, b VARCHAR)")
    assert lake.sql("SELECT count(*) FROM t").scalar() == 0


def test_drop_table_and_purge(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE a (x INT)")
    lake.sql("INSERT INTO a VALUES (1)")
    location = lake.table("a").location.removeprefix("file://")
    lake.sql("DROP TABLE a PURGE")
    assert lake.tables() == []
    assert not any(os.scandir(location + "/data")) if os.path.exists(location + "/data") else True
    lake.sql("CREATE TABLE b (x INT)")
    lake.sql("DROP TABLE IF EXISTS b, nope")
    with pytest.raises(NotFound):
        lake.sql("DROP TABLE b")


def test_alter_table_schema_evolution_reads_old_files(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id INT, name VARCHAR, junk DOUBLE)")
    lake.sql("INSERT INTO t VALUES (1, 'a', 0.5)")
    lake.sql("ALTER TABLE t ADD COLUMN score DOUBLE")
    lake.sql("ALTER TABLE t ADD COLUMNS (c1 INT, c2 VARCHAR)")
    lake.sql("ALTER TABLE t RENAME COLUMN name TO label")
    lake.sql("ALTER TABLE t DROP COLUMN junk")
    lake.sql("ALTER TABLE t ALTER COLUMN id TYPE BIGINT")
    lake.sql("INSERT INTO t VALUES (2, 'b', 9.5, 7, 'z')")
    assert lake.sql("SELECT * FROM t ORDER BY id").fetchall() == [(1, "a", None, None, None), (2, "b", 9.5, 7, "z")]
    # a new column with the dropped column's name does not resurrect old values
    lake.sql("ALTER TABLE t ADD COLUMN junk DOUBLE")
    assert lake.sql("SELECT junk FROM t WHERE id = 1").scalar() is None
    with pytest.raises(SchemaMismatch):
        lake.sql("ALTER TABLE t ADD COLUMN req INT NOT NULL")
    with pytest.raises(NotFound):
        lake.sql("ALTER TABLE t DROP COLUMN nope")


def test_rename_table(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE SCHEMA s")
    lake.sql("CREATE TABLE t (a INT)")
    lake.sql("INSERT INTO t VALUES (1)")
    lake.sql("ALTER TABLE t RENAME TO s.t2")
    assert lake.tables() == ["s.t2"]
    assert lake.sql("SELECT a FROM s.t2").fetchall() == [(1,)]


def test_identifier_fields(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT NOT NULL, region VARCHAR NOT NULL, v INT)")
    lake.sql("ALTER TABLE t SET IDENTIFIER FIELDS id, region")
    schema = lake.table("t").schema
    assert sorted(schema.identifier_field_names()) == ["id", "region"]
    with pytest.raises(SchemaMismatch, match="NOT NULL"):
        lake.sql("ALTER TABLE t SET IDENTIFIER FIELDS v")
    lake.sql("ALTER TABLE t DROP IDENTIFIER FIELDS region")
    assert lake.table("t").schema.identifier_field_names() == {"id"}
