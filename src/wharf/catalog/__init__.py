"""The metadata store: Iceberg SQL catalog plus Wharf's own tables, in one database."""

from wharf.catalog.store import DEFAULT_NAMESPACE, open_catalog

__all__ = ["DEFAULT_NAMESPACE", "open_catalog"]
