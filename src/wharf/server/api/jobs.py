"""Asynchronous queries: a bounded pool runs them, their results are kept for a while, then expire.

A query belongs to the principal that submitted it; nobody else can see, read or cancel it (they
get 404, as for an id that never existed). Cancelling interrupts DuckDB (``connection.interrupt()``)
on the query's own lake handle, while it computes or while its rows are read. Finished queries
keep their rows (Arrow, in memory of this process) for ``query_result_ttl_s`` seconds and within
``query_results_max_bytes`` bytes all together (the oldest finished go first); after that their
id answers 410 Gone, saying why. Jobs live in one server process: with ``--workers N`` send the
follow-up requests to the process that answered the submit (a sticky load balancer), or use one
worker for the asynchronous API.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from wharf.errors import ResourceExhausted
from wharf.server.api import result_cache
from wharf.server.rest.errors import RestError, classify, error_body

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.principal import Principal
    from wharf.result import Result
    from wharf.server.api.result_cache import ResultCache
    from wharf.server.config import ServerConfig

log = logging.getLogger("wharf.server")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
_TOMBSTONES = 10_000  # expired ids remembered to answer 410 rather than 404
_MAX_FINISHED = 10_000  # finished jobs kept at most (failed ones hold no rows, so bytes alone would not bound them)


class Cancelled(Exception):
    """The query's owner cancelled it (raised inside the job)."""


