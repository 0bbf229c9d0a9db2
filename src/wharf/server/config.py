"""``ServerConfig``: how ``wharf serve`` runs, from defaults, a TOML file, ``WHARF_*`` variables and flags.

Later sources win: defaults < ``--config FILE`` (its ``[server]`` table, or the top level) <
environment (``WHARF_<FIELD>``, e.g. ``WHARF_PORT=9000``, ``WHARF_NO_AUTH=1``; the lake also from
``WHARF_HOME``) < command-line flags. Every value is checked once, here, with a message that
names the source it came from.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from wharf.auth.oidc import DEFAULT_ALGORITHMS, OidcConfig, parse_attribute_claims
from wharf.errors import InvalidArgument

ENV_PREFIX = "WHARF_"
# The environment variable a parent ``wharf serve`` hands the full configuration to its workers in.
WORKER_CONFIG_ENV = "WHARF_SERVER_CONFIG_JSON"
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``wharf serve`` can be told. See docs/server.md for each setting."""

    lake: str = "lake"
    # The lake's metadata database when it is not the lake directory's wharf.db (docs/storage.md):
    # e.g. postgresql://wharf@db/wharf; also $WHARF_METADATA_URL or the global --metadata-url.
    metadata_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8181
    workers: int = 1
    no_auth: bool = False
    # The warehouse name clients give (``ATTACH 'wharf' …``, ``warehouse=wharf``); also the REST prefix.
    warehouse: str = "wharf"
    # Requests with a larger body are refused (413) before they are read.
    max_body_bytes: int = 32 * 1024 * 1024
    # How long a response is kept for replay under its Idempotency-Key (ISO-8601, announced in /v1/config).
    idempotency_lifetime: str = "PT30M"
    # Origins allowed by CORS; empty (the default) sends no CORS headers at all.
    cors_origins: tuple[str, ...] = ()
    # Token requests per client address and minute (the OAuth endpoint guesses no passwords fast).
    token_rate_per_minute: int = 30
    # On SIGTERM/SIGINT: seconds in-flight requests (commits) get to finish before workers stop.
    graceful_timeout_s: int = 30
    # Seconds an idle keep-alive connection stays open. Longer than clients' and proxies' own idle
    # timeouts (httpx 5 s, load balancers 60 s), so the client closes first: when the server closes
    # at the moment a client reuses the connection, the request fails (uvicorn's default is 5 s).
    keep_alive_s: int = 75
    default_page_size: int = 100
    max_page_size: int = 1000
    log_level: str = "info"
    # Answer X-Iceberg-Access-Delegation: vended-credentials with the lake's S3 credentials (when the
    # warehouse is in object storage); false: clients bring their own (docs/server.md).
    vend_credentials: bool = True
    # "module:callable" returning an ``Authenticator`` for the lake (see wharf.server.context).
    authenticator: str | None = None
    # Asynchronous queries (POST /api/v1/queries): how many run at once, how many may wait, and how
    # long (seconds) and how much (bytes, all finished queries together) their results are kept.
    query_workers: int = 4
    query_queue_limit: int = 100
    query_result_ttl_s: int = 600
    query_results_max_bytes: int = 512 * 1024 * 1024
    # The result cache (LRU by Arrow bytes); 0 turns it off.
    result_cache_max_bytes: int = 128 * 1024 * 1024
    # Statements re-run as the lake owner right after each commit to a table they read (pre-cache).
    precache: tuple[str, ...] = ()
    # Identity federation (docs/auth.md): OIDC bearer tokens of one identity provider, beside Wharf's
    # own tokens. Set oidc_issuer and oidc_audience to turn it on; the keys come from oidc_jwks_url,
    # oidc_jwks_file, or the issuer's discovery document. HS* and none are never accepted.
    oidc_issuer: str | None = None
    oidc_audience: tuple[str, ...] = ()
    oidc_jwks_url: str | None = None
    oidc_jwks_file: str | None = None
    oidc_algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    oidc_leeway_s: int = 60
    oidc_username_claim: str = "preferred_username"
    oidc_username_prefix: str = ""
    oidc_groups_claim: str = "groups"
    # "attribute" or "attribute=claim.path": user attributes (current_user_attribute) set from claims
    oidc_attribute_claims: tuple[str, ...] = ()
    oidc_required_claims: tuple[str, ...] = ()
    oidc_jwks_cache_s: int = 300
    oidc_jwks_refresh_s: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise InvalidArgument(f"port {self.port} is not a TCP port", hint="give a number between 1 and 65535")
        if self.workers < 1:
            raise InvalidArgument(f"workers must be at least 1, not {self.workers}")
        if self.keep_alive_s < 1:
            raise InvalidArgument(f"keep_alive_s must be at least 1 second, not {self.keep_alive_s}")
        if self.max_body_bytes < 1024:
            raise InvalidArgument(f"max_body_bytes {self.max_body_bytes} is too small", hint="allow at least 1024 bytes")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", self.warehouse):
            raise InvalidArgument(
                f"warehouse name {self.warehouse!r} is not usable in a URL path",
                hint="use letters, digits, '_', '-' and '.' only",
            )
        if self.query_workers < 1 or self.query_queue_limit < 0:
            raise InvalidArgument(
                f"query_workers must be 1 or more ({self.query_workers}), query_queue_limit 0 or more ({self.query_queue_limit})"
            )
        for name in ("query_result_ttl_s", "query_results_max_bytes", "result_cache_max_bytes"):
            if getattr(self, name) < 0:
                raise InvalidArgument(f"{name} must not be negative, not {getattr(self, name)}")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise InvalidArgument(f"log_level {self.log_level!r} is unknown", hint="use debug, info, warning or error")
        self.idempotency_seconds()  # validates the duration
        self.oidc()  # validates the identity-provider settings
        if self.no_auth and not is_loopback(self.host):
            raise InvalidArgument(
                f"--no-auth serves every request as the lake owner, so it binds only to loopback, not {self.host}",
                hint="use --host 127.0.0.1 (or ::1), or turn authentication on",
            )

    def idempotency_seconds(self) -> int:
        """The idempotency-key lifetime in seconds."""
        match = _DURATION.match(self.idempotency_lifetime)
        if not match or not any(match.groups()):
            raise InvalidArgument(
                f"idempotency_lifetime {self.idempotency_lifetime!r} is not an ISO-8601 duration",
                hint="write it like PT30M, PT1H or PT90S",
            )
        hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds

    def oidc(self) -> OidcConfig | None:
        """The identity provider to trust (None: no ``oidc_issuer``, Wharf's own tokens only)."""
        if not self.oidc_issuer:
            if self.oidc_audience or self.oidc_jwks_url or self.oidc_jwks_file:
                raise InvalidArgument("oidc_audience and oidc_jwks_* settings need oidc_issuer", hint="set oidc_issuer too")
            return None
        return OidcConfig(
            issuer=self.oidc_issuer,
            audience=self.oidc_audience,
            jwks_url=self.oidc_jwks_url,
            jwks_file=self.oidc_jwks_file,
            algorithms=self.oidc_algorithms,
            leeway_s=self.oidc_leeway_s,
            username_claim=self.oidc_username_claim,
            username_prefix=self.oidc_username_prefix,
            groups_claim=self.oidc_groups_claim,
            attribute_claims=parse_attribute_claims(self.oidc_attribute_claims),
            required_claims=self.oidc_required_claims,
            jwks_cache_s=self.oidc_jwks_cache_s,
            jwks_refresh_s=self.oidc_jwks_refresh_s,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        values = json.loads(text)
        for f in fields(cls):  # JSON has lists where the configuration has tuples
            if str(f.type).startswith("tuple") and f.name in values:
                values[f.name] = tuple(values[f.name] or ())
        return cls(**values)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(name: str, raw: Any, source: str) -> Any:
    """Turn a file or environment value into the field's type, or say which source holds a bad value."""
    kind = {f.name: f.type for f in fields(ServerConfig)}[name]
    try:
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if kind.startswith("tuple"):
            # Statements hold commas: $WHARF_PRECACHE separates them with ';' (a file gives a list).
            separator = ";" if name == "precache" else ","
            items = raw if isinstance(raw, list) else [p for p in str(raw).split(separator) if p.strip()]
            return tuple(str(p).strip() for p in items)
        if raw is None:
            return None
        return str(raw)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{source}: {raw!r} is not a valid value for {name} ({kind})") from None


def load_config(
    file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **flags: Any,
) -> ServerConfig:
    """The configuration from defaults, ``file``, ``environ`` (default ``os.environ``) and ``flags`` (None: unset)."""
    environ = os.environ if environ is None else environ
    names = [f.name for f in fields(ServerConfig)]
    values: dict[str, Any] = {}
    if file is not None:
        path = Path(file)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidArgument(f"Cannot read the configuration file {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidArgument(f"The configuration file {path} is not valid TOML: {exc}") from exc
        table = dict(data.get("server", data))
        # An [oidc] table (or [server.oidc]) spells the oidc_* settings without their prefix.
        sections = [table.pop("oidc")] if isinstance(table.get("oidc"), dict) else []
        if "server" in data and isinstance(data.get("oidc"), dict):
            sections.append(data["oidc"])
        for section in sections:
            for key, value in section.items():
                if key == "attributes" and isinstance(value, dict):  # [oidc.attributes] region = "claim.path"
                    table["oidc_attribute_claims"] = [f"{attribute}={claim}" for attribute, claim in value.items()]
                else:
                    table[f"oidc_{key}"] = value
        unknown = sorted(set(table) - set(names) - {"server"})
        if unknown:
            raise InvalidArgument(
                f"The configuration file {path} has unknown settings: {', '.join(unknown)}",
                hint=f"known settings: {', '.join(names)}",
            )
        values |= {k: _coerce(k, v, str(path)) for k, v in table.items() if k in names}
    if "lake" not in values and environ.get("WHARF_HOME"):
        values["lake"] = environ["WHARF_HOME"]
    for name in names:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            values[name] = _coerce(name, environ[key], f"${key}")
    values |= {k: v for k, v in flags.items() if v is not None}
    return ServerConfig(**values)


__all__ = ["ServerConfig", "is_loopback", "load_config"]
