"""Secrets: generating them, storing only their hashes, and comparing in constant time.

Two kinds of secret, hashed differently on purpose:

- **Passwords** are chosen by people, so they are guessable: they are hashed with argon2id
  (``argon2-cffi``'s defaults, the RFC 9106 low-memory profile), slow by design.
- **Generated secrets** (personal access tokens, client secrets) are 256 random bits: no
  dictionary attack applies, so a SHA-256 digest is as safe as argon2 and costs microseconds,
  which matters because a personal access token is checked on every request. Digests are
  compared with ``hmac.compare_digest``.

The password hasher is process-wide. Tests lower its cost with ``use_test_hashing()``; nothing
else should (the default must stay the library's secure one).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

SECRET_BYTES = 32  # 256 bits of randomness in every generated secret
TOKEN_PREFIX = "wharf_pat_"  # personal access tokens: recognisable to people, log redaction and secret scanners
SECRET_PREFIX = "wharf_sec_"  # service principals' client secrets

_hasher = PasswordHasher()  # argon2-cffi's defaults: argon2id, t=3, m=64 MiB, p=4
_dummy_hash: str | None = None


def password_hasher() -> PasswordHasher:
    """The argon2 hasher passwords are hashed with."""
    return _hasher


def use_test_hashing() -> None:
    """Make password hashing cheap (argon2's CHEAPEST profile). For test suites only: it is not secure."""
    global _hasher, _dummy_hash
    _hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    _dummy_hash = None


def use_default_hashing() -> None:
    """Back to argon2-cffi's secure defaults."""
    global _hasher, _dummy_hash
    _hasher = PasswordHasher()
    _dummy_hash = None


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salted; includes its parameters)."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``.

    With no stored hash (an unknown user, or a user without a password) a dummy hash is verified
    anyway, so the answer takes as long as for a real user and timing does not reveal which
    user names exist.
    """
    global _dummy_hash
    if stored_hash is None:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
        stored_hash = _dummy_hash
        matched = False
    else:
        matched = True
    try:
        _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return matched


def needs_rehash(stored_hash: str) -> bool:
    """Whether a stored hash was made with other parameters than the current hasher's (then rehash on login)."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def new_secret() -> str:
    """A random URL-safe secret with 256 bits of entropy."""
    return secrets.token_urlsafe(SECRET_BYTES)


def new_id(nbytes: int = 12) -> str:
    """A random identifier (hex): for rows, token ids and client ids. Not a secret."""
    return secrets.token_hex(nbytes)


def digest(secret: str) -> str:
    """The SHA-256 hex digest a generated secret is stored as."""
    return hashlib.sha256(secret.encode()).hexdigest()


def digest_matches(stored_digest: str | None, secret: str) -> bool:
    """Constant-time check of ``secret`` against a stored digest (False when nothing is stored)."""
    candidate = digest(secret)
    if stored_digest is None:
        hmac.compare_digest(candidate, candidate)  # same work either way
        return False
    return hmac.compare_digest(stored_digest, candidate)
