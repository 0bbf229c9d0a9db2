"""Open (and on first use create) a lake's metadata database: the Iceberg catalog plus Wharf's tables."""

from __future__ import annotations

from pathlib import Path

from pyiceberg.exceptions import NamespaceAlreadyExistsError
from sqlalchemy import select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from wharf.catalog.lake_catalog import LakeCatalog

DEFAULT_NAMESPACE = "default"
OWNER_KEY = "owner"


def open_catalog(root: Path, *, user: str | None = None) -> LakeCatalog:
    """Open the lake at ``root`` (creating ``wharf.db`` and ``warehouse/`` if missing).

    Applies pending metadata migrations, records the lake's owner (``user``, the first one to
    open it) and makes sure the ``default`` namespace exists.
    """
    properties = {"lake": str(root)}
    if user is not None:
        properties["wharf.user"] = user
    catalog = LakeCatalog(**properties)  # creates the directory and applies pending migrations
    claim_owner(catalog.engine, catalog.principal.name)
    try:
        catalog.create_namespace_if_not_exists(DEFAULT_NAMESPACE)
    except NamespaceAlreadyExistsError:  # lost a race with another process: fine
        pass
    return catalog


def claim_owner(engine: Engine, name: str) -> str:
    """Record ``name`` as the lake's owner unless it has one; returns the owner."""
    from sqlalchemy import column, table

    lake = table("wharf_lake", column("key"), column("value"))
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sqlite_insert(lake).values(key=OWNER_KEY, value=name).on_conflict_do_nothing())
        else:
            try:
                with conn.begin_nested():
                    conn.execute(lake.insert().values(key=OWNER_KEY, value=name))
            except IntegrityError:
                pass
        owner = conn.execute(select(lake.c.value).where(lake.c.key == OWNER_KEY)).scalar_one()
    return str(owner)


def lake_owner(engine: Engine) -> str | None:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT value FROM wharf_lake WHERE key = :k"), {"k": OWNER_KEY}).first()
    return str(row[0]) if row else None
