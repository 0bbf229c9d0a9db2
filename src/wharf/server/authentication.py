"""The server's default authenticator: bearer tokens checked by ``wharf.auth``, and the OAuth token endpoint.

``wharf serve`` (without ``--no-auth``) uses ``BearerAuthenticator``: every request but config,
token and health must carry ``Authorization: Bearer <token>``, a personal access token or a
token that ``POST /v1/oauth/tokens`` issued for a service principal's client id and secret.
Each request re-reads the principal's state, so a disabled user or a revoked token is refused on
the very next request, by every worker process.

With ``oidc_issuer`` configured, the bearer token may also be an access token of that identity
provider (docs/auth.md, "Identity federation"): a JWT whose ``iss`` is the provider's is judged by
``wharf.governance.federation`` (signature, audience, algorithm, times; the user is created at the
first sign-in), every other token by ``wharf.auth`` as before.

Token requests are rate limited per client id here (token buckets, in process), on top of the
endpoint's per-address limit, so guessing one client's secret from many addresses gets nowhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wharf.auth import AuthService, TokenBucketLimiter
from wharf.auth.oidc import OidcConfig
from wharf.errors import AuthenticationError
from wharf.principal import Principal
from wharf.server.context import ClientCredentials, IssuedToken, NotAuthenticated

if TYPE_CHECKING:
    from starlette.requests import Request

    from wharf.governance.federation import Federation
    from wharf.lakehouse import Lakehouse

# An identity provider's access token carries the user's groups: it may be longer than Wharf's own.
MAX_OIDC_TOKEN_CHARS = 16 * 1024
# Per client id: a burst of 10 token requests, then one every 2 seconds (clients ask once an hour).
CLIENT_BURST = 10
CLIENT_RATE_PER_S = 0.5


class BearerAuthenticator:
    """``Authenticator`` and ``TokenIssuer`` of ``wharf.server.context``, backed by the lake's ``AuthService``."""

    def __init__(self, lake: Lakehouse, *, limiter: TokenBucketLimiter | None = None, oidc: OidcConfig | None = None) -> None:
        self.service: AuthService = lake.auth.service
        self.limiter = limiter if limiter is not None else TokenBucketLimiter(CLIENT_RATE_PER_S, CLIENT_BURST)
        self.federation: Federation | None = None
        if oidc is not None:
            from wharf.governance.federation import Federation

            self.federation = Federation.for_lake(lake, oidc)

    def authenticate(self, request: Request) -> Principal:
        """The request's principal, from its ``Authorization: Bearer`` header; ``NotAuthenticated`` (401) otherwise."""
        header = request.headers.get("authorization")
        try:
            if self.federation is not None and header:
                scheme, _, token = header.strip().partition(" ")
                token = token.strip()
                if scheme.lower() == "bearer" and len(token) <= MAX_OIDC_TOKEN_CHARS and self._is_federated(token):
                    return self.federation.sign_in(token)
            return self.service.verify_authorization(header)
        except AuthenticationError as exc:
            raise NotAuthenticated(exc.reason, hint=exc.hint) from None

    def _is_federated(self, token: str) -> bool:
        """A JWT that is not one of Wharf's own (an HS256 token with ``iss: wharf``) goes to the identity provider's check.

        So a token naming another issuer, or signed with ``none``, RS256 … is refused with the
        provider's reasons (wrong issuer, algorithm not allowed), never tried as Wharf's own.
        """
        from wharf.auth.hashing import TOKEN_PREFIX
        from wharf.auth.oidc import unverified_parts
        from wharf.auth.signing import ALGORITHM, ISSUER

        assert self.federation is not None
        if self.federation.verifier.remembers(token):
            return True
        if token.startswith(TOKEN_PREFIX):
            return False
        parts = unverified_parts(token)
        if parts is None:
            return False
        header, claims = parts
        return not (header.get("alg") == ALGORITHM and claims.get("iss") == ISSUER)

    def issue_token(self, credentials: ClientCredentials) -> IssuedToken:
        """OAuth 2 client credentials → a signed access token (``RateLimited`` when the client asks too often)."""
        self.limiter.acquire(f"client:{credentials.client_id}")
        try:
            token, expires_in = self.service.issue_token(credentials.client_id, credentials.client_secret, credentials.scope)
        except AuthenticationError as exc:
            raise NotAuthenticated(exc.reason) from None
        return IssuedToken(token, expires_in, credentials.scope)


def authenticator(lake: Lakehouse, oidc: OidcConfig | None = None) -> BearerAuthenticator:
    """The ``module:callable`` factory form (``authenticator = "wharf.server.authentication:authenticator"``)."""
    return BearerAuthenticator(lake, oidc=oidc)


__all__ = ["BearerAuthenticator", "authenticator"]
