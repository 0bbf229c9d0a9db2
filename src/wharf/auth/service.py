"""``AuthService``: who may call a served lake, and how a request proves it.

Identities (``wharf_principals``) are users (a name, an optional argon2-hashed password,
personal access tokens) and service principals (a client id and secret, exchanged at the OAuth
token endpoint for a short-lived signed JWT). The server calls three functions:

- ``verify_bearer(token) -> Principal`` on every request, for a JWT issued here or a personal
  access token;
- ``issue_token(client_id, client_secret, scope) -> (jwt, expires_in)`` at ``POST /v1/oauth/tokens``;
- ``authenticate_password(user, password) -> Principal`` for a login form.

Revocation is immediate: ``verify_bearer`` reads the principal's row on every request (one
indexed query, a few tens of microseconds: ``python -m bench auth``), so a disabled user, a
revoked token or a rotated client secret stops working on the very next request, in every
server process. Signed tokens carry the principal's ``version``, which disabling, a new
password and a new client secret bump.

All failures raise ``AuthenticationError`` with a short reason that is safe to send back: it
never echoes the credential and never says whether a user name exists.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from wharf.auth import hashing
from wharf.auth.signing import ISSUER, KeyInfo, KeyRing, sign, unverified_kid, verified_claims
from wharf.auth.tables import keys, principals, tokens
from wharf.errors import AlreadyExists, AuthenticationError, InvalidArgument, NotFound
from wharf.principal import Principal

USER = "user"
SERVICE = "service"
KIND_LABEL = {USER: "user", SERVICE: "service principal"}
DEFAULT_TOKEN_TTL_S = 3600  # signed access tokens: one hour, like most OAuth servers
# ``last_used`` is written at most once a minute per token: a write per request would serialise
# every request on the database's write lock for a figure nobody needs to the millisecond.
LAST_USED_RESOLUTION_MS = 60_000
VERIFIED_CACHE_SIZE = 10_000  # signed tokens whose signature is remembered (per process)
MAX_TOKEN_CHARS = 4096  # longer is not ours: refuse before parsing
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}")
_ATTRIBUTE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")

Clock = Callable[[], float]

# The per-request queries, built once (building a SQLAlchemy statement costs more than running it).
# A JWT: its principal's state and its key's, in one round trip.
_JWT_STATE = (
    sa.select(
        principals.c.name,
        principals.c.kind,
        principals.c.disabled,
        principals.c.version,
        principals.c.groups,
        keys.c.retired_at_ms,
    )
    .select_from(principals.join(keys, sa.true()))
    .where(principals.c.id == sa.bindparam("sub"), keys.c.kid == sa.bindparam("kid"))
)
# A personal access token: the token's row and its user's.
_PAT_STATE = (
    sa.select(
        tokens.c.secret_hash,
        tokens.c.expires_at_ms,
        tokens.c.revoked_at_ms,
        tokens.c.last_used_at_ms,
        principals.c.name,
        principals.c.kind,
        principals.c.disabled,
        principals.c.groups,
    )
    .select_from(tokens.join(principals, principals.c.id == tokens.c.principal_id))
    .where(tokens.c.id == sa.bindparam("token_id"))
)
_TOUCH_TOKEN = tokens.update().where(tokens.c.id == sa.bindparam("token_id")).values(last_used_at_ms=sa.bindparam("now"))


@dataclass(frozen=True)
class Account:
    """A user or service principal as listed (no secrets)."""

    name: str
    kind: str
    disabled: bool
    groups: tuple[str, ...]
    attributes: Mapping[str, str]
    client_id: str | None
    has_password: bool
    created_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """A personal access token as listed (never its secret)."""

    id: str
    user: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: str  # "active" | "expired" | "revoked"


@dataclass(frozen=True)
class NewToken:
    """A personal access token just created: ``token`` is shown this once and stored only hashed."""

    id: str
    user: str
    token: str = field(repr=False)
    expires_at: datetime | None


@dataclass(frozen=True)
class ServiceCredentials:
    """A service principal's client id and secret, shown once (the secret is stored only hashed)."""

    name: str
    client_id: str
    client_secret: str = field(repr=False)

    @property
    def credential(self) -> str:
        """``client_id:client_secret``, as PyIceberg's ``RestCatalog(credential=…)`` takes it."""
        return f"{self.client_id}:{self.client_secret}"


def _ms_to_dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


