"""Structured logs: one JSON object per line, each carrying the request id of the request it is about.

Nothing that could hold a secret is logged: no headers, no query strings, no bodies — only the
method, the path, the status, the duration and the principal's name.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from wharf.auth.redaction import RedactSecrets

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("wharf_request_id", default=None)
# Attributes every LogRecord has: anything else on a record came in through ``extra=``.
# (uvicorn's "color_message" is its message again, with terminal colours.)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", …extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # exc_text: redacted
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "info") -> None:
    """Send Wharf's and uvicorn's logs to stderr as JSON lines (replacing their handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets())  # no credential reaches the log, whatever a message carries
    for name in ("wharf", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # Requests are logged once, by Wharf's middleware, with the request id; not again by uvicorn.
    logging.getLogger("uvicorn.access").disabled = True


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's ``log_config``: its loggers through the JSON formatter, its access log off."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "wharf.server.logs.JsonFormatter"}},
        "filters": {"redact": {"()": "wharf.auth.redaction.RedactSecrets"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "wharf": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }
