"""A lake whose warehouse is in S3-compatible object storage (moto's S3 server on loopback).

Every write path (INSERT, CTAS, UPDATE/DELETE/MERGE copy-on-write and merge-on-read, compaction,
expiry, orphan removal) and both read paths (Wharf's scan planner, DuckDB's ``iceberg_scan``)
run against ``s3://``; the metadata is in SQLite beside the test or in PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import duckdb
import pytest

import wharf
from tests import servers
from wharf.engine import configure_object_storage, load_extension
from wharf.errors import AccessDenied, InvalidArgument

FUTURE = "TIMESTAMP '2999-01-01 00:00:00'"


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    try:
        return servers.s3_server()
    except servers.ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket; the standard AWS variables point at the test server for this test only."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", servers.S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", servers.S3_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", servers.S3_REGION)
    return servers.create_bucket(s3_endpoint)


@pytest.fixture
def s3_lake(bucket: str, tmp_path: Path) -> Iterator[wharf.Lakehouse]:
    """A lake in ``s3://<bucket>/lake``; metadata in $WHARF_METADATA_URL (PostgreSQL runs) or a local SQLite file."""
    metadata = os.environ.get("WHARF_METADATA_URL") or f"sqlite:///{tmp_path / 'meta' / 'wharf.db'}"
    (tmp_path / "meta").mkdir()
    with wharf.connect(f"s3://{bucket}/lake", metadata_url=metadata, user="owner") as lake:
        yield lake


def objects(bucket: str, prefix: str = "") -> set[str]:
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=servers.S3_REGION)
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys |= {f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", [])}
    return {k for k in keys if not k.endswith("/")}  # pyarrow keeps "directory" marker objects


def put_object(bucket: str, key: str, body: bytes) -> None:
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=servers.S3_REGION)
    client.put_object(Bucket=bucket, Key=key, Body=body)


