"""``ServerState``: what one server process holds for all its requests, and the request-context dependency."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from wharf.auth.rate_limit import TokenBucketLimiter
from wharf.server.api.result_cache import ResultCache
from wharf.server.config import ServerConfig
from wharf.server.context import Authenticator, Authorizer, RequestContext
from wharf.server.middleware import InFlight
from wharf.server.rest.idempotency import IdempotencyStore

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.server.api.jobs import QueryManager
    from wharf.server.api.precache import Precache


@dataclass
class ServerState:
    """The lake (as its owner), how requests are authenticated and authorized, and shared stores."""

    config: ServerConfig
    lake: Lakehouse
    authenticator: Authenticator
    idempotency: IdempotencyStore
    authorizers: list[Authorizer] = field(default_factory=list)
    in_flight: InFlight = field(default_factory=InFlight)
    # The token endpoint, per client address (the authenticator also limits per client id).
    token_limit: TokenBucketLimiter = field(default_factory=lambda: address_limiter(30))
    ready: bool = False
    # The HTTP API's result cache, asynchronous queries and pre-cached queries (wharf.server.api).
    result_cache: ResultCache = field(default_factory=lambda: ResultCache(0))
    queries: QueryManager | None = None
    precache: Precache | None = None


def address_limiter(per_minute: int) -> TokenBucketLimiter:
    """``per_minute`` requests per address: a burst of that many, then refilled at that rate."""
    return TokenBucketLimiter(rate_per_s=per_minute / 60, burst=max(1, per_minute))


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
