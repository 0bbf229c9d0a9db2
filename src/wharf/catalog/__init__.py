"""The metadata store: the lake's Iceberg catalog (and its commit path) plus Wharf's own tables."""

from wharf.catalog.changes import TableChange
from wharf.catalog.lake_catalog import LakeCatalog
from wharf.catalog.store import DEFAULT_NAMESPACE, lake_owner, open_catalog

__all__ = ["DEFAULT_NAMESPACE", "LakeCatalog", "TableChange", "lake_owner", "open_catalog"]
