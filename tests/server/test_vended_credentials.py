"""Credential vending: ``wharf serve`` over a warehouse in S3 hands its clients the storage credentials.

The server's lake is in a bucket of the session's S3 server (moto, on loopback). The clients are
given the REST URI only — no S3 endpoint, no keys (the test's environment has no AWS variables
either): everything they read or write in the bucket they reach with what ``loadTable`` /
``createTable`` vended. Without it they would not even know where the bucket is.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest
import sqlalchemy

import wharf
from tests import servers
from tests.server.conftest import RunningServer
from wharf.engine import extension_path
from wharf.server.background import serve_in_background

DELEGATION = {"X-Iceberg-Access-Delegation": "vended-credentials"}
AWS_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@pytest.fixture(scope="module")
def s3_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str, dict[str, str]]]:
    """A server over ``s3://<new bucket>/lake`` (metadata in a local SQLite file); also the bucket and S3 settings."""
    try:
        endpoint = servers.s3_server()
    except servers.ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    bucket = servers.create_bucket(endpoint)
    storage = {
        "s3.endpoint": endpoint,
        "s3.access-key-id": servers.S3_ACCESS_KEY,
        "s3.secret-access-key": servers.S3_SECRET_KEY,
        "s3.region": servers.S3_REGION,
    }
    meta = tmp_path_factory.mktemp("vended-meta")
    lake = wharf.connect(f"s3://{bucket}/lake", metadata_url=f"sqlite:///{meta / 'wharf.db'}", storage=storage, user="owner")
    background = serve_in_background(lake)
    try:
        yield RunningServer(background.url, lake, background.config), bucket, storage
    finally:
        background.stop()
        lake.close()


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client side knows nothing about S3: no AWS variables, no metadata service to ask."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_pyiceberg_without_credentials_appends_and_scans(
    s3_served: tuple[RunningServer, str, dict[str, str]], no_aws_environment: None, caplog: pytest.LogCaptureFixture
) -> None:
    server, bucket, storage = s3_served
    server.lake.sql("CREATE NAMESPACE IF NOT EXISTS vend")
    # PyIceberg sends the header by default; say so anyway, as a user configuring it would.
    catalog = server.catalog(**{"header.X-Iceberg-Access-Delegation": "vended-credentials"})
    assert not any(key.startswith("s3.") for key in catalog.properties)  # the client brought no S3 settings
    caplog.set_level(logging.DEBUG)
    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "city": ["Oslo", "Lima", "Pune"]})
    table = catalog.create_table("vend.cities", rows.schema)  # createTable vends: the client writes its files
    assert table.location().startswith(f"s3://{bucket}/lake/")
    table.append(rows)
    loaded = catalog.load_table("vend.cities")  # loadTable vends: the client reads them back
    assert loaded.io.properties["s3.endpoint"] == storage["s3.endpoint"]
    assert sorted(loaded.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3]
    # A staged create (a create transaction) vends too: the client writes data before the table exists.
    txn = catalog.create_table_transaction("vend.staged", rows.schema)
    txn.append(rows.slice(0, 1))
    txn.commit_transaction()
    # What the clients wrote is a Wharf table in the bucket, read by Wharf.
    server.lake.sql("INSERT INTO vend.cities VALUES (4, 'Kyiv')")
    assert server.lake.sql("SELECT count(*), max(id) FROM vend.cities").fetchone() == (4, 4)
    assert server.lake.sql("SELECT city FROM vend.staged").fetchall() == [("Oslo",)]
    assert sorted(catalog.load_table("vend.cities").scan().to_arrow().column("city").to_pylist()) == [
        "Kyiv",
        "Lima",
        "Oslo",
        "Pune",
    ]
    # Never in a log line.
    logged = "\n".join(r.getMessage() + json.dumps({k: str(v) for k, v in vars(r).items()}) for r in caplog.records)
    assert servers.S3_SECRET_KEY not in logged


def test_load_table_result_carries_the_credentials_only_when_asked(
    s3_served: tuple[RunningServer, str, dict[str, str]],
) -> None:
    server, bucket, storage = s3_served
    server.lake.sql("CREATE NAMESPACE IF NOT EXISTS vend")
    server.lake.sql("CREATE TABLE IF NOT EXISTS vend.raw (id BIGINT)")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        config = http.get("/v1/config").json()
        assert config["defaults"]["header.X-Iceberg-Access-Delegation"] == "vended-credentials"
        assert "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials" in config["endpoints"]

        plain = http.get("/v1/wharf/namespaces/vend/tables/raw")
        assert plain.status_code == 200 and plain.json()["config"] == {} and "storage-credentials" not in plain.json()

        answer = http.get(
            "/v1/wharf/namespaces/vend/tables/raw", headers={"X-Iceberg-Access-Delegation": "remote-signing, vended-credentials"}
        )
        body = answer.json()
        expected = {
            "s3.access-key-id": storage["s3.access-key-id"],
            "s3.secret-access-key": storage["s3.secret-access-key"],
            "s3.endpoint": storage["s3.endpoint"],
            "s3.region": storage["s3.region"],
            "client.region": storage["s3.region"],
            "s3.path-style-access": "true",
        }
        assert body["config"] == expected
        location = body["metadata"]["location"]
        assert body["storage-credentials"] == [{"prefix": f"{location}/", "config": expected}]
        assert body["metadata-location"].startswith(body["storage-credentials"][0]["prefix"])
        assert answer.headers["ETag"] != plain.headers["ETag"]  # a cached plain answer never serves the vended one

        again = http.get("/v1/wharf/namespaces/vend/tables/raw/credentials").json()
        assert again == {"storage-credentials": body["storage-credentials"]}
        assert http.get("/v1/wharf/namespaces/vend/tables/absent/credentials").status_code == 404


