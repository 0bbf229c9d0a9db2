"""Alerts: a ruleset's webhook is called when one of its runs fails.

The payload is JSON (ruleset, table, ref, snapshot id, the failed rules with their reasons, run
and batch ids, time). It is signed with HMAC-SHA256 over the exact body bytes, sent as
``X-Wharf-Signature: sha256=<hex>``, with the secret from ``$WHARF_QUALITY_WEBHOOK_SECRET`` (or
``lake.quality.webhook_secret``); receivers verify it with ``verify_signature``. Delivery is
retried with exponential backoff on a connection error or a 5xx/429 answer, within a total time
budget: an alert never fails the evaluation and never delays it beyond that budget. Its outcome
is returned (``Delivery``) and logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Wharf-Signature"
EVENT_HEADER = "X-Wharf-Event"
SECRET_ENV = "WHARF_QUALITY_WEBHOOK_SECRET"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` tries, waiting ``first_wait_s`` × 2ⁿ between them, each request
    at most ``request_timeout_s``, everything within ``budget_s``."""

    attempts: int = 4
    first_wait_s: float = 0.2
    request_timeout_s: float = 2.0
    budget_s: float = 10.0


@dataclass(frozen=True)
class Delivery:
    """What happened to one alert: delivered or not, after how many attempts, the last status or error."""

    url: str
    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``secret`` (constant-time comparison)."""
    return header is not None and hmac.compare_digest(sign(body, secret), header)


def secret_from_env() -> str | None:
    return os.environ.get(SECRET_ENV) or None


def send(
    url: str,
    payload: Mapping[str, Any],
    *,
    secret: str | None,
    policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen: sharing the default is safe
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST ``payload`` to ``url``, signed, retried with backoff; never raises."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    headers = {"Content-Type": "application/json", EVENT_HEADER: "quality.run_failed", "User-Agent": "wharf"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    deadline = time.monotonic() + policy.budget_s
    status: int | None = None
    error: str | None = None
    attempt = 0
    for attempt in range(1, policy.attempts + 1):  # noqa: B007 - the count is reported
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=min(policy.request_timeout_s, remaining)) as response:  # noqa: S310 - http(s) only, checked when stored
                status = response.status
            return Delivery(url, True, attempt, status)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break  # the receiver refuses this payload: trying again will not help
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            status, error = None, str(getattr(exc, "reason", exc))
        wait = policy.first_wait_s * (2 ** (attempt - 1))
        if attempt == policy.attempts or time.monotonic() + wait >= deadline:
            break
        sleep(wait)
    log.warning("quality webhook %s not delivered after %d attempt(s): %s", url, attempt, error)
    return Delivery(url, False, attempt, status, error)


__all__ = ["Delivery", "RetryPolicy", "SECRET_ENV", "SIGNATURE_HEADER", "send", "sign", "verify_signature"]
