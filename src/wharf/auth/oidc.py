"""OIDC bearer tokens from an identity provider: configuration, its signing keys (JWKS), verification.

A served lake can accept the access tokens (JWTs) of one identity provider besides its own tokens,
as Redshift accepts Entra ID's: ``OidcVerifier.verify(token)`` returns the token's claims once
its signature, issuer, audience, algorithm and times check out, and raises
``AuthenticationError`` with a short reason otherwise. ``OidcVerifier.identity(claims)`` reads
the user name, groups and attributes the configuration maps from the claims. Creating the user
on first sign-in is governance's part (``wharf.governance.federation``).

What is refused, and why:

- algorithms outside ``algorithms`` — never ``none``, and never an HMAC (``HS*``) one: a provider's
  keys are public, so an HMAC "signed" with the public key as secret would verify for anyone
  (the HS/RS confusion). The configuration refuses HS* outright, and the key used must be of the
  algorithm's family (RSA for RS*/PS*, EC for ES*, OKP for EdDSA);
- a wrong ``iss`` or ``aud``; ``exp`` passed or ``nbf`` ahead (beyond ``leeway_s``); a missing
  ``iss``, ``aud``, ``exp`` or ``sub`` or any of ``required_claims``;
- a ``kid`` the provider does not publish, even after one refresh of its JWKS.

Keys are cached (``JwksCache``): fetched at the first token, fetched again when ``jwks_cache_s``
has passed, and at once when a token names an unknown ``kid`` — at most once per
``jwks_refresh_s``, so a stream of forged kids cannot make the server hammer the provider. A key
rotation therefore needs no restart: a token signed with a new key fetches it; a token signed
with a retired key keeps working while the provider still publishes that key, and is refused
once the provider stops publishing it and the cache has been refreshed (``jwks_cache_s`` at most).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from wharf.errors import AuthenticationError, InvalidArgument

log = logging.getLogger("wharf.auth.oidc")

# The asymmetric algorithms a provider may sign with; the default allows all of them.
ALGORITHM_FAMILIES: Mapping[str, str] = {
    **{f"RS{n}": "RSA" for n in (256, 384, 512)},
    **{f"PS{n}": "RSA" for n in (256, 384, 512)},
    **{f"ES{n}": "EC" for n in (256, 384, 512)},
    "EdDSA": "OKP",
}
DEFAULT_ALGORITHMS: tuple[str, ...] = tuple(ALGORITHM_FAMILIES)
ALWAYS_REQUIRED = ("iss", "aud", "exp", "sub")
MAX_JWKS_BYTES = 1024 * 1024
MAX_ATTRIBUTE_CHARS = 1000  # as for attributes set by an admin (wharf.auth)
_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
VERIFIED_CACHE_SIZE = 4096  # tokens whose signature is remembered (per process)
_KID = "\x00kid"  # where _verify_signed hands the key id back (no claim can be named so)
FETCH_TIMEOUT_S = 5.0

Clock = Callable[[], float]


def _is_loopback_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, what: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback_url(url)):
        if parts.hostname:
            return url
    raise InvalidArgument(
        f"{what} {url!r} must be an https:// URL",
        hint="keys fetched over plain http could be replaced on the way; http is accepted only on loopback (tests)",
    )


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a claim path: ``groups``, or nested ``realm_access.roles``. A claim whose own
    name holds dots (``https://example.com/groups``) is found whole first. None if absent."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


@dataclass(frozen=True)
class OidcConfig:
    """How to trust one identity provider. See docs/auth.md ("Identity federation")."""

    issuer: str
    audience: tuple[str, ...]
    jwks_url: str | None = None  # None (and no jwks_file): from the issuer's discovery document
    jwks_file: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_s: int = 60
    username_claim: str = "preferred_username"
    username_prefix: str = ""
    groups_claim: str = "groups"
    # (attribute, claim path): user attributes set from claims at every sign-in
    attribute_claims: tuple[tuple[str, str], ...] = ()
    required_claims: tuple[str, ...] = ()
    jwks_cache_s: int = 300
    jwks_refresh_s: int = 10

    def __post_init__(self) -> None:
        if not self.issuer:
            raise InvalidArgument("oidc_issuer is empty", hint="the identity provider's issuer URL, exactly as in its tokens")
        if not self.audience or not all(self.audience):
            raise InvalidArgument(
                "oidc_audience is required with oidc_issuer",
                hint="the audience (client id) the provider puts in tokens for this server, so tokens for other apps are refused",
            )
        for alg in self.algorithms:
            if alg not in ALGORITHM_FAMILIES:
                why = (
                    "an HMAC algorithm would verify with the provider's public key as its secret (HS/RS confusion)"
                    if alg.upper().startswith("HS")
                    else "an unsigned token proves nothing"
                    if alg.lower() == "none"
                    else "it is not a known asymmetric JWS algorithm"
                )
                raise InvalidArgument(
                    f"oidc_algorithms: {alg!r} is not allowed: {why}", hint=f"choose from {', '.join(DEFAULT_ALGORITHMS)}"
                )
        if not self.algorithms:
            raise InvalidArgument("oidc_algorithms is empty", hint=f"choose from {', '.join(DEFAULT_ALGORITHMS)}")
        if self.jwks_url and self.jwks_file:
            raise InvalidArgument("Give oidc_jwks_url or oidc_jwks_file, not both")
        if self.jwks_url:
            _check_url(self.jwks_url, "oidc_jwks_url")
        elif not self.jwks_file:
            _check_url(self.issuer, "oidc_issuer (its discovery document gives the JWKS URL)")
        if self.leeway_s < 0 or self.jwks_cache_s < 1 or self.jwks_refresh_s < 0:
            raise InvalidArgument(
                "oidc_leeway_s and oidc_jwks_refresh_s must be 0 or more, oidc_jwks_cache_s 1 or more",
                hint="seconds, e.g. oidc_leeway_s = 60, oidc_jwks_cache_s = 300, oidc_jwks_refresh_s = 10",
            )

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_attribute_claims(items: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """``["region", "dept=org.department"]`` → ``(("region", "region"), ("dept", "org.department"))``."""
    pairs = []
    for item in items:
        attribute, sep, claim = item.partition("=")
        attribute, claim = attribute.strip(), (claim.strip() if sep else attribute.strip())
        if not _ATTRIBUTE.fullmatch(attribute) or not claim:
            raise InvalidArgument(
                f"oidc_attribute_claims: {item!r} is not 'attribute' or 'attribute=claim.path'",
                hint="an attribute name has letters, digits, _ . - and starts with a letter or _",
            )
        pairs.append((attribute, claim))
    return tuple(pairs)


@dataclass(frozen=True)
class FederatedIdentity:
    """Who a verified token says the caller is."""

    issuer: str
    subject: str
    name: str  # the Wharf user name (prefix + the username claim)
    groups: frozenset[str]
    attributes: Mapping[str, str | None] = field(default_factory=dict)  # None: the claim is absent


def _fetch_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310 - https or loopback, checked
            body = response.read(MAX_JWKS_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise OSError(f"cannot fetch {url}: {exc}") from exc
    if len(body) > MAX_JWKS_BYTES:
        raise OSError(f"{url} answered more than {MAX_JWKS_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise OSError(f"{url} did not answer JSON") from exc


@dataclass(frozen=True)
class PublishedKey:
    """One key of the provider's JWKS: the verifying key, its type, and the algorithm it declares (if any)."""

    kid: str
    key: Any
    key_type: str
    algorithm: str | None


