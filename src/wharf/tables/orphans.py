"""Orphan files: files under a table's location that no metadata of the table references.

A process killed while it wrote Parquet files, a commit refused after its files were written by
another engine, or an old client's leftovers leave files that no snapshot will ever read. They are
found by listing the table's location and subtracting everything the table's metadata can reach
(every metadata file in the log, every snapshot's manifest list, manifests, data and delete files,
statistics files). Only files older than a cut-off are removed, so files of a commit in flight are
never touched (Spark's ``remove_orphan_files`` keeps 3 days by default): a commit may write its
files long before it lands, and nothing but their age tells them from garbage. The directory is
listed *before* the metadata is read, so a commit that lands during the listing is seen.

Like expiry, it refuses a table with ``gc.enabled=false``: such a table may read another table's
files. Only local (``file:``) table locations can be listed.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from pyiceberg.table import Table

from wharf.errors import InvalidArgument, UnsupportedStatement
from wharf.tables.commit import private
from wharf.tables.expire import require_gc
from wharf.tables.refs import table_label
from wharf.tables.scan import local_path

DEFAULT_RETENTION_MS = 3 * 24 * 3600 * 1000


def referenced_files(table: Table) -> set[str]:
    """Every file the table's metadata references, as local paths."""
    metadata = table.metadata
    io = table.io
    paths = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    seen_manifests: set[str] = set()
    for snapshot in metadata.snapshots:
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                paths.add(entry.data_file.file_path)
    paths |= seen_manifests
    paths |= {s.statistics_path for s in metadata.statistics}
    paths |= {s.statistics_path for s in metadata.partition_statistics}
    return {os.path.normpath(local_path(p)) for p in paths}


def _local_root(table: Table, location: str) -> Path:
    scheme = urlparse(location).scheme
    if scheme not in ("", "file"):
        raise UnsupportedStatement(
            f"Cannot list {location} for orphan files of {table_label(table)}: only local (file:) locations can be listed",
            hint="use the object store's own lifecycle rules, or Spark's remove_orphan_files through the REST catalog",
        )
    return Path(local_path(location))


def orphan_files(table: Table, *, older_than_ms: int, location: str | None = None) -> list[str]:
    """Files under ``location`` (default: the table's location) that the table does not reference
    and that were last modified before ``older_than_ms``; sorted.

    The listing comes first and the table's metadata is re-read after it, so a commit that lands
    meanwhile protects its files; files of commits still in flight are protected by their age.
    """
    root = _local_root(table, location or table.location())
    table_root = _local_root(table, table.location())
    if not (root == table_root or table_root in root.parents):
        raise InvalidArgument(
            f"Location {root} is not inside the table's location {table_root}",
            hint="remove_orphan_files only looks below the table's own location",
        )
    if not root.exists():
        return []
    candidates = []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.normpath(os.path.join(directory, name))
            try:
                modified_ms = os.stat(path).st_mtime * 1000
            except FileNotFoundError:
                continue  # removed meanwhile
            if modified_ms < older_than_ms:
                candidates.append(path)
    if not candidates:
        return []
    current = private(table)  # the loader's shared object never changes under readers
    current.refresh()
    referenced = referenced_files(current)
    return sorted(p for p in candidates if p not in referenced)


def remove_orphan_files(table: Table, *, older_than_ms: int, location: str | None = None, dry_run: bool = False) -> list[str]:
    """Delete the orphan files (unless ``dry_run``); returns them.

    Refuses (``ValidationError``) on a table with ``gc.enabled=false``, as Iceberg does.
    """
    require_gc(table, "remove orphan files")
    orphans = orphan_files(table, older_than_ms=older_than_ms, location=location)
    if not dry_run:
        for path in orphans:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
    return orphans
