"""Rewriting a table's manifests: the same data files, listed in as few manifests as the target size allows.

Every append adds a manifest, so a table written in many small commits plans its scans over many
small manifests. ``rewrite_manifests`` (Iceberg's ``RewriteManifests``) lists the live data files
of the current snapshot again, grouped per partition spec and sorted by partition (so manifest
pruning works on ranges), in manifests of about ``commit.manifest.target-size-bytes`` (8 MB by
default), and commits them as one ``replace`` snapshot: no data file is added or removed, each
entry keeps its snapshot id and sequence numbers (delete files still apply exactly as before).
Delete manifests and manifests of other partition specs are kept as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import ManifestContent, ManifestEntry, ManifestFile
from pyiceberg.table import Table

from wharf import pyiceberg_compat as compat
from wharf.errors import ConflictError, NotFound
from wharf.tables.commit import commit_lock, private
from wharf.tables.refs import table_label

TARGET_SIZE_PROPERTY = "commit.manifest.target-size-bytes"
DEFAULT_TARGET_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class RewriteResult:
    rewritten_manifests: int
    added_manifests: int
    snapshot_id: int | None  # None: nothing to rewrite, nothing committed


def _partition_key(entry: ManifestEntry) -> tuple[tuple[int, object], ...]:
    record = entry.data_file.partition
    values = [record[i] for i in range(len(record))] if record is not None else []
    # NULL partitions sort first; values of one field share a type, so they compare.
    return tuple((0, "") if v is None else (1, v) for v in values)


def _rewritable(manifest: ManifestFile, spec_id: int) -> bool:
    return manifest.content == ManifestContent.DATA and manifest.partition_spec_id == spec_id


def _chunks(entries: Sequence[ManifestEntry], count: int) -> list[Sequence[ManifestEntry]]:
    size = math.ceil(len(entries) / count)
    return [entries[i : i + size] for i in range(0, len(entries), size)]


def _target_count(manifests: list[ManifestFile], live_entries: int, target_bytes: int) -> int:
    """How many manifests ``live_entries`` need at ``target_bytes`` each, from the bytes per entry of ``manifests``."""
    entries = sum((m.added_files_count or 0) + (m.existing_files_count or 0) + (m.deleted_files_count or 0) for m in manifests)
    per_entry = sum(m.manifest_length for m in manifests) / max(entries, 1)
    return max(1, math.ceil(live_entries * per_entry / max(target_bytes, 1)))


def rewrite_manifests(table: Table, spec_id: int | None = None) -> RewriteResult:
    """Rewrite the data manifests of main's current snapshot written for ``spec_id`` (default: the current spec).

    Returns how many manifests were replaced and written. Nothing is committed when there is no
    snapshot, or when the manifests are already as few as the target size allows.
    """
    label = table_label(table)
    specs = table.metadata.specs()
    chosen_spec = table.metadata.default_spec_id if spec_id is None else spec_id
    if chosen_spec not in specs:
        raise NotFound(
            f"Partition spec {chosen_spec} does not exist on table {label}",
            hint=f"spec ids: {', '.join(str(s) for s in sorted(specs))}",
        )
    target = int(table.metadata.properties.get(TARGET_SIZE_PROPERTY, DEFAULT_TARGET_SIZE))
    outcome: dict[str, int] = {}

    def plan(producer: compat.ReplaceManifests) -> tuple[list[ManifestFile], dict[str, str]]:
        parent = producer.parent
        manifests = parent.manifests(producer.io) if parent is not None else []
        chosen = [m for m in manifests if _rewritable(m, chosen_spec)]
        kept = [m for m in manifests if not _rewritable(m, chosen_spec)]
        live = [e for m in chosen for e in m.fetch_manifest_entry(producer.io, discard_deleted=True)]
        live.sort(key=_partition_key)
        written: list[ManifestFile] = []
        if live:
            spec = producer.metadata.specs()[chosen_spec]
            for chunk in _chunks(live, _target_count(chosen, len(live), target)):
                with producer.manifest_writer(spec) as writer:
                    for entry in chunk:
                        writer.existing(entry)
                written.append(writer.to_manifest_file())
        outcome.update(replaced=len(chosen), created=len(written))
        summary = {
            "manifests-created": str(len(written)),
            "manifests-kept": str(len(kept)),
            "manifests-replaced": str(len(chosen)),
            "entries-processed": str(len(live)),
        }
        return written + kept, summary

    with commit_lock(table):
        work = private(table)  # a copy: the loader's table is shared
        work.refresh()
        current = work.metadata.current_snapshot()
        if current is None:
            return RewriteResult(0, 0, None)
        io = work.io
        chosen_now = [m for m in current.manifests(io) if _rewritable(m, chosen_spec)]
        live_count = sum((m.added_files_count or 0) + (m.existing_files_count or 0) for m in chosen_now)
        if len(chosen_now) <= _target_count(chosen_now, live_count, target) and not any(
            m.deleted_files_count for m in chosen_now
        ):
            return RewriteResult(0, 0, None)  # already as compact as the target size allows
        tx = compat.MemoizedTransaction(work)
        producer = compat.ReplaceManifests(tx, io, plan)
        producer.commit()
        try:
            tx.commit_transaction()
        except CommitFailedException as exc:
            raise ConflictError(
                f"Concurrent change to {label} while rewriting its manifests: {exc}",
                table=label,
                hint="nothing was changed; run the procedure again",
            ) from exc
    return RewriteResult(outcome.get("replaced", 0), outcome.get("created", 0), producer.snapshot_id)
