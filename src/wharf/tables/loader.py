"""Load Iceberg tables from the catalog, reusing a loaded table while its metadata is unchanged."""

from __future__ import annotations

import threading

from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from wharf.catalog.lake_catalog import LakeCatalog
from wharf.errors import NotFound


def split_name(name: str | tuple[str, ...], default_namespace: str = "default") -> tuple[str, str]:
    """``'db.t'`` → ``('db', 't')``; ``'t'`` → ``('default', 't')``."""
    parts = tuple(name) if isinstance(name, tuple) else tuple(p.strip('"`') for p in name.split("."))
    if len(parts) == 1:
        return default_namespace, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise NotFound(f"Table name '{'.'.join(parts)}' must be 'namespace.table' or 'table'")


class TableLoader:
    """Caches ``Table`` objects by metadata location: one small catalog query per lookup."""

    def __init__(self, catalog: LakeCatalog) -> None:
        self.catalog = catalog
        self._cache: dict[tuple[str, str], Table] = {}
        self._lock = threading.Lock()

    def metadata_location(self, namespace: str, name: str) -> str | None:
        """The current metadata file of ``namespace.name``, or None if the table does not exist."""
        # Plain text SQL on a pooled connection: this runs for every table reference of every
        # statement, and the ORM's statement building cost more than the query itself.
        return self.catalog.metadata_location((namespace, name))

    def find(self, namespace: str, name: str) -> Table | None:
        """The current version of the table, or None if it does not exist (one catalog query)."""
        location = self.metadata_location(namespace, name)
        return None if location is None else self._at(namespace, name, location)

    def exists(self, namespace: str, name: str) -> bool:
        return self.metadata_location(namespace, name) is not None

    def load(self, namespace: str, name: str) -> Table:
        """Return the current version of the table; ``NotFound`` if it does not exist."""
        location = self.metadata_location(namespace, name)
        if location is None:
            raise NotFound(
                f"Table {namespace}.{name} does not exist",
                hint=f"see SHOW TABLES IN {namespace}; create it with CREATE TABLE {namespace}.{name} (...)",
            )
        return self._at(namespace, name, location)

    def _at(self, namespace: str, name: str, location: str) -> Table:
        key = (namespace, name)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached.metadata_location == location:
                return cached
        try:
            table = self.catalog.load_table((namespace, name))
        except NoSuchTableError as exc:
            raise NotFound(f"Table {namespace}.{name} does not exist") from exc
        with self._lock:
            self._cache[key] = table
        return table

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._cache.pop((namespace, name), None)
