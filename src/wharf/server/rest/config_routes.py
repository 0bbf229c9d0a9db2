"""``GET /v1/config`` and ``POST /v1/oauth/tokens``: what a client asks before anything else."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wharf.errors import RateLimited
from wharf.server.context import ClientCredentials, NotAuthenticated, OwnerOnly, TokenIssuer
from wharf.server.rest.common import json_response
from wharf.server.rest.credentials import ACCESS_DELEGATION_HEADER, VENDED
from wharf.server.rest.errors import RestError
from wharf.server.state import server_state
from wharf.storage import is_object_store

router = APIRouter()

# Every route this server implements, in the spec's "<verb> <path>" form (announced in /v1/config).
ENDPOINTS = (
    "GET /v1/{prefix}/namespaces",
    "POST /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "DELETE /v1/{prefix}/namespaces/{namespace}",
    "POST /v1/{prefix}/namespaces/{namespace}/properties",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "POST /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/register",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials",
    "POST /v1/{prefix}/tables/rename",
    "POST /v1/{prefix}/transactions/commit",
    "GET /v1/{prefix}/namespaces/{namespace}/views",
    "POST /v1/{prefix}/namespaces/{namespace}/views",
    "GET /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "POST /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "POST /v1/{prefix}/views/rename",
)
NO_AUTH_TOKEN = "wharf-no-auth"  # what --no-auth hands out: any token (or none) is accepted anyway
NO_AUTH_TOKEN_SECONDS = 3600


def known_warehouses(request: Request) -> set[str]:
    """The names a client may give for this server's one warehouse."""
    server = server_state(request)
    lake = server.lake
    names = {server.config.warehouse, str(lake.path), str(Path(lake.path).resolve())}
    warehouse = lake.catalog.properties.get("warehouse")
    if warehouse:
        names |= {str(warehouse), str(warehouse).rstrip("/")}
    return names


@router.get("/v1/config")
def get_config(request: Request, warehouse: str | None = None) -> Response:
    server = server_state(request)
    if warehouse and warehouse not in known_warehouses(request):
        raise RestError(
            404,
            "NoSuchWarehouseException",
            f"This server has no warehouse {warehouse!r}",
            hint=f"it serves one lake, as warehouse {server.config.warehouse!r}",
        )
    defaults: dict[str, str] = {}
    if server.config.vend_credentials and is_object_store(str(server.lake.catalog.properties.get("warehouse", ""))):
        # Iceberg's Java clients (Spark, Trino, Flink) send "header.*" catalog properties as HTTP
        # headers: this default makes them ask for vended credentials without being told to.
        defaults[f"header.{ACCESS_DELEGATION_HEADER}"] = VENDED
    return json_response(
        {
            "defaults": defaults,
            "overrides": {"prefix": server.config.warehouse},
            "endpoints": list(ENDPOINTS),
            "idempotency-key-lifetime": server.config.idempotency_lifetime,
        }
    )


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status)


@router.post("/v1/oauth/tokens")
async def get_token(request: Request) -> Response:
    """OAuth2 client credentials → bearer token (PyIceberg's and Spark's ``credential=id:secret``)."""
    server = server_state(request)
    client = request.client.host if request.client else "unknown"
    wait = server.token_limit.try_acquire(f"address:{client}")
    if wait > 0:
        return _oauth_error(429, "slow_down", f"Too many token requests from this address; retry in {wait:.0f} s")
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    grant = form.get("grant_type")
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return _oauth_error(400, "invalid_request", "The Basic authorization header is malformed")
    if grant != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported; use client_credentials")
    if isinstance(server.authenticator, OwnerOnly):
        return json_response(
            {
                "access_token": NO_AUTH_TOKEN,
                "token_type": "bearer",
                "expires_in": NO_AUTH_TOKEN_SECONDS,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                **({"scope": form["scope"]} if form.get("scope") else {}),
            }
        )
    if not isinstance(server.authenticator, TokenIssuer):
        return _oauth_error(400, "unsupported_grant_type", "This server's authenticator does not issue tokens")
    if not client_id or not client_secret:
        return _oauth_error(400, "invalid_request", "client_id and client_secret are required")
    try:
        issued = server.authenticator.issue_token(ClientCredentials(client_id, client_secret, form.get("scope")))
    except NotAuthenticated as exc:
        return _oauth_error(401, "invalid_client", exc.message)
    except RateLimited as exc:
        return _oauth_error(429, "slow_down", f"Too many token requests for this client; retry in {exc.retry_after_s:.0f} s")
    return json_response(
        {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            **({"scope": issued.scope} if issued.scope else {}),
        }
    )
