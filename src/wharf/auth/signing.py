"""The keys that sign Wharf's access tokens (JWTs), kept in the metadata database and rotatable.

Tokens are HS256 JWTs whose header names the key (``kid``). The newest unretired key signs;
``rotate`` retires it and creates a new one. A retired key still verifies the tokens it signed
before its retirement until they expire (a token lives ``token_ttl_s`` at most), after which it
is deleted at the next rotation; ``rotate(invalidate_previous=True)`` deletes the old keys at
once, for a key that may have leaked: every token they signed stops working on the next request.

HS256 (a shared secret) fits because the same service signs and verifies; the secrets live in
the metadata database, which whoever can read can also rewrite the catalog anyway.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from wharf.auth.hashing import new_id
from wharf.auth.tables import keys

ALGORITHM = "HS256"
ISSUER = "wharf"


@dataclass(frozen=True)
class KeyInfo:
    """A signing key as ``wharf auth keys`` shows it (never its secret)."""

    kid: str
    algorithm: str
    created_at: datetime
    retired_at: datetime | None

    @property
    def active(self) -> bool:
        return self.retired_at is None


def _from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


class KeyRing:
    """Signing keys of one metadata database. Key secrets never change, so they are cached by ``kid``."""

    def __init__(self, engine: Engine, now_ms: Callable[[], int]) -> None:
        self._engine = engine
        self._now_ms = now_ms
        self._secrets: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def active(self, conn: Connection) -> tuple[str, bytes]:
        """The key that signs new tokens (created on first use)."""
        row = conn.execute(
            sa.select(keys.c.kid, keys.c.secret)
            .where(keys.c.retired_at_ms.is_(None))
            .order_by(keys.c.created_at_ms.desc(), keys.c.kid)
            .limit(1)
        ).first()
        if row is None:
            return self._create(conn)
        return str(row.kid), _decode_secret(row.secret)

    def _create(self, conn: Connection) -> tuple[str, bytes]:
        kid, secret = new_id(8), secrets.token_bytes(32)
        conn.execute(
            keys.insert().values(
                kid=kid,
                algorithm=ALGORITHM,
                secret=base64.urlsafe_b64encode(secret).decode(),
                created_at_ms=self._now_ms(),
                retired_at_ms=None,
            )
        )
        return kid, secret

    def secret(self, kid: str) -> bytes | None:
        """The secret of key ``kid`` (None if there is no such key). Whether it may still verify is checked per request."""
        cached = self._secrets.get(kid)
        if cached is not None:
            return cached
        with self._engine.connect() as conn:
            stored = conn.execute(sa.select(keys.c.secret).where(keys.c.kid == kid)).scalar()
        if stored is None:
            return None
        with self._lock:
            return self._secrets.setdefault(kid, _decode_secret(stored))

    def rotate(self, *, max_token_ttl_s: int, invalidate_previous: bool = False) -> str:
        """Retire the signing key and create a new one; returns the new key's id.

        Keys retired longer ago than any token lives are deleted; with ``invalidate_previous`` every
        older key is deleted now, so the tokens they signed stop working at once.
        """
        now = self._now_ms()
        with self._engine.begin() as conn:
            if invalidate_previous:
                conn.execute(keys.delete())
            else:
                conn.execute(keys.update().where(keys.c.retired_at_ms.is_(None)).values(retired_at_ms=now))
                conn.execute(keys.delete().where(keys.c.retired_at_ms <= now - max_token_ttl_s * 1000))
            kid, _ = self._create(conn)
        return kid

    def list(self) -> list[KeyInfo]:
        with self._engine.connect() as conn:
            # Oldest first; within one millisecond, the retired key before its successor.
            retired_last = sa.case((keys.c.retired_at_ms.is_(None), 1), else_=0)
            rows = conn.execute(sa.select(keys).order_by(keys.c.created_at_ms, retired_last, keys.c.kid)).all()
        return [
            KeyInfo(r.kid, r.algorithm, _from_ms(r.created_at_ms) or datetime.fromtimestamp(0, UTC), _from_ms(r.retired_at_ms))
            for r in rows
        ]


def _decode_secret(stored: str) -> bytes:
    return base64.urlsafe_b64decode(stored.encode())


def sign(claims: dict[str, Any], kid: str, secret: bytes) -> str:
    """A JWT of ``claims`` signed with key ``kid``."""
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})


def unverified_kid(token: str) -> str | None:
    """The ``kid`` a token's header names, or None when the token is not a JWT of ours. Nothing is trusted yet."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str):
        return None
    return kid


def verified_claims(token: str, secret: bytes) -> dict[str, Any] | None:
    """The claims of ``token`` if its signature and issuer check out (time is checked by the caller's clock)."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["exp", "iat", "sub", "ver", "iss"],
            },
        )
    except jwt.PyJWTError:
        return None
    return claims
