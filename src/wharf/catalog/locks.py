"""Commit locks: writers of one table take turns for the short commit step instead of colliding.

Iceberg commits are optimistic: a writer builds its snapshot on the head it saw and
compare-and-swaps; when another writer got there first, it rebuilds and tries again. With many
writers on one table most attempts lose, each loss costs a metadata read and a new manifest list,
and the waiting grows. Wharf's own writers therefore take a per-table lock around "look at the
head, build the snapshot, swap" — everything before it (computing rows, writing Parquet) still
runs in parallel — so each commit lands at its first or second attempt. The lock is an advisory
file lock in the lake directory, shared by every process and thread on the machine; clients that
do not take it (PyIceberg, REST) remain correct through the compare-and-swap.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class CommitLocks:
    """One lock file per table under ``<lake>/.locks/``."""

    def __init__(self, root: Path) -> None:
        self.directory = root / ".locks"

    @contextmanager
    def hold(self, identifier: tuple[str, ...]) -> Iterator[None]:
        """Hold the commit lock of ``identifier`` for the duration of the block."""
        # Hashed: table names may hold characters a file name cannot.
        name = hashlib.sha256("\x00".join(identifier).encode()).hexdigest()[:32]
        self.directory.mkdir(exist_ok=True)
        fd = os.open(self.directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock
