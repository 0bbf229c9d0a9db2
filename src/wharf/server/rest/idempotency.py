"""``Idempotency-Key`` replay: the same key gets the same final response, within the announced lifetime.

Per the REST spec, a request carrying a key is run once; its final response (2xx, or a
deterministic 4xx) is stored and replayed to every retry with the same key. A 5xx is not final:
the key is released so the retry runs again. The store is a table of the lake's metadata
database, so every worker process (and every server on the same PostgreSQL) sees the same keys.

A key is bound to the request that first used it (principal, method, path): the same key on a
different request is refused (422) rather than answered with an unrelated response.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import column, delete, insert, select, table, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from wharf.server.rest.errors import RestError

_TABLE = table(
    "wharf_rest_idempotency", column("key"), column("fingerprint"), column("status"), column("body"), column("created_ms")
)
KEY_FORMAT = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
# How long a retry waits for the first request with its key to finish before it is told to retry later.
IN_PROGRESS_WAIT_S = 10.0


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes


class IdempotencyStore:
    """Keys and final responses in the ``wharf_rest_idempotency`` table."""

    def __init__(self, engine: Engine, lifetime_s: int, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.lifetime_ms = lifetime_s * 1000
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def begin(self, key: str, fingerprint: str) -> Stored | None:
        """Claim ``key`` for this request (returns None: run it), or return the stored final response."""
        if not KEY_FORMAT.match(key):
            raise RestError(400, "BadRequestException", f"Idempotency-Key {key[:40]!r} is not a UUID", hint="send a UUIDv7")
        now = self._now_ms()
        deadline = time.monotonic() + IN_PROGRESS_WAIT_S
        while True:
            try:
                with self.engine.begin() as conn:
                    # Keys past their lifetime (with a grace of one more lifetime) are forgotten.
                    conn.execute(delete(_TABLE).where(_TABLE.c.created_ms < now - 2 * self.lifetime_ms))
                    conn.execute(insert(_TABLE).values(key=key, fingerprint=fingerprint, status=None, body=None, created_ms=now))
                return None
            except IntegrityError:
                pass
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(_TABLE.c.fingerprint, _TABLE.c.status, _TABLE.c.body).where(_TABLE.c.key == key)
                ).first()
            if row is None:
                continue  # released (a 5xx) or expired between the insert and the read: claim it again
            if row[0] != fingerprint:
                raise RestError(
                    422,
                    "UnprocessableEntityException",
                    "This Idempotency-Key was already used for a different request",
                    hint="generate a new key for every logical operation",
                )
            if row[1] is not None:
                return Stored(int(row[1]), bytes(row[2] or b""))
            if time.monotonic() > deadline:
                raise RestError(
                    409,
                    "CommitFailedException",
                    "A request with this Idempotency-Key is still running",
                    hint="retry with the same key in a moment",
                )
            time.sleep(0.05)

    def finish(self, key: str, status: int, body: bytes) -> None:
        """Store the final response of the request that claimed ``key``."""
        with self.engine.begin() as conn:
            conn.execute(update(_TABLE).where(_TABLE.c.key == key).values(status=status, body=body))

    def release(self, key: str) -> None:
        """Forget ``key`` (the request ended in a 5xx, which is not final): a retry runs again."""
        with self.engine.begin() as conn:
            conn.execute(delete(_TABLE).where(_TABLE.c.key == key, _TABLE.c.status.is_(None)))