def iceberg_scan(lake: wharf.Lakehouse, table: str, sql: str) -> list[tuple[object, ...]]:
    """``sql`` on DuckDB's own iceberg extension reading the table's metadata file in S3."""
    con = duckdb.connect(config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
    configure_object_storage(con, lake.storage_properties())
    load_extension(con, "iceberg")
    location = lake.table(table).iceberg.metadata_location
    return con.execute(sql.format(t=f"iceberg_scan('{location}')")).fetchall()


@pytest.mark.metadata_backends
def test_an_s3_lake_reads_writes_and_time_travels_in_its_bucket(s3_lake: wharf.Lakehouse, bucket: str, tmp_path: Path) -> None:
    lake = s3_lake
    lake.sql("CREATE TABLE t (id BIGINT, v VARCHAR) PARTITIONED BY (bucket(2, id))")
    lake.sql("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    first = lake.table("t").iceberg.metadata.current_snapshot_id
    lake.sql("UPDATE t SET v = 'B' WHERE id = 2")
    lake.sql("DELETE FROM t WHERE id = 1")
    lake.sql(
        "MERGE INTO t USING (SELECT 3 AS id, 'C' AS v UNION ALL SELECT 4, 'd') s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *"
    )
    lake.sql("CREATE TABLE copy AS SELECT * FROM t WHERE id > 2")
    assert lake.sql("SELECT * FROM t ORDER BY id").fetchall() == [(2, "B"), (3, "C"), (4, "d")]
    assert lake.sql(f"SELECT * FROM t FOR VERSION AS OF {first} ORDER BY id").fetchall() == [(1, "a"), (2, "b"), (3, "c")]
    assert lake.sql("SELECT * FROM copy ORDER BY id").fetchall() == [(3, "C"), (4, "d")]

    table = lake.table("t").iceberg
    assert table.location() == f"s3://{bucket}/lake/default/t"
    stored = objects(bucket)
    files: set[str] = set()
    for snapshot in table.metadata.snapshots:
        for manifest in snapshot.manifests(table.io):
            files |= {e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io, discard_deleted=False)}
    assert files and files <= stored  # every data file of every snapshot is in the bucket
    assert table.metadata_location in stored
    assert all(key.startswith(f"s3://{bucket}/lake/") for key in stored)
    # Nothing but the metadata database, its audit log (and its commit locks) was written locally.
    local = {p.name for p in tmp_path.rglob("*") if p.is_file() and p.parent.name != ".locks"}
    assert local <= {f"{db}{suffix}" for db in ("wharf.db", "wharf-audit.db") for suffix in ("", "-wal", "-shm")}
    # A governed principal reads through the locked-down engine, which may reach the warehouse only.
    lake.sql("GRANT SELECT ON TABLE t TO USER analyst")
    analyst = lake.session(user="analyst")
    assert analyst.sql("SELECT count(*) FROM t").scalar() == 3
    # DuckDB's iceberg extension reads the same table from S3 (interop).
    assert iceberg_scan(lake, "t", "SELECT id, v FROM {t} ORDER BY id") == [(2, "B"), (3, "C"), (4, "d")]


def test_merge_on_read_compaction_expiry_and_orphans_on_s3(s3_lake: wharf.Lakehouse, bucket: str) -> None:
    lake = s3_lake
    lake.sql(
        "CREATE TABLE m (id BIGINT, v VARCHAR) TBLPROPERTIES ('write.delete.mode' = 'merge-on-read', "
        "'write.update.mode' = 'merge-on-read', 'write.merge.mode' = 'merge-on-read')"
    )
    for i in range(3):
        lake.sql(f"INSERT INTO m SELECT range + {i * 10}, 'v' FROM range(10)")
    lake.sql("DELETE FROM m WHERE id % 3 = 0")
    lake.sql("UPDATE m SET v = 'u' WHERE id < 5")
    expected = lake.sql("SELECT * FROM m ORDER BY id").fetchall()
    table = lake.table("m").iceberg
    deletes = table.inspect.delete_files().to_pylist()
    assert deletes and all(f["file_path"].startswith(f"s3://{bucket}/") for f in deletes)
    assert iceberg_scan(lake, "m", "SELECT * FROM {t} ORDER BY id") == expected

    lake.sql("CALL system.rewrite_data_files(table => 'm', options => map('rewrite-all', 'true'))")
    assert lake.sql("SELECT * FROM m ORDER BY id").fetchall() == expected
    before = objects(bucket, "lake/default/m/data/")
    expired = lake.sql(f"CALL system.expire_snapshots(table => 'm', older_than => {FUTURE}, retain_last => 1)").fetchone()
    assert expired is not None and sum(expired) > 0
    after = objects(bucket, "lake/default/m/data/")
    assert after < before  # the files only expired snapshots read are gone from the bucket
    assert lake.sql("SELECT * FROM m ORDER BY id").fetchall() == expected

    stray = f"s3://{bucket}/lake/default/m/data/killed-writer.parquet"
    put_object(bucket, "lake/default/m/data/killed-writer.parquet", b"x")
    found = lake.sql(f"CALL system.remove_orphan_files(table => 'm', older_than => {FUTURE}, dry_run => true)").fetchall()
    assert found == [(stray,)]
    assert lake.sql(f"CALL system.remove_orphan_files(table => 'm', older_than => {FUTURE})").fetchall() == [(stray,)]
    assert objects(bucket, "lake/default/m/data/") == after
    assert lake.sql("SELECT * FROM m ORDER BY id").fetchall() == expected


def test_s3_locations_are_contained(s3_lake: wharf.Lakehouse, bucket: str) -> None:
    lake = s3_lake
    for location in (f"s3://{bucket}/elsewhere/x", f"s3://{bucket}/lake/../escape/x", f"s3://{bucket}-other/lake/x"):
        with pytest.raises(AccessDenied, match="outside the lake's warehouse"):
            lake.sql(f"CREATE TABLE x (id BIGINT) LOCATION '{location}'")
    assert objects(bucket) == set()
    lake.register_location(f"s3://{bucket}/shared")
    lake.sql(f"CREATE TABLE ext (id BIGINT) LOCATION 's3://{bucket}/shared/ext'")
    lake.sql("INSERT INTO ext VALUES (1)")
    lake.sql("GRANT SELECT ON TABLE ext TO USER analyst")
    assert lake.session(user="analyst").sql("SELECT id FROM ext").fetchall() == [(1,)]
    assert any(k.startswith(f"s3://{bucket}/shared/ext/data/") for k in objects(bucket))


def test_an_s3_lake_needs_a_metadata_database_and_vends_its_settings(bucket: str, s3_endpoint: str) -> None:
    with pytest.raises(InvalidArgument, match="needs a metadata database") as info:
        wharf.connect(f"s3://{bucket}/lake")
    assert "metadata_url" in str(info.value)
    assert not objects(bucket)


def test_storage_properties_use_pyiceberg_names(s3_lake: wharf.Lakehouse, s3_endpoint: str) -> None:
    assert s3_lake.storage_properties() == {
        "s3.endpoint": s3_endpoint,
        "s3.access-key-id": servers.S3_ACCESS_KEY,
        "s3.secret-access-key": servers.S3_SECRET_KEY,
        "s3.region": servers.S3_REGION,
    }


def test_the_storage_page_runs(s3_endpoint: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/storage.md's examples, against the session's S3 server and a PostgreSQL database of their own."""
    from tests.test_docs import DOCS, run_page

    for key, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": servers.S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": servers.S3_SECRET_KEY,
        "AWS_REGION": servers.S3_REGION,
        "WHARF_METADATA_URL": postgres_url,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    servers.create_bucket(s3_endpoint, "analytics")  # the page's bucket (this test runs once per session)
    failures = run_page(DOCS / "storage.md")
    assert not failures, f"{len(failures)} example(s) in docs/storage.md fail:\n" + "\n".join(failures)