@dataclass
class Job:
    """One asynchronous query and, once it succeeded, its rows."""

    id: str
    owner: Principal  # the submitting principal (compared whole)
    sql: str
    params: list[Any] | dict[str, Any] | None
    dialect: str | None
    lake: Lakehouse  # the job's own handle: interrupting it touches no other request
    status: str = QUEUED
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    error: dict[str, Any] | None = None
    table: pa.Table | None = None
    reads: tuple[Any, ...] = ()
    cache: str | None = None
    message: str | None = None
    snapshot_id: int | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: Result | None = None  # while its rows are read (interrupt reaches the stream's cursor)
    future: Future[None] | None = None

    @property
    def nbytes(self) -> int:
        """The bytes this job's rows hold in memory (their buffers, after ``result_cache.compact``)."""
        return result_cache.held_bytes(self.table) if self.table is not None else 0

    def describe(self) -> dict[str, Any]:
        """The status document ``GET /api/v1/queries/{id}`` answers."""
        ended = self.finished_at or time.time()
        return {
            "id": self.id,
            "status": self.status,
            "sql": self.sql,
            "submitted_at": _iso(self.submitted_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "queued_ms": round(((self.started_at or ended) - self.submitted_at) * 1000, 3),
            "elapsed_ms": round((ended - self.started_at) * 1000, 3) if self.started_at else None,
            "row_count": self.table.num_rows if self.table is not None else None,
            "bytes": self.nbytes if self.table is not None else None,
            "columns": _columns(self.table.schema) if self.table is not None else None,
            "snapshots_read": [{"table": r.table, "snapshot_id": r.snapshot_id, "ref": r.ref} for r in self.reads],
            "cache": self.cache,
            "message": self.message,
            "snapshot_id": self.snapshot_id,
            "error": self.error["error"] if self.error else None,
        }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    import datetime

    return datetime.datetime.fromtimestamp(moment, datetime.UTC).isoformat(timespec="milliseconds")


def _columns(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


class QueryManager:
    """The jobs of this server process and the pool that runs them."""

    def __init__(self, config: ServerConfig, cache: ResultCache) -> None:
        self.workers = config.query_workers
        self.queue_limit = config.query_queue_limit
        self.ttl_s = config.query_result_ttl_s
        self.max_bytes = config.query_results_max_bytes
        self.cache = cache
        self._pool = ThreadPoolExecutor(max_workers=config.query_workers, thread_name_prefix="wharf-query")
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # submission order
        self._expired: OrderedDict[str, tuple[Principal, str]] = OrderedDict()  # id -> (owner, why)
        self._lock = threading.Lock()

    # --- submitting and running ---------------------------------------------------------------

    def submit(self, lake: Lakehouse, sql: str, params: list[Any] | dict[str, Any] | None, dialect: str | None) -> Job:
        """Queue ``sql`` to run as ``lake``'s principal; 503 when the queue is full."""
        self.sweep()
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.status == QUEUED)
            if waiting >= self.queue_limit + self.workers:
                raise RestError(
                    503,
                    "ServiceUnavailableException",
                    f"{waiting} queries wait to run (the limit: {self.queue_limit} queued beyond {self.workers} running)",
                    hint="retry later, or raise query_queue_limit / query_workers in the server configuration",
                )
            job = Job(uuid.uuid4().hex, lake.principal, sql, params, dialect, lake)
            self._jobs[job.id] = job
        job.future = self._pool.submit(self._run, job)
        return job

    def _run(self, job: Job) -> None:
        try:
            if job.cancel_requested.is_set():
                raise Cancelled
            job.status, job.started_at = RUNNING, time.time()
            self._execute(job)
            job.status = SUCCEEDED
        except Cancelled:
            job.status = CANCELLED
        except Exception as exc:  # noqa: BLE001 - the job records the failure as the API's error body
            if job.cancel_requested.is_set() and isinstance(exc, ResourceExhausted):
                job.status = CANCELLED  # DuckDB's "Interrupted!": what cancelling does
            else:
                status, kind, message = classify(exc, not_found="NotFoundException")
                job.error = error_body(status, kind, message)
                job.status = FAILED
        finally:
            job.result = None
            job.finished_at = time.time()
            if job.status != SUCCEEDED:
                job.table = None
            job.done.set()
            self.sweep()

    def _execute(self, job: Job) -> None:
        answer = result_cache.lookup(self.cache, job.lake, job.sql, job.params, job.dialect)
        if answer.cached is not None:
            job.table, job.reads, job.cache = answer.cached.table, answer.cached.reads, "hit"
            self.cache.count("hit")
            return
        result = job.lake.sql(job.sql, job.params, dialect=job.dialect)
        job.result = result
        if job.cancel_requested.is_set():
            raise Cancelled
        # Each batch is copied out of DuckDB's memory as it arrives (result_cache.compact): a kept
        # DuckDB batch holds far more memory than its rows, which the byte bound would not see.
        chunks: list[pa.Table] = []
        size = 0
        for batch in result.iter_batches():
            if job.cancel_requested.is_set():
                raise Cancelled
            chunks.append(result_cache.compact(pa.Table.from_batches([batch], schema=result.schema)))
            size += result_cache.held_bytes(chunks[-1])
            if size > self.max_bytes:
                raise ResourceExhausted(
                    f"The query's result is larger than the {self.max_bytes} bytes this server keeps for asynchronous queries",
                    hint="aggregate or LIMIT the query, or raise query_results_max_bytes in the server configuration",
                )
        table = pa.concat_tables(chunks) if chunks else result.schema.empty_table()
        job.table, job.reads = table, result.reads
        job.message, job.snapshot_id = result.message, result.snapshot_id
        job.cache = result_cache.remember(
            self.cache, job.lake, job.sql, job.params, job.dialect, result, table, True, compacted=True
        )
        self.cache.count(job.cache)

    # --- finding, cancelling, expiring ------------------------------------------------------------

    def get(self, principal: Principal, query_id: str) -> Job:
        """The job ``query_id`` of ``principal``: 404 if it is not theirs (or never was), 410 once it expired."""
        self.sweep()
        with self._lock:
            job = self._jobs.get(query_id)
            expired = self._expired.get(query_id)
        if job is not None and job.owner == principal:
            return job
        if expired is not None and expired[0] == principal:
            raise RestError(410, "GoneException", f"Query {query_id} {expired[1]}", hint="submit the query again")
        raise RestError(
            404, "NotFoundException", f"No query {query_id} (queries are visible only to the principal that submitted them)"
        )

    def cancel(self, principal: Principal, query_id: str, wait_s: float = 10.0) -> Job:
        """Cancel a queued or running job (interrupting DuckDB); a finished job is left as it is."""
        job = self.get(principal, query_id)
        if job.status in FINISHED:
            return job
        job.cancel_requested.set()
        if job.future is not None and job.future.cancel():  # still queued: it never starts
            job.status, job.finished_at = CANCELLED, time.time()
            job.done.set()
            return job
        # DuckDB ignores an interrupt that arrives before its query starts: repeat it until the job ends.
        deadline = time.monotonic() + wait_s
        while not job.done.is_set() and time.monotonic() < deadline:
            job.lake.interrupt()
            result = job.result
            if result is not None:
                result.interrupt()
            job.done.wait(0.05)
        return job

    def list(self, principal: Principal) -> list[Job]:
        self.sweep()
        with self._lock:
            return [j for j in self._jobs.values() if j.owner == principal]

    def sweep(self) -> None:
        """Expire finished jobs older than the time-to-live, then the oldest beyond the byte bound."""
        now = time.time()
        with self._lock:
            finished = [j for j in self._jobs.values() if j.status in FINISHED and j.finished_at is not None]
            for job in finished:
                if now - job.finished_at >= self.ttl_s:  # type: ignore[operator]  # finished jobs have finished_at
                    self._expire(job, f"expired: results are kept for {self.ttl_s} s after the query finishes")
            remaining = sorted((j for j in finished if j.id in self._jobs), key=lambda j: j.finished_at or 0)
            total = sum(j.nbytes for j in remaining)
            count = len(remaining)
            for job in remaining:
                if total <= self.max_bytes and count <= _MAX_FINISHED:
                    break
                total -= job.nbytes
                count -= 1
                self._expire(job, f"was evicted: finished results are kept within {self.max_bytes} bytes, oldest out first")

    def _expire(self, job: Job, why: str) -> None:
        self._jobs.pop(job.id, None)
        self._expired[job.id] = (job.owner, why)
        while len(self._expired) > _TOMBSTONES:
            self._expired.popitem(last=False)

    def shutdown(self) -> None:
        """Cancel what is queued, interrupt what runs, and stop the pool (server shutdown)."""
        with self._lock:
            running = [j for j in self._jobs.values() if j.status not in FINISHED]
        for job in running:
            job.cancel_requested.set()
            if job.future is not None:
                job.future.cancel()
            job.lake.interrupt()
            if job.result is not None:
                job.result.interrupt()
        self._pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["CANCELLED", "FAILED", "QUEUED", "RUNNING", "SUCCEEDED", "Job", "QueryManager"]
