"""``lake.auth``: the lake's users, tokens, service principals and signing keys, from Python.

The same operations as ``wharf users|tokens|principals|auth``. Managing identities is for the
lake's owner (governance may later grant it to an admin role); verifying credentials is for
anyone (that is how a caller becomes someone).

>>> import wharf
>>> lake = wharf.connect("/tmp/auth-lake")  # doctest: +SKIP
>>> lake.auth.add_user("ann", password="s3cret-Passw0rd")  # doctest: +SKIP
>>> token = lake.auth.create_token("ann", expires="30d").token  # doctest: +SKIP
>>> lake.auth.verify_bearer(token).name  # doctest: +SKIP
'ann'
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from wharf.auth.service import SERVICE, USER, Account, AuthService, NewToken, ServiceCredentials, TokenInfo
from wharf.auth.signing import KeyInfo
from wharf.errors import AccessDenied, InvalidArgument
from wharf.principal import Principal

if TYPE_CHECKING:
    from wharf.catalog import LakeCatalog
    from wharf.lakehouse import Lakehouse

DEFAULT_TOKEN_EXPIRY = "30d"
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# One service per open lake, keyed by its catalog (its caches are shared by every handle on the lake).
_services: weakref.WeakKeyDictionary[LakeCatalog, AuthService] = weakref.WeakKeyDictionary()


def parse_duration(text: str | timedelta | None) -> float | None:
    """Seconds in ``30d``, ``12h``, ``90m``, ``1w2d``, a ``timedelta``; ``never`` (or None) is None."""
    if text is None:
        return None
    if isinstance(text, timedelta):
        return text.total_seconds()
    spec = text.strip().lower()
    if spec == "never":
        return None
    parts = _DURATION.findall(spec)
    if not parts or _DURATION.sub("", spec).strip():
        raise InvalidArgument(f"Cannot read the duration {text!r}", hint="use e.g. 30d, 12h, 90m, 1w, or never")
    return float(sum(int(n) * _UNIT_S[unit] for n, unit in parts))


def service_for(lake: Lakehouse) -> AuthService:
    """The lake's ``AuthService`` (made once per open lake, shared by its handles)."""
    service = _services.get(lake.catalog)
    if service is None:
        service = _services.setdefault(lake.catalog, AuthService(lake.catalog.engine, owner=lake.owner))
    return service


class LakeAuth:
    """Authentication of one lake, seen by one principal (``lake.auth``)."""

    def __init__(self, service: AuthService, principal: Principal) -> None:
        self.service = service
        self.principal = principal

    @classmethod
    def of(cls, lake: Lakehouse) -> LakeAuth:
        return cls(service_for(lake), lake.principal)

    def _admin(self, action: str) -> AuthService:
        if not self.principal.is_owner:
            raise AccessDenied(f"{self.principal.name} may not {action}", hint="only the lake's owner manages identities")
        return self.service

    # --- users -----------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        password: str | None = None,
        *,
        groups: Iterable[str] = (),
        attributes: Mapping[str, str] | None = None,
    ) -> Account:
        """Create a user (no password: the user works with personal access tokens only)."""
        return self._admin("add users").add_user(name, password, groups=groups, attributes=attributes)

    def users(self) -> list[Account]:
        return self._admin("list users").accounts(USER)

    def user(self, name: str) -> Account:
        return self._admin("read users").account(name, USER)

    def disable_user(self, name: str) -> Account:
        """Disable a user: their tokens stop working on the next request."""
        return self._admin("disable users").set_disabled(name, True, USER)

    def enable_user(self, name: str) -> Account:
        return self._admin("enable users").set_disabled(name, False, USER)

    def set_password(self, name: str, password: str | None) -> None:
        self._admin("set passwords").set_password(name, password)

    def set_groups(self, name: str, groups: Iterable[str]) -> Account:
        return self._admin("set groups").set_groups(name, groups)

    # --- personal access tokens --------------------------------------------------------------

    def create_token(
        self, user: str, *, expires: str | timedelta | None = DEFAULT_TOKEN_EXPIRY, label: str | None = None
    ) -> NewToken:
        """A personal access token for ``user``; ``.token`` is shown this once. ``expires``: ``30d``, ``12h``, ``never``."""
        return self._admin("create tokens").create_token(user, expires_in_s=parse_duration(expires), label=label)

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        return self._admin("list tokens").tokens(user)

    def token(self, token_id: str) -> TokenInfo:
        return self._admin("read tokens").token(token_id)

    def revoke_token(self, token_id: str) -> TokenInfo:
        return self._admin("revoke tokens").revoke_token(token_id)

    # --- service principals --------------------------------------------------------------------

    def create_principal(
        self, name: str, *, groups: Iterable[str] = (), attributes: Mapping[str, str] | None = None
    ) -> ServiceCredentials:
        """A service principal; ``.client_secret`` is shown this once (``.credential`` is ``id:secret`` for PyIceberg)."""
        return self._admin("create service principals").create_principal(name, groups=groups, attributes=attributes)

    def principals(self) -> list[Account]:
        return self._admin("list service principals").accounts(SERVICE)

    def disable_principal(self, name: str) -> Account:
        return self._admin("disable service principals").set_disabled(name, True, SERVICE)

    def enable_principal(self, name: str) -> Account:
        return self._admin("enable service principals").set_disabled(name, False, SERVICE)

    def rotate_secret(self, name: str) -> ServiceCredentials:
        return self._admin("rotate client secrets").rotate_secret(name)

    # --- signing keys ------------------------------------------------------------------------

    def rotate_key(self, *, invalidate_previous: bool = False) -> str:
        """A new JWT signing key; tokens signed with the old one work until they expire.

        ``invalidate_previous`` ends them at once instead (for a key that may have leaked).
        """
        return self._admin("rotate signing keys").rotate_key(invalidate_previous=invalidate_previous)

    def signing_keys(self) -> list[KeyInfo]:
        return self._admin("list signing keys").signing_keys()

    # --- authentication (anyone) -------------------------------------------------------------

    def verify_bearer(self, token: str) -> Principal:
        """The principal a bearer token stands for; ``AuthenticationError`` if it is not valid now."""
        return self.service.verify_bearer(token)

    def issue_token(self, client_id: str, client_secret: str, scope: str | None = None) -> tuple[str, int]:
        """OAuth client credentials → (signed access token, seconds it is valid)."""
        return self.service.issue_token(client_id, client_secret, scope)

    def authenticate_password(self, user: str, password: str) -> Principal:
        return self.service.authenticate_password(user, password)

    def login(self, user: str, password: str, scope: str | None = None) -> tuple[str, int]:
        """User name and password → (signed access token, seconds it is valid)."""
        return self.service.login(user, password, scope)
