"""The request context: who is calling, resolved in one place, and where authorization plugs in.

Every catalog route takes a ``RequestContext`` through the ``request_context`` dependency. That
dependency is the only place that turns a request into a ``Principal``:

- ``--no-auth`` (loopback only): every request acts as the lake owner;
- otherwise the configured ``Authenticator`` decides; by default ``wharf.server.authentication``'s
  ``BearerAuthenticator`` (``wharf.auth``: users, personal access tokens, service principals),
  which refuses any request without a valid token with 401 — the server fails closed.

Authorization (governance) attaches here too: ``RequestContext.authorize(action, target)`` asks
every registered ``Authorizer``; route code calls it before it acts, so a policy added later
covers every route without touching them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wharf.errors import WharfError
from wharf.principal import Principal

if TYPE_CHECKING:
    from starlette.requests import Request

    from wharf.lakehouse import Lakehouse


class NotAuthenticated(WharfError):
    """The request carries no valid credentials (HTTP 401)."""

    status = 401


@dataclass(frozen=True)
class ClientCredentials:
    """An OAuth2 ``client_credentials`` grant as ``POST /v1/oauth/tokens`` received it."""

    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    """A bearer token the authenticator issued, and for how long it is valid."""

    access_token: str = field(repr=False)
    expires_in: int
    scope: str | None = None


@runtime_checkable
class Authenticator(Protocol):
    """Decides who a request is. ``wharf.auth`` implements it; tests and embedders may too.

    ``authenticate`` raises ``NotAuthenticated`` (401) for missing or invalid credentials and may
    raise ``AccessDenied`` (403) for a disabled principal.
    """

    def authenticate(self, request: Request) -> Principal: ...


@runtime_checkable
class TokenIssuer(Protocol):
    """An authenticator that can also answer the OAuth token endpoint (client id and secret → token)."""

    def issue_token(self, credentials: ClientCredentials) -> IssuedToken: ...


class OwnerOnly:
    """``--no-auth``: every request acts as the lake owner."""

    def __init__(self, owner: str) -> None:
        self.principal = Principal.owner(owner)

    def authenticate(self, request: Request) -> Principal:
        return self.principal


class FailClosed:
    """Authentication is on but nothing can check credentials: refuse every request."""

    def authenticate(self, request: Request) -> Principal:
        raise NotAuthenticated(
            "This server requires authentication, but no authenticator is configured",
            hint="set `authenticator` in the server configuration, or run `wharf serve --no-auth` on loopback",
        )


# An authorizer is asked before a route acts: (principal, action, target) -> None, or raise AccessDenied.
Authorizer = Callable[[Principal, str, str], None]


@dataclass
class RequestContext:
    """One request: its id, its principal, and a lake handle that runs as that principal."""

    request_id: str
    principal: Principal
    lake: Lakehouse
    authorizers: tuple[Authorizer, ...] = ()

    def authorize(self, action: str, target: str) -> None:
        """Raise ``AccessDenied`` unless every authorizer allows ``principal`` to ``action`` on ``target``.

        ``action`` is the REST operation id (``loadTable``, ``updateTable`` …), ``target`` the
        dotted object name (``db.orders``) or ``*`` for the catalog.
        """
        for authorizer in self.authorizers:
            authorizer(self.principal, action, target)


__all__ = [
    "Authenticator",
    "Authorizer",
    "ClientCredentials",
    "FailClosed",
    "IssuedToken",
    "NotAuthenticated",
    "OwnerOnly",
    "RequestContext",
    "TokenIssuer",
]
