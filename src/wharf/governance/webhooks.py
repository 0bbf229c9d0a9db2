"""Webhook notifications of access requests and decisions: signed, retried with backoff, never blocking a statement.

Each webhook (``CREATE WEBHOOK name URL '…' SECRET '…'``, stored in ``wharf_gov_webhooks``)
receives a POST with the decision's JSON payload (``AccessDecision.payload``: the event, the
request, and whom to notify — the requester and the table's approvers) for every request filed,
approved or denied. Headers:

- ``X-Wharf-Event``: ``access_request.requested`` | ``.approved`` | ``.denied``
- ``X-Wharf-Delivery``: one id per notification, the same on every retry (deduplicate on it)
- ``X-Wharf-Timestamp``: Unix seconds when this attempt was signed
- ``X-Wharf-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``<timestamp>.<body>`` keyed with the
  webhook's secret (``verify_signature`` checks one; refuse old timestamps to stop replays)

A statement only enqueues; one daemon thread per process delivers, retrying a failed attempt
(a connection error or a non-2xx answer) after ``base_delay_s × 2^(attempt-1)`` seconds, up to
``max_attempts`` times, then logs and gives up.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from wharf.governance import tables as t
from wharf.governance.access import AccessDecision, on_decision

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Wharf-Signature"
TIMESTAMP_HEADER = "X-Wharf-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Wharf-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str | int, body: bytes, signature: str, *, tolerance_s: int = 300) -> bool:
    """Whether ``signature`` signs ``body`` at ``timestamp`` with ``secret``, and the timestamp is recent."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    url: str = field(compare=False)
    secret: str = field(compare=False)
    event: str = field(compare=False)
    body: bytes = field(compare=False)
    delivery_id: str = field(compare=False)
    attempt: int = field(default=1, compare=False)


class Notifier:
    """Delivers queued notifications from one background thread, with exponential backoff."""

    def __init__(self, base_delay_s: float = 1.0, max_attempts: int = 6, timeout_s: float = 10.0) -> None:
        self.base_delay_s = base_delay_s
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.delivered = 0  # counters, for tests and operators
        self.failed = 0

    def submit(self, url: str, secret: str, event: str, body: bytes) -> str:
        """Queue one notification; returns its delivery id. Never blocks on the network."""
        delivery = _Delivery(time.monotonic(), next(self._seq), url, secret, event, body, uuid.uuid4().hex)
        with self._cond:
            heapq.heappush(self._queue, delivery)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="wharf-webhooks", daemon=True)
                self._thread.start()
            self._cond.notify()
        return delivery.delivery_id

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue or self._queue[0].due > time.monotonic():
                    wait = None if not self._queue else max(self._queue[0].due - time.monotonic(), 0.0)
                    self._cond.wait(wait)
                delivery = heapq.heappop(self._queue)
            if self._send(delivery):
                self.delivered += 1
                continue
            if delivery.attempt >= self.max_attempts:
                self.failed += 1
                log.warning(
                    "webhook %s: giving up on delivery %s after %d attempts", delivery.url, delivery.delivery_id, delivery.attempt
                )
                continue
            delay = self.base_delay_s * 2 ** (delivery.attempt - 1)
            delivery.attempt += 1
            delivery.due = time.monotonic() + delay
            delivery.seq = next(self._seq)
            with self._cond:
                heapq.heappush(self._queue, delivery)

    def _send(self, delivery: _Delivery) -> bool:
        timestamp = int(time.time())
        request = urllib.request.Request(
            delivery.url,
            data=delivery.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "wharf-webhooks",
                "X-Wharf-Event": delivery.event,
                "X-Wharf-Delivery": delivery.delivery_id,
                "X-Wharf-Attempt": str(delivery.attempt),
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(delivery.secret, timestamp, delivery.body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - an admin-configured URL
                return 200 <= int(response.status) < 300
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.info(
                "webhook %s: attempt %d of delivery %s failed: %s", delivery.url, delivery.attempt, delivery.delivery_id, exc
            )
            return False


notifier = Notifier()


def _notify(decision: AccessDecision) -> None:
    """The ``on_decision`` subscriber: queue the decision's payload for every webhook of its lake."""
    store = decision.store
    if store is None:
        return
    with store.engine.connect() as conn:
        hooks = conn.execute(sa.select(t.webhooks.c.url, t.webhooks.c.secret).order_by(t.webhooks.c.name)).all()
    if not hooks:
        return
    payload = decision.payload()
    body = json.dumps(payload, sort_keys=True).encode()
    for url, secret in hooks:
        notifier.submit(url, secret, payload["event"], body)


unsubscribe = on_decision(_notify)
