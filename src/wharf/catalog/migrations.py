"""Versioned migrations for Wharf's own metadata tables (beside the Iceberg catalog tables).

Each migration is a function of a SQLAlchemy connection, applied once, in order, inside one
transaction together with its row in ``wharf_migrations``. Later issues append to ``MIGRATIONS``;
never edit a migration that has shipped — add a new one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

metadata = MetaData()

wharf_migrations = Table(
    "wharf_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at_ms", Integer, nullable=False),
)

wharf_lake = Table(
    "wharf_lake",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
)


def _m1_lake_info(conn: Connection) -> None:
    """Identify the lake: a stable id and the time it was created."""
    wharf_lake.create(conn, checkfirst=True)
    conn.execute(
        insert(wharf_lake),
        [
            {"key": "lake_id", "value": str(uuid.uuid4())},
            {"key": "created_at_ms", "value": str(int(time.time() * 1000))},
        ],
    )


Migration = tuple[int, str, Callable[[Connection], None]]

MIGRATIONS: tuple[Migration, ...] = ((1, "lake_info", _m1_lake_info),)


def current_version(engine: Engine) -> int:
    """Return the highest applied migration version (0 for a new lake)."""
    wharf_migrations.create(engine, checkfirst=True)
    with engine.connect() as conn:
        versions = [row[0] for row in conn.execute(select(wharf_migrations.c.version))]
    return max(versions, default=0)


def upgrade(engine: Engine) -> int:
    """Apply every pending migration; safe when several processes open the lake at once."""
    applied = current_version(engine)
    for version, name, apply in MIGRATIONS:
        if version <= applied:
            continue
        try:
            with engine.begin() as conn:
                # Insert the version row first: a second process racing on the same migration
                # fails on the primary key and rolls back instead of applying it twice.
                conn.execute(
                    insert(wharf_migrations),
                    {"version": version, "name": name, "applied_at_ms": int(time.time() * 1000)},
                )
                apply(conn)
        except IntegrityError:
            continue
    return current_version(engine)
