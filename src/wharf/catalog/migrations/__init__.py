"""Wharf's own metadata tables (beside the Iceberg catalog's), versioned with Alembic.

Revisions live in ``versions/``, one file per change, applied in order by ``upgrade`` every
time a lake is opened. Write a new revision for every schema change and never edit one that
has shipped. Revisions run with ``render_as_batch`` so ``ALTER`` works on SQLite (which
rewrites the table) as on PostgreSQL.

Several processes may open a new lake at once: ``upgrade`` takes the database's write lock
first (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL transaction-level advisory lock), so exactly one
applies each revision and the others find it applied.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).parent
# Any 64-bit number, the same in every process: the advisory-lock key of Wharf's migrations.
_PG_LOCK_KEY = 0x57_68_61_72_66_4D_69_67


def config(connection: Connection | None = None) -> Config:
    """The Alembic configuration of Wharf's migrations (no ini file: everything is here)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None, "Wharf ships at least one migration"
    return revision


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for a database Alembic never touched)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the metadata tables to the newest revision; safe when several processes open the lake at once."""
    if current_revision(engine) == head():
        return head()
    # Migrations manage their own transaction: a separate engine whose driver never opens
    # one implicitly, so the lock and every revision share one explicit transaction.
    locking = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    try:
        with locking.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA busy_timeout = 60000")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            try:
                command.upgrade(config(conn), "head")
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    finally:
        locking.dispose()
    return head()
