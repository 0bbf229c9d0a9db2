"""Open (and on first use create) the metadata database and the Iceberg catalog of a lake."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError
from sqlalchemy import event
from sqlalchemy.engine import Engine

from wharf.catalog import migrations

DEFAULT_NAMESPACE = "default"
# Seconds a writer waits for SQLite's lock before failing; commits are short, so a generous
# timeout turns contention between processes into waiting rather than errors.
SQLITE_BUSY_TIMEOUT_S = 60
_ENGINE_PATCH_LOCK = threading.Lock()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()


class _WharfSqlCatalog(SqlCatalog):
    """PyIceberg's SQL catalog with SQLite tuned for several processes (WAL, busy timeout)."""

    def __init__(self, name: str, **properties: str) -> None:
        import sqlalchemy

        original = sqlalchemy.create_engine

        # SqlCatalog builds its engine in __init__ and immediately creates tables; the
        # connect hook must exist before that first connection, so wrap create_engine once.
        def create_engine(*args: Any, **kwargs: Any) -> Engine:
            engine = original(*args, **kwargs)
            if engine.dialect.name == "sqlite":
                _configure_sqlite(engine)
            return engine

        import pyiceberg.catalog.sql as sql_module

        # The swap is module-wide: serialise it so a catalog opened concurrently in another
        # thread cannot pick up (or restore) the wrong function.
        with _ENGINE_PATCH_LOCK:
            sql_module.create_engine = create_engine  # type: ignore[attr-defined]  # PyIceberg's own import of it
            try:
                super().__init__(name, **properties)
            finally:
                sql_module.create_engine = original  # type: ignore[attr-defined]  # PyIceberg's own import of it


def open_catalog(root: Path) -> SqlCatalog:
    """Open the lake at ``root`` (creating ``wharf.db`` and ``warehouse/`` if missing).

    Runs pending metadata migrations and makes sure the ``default`` namespace exists.
    """
    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / "warehouse"
    warehouse.mkdir(exist_ok=True)
    catalog = _WharfSqlCatalog(
        "wharf",
        uri=f"sqlite:///{root / 'wharf.db'}",
        warehouse=warehouse.resolve().as_uri(),
        schema_version="v1",
    )
    migrations.upgrade(catalog.engine)
    try:
        catalog.create_namespace_if_not_exists(DEFAULT_NAMESPACE)
    except NamespaceAlreadyExistsError:  # lost a race with another process: fine
        pass
    return catalog