def test_an_idempotent_create_vends_but_never_stores_the_credentials(
    s3_served: tuple[RunningServer, str, dict[str, str]],
) -> None:
    server, _bucket, storage = s3_served
    server.lake.sql("CREATE NAMESPACE IF NOT EXISTS vend")
    schema = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
    headers = {**DELEGATION, "Idempotency-Key": str(uuid.uuid4())}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        first = http.post("/v1/wharf/namespaces/vend/tables", json={"name": "once", "schema": schema}, headers=headers)
        again = http.post("/v1/wharf/namespaces/vend/tables", json={"name": "once", "schema": schema}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    for answer in (first.json(), again.json()):
        assert answer["config"]["s3.secret-access-key"] == storage["s3.secret-access-key"]
        assert answer["storage-credentials"][0]["config"]["s3.access-key-id"] == storage["s3.access-key-id"]
    with server.lake.catalog.engine.connect() as conn:
        stored = conn.execute(sqlalchemy.text("SELECT body FROM wharf_rest_idempotency")).fetchall()
    assert stored and not any(storage["s3.secret-access-key"].encode() in bytes(body) for (body,) in stored)


def test_a_local_warehouse_accepts_the_header_and_vends_nothing(
    server: RunningServer, namespace: str, http: httpx.Client
) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.t (id BIGINT)")
    answer = http.get(f"/v1/wharf/namespaces/{namespace}/tables/t", headers=DELEGATION)
    assert answer.status_code == 200
    assert answer.json()["config"] == {} and "storage-credentials" not in answer.json()
    assert http.get(f"/v1/wharf/namespaces/{namespace}/tables/t/credentials").json() == {"storage-credentials": []}
    assert http.get("/v1/config").json()["defaults"] == {}


def test_vending_turned_off(s3_served: tuple[RunningServer, str, dict[str, str]]) -> None:
    server, _bucket, _storage = s3_served
    server.lake.sql("CREATE NAMESPACE IF NOT EXISTS vend")
    server.lake.sql("CREATE TABLE IF NOT EXISTS vend.raw (id BIGINT)")
    with serve_in_background(server.lake, vend_credentials=False) as closed:
        with httpx.Client(base_url=closed.url, timeout=60) as http:
            answer = http.get("/v1/wharf/namespaces/vend/tables/raw", headers=DELEGATION).json()
            assert answer["config"] == {} and "storage-credentials" not in answer
            assert http.get("/v1/config").json()["defaults"] == {}


def test_duckdb_attach_with_vended_credentials(
    s3_served: tuple[RunningServer, str, dict[str, str]], no_aws_environment: None
) -> None:
    server, _bucket, _storage = s3_served
    server.lake.sql("CREATE NAMESPACE IF NOT EXISTS vend")
    server.lake.sql("CREATE TABLE vend.duck (id BIGINT, v VARCHAR)")
    server.lake.sql("INSERT INTO vend.duck VALUES (1, 'a'), (2, 'b')")
    con = duckdb.connect(config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
    try:
        for extension in ("avro", "httpfs", "iceberg"):
            con.execute(f"LOAD '{extension_path(extension)}'")
        assert not con.sql("SELECT * FROM duckdb_secrets() WHERE type = 's3'").fetchall()  # no S3 secret of its own
        con.execute(
            f"ATTACH 'wharf' AS lake (TYPE iceberg, ENDPOINT '{server.url}', AUTHORIZATION_TYPE 'none', "
            "ACCESS_DELEGATION_MODE 'vended_credentials')"
        )
        assert con.sql("SELECT id, v FROM lake.vend.duck ORDER BY id").fetchall() == [(1, "a"), (2, "b")]
        con.execute("INSERT INTO lake.vend.duck VALUES (3, 'c')")
    finally:
        con.close()
    assert server.lake.sql("SELECT count(*), max(v) FROM vend.duck").fetchone() == (3, "c")
    assert os.environ.get("AWS_ACCESS_KEY_ID") is None


def test_what_is_vended_for_aws_with_a_session_token() -> None:
    """Temporary AWS credentials (no endpoint: AWS itself): the session token goes along, no path-style flag."""
    from types import SimpleNamespace

    from wharf.server.rest.credentials import s3_config, storage_credentials

    settings = {"s3.access-key-id": "ASIA1", "s3.secret-access-key": "wJal", "s3.session-token": "IQoJb3"}
    ctx: Any = SimpleNamespace(lake=SimpleNamespace(storage_properties=lambda: dict(settings)))
    expected = {**settings, "s3.region": "us-east-1", "client.region": "us-east-1"}
    assert s3_config(ctx) == expected
    assert storage_credentials(ctx, "s3://bucket/lake/sales/orders") == [
        {"prefix": "s3://bucket/lake/sales/orders/", "config": expected}
    ]
    # A lake relying on an ambient credential chain (no keys configured) has nothing to hand out.
    ctx.lake.storage_properties = lambda: {"s3.region": "eu-west-1"}
    assert storage_credentials(ctx, "s3://bucket/lake/sales/orders") == []
