"""The Iceberg REST catalog fails closed for governed principals: privileges per operation, 403 under row filters and masks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import wharf
from wharf.principal import Principal
from wharf.server.background import serve_in_background
from wharf.server.context import ClientCredentials, IssuedToken


class Bearer:
    """``Authorization: Bearer <user>`` authenticates as <user> (the lake owner is 'tester')."""

    def authenticate(self, request: object) -> Principal:
        header = request.headers.get("authorization", "")  # type: ignore[attr-defined]
        name = header.removeprefix("Bearer ")
        return Principal.owner(name) if name == "tester" else Principal(name)

    def issue_token(self, credentials: ClientCredentials) -> IssuedToken:  # pragma: no cover - not used
        raise NotImplementedError


@pytest.fixture
def http(owner: wharf.Lakehouse) -> Iterator[httpx.Client]:
    with serve_in_background(owner, no_auth=False, authenticator=Bearer()) as background:
        with httpx.Client(base_url=background.url, timeout=60) as client:
            yield client


def _as(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {user}"}


def test_load_table_needs_select(http: httpx.Client, owner: wharf.Lakehouse) -> None:
    assert http.get("/v1/namespaces/sales/tables/customers", headers=_as("bob")).status_code == 403
    owner.sql("GRANT SELECT ON TABLE sales.customers TO USER bob")
    assert http.get("/v1/namespaces/sales/tables/customers", headers=_as("bob")).status_code == 200


def test_load_table_under_a_filter_or_mask_points_to_the_sql_api(http: httpx.Client) -> None:
    response = http.get("/v1/namespaces/sales/tables/orders", headers=_as("alice"))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "ForbiddenException" and error["code"] == 403
    assert "SQL API" in error["message"] and "***" not in error["message"]
    assert http.get("/v1/namespaces/sales/tables/orders", headers=_as("tester")).status_code == 200


def test_column_grants_refuse_direct_file_access(http: httpx.Client, owner: wharf.Lakehouse) -> None:
    owner.sql("GRANT SELECT (id, name) ON TABLE sales.customers TO USER bob")
    assert http.get("/v1/namespaces/sales/tables/customers", headers=_as("bob")).status_code == 403


def test_writes_and_namespaces_need_their_privileges(http: httpx.Client, owner: wharf.Lakehouse) -> None:
    schema = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "x", "required": False, "type": "int"}]}
    assert (
        http.post("/v1/namespaces/sales/tables", json={"name": "new", "schema": schema}, headers=_as("alice")).status_code == 403
    )
    assert http.post("/v1/namespaces", json={"namespace": ["mine"]}, headers=_as("alice")).status_code == 403
    assert http.delete("/v1/namespaces/sales/tables/customers", headers=_as("alice")).status_code == 403
    assert owner.sql("SELECT count(*) FROM sales.customers").scalar() == 4
    owner.sql("GRANT CREATE ON NAMESPACE sales TO USER alice")
    assert (
        http.post("/v1/namespaces/sales/tables", json={"name": "new", "schema": schema}, headers=_as("alice")).status_code == 200
    )
    assert owner.governance.owner_of("sales.new") == "alice"


def test_unknown_users_see_no_namespaces_contents(http: httpx.Client) -> None:
    assert http.get("/v1/namespaces/sales/tables", headers=_as("bob")).status_code == 403
    assert http.get("/v1/namespaces/sales/tables", headers=_as("alice")).status_code == 200
