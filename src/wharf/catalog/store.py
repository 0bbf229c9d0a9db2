"""Open (and on first use create) a lake's metadata database: the Iceberg catalog plus Wharf's tables."""

from __future__ import annotations

from pathlib import Path

from pyiceberg.exceptions import NamespaceAlreadyExistsError
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from wharf.catalog.backends import redact
from wharf.catalog.lake_catalog import LakeCatalog
from wharf.errors import InvalidArgument

DEFAULT_NAMESPACE = "default"
OWNER_KEY = "owner"
WAREHOUSE_KEY = "warehouse"


def open_catalog(
    root: Path | str,
    *,
    user: str | None = None,
    metadata_url: str | None = None,
    storage: dict[str, str] | None = None,
) -> LakeCatalog:
    """Open the lake at ``root`` (a directory, or ``s3://bucket/prefix``), creating it on first use.

    ``metadata_url`` names the metadata database when it is not the directory's ``wharf.db``
    (``wharf.catalog.layout``); ``storage`` overrides S3 settings (``s3.endpoint`` …). Applies
    pending metadata migrations, records the lake's owner (``user``, the first one to open it) and
    makes sure the ``default`` namespace exists.
    """
    properties = {"lake": str(root), **(storage or {})}
    if metadata_url is not None:
        properties["metadata_url"] = metadata_url
    if user is not None:
        properties["wharf.user"] = user
    catalog = LakeCatalog(**properties)  # creates the directory and applies pending migrations
    layout = catalog.layout
    if layout is not None and layout.external_metadata:
        # A database outside the lake directory belongs to one warehouse: refuse to mix two.
        warehouse = claim(catalog.engine, WAREHOUSE_KEY, layout.warehouse)
        if warehouse != layout.warehouse:
            catalog.engine.dispose()
            raise InvalidArgument(
                f"The metadata database {redact(layout.metadata_url)} belongs to the lake whose warehouse is "
                f"{warehouse}, not {layout.warehouse}",
                hint=f"open that lake (wharf.connect('{warehouse}', metadata_url=…)), or give this lake its own database",
            )
    claim_owner(catalog.engine, catalog.principal.name)
    try:
        catalog.create_namespace_if_not_exists(DEFAULT_NAMESPACE)
    except NamespaceAlreadyExistsError:  # lost a race with another process: fine
        pass
    return catalog


def claim_owner(engine: Engine, name: str) -> str:
    """Record ``name`` as the lake's owner unless it has one; returns the owner."""
    return claim(engine, OWNER_KEY, name)


def claim(engine: Engine, key: str, value: str) -> str:
    """Record ``key = value`` in ``wharf_lake`` unless the key has a value; returns the value it has."""
    from sqlalchemy import column, table

    lake = table("wharf_lake", column("key"), column("value"))
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sqlite_insert(lake).values(key=key, value=value).on_conflict_do_nothing())
        elif conn.dialect.name == "postgresql":
            conn.execute(postgresql_insert(lake).values(key=key, value=value).on_conflict_do_nothing())
        else:
            try:
                with conn.begin_nested():
                    conn.execute(lake.insert().values(key=key, value=value))
            except IntegrityError:
                pass
        found = conn.execute(select(lake.c.value).where(lake.c.key == key)).scalar_one()
    return str(found)


def lake_owner(engine: Engine) -> str | None:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT value FROM wharf_lake WHERE key = :k"), {"k": OWNER_KEY}).first()
    return str(row[0]) if row else None
