"""Keep secrets out of logs: a ``logging.Filter`` that redacts credentials from every record.

It rewrites, in the formatted message, the exception text and string ``extra`` fields:

- ``Authorization: Bearer …`` / ``Basic …`` header values (also as dict or JSON items);
- JWTs (``eyJ….….…``) and Wharf's own tokens and secrets (``wharf_pat_…``, ``wharf_sec_…``);
- values of fields named like secrets (``password``, ``client_secret``, ``access_token``,
  ``token``, ``credential``, ``secret``, ``secret-access-key``…) in ``key=value``, ``"key": "value"`` and query strings.

Install it on the *handlers* (a filter on a logger does not see records propagated from its
children): ``install_redaction()`` adds it to every handler of the root logger.

>>> redact("GET /v1/config Authorization: Bearer abc.def")
'GET /v1/config Authorization: Bearer [REDACTED]'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

REDACTED = "[REDACTED]"

_SECRET_KEYS = (
    r"(?:client[_-]?secret|password|passwd|access[_-]?token|refresh[_-]?token|id[_-]?token|token|secret|credential|api[_-]?key"
    # S3 keys as PyIceberg and AWS name them (vended by the REST catalog: wharf.server.rest.credentials)
    r"|secret[_-]?access[_-]?key)"
)

_PATTERNS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # Authorization header values: "Authorization: Bearer x", "'authorization': 'Bearer x'", "authorization=Basic x".
    (
        re.compile(r"""(?i)(\bauthorization\b["']?\s*[:=]\s*["']?)(?:(bearer|basic|token)\s+)?[^\s"',;}]+"""),
        lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), lambda m: f"{m.group(1)} {REDACTED}"),
    # key=value, "key": "value", key: value (query strings, JSON bodies, reprs of dicts).
    (
        re.compile(rf"""(?i)(["']?\b[\w-]*{_SECRET_KEYS}["']?\s*(?:=|:)\s*["']?)(?!\[REDACTED\])[^\s"'&,;}}\]]+"""),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),  # a JWT anywhere
    (re.compile(r"\b(wharf_(?:pat|sec)_)[A-Za-z0-9_-]+"), rf"\1{REDACTED}"),
)


def redact(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``[REDACTED]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactSecrets(logging.Filter):
    """Redacts credentials from each record it sees (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for logging to report
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def install_redaction(logger: logging.Logger | None = None) -> RedactSecrets:
    """Add one ``RedactSecrets`` filter to every handler of ``logger`` (default: the root logger); idempotent."""
    target = logger if logger is not None else logging.getLogger()
    existing = next((f for h in target.handlers for f in h.filters if isinstance(f, RedactSecrets)), None)
    redaction = existing or RedactSecrets()
    for handler in target.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(redaction)
    return redaction
