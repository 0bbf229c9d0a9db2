"""The server's default authenticator: bearer tokens checked by ``wharf.auth``, and the OAuth token endpoint.

``wharf serve`` (without ``--no-auth``) uses ``BearerAuthenticator``: every request but config,
token and health must carry ``Authorization: Bearer <token>``, a personal access token or a
token that ``POST /v1/oauth/tokens`` issued for a service principal's client id and secret.
Each request re-reads the principal's state, so a disabled user or a revoked token is refused on
the very next request, by every worker process.

Token requests are rate limited per client id here (token buckets, in process), on top of the
endpoint's per-address limit, so guessing one client's secret from many addresses gets nowhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wharf.auth import AuthService, TokenBucketLimiter
from wharf.errors import AuthenticationError
from wharf.principal import Principal
from wharf.server.context import ClientCredentials, IssuedToken, NotAuthenticated

if TYPE_CHECKING:
    from starlette.requests import Request

    from wharf.lakehouse import Lakehouse

# Per client id: a burst of 10 token requests, then one every 2 seconds (clients ask once an hour).
CLIENT_BURST = 10
CLIENT_RATE_PER_S = 0.5


class BearerAuthenticator:
    """``Authenticator`` and ``TokenIssuer`` of ``wharf.server.context``, backed by the lake's ``AuthService``."""

    def __init__(self, lake: Lakehouse, *, limiter: TokenBucketLimiter | None = None) -> None:
        self.service: AuthService = lake.auth.service
        self.limiter = limiter if limiter is not None else TokenBucketLimiter(CLIENT_RATE_PER_S, CLIENT_BURST)

    def authenticate(self, request: Request) -> Principal:
        """The request's principal, from its ``Authorization: Bearer`` header; ``NotAuthenticated`` (401) otherwise."""
        try:
            return self.service.verify_authorization(request.headers.get("authorization"))
        except AuthenticationError as exc:
            raise NotAuthenticated(exc.reason, hint=exc.hint) from None

    def issue_token(self, credentials: ClientCredentials) -> IssuedToken:
        """OAuth 2 client credentials → a signed access token (``RateLimited`` when the client asks too often)."""
        self.limiter.acquire(f"client:{credentials.client_id}")
        try:
            token, expires_in = self.service.issue_token(credentials.client_id, credentials.client_secret, credentials.scope)
        except AuthenticationError as exc:
            raise NotAuthenticated(exc.reason) from None
        return IssuedToken(token, expires_in, credentials.scope)


def authenticator(lake: Lakehouse) -> BearerAuthenticator:
    """The ``module:callable`` factory form (``authenticator = "wharf.server.authentication:authenticator"``)."""
    return BearerAuthenticator(lake)


__all__ = ["BearerAuthenticator", "authenticator"]
