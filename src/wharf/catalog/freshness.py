"""When may a cached catalog answer be reused? A token that changes whenever the catalog may have changed.

Several processes share a lake's ``wharf.db``: a table's metadata location read a moment ago may
have been moved by a commit from another process. Asking SQLite again costs a query per table per
statement (about 0.1 ms each, most of a short statement's budget). SQLite offers a cheaper
question: ``PRAGMA data_version`` on one connection changes whenever *any other* connection — in
this process (the pool that commits) or in another — commits a change to the database file. The
token is read on a dedicated connection that never writes, before the answer it guards is
fetched; an answer is reused only while the token is unchanged. Any write to the database
(commits, views, namespaces, Wharf's own tables) changes it, so invalidation is conservative: a
stale answer is never reused, an unchanged one occasionally fetched again.

For other databases (PostgreSQL behind the server) there is no such token: ``current`` returns
None and callers query every time.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
import weakref
from typing import Any


class ChangeToken:
    """``current()``: a value that differs from every earlier one once the catalog database changed (None: unknown)."""

    def __init__(self, engine: Any) -> None:
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        # Tokens of different catalogs are unrelated numbers: caches shared by several catalogs
        # (several lakes in one process) key their entries on this too.
        self.catalog_id = uuid.uuid4().hex
        url = engine.url
        database = url.database
        if engine.dialect.name == "sqlite" and database and database != ":memory:" and not url.query:
            self._con = sqlite3.connect(database, check_same_thread=False, isolation_level=None, timeout=60)
            weakref.finalize(self, self._con.close)

    def current(self) -> int | None:
        con = self._con
        if con is None:
            return None
        with self._lock:
            try:
                row = con.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                return None  # locked or gone: fall back to asking the catalog
        return int(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