class JwksCache:
    """The provider's public keys by ``kid``, refreshed by age and, rate limited, on an unknown ``kid``."""

    def __init__(self, config: OidcConfig, *, clock: Clock = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.fetches = 0  # how many times the keys were fetched (for tests and logs)
        self._keys: dict[str, PublishedKey] = {}
        self._fetched_at: float | None = None
        self._jwks_url = config.jwks_url
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        if self.config.jwks_file:
            try:
                data = json.loads(Path(self.config.jwks_file).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise OSError(f"cannot read the JWKS file {self.config.jwks_file}: {exc}") from exc
        else:
            if self._jwks_url is None:
                discovery = _fetch_json(self.config.discovery_url)
                if not isinstance(discovery, dict) or discovery.get("issuer") != self.config.issuer:
                    raise OSError(f"{self.config.discovery_url} names another issuer than {self.config.issuer!r}")
                self._jwks_url = _check_url(str(discovery.get("jwks_uri", "")), "the discovery document's jwks_uri")
            data = _fetch_json(self._jwks_url)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise OSError("the JWKS has no 'keys' list")
        return data

    def _refresh(self) -> None:
        self.fetches += 1
        data = self._load()
        keys: dict[str, PublishedKey] = {}
        for entry in data["keys"]:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:  # a key type or curve we cannot use: skip it, keep the others
                continue
            kid = str(entry.get("kid", ""))
            alg = entry.get("alg")
            keys[kid] = PublishedKey(kid, key.key, str(entry.get("kty")), alg if isinstance(alg, str) else None)
        self._keys = keys
        self._fetched_at = self.clock()

    def key(self, kid: str | None) -> PublishedKey | None:
        """The published key ``kid`` (None: the only key, when the token names none), or None."""
        with self._lock:
            now = self.clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self.config.jwks_cache_s
            if not stale and self._find(kid) is None:
                # Unknown kid: perhaps a rotation. Refresh, but not more often than jwks_refresh_s.
                stale = now - (self._fetched_at or 0) >= self.config.jwks_refresh_s
            if stale:
                try:
                    self._refresh()
                except OSError as exc:
                    # The provider is unreachable: keep the keys we have (stale beats none) and say so.
                    log.warning("identity provider keys not refreshed: %s", exc)
                    if self._fetched_at is None:
                        raise AuthenticationError(
                            "the identity provider's signing keys are unavailable", hint="retry later"
                        ) from None
                    self._fetched_at = now  # retry after jwks_refresh_s / jwks_cache_s, not on every request
            return self._find(kid)

    def _find(self, kid: str | None) -> PublishedKey | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)


_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "token has the wrong audience"),
    (jwt.InvalidIssuerError, "token has the wrong issuer"),
    (jwt.InvalidSignatureError, "token signature is invalid"),
)


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A compact JWS's header and payload, decoded but NOT verified (None if it is not one).

    For routing a token to the right check only: the standard library's base64 and json, a few
    microseconds, where PyJWT's unverified decoding costs a few hundred.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2])
    except (ValueError, TypeError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return header, payload


class OidcVerifier:
    """Verifies one identity provider's tokens (thread safe; one per server process).

    A client sends the same token on every request: a token whose signature verified is
    remembered (by its text, ``VERIFIED_CACHE_SIZE`` of them), and on later requests only its
    expiry and whether the provider still publishes its key are checked again.
    """

    def __init__(self, config: OidcConfig, *, clock: Clock = time.monotonic) -> None:
        self.config = config
        self.jwks = JwksCache(config, clock=clock)
        self._verified: OrderedDict[str, tuple[str | None, dict[str, Any]]] = OrderedDict()
        self._verified_lock = threading.Lock()

    def remembers(self, token: str) -> bool:
        """Whether ``token`` verified here before (so it is this provider's)."""
        return token in self._verified

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or ``AuthenticationError`` saying what is wrong with it."""
        remembered = self._verified.get(token)
        if remembered is not None:
            kid, claims = remembered
            if self.jwks.key(kid) is None:  # the provider stopped publishing the key: its tokens end
                raise AuthenticationError("token signed by an unknown key", hint="the identity provider does not publish its kid")
            if float(claims["exp"]) <= time.time() - self.config.leeway_s:
                raise AuthenticationError("token expired")
            return claims
        claims = self._verify_signed(token)
        with self._verified_lock:
            self._verified[token] = (claims.pop(_KID), claims)
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    def _verify_signed(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise AuthenticationError(
                f"token algorithm {alg!r} is not allowed", hint=f"this server accepts {', '.join(self.config.algorithms)}"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("malformed token")
        key = self.jwks.key(kid)
        if key is None:
            raise AuthenticationError("token signed by an unknown key", hint="the identity provider does not publish its kid")
        if ALGORITHM_FAMILIES[alg] != key.key_type or (key.algorithm is not None and key.algorithm != alg):
            raise AuthenticationError(f"token algorithm {alg!r} does not match its key", hint="the key and the token disagree")
        required = sorted(set(ALWAYS_REQUIRED) | set(self.config.required_claims))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=list(self.config.audience),
                issuer=self.config.issuer,
                leeway=self.config.leeway_s,
                options={"require": required, "verify_aud": True, "verify_iss": True},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            for kind, reason in _REFUSALS:
                if isinstance(exc, kind):
                    raise AuthenticationError(reason) from None
            raise AuthenticationError("invalid token") from None
        claims[_KID] = kid
        return claims

    def identity(self, claims: Mapping[str, Any]) -> FederatedIdentity:
        """The user name, groups and mapped attributes of verified ``claims``."""
        config = self.config
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("token has no 'sub' claim")
        name = claim_at(claims, config.username_claim)
        if not isinstance(name, str) or not name:
            raise AuthenticationError(
                f"token has no {config.username_claim!r} claim", hint="set oidc_username_claim to a claim the provider sends"
            )
        raw_groups = claim_at(claims, config.groups_claim)
        if raw_groups is None:
            groups: list[str] = []
        elif isinstance(raw_groups, str):
            groups = [raw_groups]
        elif isinstance(raw_groups, list) and all(isinstance(g, str) for g in raw_groups):
            groups = list(raw_groups)
        else:
            # Refused rather than ignored: a policy may deny by group (NOT is_member('contractors')).
            raise AuthenticationError(f"token's {config.groups_claim!r} claim is not a list of group names")
        for group in groups:
            if not group or len(group) > 255 or not group.isprintable():
                raise AuthenticationError(f"token's {config.groups_claim!r} claim holds an unusable group name")
        attributes: dict[str, str | None] = {}
        for attribute, path in config.attribute_claims:
            value = claim_at(claims, path)
            if value is None:
                attributes[attribute] = None
            elif isinstance(value, str | int | float | bool) and len(str(value)) <= MAX_ATTRIBUTE_CHARS:
                attributes[attribute] = str(value).lower() if isinstance(value, bool) else str(value)
            else:
                raise AuthenticationError(f"token's {path!r} claim is not a single value for attribute {attribute!r}")
        return FederatedIdentity(config.issuer, subject, config.username_prefix + name, frozenset(groups), attributes)


__all__ = [
    "DEFAULT_ALGORITHMS",
    "FederatedIdentity",
    "JwksCache",
    "OidcConfig",
    "OidcVerifier",
    "claim_at",
    "parse_attribute_claims",
    "unverified_parts",
]
