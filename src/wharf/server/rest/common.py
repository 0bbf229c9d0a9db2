"""What every REST route shares: names from paths, paging, JSON responses, idempotent execution, statements."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from wharf.errors import InvalidArgument
from wharf.identifiers import check_identifier
from wharf.server.context import RequestContext
from wharf.server.rest.errors import bad_request, classify, error_body
from wharf.server.state import server_state
from wharf.sql.context import Context

SEPARATOR = "\x1f"  # the spec's default namespace separator (url-encoded %1F)


def namespace_of(text: str) -> tuple[str, ...]:
    """A namespace from its path or query form (parts separated by 0x1F), validated."""
    parts = tuple(text.split(SEPARATOR))
    return check_namespace(parts)


def check_namespace(parts: Sequence[str]) -> tuple[str, ...]:
    parts = tuple(parts)
    if not parts or any(not isinstance(p, str) for p in parts):
        raise bad_request("A namespace is a non-empty list of strings")
    check_identifier(parts, "namespace")
    for part in parts:
        if "." in part:
            # The catalog stores nested namespaces dot-joined: a dot inside a part would silently nest.
            raise InvalidArgument(f"Namespace part {part!r} contains '.'", hint='nest namespaces as separate parts: ["a", "b"]')
    return parts


def table_identifier(namespace: str, name: str, kind: str = "table") -> tuple[str, ...]:
    """``(*namespace, name)`` from path parameters, validated by Wharf's one identifier validator."""
    return check_identifier((*namespace_of(namespace), name), kind)


def identifier_from_body(value: Any, kind: str = "table") -> tuple[str, ...]:
    """A ``TableIdentifier`` object (``{"namespace": [...], "name": ...}``) from a request body."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not isinstance(value.get("namespace"), list):
        raise bad_request(f'Expected a {kind} identifier {{"namespace": [...], "name": "..."}}, got {str(value)[:100]}')
    return check_identifier((*check_namespace(value["namespace"]), value["name"]), kind)


def label(identifier: Sequence[str]) -> str:
    return ".".join(identifier)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")), status_code=status, media_type="application/json", headers=headers
    )


def raw_json_response(body: bytes | str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def no_content() -> Response:
    return Response(status_code=204)


# --- paging ----------------------------------------------------------------------------------


def page(
    request: Request, items: list[Any], key: Callable[[Any], str], page_token: str | None, page_size: int | None
) -> tuple[list[Any], str | None]:
    """One page of ``items`` (sorted by ``key``) after ``page_token``; without a token, everything.

    The token is the last key of the previous page (base64), so a page stays right when items
    are added or removed between requests.
    """
    items = sorted(items, key=key)
    if page_token is None:
        return items, None
    config = server_state(request).config
    size = min(page_size or config.default_page_size, config.max_page_size)
    if page_size is not None and page_size < 1:
        raise bad_request(f"pageSize must be at least 1, not {page_size}")
    after: str | None = None
    if page_token:
        try:
            after = base64.b64decode(page_token.encode(), altchars=b"-_", validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise bad_request(f"pageToken {page_token[:40]!r} is not a token this server issued") from None
    start = 0
    if after is not None:
        start = next((i for i, item in enumerate(items) if key(item) > after), len(items))
    chunk = items[start : start + size]
    more = start + size < len(items)
    token = base64.urlsafe_b64encode(key(chunk[-1]).encode()).decode() if more and chunk else None
    return chunk, token


# --- running an operation ---------------------------------------------------------------------


@contextmanager
def statement(ctx: RequestContext, operation: str, target: str) -> Iterator[Context]:
    """Run a catalog change as a Wharf statement of the request's principal.

    The commit path then sees the principal and a statement id, stamps the snapshot summary
    (``wharf.user``, ``wharf.statement`` = ``REST <operation> <target>``) and emits the same
    ``on_commit`` / ``on_statement`` events a SQL statement does.
    """
    with ctx.lake.api_statement(f"rest.{operation}", f"REST {operation} {target}") as sctx:
        # Snapshots a REST client adds point at files the client wrote: the commit path checks them.
        sctx.statement.client_files = True
        try:
            yield sctx
        finally:
            sctx.con.close()


def idempotent(request: Request, ctx: RequestContext, run: Callable[[], Response]) -> Response:
    """Run a mutation once per ``Idempotency-Key``; replay its final response to retries with that key."""
    key = request.headers.get("idempotency-key")
    if not key:
        return run()
    store = server_state(request).idempotency
    # Hashed: a fixed length for any path, and no NUL byte (PostgreSQL text refuses one).
    fingerprint = hashlib.sha256(f"{ctx.principal.name}\x00{request.method}\x00{request.url.path}".encode()).hexdigest()
    stored = store.begin(key, fingerprint)
    if stored is not None:
        return Response(
            stored.body or None,
            status_code=stored.status,
            media_type="application/json" if stored.body else None,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        response = run()
    except Exception as exc:
        status, kind, message = classify(exc, **error_kind(request))
        if status >= 500:
            store.release(key)
            raise
        body = json.dumps(error_body(status, kind, message)).encode()
        store.finish(key, status, body)
        return raw_json_response(body, status)
    store.finish(key, response.status_code, bytes(response.body))
    return response


def error_kind(request: Request) -> dict[str, Any]:
    """How a route's errors are typed: which kind of thing a plain NotFound is, and whether it commits."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    if path.startswith("/api/"):
        not_found = "NotFoundException"
    elif "/views" in path:
        not_found = "NoSuchViewException"
    elif "/tables" in path or "/register" in path:
        not_found = "NoSuchTableException"
    else:
        not_found = "NoSuchNamespaceException"
    commit = request.method == "POST" and path.endswith(("/tables/{table}", "/transactions/commit"))
    return {"not_found": not_found, "commit": commit}


def body_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"The {what} request body must be a JSON object")
    return body
