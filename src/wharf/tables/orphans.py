"""Orphan files: files under a table's location that no metadata of the table references.

A process killed while it wrote Parquet files, a commit refused after its files were written by
another engine, or an old client's leftovers leave files that no snapshot will ever read. They are
found by listing the table's location and subtracting everything the table's metadata can reach
(every metadata file in the log, every snapshot's manifest list, manifests, data and delete files,
statistics files). Only files older than a cut-off are removed, so files of a commit in flight are
never touched (Spark's ``remove_orphan_files`` keeps 3 days by default).
"""

from __future__ import annotations

import os
from pathlib import Path

from pyiceberg.table import Table

from wharf.errors import InvalidArgument
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


def orphan_files(table: Table, *, older_than_ms: int, location: str | None = None) -> list[str]:
    """Files under ``location`` (default: the table's location) that the table does not reference
    and that were last modified before ``older_than_ms``; sorted."""
    root = Path(local_path(location or table.location()))
    table_root = Path(local_path(table.location()))
    if not (root == table_root or table_root in root.parents):
        raise InvalidArgument(
            f"Location {root} is not inside the table's location {table_root}",
            hint="remove_orphan_files only looks below the table's own location",
        )
    if not root.exists():
        return []
    referenced = referenced_files(table)
    found = []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.normpath(os.path.join(directory, name))
            if path in referenced:
                continue
            try:
                modified_ms = os.stat(path).st_mtime * 1000
            except FileNotFoundError:
                continue  # removed meanwhile
            if modified_ms < older_than_ms:
                found.append(path)
    return sorted(found)


def remove_orphan_files(table: Table, *, older_than_ms: int, location: str | None = None, dry_run: bool = False) -> list[str]:
    """Delete the orphan files (unless ``dry_run``); returns them."""
    orphans = orphan_files(table, older_than_ms=older_than_ms, location=location)
    if not dry_run:
        for path in orphans:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
    return orphans
