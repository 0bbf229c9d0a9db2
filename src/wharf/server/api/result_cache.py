"""The result cache: repeated dashboard queries answer from memory, and are never stale.

An entry's key is

- the statement, normalized (the parser's tree written back as SQL: whitespace, case of
  keywords and a trailing ``;`` do not matter), its parameters and dialect;
- the snapshot id of every table it reads (and the version of every view it expands), taken
  from its compiled form in the statement cache (``Lakehouse.compiled_reads``): a commit to one
  of those tables changes the snapshot id, so the old entry can no longer be reached — it ages
  out of the LRU; nothing is ever served from a snapshot that is no longer current;
- the caller's identity (the whole ``Principal``: two principals never share an entry);
- ``policy_version``: the ``cache_version`` of every registered policy (governance).

Checking the key costs a lookup in the parse and statement caches (no compilation). A query the
statement cache does not keep (metadata tables, ``TIMESTAMP AS OF now() - …``), a query calling a
volatile function (``random()``, ``now()``), a write, or a policy with no ``cache_version``
bypasses the cache.

The cache is bounded by the bytes its entries really hold, least recently used first out. An
entry's rows are copied into Arrow's own memory first (``compact``): the batches DuckDB hands
over keep DuckDB's whole result buffers alive — about 100 KB for a five-row answer whose Arrow
``nbytes`` is 90 — and a slice (a row limit) keeps its whole batch. Counted by ``nbytes``, a
cache of 128 MiB of small ad-hoc answers could have pinned a hundred gigabytes; the server's
memory grew by ~1 MiB/s under the server benchmark's load and never levelled off. Each entry is
counted as its buffers plus ``ENTRY_OVERHEAD_BYTES`` for its key and Python objects.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import pyarrow as pa

from wharf.sql import parse

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.result import Result
    from wharf.statement import TableRead

CacheOutcome = Literal["hit", "miss", "bypass"]
CACHE_HEADER = "X-Wharf-Cache"
# What an entry costs besides its Arrow buffers: its key (statement text, principal, snapshots
# read), the entry, pyarrow's table/array/schema objects and the pool's 64-byte rounding of
# each buffer. Measured at ~2.8 KB (RSS over 20,000 entries of small ad-hoc answers), rounded up.
ENTRY_OVERHEAD_BYTES = 4096


def compact(table: pa.Table) -> pa.Table:
    """A copy of ``table``'s rows in Arrow's own memory, sized to them (see the module's docstring).

    Concatenating with an empty table makes ``combine_chunks`` copy every column, even a single chunk.
    """
    return pa.concat_tables([table, table.schema.empty_table()]).combine_chunks()


def held_bytes(table: pa.Table) -> int:
    """The bytes of the buffers ``table`` references (whole buffers: a slice counts all it keeps alive)."""
    return int(table.get_total_buffer_size())


@dataclass(frozen=True)
class CachedResult:
    """Rows of one query as of the snapshots in its key; ``complete`` is False when a row limit cut them."""

    table: pa.Table
    complete: bool
    reads: tuple[TableRead, ...]
    stored_at: float

    @property
    def nbytes(self) -> int:
        """What this entry holds in memory: its buffers and a fixed overhead (``ENTRY_OVERHEAD_BYTES``)."""
        return held_bytes(self.table) + ENTRY_OVERHEAD_BYTES

    def rows(self, max_rows: int | None) -> tuple[pa.Table, bool] | None:
        """Up to ``max_rows`` rows and whether more exist, or None when this entry holds too few to say."""
        if max_rows is None:
            return (self.table, False) if self.complete else None
        if max_rows > self.table.num_rows and not self.complete:
            return None
        truncated = self.table.num_rows > max_rows or (max_rows == self.table.num_rows and not self.complete)
        return self.table.slice(0, max_rows), truncated


class ResultCache:
    """A least-recently-used map of result-cache keys to Arrow tables, bounded by their total bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, CachedResult] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def bytes(self) -> int:
        """The Arrow bytes the cache holds now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> CachedResult | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def count(self, outcome: CacheOutcome) -> None:
        with self._lock:
            if outcome == "hit":
                self.hits += 1
            elif outcome == "miss":
                self.misses += 1

    def put(self, key: Hashable, entry: CachedResult) -> bool:
        """Keep ``entry`` (evicting the least recently used ones); False when it alone is over the bound.

        An entry never replaces one holding more rows of the same key (a longer row limit's).
        """
        size = entry.nbytes
        if not self.enabled or size > self.max_bytes:
            return False
        with self._lock:
            old = self._entries.get(key)
            if old is not None:
                if old.complete or old.table.num_rows >= entry.table.num_rows and not entry.complete:
                    self._entries.move_to_end(key)
                    return True
                self._bytes -= old.nbytes
            self._entries[key] = entry
            self._entries.move_to_end(key)
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
                self.evictions += 1
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": len(self._entries),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
            }


def policy_version(lake: Lakehouse) -> tuple[Hashable, ...] | None:
    """The policy part of a result-cache key for requests on ``lake`` (a handle of one principal).

    Governance plugs in here: every registered policy declares a ``cache_version`` that changes
    whenever its decisions may change (a grant, a new row filter). A policy that declares none
    makes every result uncacheable (None), since nothing would say when its cached rows are wrong.
    """
    versions: list[Hashable] = []
    for policy in lake.policies:
        version = getattr(policy, "cache_version", None)
        if version is None:
            return None
        versions.append((type(policy).__qualname__, id(policy), version))
    return tuple(versions)


def identity(lake: Lakehouse) -> Hashable:
    """Who the entry belongs to: the whole principal (name, kind, groups, owner flag)."""
    return lake.principal


@functools.lru_cache(maxsize=2048)
def normalize(text: str, dialect: str) -> str | None:
    """The statement as sqlglot writes its tree back (one statement only; None otherwise)."""
    try:
        statements = parse(text, dialect, copy=False)
    except Exception:  # noqa: BLE001 - not cacheable; running it reports the error
        return None
    if len(statements) != 1:
        return None
    node = statements[0].node
    return str(node.sql(dialect="duckdb")) if hasattr(node, "sql") else None


def _params_key(params: list[Any] | dict[str, Any] | None) -> str:
    # JSON keeps 1, 1.0, "1" and true apart; other values by their repr (type included).
    return json.dumps(params, sort_keys=True, default=lambda v: f"{type(v).__qualname__}:{v!r}")


class ResultKey(NamedTuple):
    """What a cached result is a function of (see the module's docstring)."""

    statement: str
    params: str
    dialect: str
    tables: tuple[tuple[str, int | None, str | None], ...]
    views: tuple[tuple[str, str, Any], ...]
    identity: Hashable
    policy_version: tuple[Hashable, ...]


def cache_key(lake: Lakehouse, text: str, params: list[Any] | dict[str, Any] | None, dialect: str | None) -> ResultKey | None:
    """The result-cache key of ``text`` run on ``lake`` now, or None when its result must not be cached."""
    dialect = dialect or lake.settings.dialect
    reads = lake.compiled_reads(text, params, dialect=dialect)
    if reads is None:
        return None
    version = policy_version(lake)
    if version is None:
        return None
    normalized = normalize(text, dialect)
    if normalized is None:
        return None
    return ResultKey(normalized, _params_key(params), dialect, reads.tables, reads.views, identity(lake), version)


def _read_set(reads: tuple[TableRead, ...]) -> set[tuple[str, int | None, str | None]]:
    return {(r.table, r.snapshot_id, r.ref) for r in reads}


@dataclass
class Answer:
    """What ``answer`` gives: rows (or the streaming ``Result`` of an uncached statement) and the cache outcome."""

    outcome: CacheOutcome
    cached: CachedResult | None = None
    result: Result | None = None
    key: ResultKey | None = None


def lookup(
    cache: ResultCache, lake: Lakehouse, text: str, params: list[Any] | dict[str, Any] | None, dialect: str | None
) -> Answer:
    """A hit (``cached`` set) or the key to store under after running (``outcome`` miss / bypass)."""
    if not cache.enabled:
        return Answer("bypass")
    key = cache_key(lake, text, params, dialect)
    if key is None:
        return Answer("bypass")
    found = cache.get(key)
    return Answer("hit", cached=found, key=key) if found is not None else Answer("miss", key=key)


def remember(
    cache: ResultCache,
    lake: Lakehouse,
    text: str,
    params: list[Any] | dict[str, Any] | None,
    dialect: str | None,
    result: Result,
    table: pa.Table,
    complete: bool,
    *,
    compacted: bool = False,
) -> CacheOutcome:
    """Store the rows ``result`` gave under the key the query has *now*, if it read exactly those snapshots.

    The key is taken after the run (the run compiled the statement, so this is a cache lookup):
    when a commit landed between the run and now the snapshots differ, and nothing is stored —
    rows are stored only under the snapshots they were read from. ``table`` is copied out of
    DuckDB's memory (``compact``) unless ``compacted`` says the caller did that already.
    """
    if not cache.enabled:
        return "bypass"
    key = cache_key(lake, text, params, dialect)
    if key is None:
        return "bypass"
    if _read_set(result.reads) != set(key.tables):
        return "miss"
    cache.put(key, CachedResult(table if compacted else compact(table), complete, result.reads, time.time()))
    return "miss"


__all__ = [
    "CACHE_HEADER",
    "Answer",
    "CacheOutcome",
    "CachedResult",
    "ResultCache",
    "ResultKey",
    "cache_key",
    "compact",
    "held_bytes",
    "identity",
    "lookup",
    "normalize",
    "policy_version",
    "remember",
]
