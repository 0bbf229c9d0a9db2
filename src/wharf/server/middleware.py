"""ASGI middleware: request ids and access logs, body-size limits, and counting requests in flight.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so a request costs a few function calls, and
so a body over the limit is refused while it streams in, before it is buffered.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wharf.server.logs import REQUEST_ID
from wharf.server.rest.errors import error_body

log = logging.getLogger("wharf.server.access")
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class InFlight:
    """How many requests are being handled right now (readiness reports it; shutdown waits for it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __enter__(self) -> None:
        with self._lock:
            self.count += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.count -= 1


class RequestLog:
    """Give every request an id (the client's ``X-Request-ID`` if it is sane), echo it, log one line."""

    def __init__(self, app: ASGIApp, in_flight: InFlight) -> None:
        self.app = app
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _CLIENT_REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            with self.in_flight:
                await self.app(scope, receive, send_with_id)
        finally:
            state = scope.get("state", {})
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],  # never the query string
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "principal": state.get("principal"),
                    "request_id": request_id,
                },
            )
            REQUEST_ID.reset(token)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 and the spec's error body."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await _too_large(send, self.limit)


class BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        error_body(413, "RequestTooLargeException", f"The request body is larger than the server's limit of {limit} bytes")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


__all__ = ["BodyLimit", "InFlight", "RequestLog"]
