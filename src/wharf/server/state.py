"""``ServerState``: what one server process holds for all its requests, and the request-context dependency."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from wharf.server.api.result_cache import ResultCache
from wharf.server.config import ServerConfig
from wharf.server.context import Authenticator, Authorizer, RequestContext
from wharf.server.middleware import InFlight
from wharf.server.rest.idempotency import IdempotencyStore

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.server.api.jobs import QueryManager
    from wharf.server.api.precache import Precache


class RateLimit:
    """At most ``per_minute`` events per key in any sliding minute (per process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:  # forget idle clients rather than grow without bound
                self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] < 60}
            window = self._seen.setdefault(key, deque())
            while window and now - window[0] >= 60:
                window.popleft()
            if len(window) >= self.per_minute:
                return False
            window.append(now)
            return True


@dataclass
class ServerState:
    """The lake (as its owner), how requests are authenticated and authorized, and shared stores."""

    config: ServerConfig
    lake: Lakehouse
    authenticator: Authenticator
    idempotency: IdempotencyStore
    authorizers: list[Authorizer] = field(default_factory=list)
    in_flight: InFlight = field(default_factory=InFlight)
    token_limit: RateLimit = field(default_factory=lambda: RateLimit(30))
    ready: bool = False
    # The HTTP API's result cache, asynchronous queries and pre-cached queries (wharf.server.api).
    result_cache: ResultCache = field(default_factory=lambda: ResultCache(0))
    queries: QueryManager | None = None
    precache: Precache | None = None


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.wharf
    return state


def request_context(request: Request) -> RequestContext:
    """The dependency every catalog route takes: authenticate once, carry the principal and its lake handle."""
    server = server_state(request)
    principal = server.authenticator.authenticate(request)
    request.state.principal = principal.name
    return RequestContext(
        request_id=getattr(request.state, "request_id", ""),
        principal=principal,
        lake=server.lake.session(principal=principal),
        authorizers=tuple(server.authorizers),
    )
