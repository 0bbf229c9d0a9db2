"""What a statement runs against: the lake's parts, the statement, its principal and session settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import duckdb

from wharf.principal import Principal
from wharf.statement import Statement

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.view import View

    from wharf.catalog import LakeCatalog
    from wharf.events import Events
    from wharf.lakehouse import Lakehouse
    from wharf.result import Result
    from wharf.sql.policy import Policy
    from wharf.tables.loader import TableLoader
    from wharf.tables.scan import ScanPlanner


# The names ``Table.append`` / ``overwrite`` / ``merge`` register their data under for one statement
# (``wharf.table``): the statement they build means that data, so these are not looked up in the catalog.
HANDLE_DATA_PREFIX = "__wharf_data_"


@dataclass(frozen=True)
class Session:
    """Settings of one lake handle (``SET wharf.*``): the branch to read and write, WAP staging, dialect.

    Immutable: ``SET`` replaces the handle's session, so a statement running in another thread
    keeps the settings it started with.
    """

    branch: str | None = None
    wap_id: str | None = None
    dialect: str = "duckdb"
    partition_overwrite_mode: str = "static"  # INSERT OVERWRITE: static (Spark's default) or dynamic

    def with_(self, **changes: Any) -> Session:
        return replace(self, **changes)


@dataclass
class Context:
    """Everything one statement needs; built by ``Lakehouse`` for each statement."""

    catalog: LakeCatalog
    loader: TableLoader
    planner: ScanPlanner
    con: duckdb.DuckDBPyConnection
    session: Session
    events: Events
    statement: Statement
    policies: tuple[Policy, ...] = ()
    # SET: replaces the session of the lake handle the statement runs on.
    set_session: Callable[[Session], None] = lambda session: None
    # Derives the statement's column lineage on demand (set by statements that produce columns).
    lineage: Callable[[], dict[str, tuple[str, ...]]] | None = None
    # What the statement returned (for its statement event).
    result: Result | None = None
    # DataFrames registered on ``con`` for this statement (``lake.register``), by name.
    registered: dict[str, Any] = field(default_factory=dict)
    # The dialect the statement was written in (views store their SQL in it).
    dialect: str = "duckdb"
    # The lake handle running the statement (features built on the Python API, e.g. data quality).
    lake: Lakehouse | None = None
    # Temporary views of the lake handle (session-scoped, never in the catalog), by (namespace, name) lower-cased.
    temp_views: dict[tuple[str, str], View] = field(default_factory=dict)
    # Tables (and views) looked up by this statement: a name used twice costs one catalog query.
    _tables: dict[tuple[str, str], Table | None] = field(default_factory=dict)
    _views: dict[tuple[str, str], View | None] = field(default_factory=dict)
    # The statement cache's view of resolution: False once something made this statement's
    # compiled form depend on more than the catalog lookups above (e.g. TIMESTAMP AS OF now()).
    cacheable: bool = True

    @property
    def principal(self) -> Principal:
        return self.statement.principal

    def _handle_data(self, name: str) -> bool:
        """Whether ``name`` is data a ``Table`` method registered for this statement (never a catalog object)."""
        return name.startswith(HANDLE_DATA_PREFIX) and name in self.registered

    def find_table(self, namespace: str, name: str) -> Table | None:
        """The table as of this statement's first lookup, or None if it does not exist."""
        if self._handle_data(name):
            return None  # Table.append's own frame: asking the catalog costs queries and could find a namesake
        key = (namespace, name)
        if key not in self._tables:
            self._tables[key] = self.loader.find(namespace, name)
        return self._tables[key]

    def find_view(self, namespace: str, name: str) -> View | None:
        """The view ``namespace.name`` as of this statement's first lookup (temporary views first), or None."""
        temporary = self.temp_views.get((namespace.lower(), name.lower()))
        if temporary is not None:
            return temporary
        if self._handle_data(name):
            return None
        key = (namespace, name)
        if key not in self._views:
            from pyiceberg.exceptions import NoSuchViewError

            try:
                self._views[key] = self.catalog.load_view(key)
            except NoSuchViewError:
                self._views[key] = None
        return self._views[key]

    def forget_table(self, namespace: str, name: str) -> None:
        """Drop a looked-up table after the statement itself changed it (the next lookup reloads it)."""
        self._tables.pop((namespace, name), None)
        self.loader.forget(namespace, name)

    def update_session(self, **changes: Any) -> Session:
        """Change the handle's session settings (``SET wharf.*``); returns the new settings."""
        self.session = self.session.with_(**changes)
        self.set_session(self.session)
        return self.session
