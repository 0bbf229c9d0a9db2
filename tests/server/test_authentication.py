"""``wharf serve`` with authentication on (the default): PyIceberg with a service principal's
credential, personal access tokens over HTTP, immediate revocation, the token endpoint's errors
and rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

import wharf
from wharf.server.background import serve_in_background

ROWS = pa.table({"id": pa.array([1, 2], pa.int64()), "city": ["Oslo", "Lima"]})


class AuthServer:
    def __init__(self, url: str, root: Path, lake: wharf.Lakehouse) -> None:
        self.url = url
        self.root = root
        self.lake = lake

    def catalog(self, credential: str) -> Any:
        from pyiceberg.catalog import load_catalog

        # oauth2-server-uri: PyIceberg warns (deprecated fallback) when it has to guess the token endpoint.
        properties = {
            "type": "rest",
            "uri": self.url,
            "credential": credential,
            "oauth2-server-uri": f"{self.url}/v1/oauth/tokens",
        }
        return load_catalog("wharf", **properties)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:

    root = tmp_path_factory.mktemp("auth-served") / "lake"
    lake = wharf.connect(root, user="owner")
    # No --no-auth and no authenticator setting: the default is wharf.auth's bearer tokens.
    background = serve_in_background(lake, no_auth=False, token_rate_per_minute=1000)
    try:
        yield AuthServer(background.url, root, lake)
    finally:
        background.stop()
        lake.close()


@pytest.fixture
def http(served: AuthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=60) as client:
        yield client


def test_pyiceberg_with_a_service_principals_credential_commits_as_that_principal(served: AuthServer) -> None:
    creds = served.lake.auth.create_principal("loader", groups=["jobs"])
    served.lake.sql("GRANT ALL PRIVILEGES ON CATALOG TO GROUP jobs")  # governance: the group's grant covers loader
    catalog = served.catalog(creds.credential)
    catalog.create_namespace("sales")
    table = catalog.create_table("sales.orders", ROWS.schema)
    table.append(ROWS)
    assert catalog.load_table("sales.orders").scan().to_arrow().num_rows == 2
    users = served.lake.sql("SELECT DISTINCT summary['wharf.user'] FROM sales.orders.snapshots").fetchall()
    assert users == [("loader",)]


def test_every_endpoint_but_config_token_and_health_needs_a_valid_token(served: AuthServer, http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    assert http.get("/v1/config").status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = http.get("/v1/namespaces", headers=headers)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["type"] == "NotAuthorizedException" and error["code"] == 401
        assert "nope" not in error["message"]

    creds = served.lake.auth.create_principal("prober")
    wrong = http.post(
        "/v1/oauth/tokens", data={"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": "x"}
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    token = http.post(
        "/v1/oauth/tokens",
        data={"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret},
    ).json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 3600
    assert http.get("/v1/namespaces", headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 200


def test_revoking_a_token_or_disabling_a_user_takes_effect_on_the_next_request(served: AuthServer, http: httpx.Client) -> None:
    served.lake.auth.add_user("ann")
    first = served.lake.auth.create_token("ann", expires="1h")
    second = served.lake.auth.create_token("ann", expires="1h")

    def status(token: str) -> int:
        return http.get("/v1/namespaces", headers={"Authorization": f"Bearer {token}"}).status_code

    assert status(first.token) == status(second.token) == 200
    # Another process (the CLI, say) changes the metadata database; the server's next request sees it.
    with wharf.connect(served.root) as admin:
        admin.auth.revoke_token(first.id)
        assert status(first.token) == 401 and status(second.token) == 200
        admin.auth.disable_user("ann")
        assert status(second.token) == 401
        admin.auth.enable_user("ann")
        assert status(second.token) == 200


def test_pyiceberg_fetches_a_new_token_after_a_key_rotation_and_stops_when_disabled(served: AuthServer) -> None:
    from pyiceberg.exceptions import OAuthError, UnauthorizedError

    creds = served.lake.auth.create_principal("nightly")
    served.lake.sql("GRANT ALL PRIVILEGES ON CATALOG TO USER nightly")
    catalog = served.catalog(creds.credential)
    catalog.create_namespace("nightly_ns")
    # A leaked key: every token it signed stops at once; PyIceberg answers the 401 with a new token.
    served.lake.auth.rotate_key(invalidate_previous=True)
    assert ("nightly_ns",) in catalog.list_namespaces()

    served.lake.auth.disable_principal("nightly")
    with pytest.raises((UnauthorizedError, OAuthError)):
        catalog.list_namespaces()
    with pytest.raises((UnauthorizedError, OAuthError)):
        served.catalog(creds.credential)  # and it gets no new token


def test_the_token_endpoint_limits_attempts_per_client_id(served: AuthServer, http: httpx.Client) -> None:
    creds = served.lake.auth.create_principal("guessed")
    statuses = [
        http.post(
            "/v1/oauth/tokens",
            data={"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": f"guess-{i}"},
        ).status_code
        for i in range(12)
    ]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
    limited = http.post(
        "/v1/oauth/tokens",
        data={"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret},
    )
    assert limited.status_code == 429 and limited.json()["error"] == "slow_down"  # even with the right secret, for now


def test_server_logs_redact_credentials(served: AuthServer, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import logging

    from wharf.server.logs import configure_logging

    names = ("wharf", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
    disabled = logging.getLogger("uvicorn.access").disabled
    token = served.lake.auth.create_token(served.lake.auth.add_user("logged").name, expires="1h").token
    try:
        configure_logging("info")
        log = logging.getLogger("wharf.server.test")
        log.info("got headers %s", {"authorization": f"Bearer {token}"})
        try:
            raise ValueError(f"cannot use {token}")
        except ValueError:
            log.exception("request failed", extra={"query": f"access_token={token}"})
    finally:
        for n, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(n)
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate
        logging.getLogger("uvicorn.access").disabled = disabled
    everything = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert token not in json.dumps(everything)
    # The test's own two records (the served lake's threads may log meanwhile: that is not what is tested).
    lines = [line for line in everything if line["logger"] == "wharf.server.test"]
    assert len(lines) == 2
    assert "[REDACTED]" in lines[0]["message"] and "ValueError" in lines[1]["exception"]
    assert lines[1]["query"] == "access_token=[REDACTED]"
