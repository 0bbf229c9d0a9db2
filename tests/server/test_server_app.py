"""The server around the catalog: authentication (fail closed), authorization hook, configuration,
logs, CORS, health, graceful shutdown, several worker processes."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import wharf
from tests.server.conftest import free_port
from wharf.errors import AccessDenied, InvalidArgument
from wharf.principal import Principal
from wharf.server.background import serve_in_background
from wharf.server.config import ServerConfig, load_config
from wharf.server.context import ClientCredentials, IssuedToken, NotAuthenticated
from wharf.server.logs import JsonFormatter

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}


class Tokens:
    """A test authenticator: bearer tokens map to principals; one client id/secret pair gets a token."""

    def __init__(self) -> None:
        self.tokens = {"tok-ana": Principal("ana"), "tok-owner": Principal.owner("owner")}

    def authenticate(self, request: Any) -> Principal:
        header = request.headers.get("authorization", "")
        principal = self.tokens.get(header.removeprefix("Bearer "))
        if principal is None:
            raise NotAuthenticated("invalid or missing bearer token")
        return principal

    def issue_token(self, credentials: ClientCredentials) -> IssuedToken:
        if (credentials.client_id, credentials.client_secret) != ("etl", "s3cret"):
            raise NotAuthenticated("unknown client or wrong secret")
        self.tokens["tok-etl"] = Principal("etl", kind="service")
        return IssuedToken("tok-etl", 600, credentials.scope)


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[wharf.Lakehouse]:
    with wharf.connect(tmp_path / "lake", user="owner") as opened:
        opened.sql("CREATE NAMESPACE db")
        yield opened


@contextmanager
def client(lake: wharf.Lakehouse, **settings: Any) -> Iterator[httpx.Client]:
    """A server for ``lake`` with ``settings`` on a free loopback port, and an HTTP client of it."""
    with serve_in_background(lake, **{"no_auth": False, **settings}) as background:
        with httpx.Client(base_url=background.url, timeout=60) as http:
            http.app = background.app  # type: ignore[attr-defined]  # for tests that reach into the server's state
            yield http


def test_auth_on_without_authenticator_fails_closed(lake: wharf.Lakehouse) -> None:
    with client(lake) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/v1/config").status_code == 200  # config and token need no token
        refused = http.get("/v1/namespaces", headers={"Authorization": "Bearer anything"})
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "NotAuthorizedException"
        assert http.post("/v1/oauth/tokens", data={"grant_type": "client_credentials"}).status_code == 400


def test_requests_run_as_the_authenticated_principal(lake: wharf.Lakehouse) -> None:
    lake.sql("GRANT ALL PRIVILEGES ON CATALOG TO USER etl; GRANT ALL PRIVILEGES ON CATALOG TO USER ana")
    with client(lake, authenticator=Tokens()) as http:
        assert http.get("/v1/namespaces").status_code == 401
        assert http.get("/v1/namespaces", headers={"Authorization": "Bearer wrong"}).status_code == 401
        bad = http.post("/v1/oauth/tokens", data={"grant_type": "client_credentials", "client_id": "etl", "client_secret": "no"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        form = {"grant_type": "client_credentials", "client_id": "etl", "client_secret": "s3cret", "scope": "PRINCIPAL_ROLE:ALL"}
        token = http.post("/v1/oauth/tokens", data=form).json()
        assert token["access_token"] == "tok-etl" and token["expires_in"] == 600
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        created = http.post("/v1/namespaces/db/tables", json={"name": "t", "schema": SCHEMA}, headers=headers)
        assert created.status_code == 200
    # The REST client's writes are stamped with its principal, as a SQL statement's are.
    lake.sql("INSERT INTO db.t VALUES (1)")
    with client(lake, authenticator=Tokens()) as http:
        table = http.get("/v1/namespaces/db/tables/t", headers={"Authorization": "Bearer tok-ana"}).json()
        assert table["metadata"]["current-snapshot-id"] > 0
    events: list[Any] = []
    lake.events.subscribe("on_commit", events.append)
    from pyiceberg.catalog import load_catalog

    with serve_in_background(lake, no_auth=False, authenticator=Tokens()) as background:
        url = background.url
        settings = {"credential": "etl:s3cret", "scope": "PRINCIPAL_ROLE:ALL", "oauth2-server-uri": f"{url}/v1/oauth/tokens"}
        catalog = load_catalog("w", type="rest", uri=url, **settings)
        catalog.load_table("db.t").append(pa.table({"id": pa.array([2], pa.int64())}))
    users = lake.sql("SELECT summary['wharf.user'] FROM db.t.snapshots ORDER BY committed_at").fetchall()
    assert users == [("owner",), ("etl",)]
    assert [e.principal for e in events] == ["etl"]


def test_token_endpoint_is_rate_limited(lake: wharf.Lakehouse) -> None:
    with client(lake, authenticator=Tokens(), token_rate_per_minute=2) as http:
        form = {"grant_type": "client_credentials", "client_id": "etl", "client_secret": "guess"}
        codes = [http.post("/v1/oauth/tokens", data=form).status_code for _ in range(3)]
        assert codes == [401, 401, 429]


def test_authorizers_plug_into_every_route(lake: wharf.Lakehouse) -> None:
    def no_drops(principal: Principal, action: str, target: str) -> None:
        if action == "dropTable":
            raise AccessDenied(f"{principal} may not drop {target}")

    lake.sql("CREATE TABLE db.keep (id BIGINT)")
    with client(lake, no_auth=True) as http:
        http.app.state.wharf.authorizers.append(no_drops)  # type: ignore[attr-defined]
        refused = http.delete("/v1/namespaces/db/tables/keep")
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "ForbiddenException"
    assert lake.tables("db") == ["db.keep"]


def test_no_auth_is_loopback_only() -> None:
    with pytest.raises(InvalidArgument, match="loopback"):
        ServerConfig(no_auth=True, host="0.0.0.0")
    ServerConfig(no_auth=True, host="::1")
    from wharf.cli import app

    result = CliRunner().invoke(app, ["serve", "--no-auth", "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "loopback" in result.output


def test_configuration_file_environment_and_flags(tmp_path: Path) -> None:
    file = tmp_path / "wharf.toml"
    file.write_text('[server]\nport = 9000\nworkers = 3\nlake = "from-file"\ncors_origins = ["https://ui.example"]\n')
    config = load_config(file, environ={"WHARF_PORT": "9100", "WHARF_NO_AUTH": "yes"}, workers=2)
    assert (config.port, config.workers, config.lake, config.no_auth) == (9100, 2, "from-file", True)
    assert config.cors_origins == ("https://ui.example",)
    assert load_config(None, environ={"WHARF_HOME": "/srv/lake"}).lake == "/srv/lake"
    with pytest.raises(InvalidArgument, match=r"\$WHARF_PORT"):
        load_config(None, environ={"WHARF_PORT": "eighty"})
    file.write_text("[server]\nprot = 1\n")
    with pytest.raises(InvalidArgument, match="unknown settings: prot"):
        load_config(file, environ={})
    with pytest.raises(InvalidArgument, match="ISO-8601"):
        ServerConfig(idempotency_lifetime="30 minutes")


def test_logs_are_json_with_request_ids_and_no_secrets(lake: wharf.Lakehouse, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wharf.server")
    with client(lake, authenticator=Tokens()) as http:
        response = http.get("/v1/namespaces?pageToken=", headers={"Authorization": "Bearer tok-ana", "X-Request-ID": "req-42"})
        assert response.headers["x-request-id"] == "req-42"
        generated = http.get("/v1/namespaces", headers={"Authorization": "Bearer tok-ana"}).headers["x-request-id"]
        http.post("/v1/oauth/tokens", data={"grant_type": "client_credentials", "client_id": "etl", "client_secret": "s3cret"})
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "wharf.server.access"]
    assert [line["request_id"] for line in lines[:2]] == ["req-42", generated]
    assert lines[0]["principal"] == "ana" and lines[0]["status"] == 200 and lines[0]["path"] == "/v1/namespaces"
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "tok-ana" not in text and "s3cret" not in text and "tok-etl" not in text


def test_cors_is_off_unless_configured(lake: wharf.Lakehouse) -> None:
    preflight = {"Origin": "https://ui.example", "Access-Control-Request-Method": "GET"}
    with client(lake, no_auth=True) as http:
        assert "access-control-allow-origin" not in http.options("/v1/namespaces", headers=preflight).headers
    with client(lake, no_auth=True, cors_origins=("https://ui.example",)) as http:
        allowed = http.options("/v1/namespaces", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://ui.example"


def test_readiness(lake: wharf.Lakehouse) -> None:
    with client(lake, no_auth=True) as http:
        assert http.get("/readyz").json()["status"] == "ready"


def test_graceful_shutdown_finishes_the_commit_in_flight(lake: wharf.Lakehouse) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_gate(change: Any) -> None:
        if change.table == "db.slow":
            entered.set()
            release.wait(30)

    lake.events.subscribe("before_commit", slow_gate)
    background = serve_in_background(lake)
    port = background.config.port
    result: dict[str, Any] = {}

    def commit() -> None:
        body = {"name": "slow", "schema": SCHEMA}
        result["response"] = httpx.post(f"http://127.0.0.1:{port}/v1/namespaces/db/tables", json=body, timeout=60)

    requester = threading.Thread(target=commit)
    requester.start()
    assert entered.wait(30)
    background.request_stop()  # what SIGTERM does
    time.sleep(0.2)
    assert background.thread.is_alive()  # still waiting for the commit
    release.set()
    requester.join(30)
    background.thread.join(30)
    assert not background.thread.is_alive()
    assert result["response"].status_code == 200
    assert lake.tables("db") == ["db.slow"]


def test_two_worker_processes_share_the_lake(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    with wharf.connect(root, user="owner") as lake:
        lake.sql("CREATE NAMESPACE db2")
        lake.sql("CREATE TABLE db2.hits (client BIGINT, n BIGINT)")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(wharf.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "wharf.cli", "--lake", str(root), "serve", "--no-auth", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        from pyiceberg.catalog import load_catalog

        errors: list[BaseException] = []

        def work(client_id: int) -> None:
            try:
                for n in range(2):  # a new client per append: new connections spread over the workers
                    table = load_catalog("w", type="rest", uri=f"http://127.0.0.1:{port}").load_table("db2.hits")
                    table.append(pa.table({"client": pa.array([client_id], pa.int64()), "n": pa.array([n], pa.int64())}))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c,)) for c in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            stderr = process.communicate(timeout=60)[1].decode()
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, stderr[-2000:]
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any("authentication is OFF" in line["message"] for line in lines)
    with wharf.connect(root) as lake:
        assert lake.sql("SELECT count(*), count(DISTINCT (client, n)) FROM db2.hits").fetchone() == (6, 6)
