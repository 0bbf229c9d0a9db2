"""Commit locks: writers of one table take turns for the short commit step instead of colliding.

Iceberg commits are optimistic: a writer builds its snapshot on the head it saw and
compare-and-swaps; when another writer got there first, it rebuilds and tries again. With many
writers on one table most attempts lose, each loss costs a metadata read and a new manifest list,
and the waiting grows. Wharf's own writers therefore take a per-table lock around "look at the
head, build the snapshot, swap" — everything before it (computing rows, writing Parquet) still
runs in parallel — so each commit lands at its first or second attempt. Clients that do not take
the lock (PyIceberg, REST) remain correct through the compare-and-swap.

Two implementations, one per kind of metadata database:

- ``CommitLocks``: an advisory file lock in a local directory (the lake directory, or the folder of
  the SQLite file), shared by every process and thread on the machine;
- ``AdvisoryCommitLocks``: a PostgreSQL transaction-level advisory lock, shared by every process on
  every machine that uses the database, and released by the server if the holder dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine


class TableLocks(Protocol):
    """Per-table commit locks."""

    def hold(self, identifier: tuple[str, ...]) -> AbstractContextManager[None]: ...


def lock_name(identifier: tuple[str, ...]) -> bytes:
    """A stable digest of a table identifier (names may hold characters a file name cannot)."""
    return hashlib.sha256("\x00".join(identifier).encode()).digest()


class CommitLocks:
    """One lock file per table under ``<lake>/.locks/``."""

    def __init__(self, root: Path) -> None:
        self.directory = root / ".locks"

    @contextmanager
    def hold(self, identifier: tuple[str, ...]) -> Iterator[None]:
        """Hold the commit lock of ``identifier`` for the duration of the block."""
        name = lock_name(identifier).hex()[:32]
        self.directory.mkdir(exist_ok=True)
        fd = os.open(self.directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


class AdvisoryCommitLocks:
    """One PostgreSQL advisory lock per table, keyed by a 64-bit digest of its identifier.

    The lock is transaction-scoped on a connection of its own: it is released when the block
    ends (the transaction is rolled back; it changed nothing) or when the connection dies.
    """

    # Distinguishes Wharf's commit locks from other advisory locks in the same database (the
    # migrations' lock uses a single 64-bit key, which cannot collide with this two-key space).
    NAMESPACE = 0x57_48_52_46  # "WHRF"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def hold(self, identifier: tuple[str, ...]) -> Iterator[None]:
        """Hold the commit lock of ``identifier`` for the duration of the block."""
        key = int.from_bytes(lock_name(identifier)[:4], "big", signed=True)
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:ns, :key)"), {"ns": self.NAMESPACE, "key": key})
            try:
                yield
            finally:
                conn.rollback()  # ends the transaction: releases the lock