@functools.lru_cache(maxsize=1024)
def _groups(text: str) -> frozenset[str]:
    # Parsed once per distinct value: the per-request path sees the same few strings again and again.
    return frozenset(json.loads(text))


def check_name(name: str, what: str = "name") -> str:
    """A user, service principal or group name: 1–255 of letters, digits and ``. _ @ + -``, starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"Invalid {what} {name!r}",
            hint="use 1-255 letters, digits and . _ @ + -, starting with a letter or digit",
        )
    return name


def _check_attributes(attributes: Mapping[str, str] | None) -> dict[str, str]:
    out = {}
    for key, value in (attributes or {}).items():
        if not _ATTRIBUTE_KEY.fullmatch(key):
            raise InvalidArgument(f"Invalid attribute name {key!r}", hint="letters, digits, _ . -; starting with a letter or _")
        if not isinstance(value, str) or len(value) > 1000:
            raise InvalidArgument(f"Attribute {key!r} must be a string of at most 1000 characters")
        out[key] = value
    return out


def _check_groups(groups: Iterable[str]) -> list[str]:
    return sorted({check_name(g, "group name") for g in groups})


class AuthService:
    """Identities, personal access tokens and signed tokens of one metadata database.

    ``owner`` is the lake owner's name: a user of that name authenticates as the owner.
    ``clock`` (seconds since the epoch) is injectable for tests of expiry.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        owner: str | None = None,
        clock: Clock = time.time,
        token_ttl_s: int = DEFAULT_TOKEN_TTL_S,
    ) -> None:
        self.engine = engine
        self.owner = owner
        self.clock = clock
        self.token_ttl_s = token_ttl_s
        self.keys = KeyRing(engine, self._now_ms)
        # Tokens whose signature was checked: a client sends the same token on every request, and a
        # signature that verified once always verifies (a deleted key is caught by the per-request query).
        self._verified: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._verified_lock = threading.Lock()

    def _remember(self, token: str, kid: str, claims: dict[str, Any]) -> None:
        with self._verified_lock:
            self._verified[token] = (kid, claims)
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- users and service principals -----------------------------------------------------

    def add_user(
        self,
        name: str,
        password: str | None = None,
        *,
        groups: Iterable[str] = (),
        attributes: Mapping[str, str] | None = None,
    ) -> Account:
        """Create a user (``password`` None: the user signs in with personal access tokens only)."""
        password_hash = hashing.hash_password(_check_password(password)) if password is not None else None
        self._insert(name, USER, password_hash=password_hash, groups=groups, attributes=attributes)
        return self.account(name)

    def create_principal(
        self, name: str, *, groups: Iterable[str] = (), attributes: Mapping[str, str] | None = None
    ) -> ServiceCredentials:
        """Create a service principal; its client secret is returned this once."""
        if name == self.owner:
            raise InvalidArgument(f"{name!r} is the lake owner's name", hint="give the service principal its own name")
        client_id, secret = hashing.new_id(8), hashing.SECRET_PREFIX + hashing.new_secret()
        self._insert(name, SERVICE, client_id=client_id, secret_hash=hashing.digest(secret), groups=groups, attributes=attributes)
        return ServiceCredentials(name, client_id, secret)

    def _insert(
        self,
        name: str,
        kind: str,
        *,
        password_hash: str | None = None,
        client_id: str | None = None,
        secret_hash: str | None = None,
        groups: Iterable[str] = (),
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        check_name(name)
        now = self._now_ms()
        row = {
            "id": hashing.new_id(),
            "name": name,
            "kind": kind,
            "password_hash": password_hash,
            "client_id": client_id,
            "secret_hash": secret_hash,
            "disabled": False,
            "version": 1,
            "groups": json.dumps(_check_groups(groups)),
            "attributes": json.dumps(_check_attributes(attributes), sort_keys=True),
            "created_at_ms": now,
            "updated_at_ms": now,
        }
        try:
            with self.engine.begin() as conn:
                taken = conn.execute(sa.select(principals.c.kind).where(principals.c.name == name)).scalar()
                if taken is None:
                    conn.execute(principals.insert().values(**row))
        except IntegrityError:  # lost a race with another process creating the same name
            taken = kind
        if taken is not None:
            raise AlreadyExists(
                f"A {KIND_LABEL.get(taken, taken)} named {name!r} already exists",
                hint="users and service principals share one set of names; pick another",
            )

    def account(self, name: str, kind: str | None = None) -> Account:
        """The user or service principal ``name`` (of ``kind`` if given)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(principals).where(principals.c.name == name)).first()
        if row is None or (kind is not None and row.kind != kind):
            label = KIND_LABEL.get(kind or USER, "principal") if kind else "user or service principal"
            listing = "wharf principals list" if kind == SERVICE else "wharf users list"
            raise NotFound(f"No {label} named {name!r}", hint=f"see {listing}")
        return _account(row)

    def accounts(self, kind: str | None = None) -> list[Account]:
        """Users and service principals (only ``kind`` if given), by name."""
        query = sa.select(principals).order_by(principals.c.name)
        if kind is not None:
            query = query.where(principals.c.kind == kind)
        with self.engine.connect() as conn:
            return [_account(row) for row in conn.execute(query)]

    def set_disabled(self, name: str, disabled: bool, kind: str | None = None) -> Account:
        """Disable (or enable) a user or service principal. Disabling ends its tokens at once.

        Re-enabling does not revive signed tokens issued before the disable (the version moved on);
        personal access tokens that were not revoked work again.
        """
        self.account(name, kind)
        values: dict[str, Any] = {"disabled": disabled, "updated_at_ms": self._now_ms()}
        if disabled:
            values["version"] = principals.c.version + 1
        with self.engine.begin() as conn:
            conn.execute(principals.update().where(principals.c.name == name).values(**values))
        return self.account(name)

    def set_password(self, name: str, password: str | None) -> None:
        """Set (None: remove) a user's password. The user's signed tokens stop working; personal access tokens stay."""
        self.account(name, USER)
        password_hash = hashing.hash_password(_check_password(password)) if password is not None else None
        with self.engine.begin() as conn:
            conn.execute(
                principals.update()
                .where(principals.c.name == name)
                .values(password_hash=password_hash, version=principals.c.version + 1, updated_at_ms=self._now_ms())
            )

    def set_groups(self, name: str, groups: Iterable[str]) -> Account:
        """Replace the groups of a user or service principal (read on every request: effective at once)."""
        self.account(name)
        with self.engine.begin() as conn:
            conn.execute(
                principals.update()
                .where(principals.c.name == name)
                .values(groups=json.dumps(_check_groups(groups)), updated_at_ms=self._now_ms())
            )
        return self.account(name)

    def rotate_secret(self, name: str) -> ServiceCredentials:
        """A new client secret for service principal ``name``; the old secret and its tokens stop working at once."""
        account = self.account(name, SERVICE)
        secret = hashing.SECRET_PREFIX + hashing.new_secret()
        with self.engine.begin() as conn:
            conn.execute(
                principals.update()
                .where(principals.c.name == name)
                .values(secret_hash=hashing.digest(secret), version=principals.c.version + 1, updated_at_ms=self._now_ms())
            )
        assert account.client_id is not None
        return ServiceCredentials(name, account.client_id, secret)

    # --- personal access tokens -----------------------------------------------------------

    def create_token(self, user: str, *, expires_in_s: float | None, label: str | None = None) -> NewToken:
        """A personal access token for ``user``, valid ``expires_in_s`` seconds (None: until revoked)."""
        account = self.account(user, USER)
        if account.disabled:
            raise InvalidArgument(f"User {user!r} is disabled", hint=f"wharf users enable {user}")
        if expires_in_s is not None and expires_in_s <= 0:
            raise InvalidArgument("A token's lifetime must be positive", hint="--expires 30d")
        if label is not None and len(label) > 255:
            raise InvalidArgument("A token label has at most 255 characters")
        token_id, secret = hashing.new_id(8), hashing.new_secret()
        now = self._now_ms()
        expires_at = None if expires_in_s is None else now + int(expires_in_s * 1000)
        with self.engine.begin() as conn:
            principal_id = conn.execute(sa.select(principals.c.id).where(principals.c.name == user)).scalar_one()
            conn.execute(
                tokens.insert().values(
                    id=token_id,
                    principal_id=principal_id,
                    label=label,
                    secret_hash=hashing.digest(secret),
                    created_at_ms=now,
                    expires_at_ms=expires_at,
                    revoked_at_ms=None,
                    last_used_at_ms=None,
                )
            )
        return NewToken(token_id, user, f"{hashing.TOKEN_PREFIX}{token_id}_{secret}", _ms_to_dt(expires_at))

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Personal access tokens (of ``user`` if given), oldest first."""
        query = (
            sa.select(tokens, principals.c.name.label("user"))
            .select_from(tokens.join(principals, principals.c.id == tokens.c.principal_id))
            .order_by(tokens.c.created_at_ms, tokens.c.id)
        )
        if user is not None:
            self.account(user, USER)
            query = query.where(principals.c.name == user)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._token_info(row) for row in rows]

    def token(self, token_id: str) -> TokenInfo:
        """One personal access token, by id."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(tokens, principals.c.name.label("user"))
                .select_from(tokens.join(principals, principals.c.id == tokens.c.principal_id))
                .where(tokens.c.id == token_id)
            ).first()
        if row is None:
            raise NotFound(f"No personal access token with id {token_id!r}", hint="see wharf tokens list")
        return self._token_info(row)

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a personal access token: it stops working on the next request."""
        self.token(token_id)
        with self.engine.begin() as conn:
            conn.execute(
                tokens.update()
                .where(tokens.c.id == token_id, tokens.c.revoked_at_ms.is_(None))
                .values(revoked_at_ms=self._now_ms())
            )
        return self.token(token_id)

    def _token_info(self, row: Any) -> TokenInfo:
        now = self._now_ms()
        status = (
            "revoked"
            if row.revoked_at_ms is not None
            else "expired"
            if row.expires_at_ms is not None and row.expires_at_ms <= now
            else "active"
        )
        created = _ms_to_dt(row.created_at_ms)
        assert created is not None
        return TokenInfo(
            row.id,
            row.user,
            row.label,
            created,
            _ms_to_dt(row.expires_at_ms),
            _ms_to_dt(row.last_used_at_ms),
            _ms_to_dt(row.revoked_at_ms),
            status,
        )

    # --- signing keys -----------------------------------------------------------------------

    def rotate_key(self, *, invalidate_previous: bool = False) -> str:
        """Retire the JWT signing key and make a new one (see ``wharf.auth.signing``); returns the new ``kid``."""
        return self.keys.rotate(max_token_ttl_s=self.token_ttl_s, invalidate_previous=invalidate_previous)

    def signing_keys(self) -> list[KeyInfo]:
        return self.keys.list()

    # --- authentication ---------------------------------------------------------------------

    def authenticate_password(self, user: str, password: str) -> Principal:
        """The principal of ``user`` if ``password`` is theirs; ``AuthenticationError`` otherwise."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    principals.c.id, principals.c.kind, principals.c.password_hash, principals.c.disabled, principals.c.groups
                ).where(principals.c.name == user, principals.c.kind == USER)
            ).first()
        stored = row.password_hash if row is not None else None
        if not hashing.verify_password(stored, password) or row is None or stored is None:
            raise AuthenticationError("invalid user name or password", error="invalid_grant")
        if row.disabled:
            raise AuthenticationError("user is disabled", error="invalid_grant")
        if hashing.needs_rehash(stored):  # parameters were raised since: upgrade the stored hash now
            with self.engine.begin() as conn:
                conn.execute(
                    principals.update().where(principals.c.id == row.id).values(password_hash=hashing.hash_password(password))
                )
        return self._principal(user, USER, row.groups)

    def issue_token(self, client_id: str, client_secret: str, scope: str | None = None) -> tuple[str, int]:
        """OAuth 2 client credentials: a signed access token for the service principal, and its lifetime in seconds."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    principals.c.id, principals.c.name, principals.c.version, principals.c.secret_hash, principals.c.disabled
                ).where(principals.c.client_id == client_id, principals.c.kind == SERVICE)
            ).first()
        if not hashing.digest_matches(row.secret_hash if row is not None else None, client_secret) or row is None:
            raise AuthenticationError("invalid client credentials", error="invalid_client")
        if row.disabled:
            raise AuthenticationError("client is disabled", error="invalid_client")
        return self._sign_for(row.id, row.name, row.version, scope), self.token_ttl_s

    def login(self, user: str, password: str, scope: str | None = None) -> tuple[str, int]:
        """A signed access token for a user who proves their password (for a login form)."""
        self.authenticate_password(user, password)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(principals.c.id, principals.c.version).where(principals.c.name == user)).one()
        return self._sign_for(row.id, user, row.version, scope), self.token_ttl_s

    def _sign_for(self, principal_id: str, name: str, version: int, scope: str | None) -> str:
        if scope is not None and (len(scope) > 1000 or not scope.isprintable()):
            raise InvalidArgument("scope must be printable text of at most 1000 characters")
        now = int(self.clock())
        claims = {
            "iss": ISSUER,
            "sub": principal_id,
            "name": name,
            "ver": version,
            "iat": now,
            "exp": now + self.token_ttl_s,
            "jti": hashing.new_id(8),
        }
        if scope:
            claims["scope"] = scope
        with self.engine.begin() as conn:
            kid, secret = self.keys.active(conn)
        return sign(claims, kid, secret)

    def verify_authorization(self, header: str | None) -> Principal:
        """``verify_bearer`` on an ``Authorization: Bearer …`` header value."""
        if not header:
            raise AuthenticationError("missing bearer token", hint="send Authorization: Bearer <token>")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("expected an Authorization: Bearer token")
        return self.verify_bearer(token.strip())

    def verify_bearer(self, token: str) -> Principal:
        """The principal a bearer token (a JWT issued here, or a personal access token) stands for.

        Raises ``AuthenticationError`` (reason safe to return) when it is malformed, forged,
        expired or revoked, or its principal is disabled.
        """
        if not token:
            raise AuthenticationError("missing bearer token", hint="send Authorization: Bearer <token>")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError("malformed token")
        if token.startswith(hashing.TOKEN_PREFIX):
            return self._verify_personal_token(token)
        return self._verify_jwt(token)

    def _verify_jwt(self, token: str) -> Principal:
        kid, claims = self._verified.get(token, (None, None))
        if claims is None:
            kid = unverified_kid(token)
            if kid is None:
                raise AuthenticationError("malformed token")
            secret = self.keys.secret(kid)
            claims = verified_claims(token, secret) if secret is not None else None
            if claims is None:
                raise AuthenticationError("invalid token")
            self._remember(token, kid, claims)
        if not isinstance(claims["exp"], int | float) or claims["exp"] <= self.clock():
            raise AuthenticationError("token expired", hint="request a new token")
        with self.engine.connect() as conn:
            # One query checks both the principal (disabled? version moved on?) and the key (still there?).
            row = conn.execute(_JWT_STATE, {"sub": claims["sub"], "kid": kid}).first()
        if row is None:
            raise AuthenticationError("token revoked")
        if row.retired_at_ms is not None and claims["iat"] * 1000 > row.retired_at_ms:
            raise AuthenticationError("invalid token")  # signed by a key after it was retired: not by us
        if row.disabled:
            raise AuthenticationError(f"{KIND_LABEL.get(row.kind, row.kind)} is disabled")
        if row.version != claims["ver"]:
            raise AuthenticationError("token revoked", hint="request a new token")
        return self._principal(row.name, row.kind, row.groups)

    def _verify_personal_token(self, token: str) -> Principal:
        token_id, sep, secret = token[len(hashing.TOKEN_PREFIX) :].partition("_")
        if not sep or not token_id or not secret:
            raise AuthenticationError("malformed token")
        with self.engine.connect() as conn:
            row = conn.execute(_PAT_STATE, {"token_id": token_id}).first()
        if not hashing.digest_matches(row.secret_hash if row is not None else None, secret) or row is None:
            raise AuthenticationError("invalid token")
        now = self._now_ms()
        if row.revoked_at_ms is not None:
            raise AuthenticationError("token revoked")
        if row.expires_at_ms is not None and row.expires_at_ms <= now:
            raise AuthenticationError("token expired", hint="create a new one: wharf tokens create")
        if row.disabled:
            raise AuthenticationError("user is disabled")
        if row.last_used_at_ms is None or now - row.last_used_at_ms >= LAST_USED_RESOLUTION_MS:
            with self.engine.begin() as conn:
                conn.execute(_TOUCH_TOKEN, {"token_id": token_id, "now": now})
        return self._principal(row.name, row.kind, row.groups)

    def _principal(self, name: str, kind: str, groups: str) -> Principal:
        owner = kind == USER and name == self.owner  # the owner's account: the owner's rights, as Principal.owner
        return Principal(name, kind=kind, groups=_groups(groups), is_owner=owner, external_access=owner)


def _check_password(password: str | None) -> str:
    if not isinstance(password, str) or not password:
        raise InvalidArgument("A password may not be empty")
    if len(password) > 1024:
        raise InvalidArgument("A password has at most 1024 characters")
    return password


def _account(row: Any) -> Account:
    created = _ms_to_dt(row.created_at_ms)
    assert created is not None
    return Account(
        name=row.name,
        kind=row.kind,
        disabled=bool(row.disabled),
        groups=tuple(json.loads(row.groups)),
        attributes=json.loads(row.attributes),
        client_id=row.client_id,
        has_password=row.password_hash is not None,
        created_at=created,
    )
