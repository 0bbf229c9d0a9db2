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
files. Local directories and object-storage prefixes (``s3://``) are listed alike (``wharf.storage``).
"""

from __future__ import annotations

import os
import posixpath
from urllib.parse import urlparse

from pyiceberg.table import Table

from wharf.errors import InvalidArgument
from wharf.storage import is_object_store, list_files, remove_file
from wharf.tables.commit import private
from wharf.tables.expire import require_gc
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
    return {_comparable(p) for p in paths}


def _comparable(location: str) -> str:
    """One spelling per file: a normalised local path, or the object-store URI (``s3a://`` as ``s3://``)."""
    if is_object_store(location):
        parsed = urlparse(location)
        return f"s3://{parsed.netloc}{posixpath.normpath(parsed.path or '/')}"
    return os.path.normpath(local_path(location))


def _inside(location: str, root: str) -> bool:
    return location == root or location.startswith(root.rstrip("/") + "/")


def orphan_files(table: Table, *, older_than_ms: int, location: str | None = None) -> list[str]:
    """Files under ``location`` (default: the table's location) that the table does not reference
    and that were last modified before ``older_than_ms``; sorted.

    The listing comes first and the table's metadata is re-read after it, so a commit that lands
    meanwhile protects its files; files of commits still in flight are protected by their age.
    """
    root = _comparable(location or table.location())
    table_root = _comparable(table.location())
    if not _inside(root, table_root):
        raise InvalidArgument(
            f"Location {root} is not inside the table's location {table_root}",
            hint="remove_orphan_files only looks below the table's own location",
        )
    candidates = [_comparable(f.uri) for f in list_files(table.io, location or table.location()) if f.modified_ms < older_than_ms]
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
            remove_file(table.io, path)
    return orphans
