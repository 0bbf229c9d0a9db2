"""What a statement runs against: the lake's parts and the session's state."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
from pyiceberg.catalog.sql import SqlCatalog

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from wharf.events import Events
    from wharf.tables.loader import TableLoader
    from wharf.tables.scan import ScanPlanner


def default_user() -> str:
    return os.environ.get("WHARF_USER") or getpass.getuser()


@dataclass
class Session:
    """Per-user state: who runs statements, on which branch, in which dialect (``SET wharf.*``)."""

    user: str = field(default_factory=default_user)
    branch: str | None = None
    wap_id: str | None = None
    dialect: str = "duckdb"


@dataclass
class Context:
    """Everything one statement needs; built by ``Lakehouse.sql`` for each call."""

    catalog: SqlCatalog
    loader: TableLoader
    planner: ScanPlanner
    con: duckdb.DuckDBPyConnection
    session: Session
    events: Events
    statement: str = ""
    # Tables looked up by this statement: a table named twice costs one catalog query.
    _tables: dict[tuple[str, str], Table | None] = field(default_factory=dict)

    def find_table(self, namespace: str, name: str) -> Table | None:
        """The table as of this statement's first lookup, or None if it does not exist."""
        key = (namespace, name)
        if key not in self._tables:
            self._tables[key] = self.loader.find(namespace, name)
        return self._tables[key]
