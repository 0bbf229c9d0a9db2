"""The statement being run: its id, text and principal, and what it read and wrote.

``running(statement)`` makes a ``Statement`` current for the code below it (a context variable,
so each thread and each asyncio task has its own). The commit path reads it to stamp snapshot
summaries and to tell gates who commits; the reference pipeline records every table read into
it; the statement event is built from it when the statement ends. Code that runs outside any
statement (a PyIceberg client committing through Wharf's catalog) sees ``current() is None``.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from wharf.principal import Principal

_ID_LOCK = threading.Lock()
_last_id: tuple[int, int] = (0, 0)


def new_statement_id() -> str:
    """A unique id that sorts by start time: milliseconds since the epoch, a per-process sequence
    within the millisecond, 48 random bits (like UUIDv7), as ``mmmmmmmmmmmm-ssss-rrrrrrrrrrrr``."""
    global _last_id
    now = int(time.time() * 1000)
    with _ID_LOCK:
        last_ms, seq = _last_id
        now = max(now, last_ms)  # never go back in time within a process
        seq = seq + 1 if now == last_ms else 0
        _last_id = (now, seq)
    return f"{now:012x}-{seq:04x}-{os.urandom(6).hex()}"


@dataclass(frozen=True)
class TableRead:
    """One table read by a statement: at which snapshot (None: empty), through which ref, which columns.

    ``columns`` is None when every column may be read (``SELECT *``, or the query could not be
    analysed); otherwise the names of the columns the statement uses. ``files`` is the number of
    data files the scan plan reads (after partition and statistics pruning), None when no data
    was planned (a metadata table). ``policies`` names the row filter and masks applied to the
    read for the statement's principal (``row filter us_only``, ``mask email: mask_email``).
    """

    table: str
    snapshot_id: int | None
    ref: str | None = None
    columns: tuple[str, ...] | None = None
    files: int | None = None
    policies: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableWrite:
    """One change a statement committed to a table (a snapshot, a ref move, a schema change…)."""

    table: str
    kind: str  # create | update | drop | rename | register
    snapshot_id: int | None = None
    branch: str | None = None
    operation: str | None = None


@dataclass
class Statement:
    """One statement as it runs. Mutable only through ``record_read`` / ``record_write``."""

    text: str
    principal: Principal
    kind: str = "statement"
    id: str = field(default_factory=new_statement_id)
    started: float = field(default_factory=time.perf_counter)
    reads: list[TableRead] = field(default_factory=list)
    writes: list[TableWrite] = field(default_factory=list)
    retries: int = 0  # commit attempts repeated after a concurrent commit
    # Extra snapshot-summary properties for the snapshots this statement's DML commits (what a
    # procedure records about its progress, e.g. the source snapshot an SCD2 refresh processed).
    summary: dict[str, str] = field(default_factory=dict)
    # The snapshots this statement commits reference files a client wrote (a REST commit), not
    # Wharf: the commit path checks that each lies inside the lake, as for an external client.
    client_files: bool = False

    def record_read(self, read: TableRead) -> None:
        """Remember a table read (merging the columns of repeated reads of one snapshot)."""
        for i, known in enumerate(self.reads):
            if (known.table, known.snapshot_id, known.ref) == (read.table, read.snapshot_id, read.ref):
                if known.columns is None or read.columns is None:
                    merged = None
                else:
                    merged = tuple(dict.fromkeys(known.columns + read.columns))
                files = None if known.files is None and read.files is None else (known.files or 0) + (read.files or 0)
                policies = tuple(dict.fromkeys(known.policies + read.policies))
                self.reads[i] = TableRead(known.table, known.snapshot_id, known.ref, merged, files, policies)
                return
        self.reads.append(read)

    def record_write(self, write: TableWrite) -> None:
        self.writes.append(write)

    def inputs_property(self) -> str:
        """The tables read, as ``db.t@snapshot`` items (a snapshot-summary property value)."""
        return ",".join(f"{r.table}@{r.snapshot_id if r.snapshot_id is not None else 'empty'}" for r in self.reads)


_CURRENT: contextvars.ContextVar[Statement | None] = contextvars.ContextVar("wharf_statement", default=None)


def current() -> Statement | None:
    """The statement running in this thread / task, if any."""
    return _CURRENT.get()


@contextmanager
def running(statement: Statement) -> Iterator[Statement]:
    """Make ``statement`` current for the duration of the block."""
    token = _CURRENT.set(statement)
    try:
        yield statement
    finally:
        _CURRENT.reset(token)
