"""Pre-cache: registered queries re-run right after each commit to a table they read.

A dashboard's queries are registered once (``POST /api/v1/precache`` or ``precache`` in the server
configuration, which run as the lake owner). The server subscribes to the lake's ``on_commit``
event; a commit to a table a registered query read schedules that query on a background thread
(the commit never waits for it), which runs it through the result cache, so the dashboard's next
request is a hit with the new rows. Refreshes of one query never pile up: a commit that arrives
while it is being refreshed makes it run once more afterwards.

Commits made through this server process (SQL, the Python API on the same lake object, REST
clients such as PyIceberg, Spark or DuckDB) are seen; commits from another process are not, and
their first request after such a commit is a miss (never stale).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from wharf.events import CommitEvent
from wharf.server.api import result_cache
from wharf.server.rest.errors import RestError, classify
from wharf.sql import parse

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.principal import Principal
    from wharf.server.api.result_cache import ResultCache

log = logging.getLogger("wharf.server")


@dataclass
class PrecachedQuery:
    """One registered query: whose it is, the tables it read last time, and how its refreshes went."""

    id: str
    sql: str
    owner: Principal
    tables: frozenset[str] = frozenset()
    refreshes: int = 0
    last_refreshed_at: float | None = None
    last_outcome: str | None = None  # hit | miss | bypass (bypass: the statement cannot be cached)
    last_error: str | None = None
    snapshots: tuple[tuple[str, int | None], ...] = ()
    rows: int | None = None
    _pending: bool = field(default=False, repr=False)
    _again: bool = field(default=False, repr=False)

    def describe(self) -> dict[str, Any]:
        import datetime

        refreshed = self.last_refreshed_at
        return {
            "id": self.id,
            "sql": self.sql,
            "owner": self.owner.name,
            "tables": sorted(self.tables),
            "refreshes": self.refreshes,
            "last_refreshed_at": (
                datetime.datetime.fromtimestamp(refreshed, datetime.UTC).isoformat(timespec="milliseconds") if refreshed else None
            ),
            "last_outcome": self.last_outcome,
            "last_error": self.last_error,
            "snapshots": [{"table": t, "snapshot_id": s} for t, s in self.snapshots],
            "row_count": self.rows,
            "refreshing": self._pending,
        }


class Precache:
    """The registered queries of this server process and the thread that refreshes them."""

    def __init__(self, lake: Lakehouse, cache: ResultCache) -> None:
        self.lake = lake
        self.cache = cache
        self._queries: dict[str, PrecachedQuery] = {}
        self._lock = threading.Lock()
        # One thread: refreshes queue behind each other instead of competing with requests for cores.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wharf-precache")
        self._unsubscribe = lake.events.subscribe("on_commit", self.on_commit)

    def register(self, principal: Principal, sql: str) -> PrecachedQuery:
        """Register ``sql`` for ``principal`` and warm it now (in the background)."""
        statements = parse(sql, self.lake.settings.dialect)  # a statement that does not parse: 400 saying where
        if len(statements) != 1 or not isinstance(statements[0].node, exp.Query):
            raise RestError(400, "BadRequestException", "A pre-cached query is one query (SELECT …)", hint="send one SELECT")
        with self._lock:
            for known in self._queries.values():
                if known.sql == sql and known.owner == principal:
                    return known
            query = PrecachedQuery(uuid.uuid4().hex, sql, principal)
            self._queries[query.id] = query
        self.schedule(query)
        return query

    def list(self, principal: Principal) -> list[PrecachedQuery]:
        """The queries ``principal`` registered (the lake owner sees every one)."""
        with self._lock:
            return [q for q in self._queries.values() if principal.is_owner or q.owner == principal]

    def get(self, principal: Principal, query_id: str) -> PrecachedQuery:
        with self._lock:
            query = self._queries.get(query_id)
        if query is None or not (principal.is_owner or query.owner == principal):
            raise RestError(404, "NotFoundException", f"No pre-cached query {query_id}")
        return query

    def delete(self, principal: Principal, query_id: str) -> None:
        query = self.get(principal, query_id)
        with self._lock:
            self._queries.pop(query.id, None)

    def on_commit(self, event: CommitEvent) -> None:
        """The ``on_commit`` subscriber: schedule every query that read ``event.table`` (never blocks)."""
        table = event.table.lower()
        with self._lock:
            # A query that never ran successfully has not said what it reads: try it again.
            affected = [q for q in self._queries.values() if table in q.tables or q.last_outcome is None]
        for query in affected:
            self.schedule(query)

    def schedule(self, query: PrecachedQuery) -> None:
        with self._lock:
            if query._pending:
                query._again = True  # a refresh is queued or running: run once more when it ends
                return
            query._pending = True
        try:
            self._pool.submit(self._refresh, query)
        except RuntimeError:  # the pool shut down (server stopping): nothing to warm any more
            query._pending = False

    def _refresh(self, query: PrecachedQuery) -> None:
        while True:
            with self._lock:
                query._again = False
            self._run(query)
            with self._lock:
                if not query._again or query.id not in self._queries:
                    query._pending = False
                    return

    def _run(self, query: PrecachedQuery) -> None:
        handle = self.lake.session(principal=query.owner)
        try:
            answer = result_cache.lookup(self.cache, handle, query.sql, None, None)
            if answer.cached is not None:
                outcome, reads, rows = "hit", answer.cached.reads, answer.cached.table.num_rows
            else:
                result = handle.sql(query.sql)
                table = pa.Table.from_batches(list(result.iter_batches()), schema=result.schema)
                outcome = result_cache.remember(self.cache, handle, query.sql, None, None, result, table, True)
                reads, rows = result.reads, table.num_rows
            query.tables = frozenset(r.table.lower() for r in reads)
            query.snapshots = tuple((r.table, r.snapshot_id) for r in reads)
            query.rows, query.last_outcome, query.last_error = rows, outcome, None
        except Exception as exc:  # noqa: BLE001 - recorded on the query; the next commit tries again
            query.last_error = classify(exc, not_found="NotFoundException")[2]
            log.warning("pre-cached query %s failed: %s", query.id, query.last_error)
        finally:
            query.refreshes += 1
            query.last_refreshed_at = time.time()

    def shutdown(self) -> None:
        self._unsubscribe()
        self._pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["Precache", "PrecachedQuery"]
