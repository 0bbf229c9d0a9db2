"""Every HTTP API and Iceberg REST request is audited: who, which operation on which path, the decision.

``AuditRequests`` is ASGI middleware (inside the request log, so the request has its id). When the
route's response starts it writes one ``AuditRecord`` (``kind = "http"``): the authenticated
principal (``(unauthenticated)`` when authentication failed), ``operation`` the route's name
(``load_table``, ``run_sql``, …), ``statement`` = ``METHOD /path`` (never the query string, never
a header or body: tokens and secrets travel there; the SQL of ``POST /api/v1/sql``, redacted, as
the route hands it over — a cached answer runs no statement of its own), the HTTP status and the decision — ``allowed``
(below 400), ``refused`` (401, 403, 429: why, from the error the route raised) or ``error``.

The record is written *before* the response is sent; if it cannot be, the client gets 503
(``AuditUnavailable``) instead of the answer. Statements a request runs (``POST /api/v1/sql``, a
REST commit) are audited by the lake as well, carrying the request's id (``bind_request``).
Health probes (``/healthz``, ``/readyz``) are not audited.
"""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wharf.errors import AuditUnavailable
from wharf.governance.audit import (
    ALLOWED,
    ANONYMOUS,
    ERROR,
    MAX_REASON,
    REFUSED,
    AuditRecord,
    audit_log_for,
    bind_request,
    redact_statement,
    unbind_request,
)
from wharf.server.rest.errors import error_body
from wharf.statement import new_statement_id

log = logging.getLogger("wharf.server")

UNAUDITED_PATHS = frozenset({"/healthz", "/readyz"})
REASON_KEY = "audit_reason"  # request.state: the message of the error the route raised (set by the app's handlers)
STATEMENT_KEY = "audit_statement"  # request.state: the SQL a route was sent (POST /api/v1/sql), recorded redacted


def decision_for(status: int) -> str:
    if status < 400:
        return ALLOWED
    return REFUSED if status in (401, 403, 429) else ERROR


class AuditRequests:
    """Write one audit record per request before its response starts (503 if it cannot)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNAUDITED_PATHS:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        token = bind_request(state.get("request_id"))
        started = time.perf_counter()
        failed: AuditUnavailable | None = None
        sent = False

        async def audited_send(message: Message) -> None:
            nonlocal failed, sent
            if failed is not None:
                return  # the audit failed: the original answer is dropped, the 503 was sent
            if message["type"] == "http.response.start":
                try:
                    self._write(scope, int(message["status"]), started)
                except AuditUnavailable as exc:
                    failed = exc
                    await _unavailable(send, exc)
                    return
                sent = True
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not sent and failed is None:  # no response: the server answers 500 after us
                state.setdefault(REASON_KEY, "unexpected error")
                self._write(scope, 500, started)
            raise
        finally:
            unbind_request(token)

    def _write(self, scope: Scope, status: int, started: float) -> None:
        server = getattr(scope["app"].state, "wharf", None)
        if server is None:
            return  # the app is starting: nothing is served yet
        state = scope.get("state", {})
        route = scope.get("route")
        decision = decision_for(status)
        record = AuditRecord(
            principal=state.get("principal") or ANONYMOUS,
            kind="http",
            operation=str(getattr(route, "name", None) or scope["method"]),
            statement=redact_statement(
                f"{scope['method']} {scope['path']}" + (f" {text}" if (text := state.get(STATEMENT_KEY)) else "")
            ),
            decision=decision,
            reason=redact_statement(str(state.get(REASON_KEY) or f"HTTP {status}"))[:MAX_REASON] if decision != ALLOWED else None,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            status=status,
            request_id=state.get("request_id"),
            event_id=state.get("request_id") or new_statement_id(),
        )
        audit_log_for(server.lake.catalog).write(record)


async def _unavailable(send: Send, exc: AuditUnavailable) -> None:
    log.error("audit log unavailable: %s", exc.message)
    body = json.dumps(error_body(503, "ServiceUnavailableException", f"{exc.message}. Hint: {exc.hint}")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["AuditRequests", "decision_for"]
