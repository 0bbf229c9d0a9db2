"""Snapshot expiry: forget the snapshots no ref retains, then delete the files only they could read.

Which snapshots expire follows Iceberg's ``RemoveSnapshots`` (Java): refs older than their
``RETAIN`` age (or the table's ``history.expire.max-ref-age-ms``) are dropped first, never main;
each remaining branch keeps its head, its newest ``min-snapshots-to-keep`` ancestors and the
ancestors younger than its max snapshot age; a tag keeps its snapshot; a snapshot no ref reaches
is kept while it is younger than the cut-off. The removal is one metadata commit through the lake
catalog, asserting every ref's head so that a ref moved meanwhile fails the commit instead of
being silently dropped with its snapshot.

Files are deleted only after that commit landed, and only files no retained snapshot can read:
manifest lists of expired snapshots that no retained snapshot shares; manifests of expired
snapshots that no retained snapshot lists; the data and delete files of those manifests (live or
deleted entries) minus every file live in a manifest of a retained snapshot; statistics files of
expired snapshots that no retained snapshot registers. "Retained" is read from the metadata the
commit produced, so snapshots that landed concurrently before it are protected too. A file whose
only remaining reference is a *deleted* entry of a retained manifest is garbage: no retained
snapshot reads it (Java's ``ReachableFileCleanup`` does the same).

A table with ``gc.enabled=false`` (a ``snapshot`` table reading another table's files) refuses
expiry altogether, as Iceberg does: its files may belong to someone else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import DataFileContent, ManifestFile
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Snapshot, ancestors_of
from pyiceberg.table.update import (
    AssertCurrentSchemaId,
    AssertDefaultSpecId,
    AssertRefSnapshotId,
    RemovePartitionSpecsUpdate,
    RemovePartitionStatisticsUpdate,
    RemoveSchemasUpdate,
    RemoveSnapshotRefUpdate,
    RemoveSnapshotsUpdate,
    TableRequirement,
    TableUpdate,
)
from pyiceberg.utils.properties import property_as_bool

from wharf import pyiceberg_compat as compat
from wharf.errors import ConflictError, InvalidArgument, StorageError, ValidationError
from wharf.tables.commit import commit_lock, private
from wharf.tables.refs import table_label
from wharf.tables.snapshots import snapshot as snapshot_by_id

log = logging.getLogger(__name__)

# Iceberg table properties that steer expiry (same names and defaults as Java).
GC_ENABLED_PROPERTY = "gc.enabled"
MAX_SNAPSHOT_AGE_PROPERTY = TableProperties.MAX_SNAPSHOT_AGE_MS
MIN_SNAPSHOTS_PROPERTY = TableProperties.MIN_SNAPSHOTS_TO_KEEP
MAX_REF_AGE_PROPERTY = "history.expire.max-ref-age-ms"
DEFAULT_MAX_SNAPSHOT_AGE_MS = TableProperties.MAX_SNAPSHOT_AGE_MS_DEFAULT
DEFAULT_MIN_SNAPSHOTS = TableProperties.MIN_SNAPSHOTS_TO_KEEP_DEFAULT

# Spark's output columns of expire_snapshots, in order.
COUNT_COLUMNS = (
    "deleted_data_files_count",
    "deleted_position_delete_files_count",
    "deleted_equality_delete_files_count",
    "deleted_manifest_files_count",
    "deleted_manifest_lists_count",
    "deleted_statistics_files_count",
)

_COUNT_OF_CONTENT = {
    DataFileContent.DATA: "deleted_data_files_count",
    DataFileContent.POSITION_DELETES: "deleted_position_delete_files_count",
    DataFileContent.EQUALITY_DELETES: "deleted_equality_delete_files_count",
}


def require_gc(table: Table, action: str) -> None:
    """Refuse ``action`` (which deletes files) on a table with ``gc.enabled=false``, as Iceberg does."""
    if not property_as_bool(table.properties, GC_ENABLED_PROPERTY, True):
        label = table_label(table)
        raise ValidationError(
            f"Cannot {action} of {label}: table property '{GC_ENABLED_PROPERTY}' is false "
            "(its files may belong to another table, so none may be deleted)",
            hint=f"if {label} owns all its files: ALTER TABLE {label} SET TBLPROPERTIES ('{GC_ENABLED_PROPERTY}' = 'true')",
        )


# --- choosing what expires ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryPlan:
    """What one expiry removes from the metadata."""

    refs: tuple[str, ...] = ()  # refs past their max age
    snapshot_ids: tuple[int, ...] = ()
    spec_ids: tuple[int, ...] = ()  # with clean_expired_metadata: specs no retained snapshot uses
    schema_ids: tuple[int, ...] = ()  # … and schemas

    def __bool__(self) -> bool:
        return bool(self.refs or self.snapshot_ids or self.spec_ids or self.schema_ids)


def _int_property(table: Table, name: str, default: int) -> int:
    value = table.properties.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(
            f"Table property '{name}' of {table_label(table)} must be a whole number, got {value!r}",
            hint=f"ALTER TABLE {table_label(table)} SET TBLPROPERTIES ('{name}' = '<number>')",
        ) from None


def plan_expiry(
    table: Table,
    *,
    older_than_ms: int | None = None,
    retain_last: int | None = None,
    snapshot_ids: list[int] | None = None,
    now_ms: int | None = None,
    clean_expired_metadata: bool = False,
) -> ExpiryPlan:
    """The refs and snapshots an expiry removes (see the module docstring for the rules).

    ``older_than_ms`` defaults to now minus ``history.expire.max-snapshot-age-ms`` (5 days),
    ``retain_last`` to ``history.expire.min-snapshots-to-keep`` (1); a branch's own
    ``WITH SNAPSHOT RETENTION`` settings override both. Explicit ``snapshot_ids`` are expired
    even when retention would keep them, but a ref's head never is; given alone, only they are.
    """
    label = table_label(table)
    meta = table.metadata
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    if retain_last is not None and retain_last < 1:
        raise InvalidArgument(f"retain_last must be at least 1, got {retain_last}")
    default_age = _int_property(table, MAX_SNAPSHOT_AGE_PROPERTY, DEFAULT_MAX_SNAPSHOT_AGE_MS)
    default_keep = _int_property(table, MIN_SNAPSHOTS_PROPERTY, DEFAULT_MIN_SNAPSHOTS)
    default_ref_age = _int_property(table, MAX_REF_AGE_PROPERTY, -1)
    only_ids = snapshot_ids is not None and older_than_ms is None and retain_last is None
    expire_before = older_than_ms if older_than_ms is not None else now - default_age
    keep_last = retain_last if retain_last is not None else default_keep

    def ref_expired(name: str) -> bool:
        ref = meta.refs[name]
        max_age = ref.max_ref_age_ms if ref.max_ref_age_ms is not None else default_ref_age
        head = meta.snapshot_by_id(ref.snapshot_id)
        return name != MAIN_BRANCH and max_age >= 0 and head is not None and now - head.timestamp_ms > max_age

    expired_refs = tuple(sorted(name for name in meta.refs if ref_expired(name)))
    refs = {n: r for n, r in meta.refs.items() if n not in expired_refs}
    heads = {r.snapshot_id for r in refs.values()}
    for sid in snapshot_ids or []:
        snapshot_by_id(table, sid)
        if sid in heads:
            holders = sorted(n for n, r in refs.items() if r.snapshot_id == sid)
            raise ValidationError(
                f"Cannot expire snapshot {sid} of {label}: it is the head of {', '.join(holders)}",
                hint="drop or move the branch/tag first",
            )
    retained = set(heads)
    referenced: set[int] = set()  # ancestors of any retained ref
    for ref in refs.values():
        keep = ref.min_snapshots_to_keep if ref.min_snapshots_to_keep is not None else keep_last
        before = now - ref.max_snapshot_age_ms if ref.max_snapshot_age_ms is not None else expire_before
        keeping = ref.snapshot_ref_type == SnapshotRefType.BRANCH  # a tag keeps its head only
        for i, ancestor in enumerate(ancestors_of(meta.snapshot_by_id(ref.snapshot_id), meta)):
            referenced.add(ancestor.snapshot_id)
            keeping = keeping and (i < keep or ancestor.timestamp_ms >= before)  # Java stops at the first it drops
            if keeping:
                retained.add(ancestor.snapshot_id)
    to_expire = set(snapshot_ids or [])
    if not only_ids:
        for s in meta.snapshots:
            if s.snapshot_id not in retained and (s.snapshot_id in referenced or s.timestamp_ms < expire_before):
                to_expire.add(s.snapshot_id)
    to_expire -= heads
    spec_ids: tuple[int, ...] = ()
    schema_ids: tuple[int, ...] = ()
    if clean_expired_metadata:
        kept_snapshots = [s for s in meta.snapshots if s.snapshot_id not in to_expire]
        used_specs = {meta.default_spec_id} | {m.partition_spec_id for s in kept_snapshots for m in s.manifests(table.io)}
        used_schemas = {meta.current_schema_id} | {s.schema_id for s in kept_snapshots if s.schema_id is not None}
        spec_ids = tuple(sorted(s.spec_id for s in meta.partition_specs if s.spec_id not in used_specs))
        schema_ids = tuple(sorted(s.schema_id for s in meta.schemas if s.schema_id not in used_schemas))
    return ExpiryPlan(expired_refs, tuple(sorted(to_expire)), spec_ids, schema_ids)


def _changes(meta: TableMetadata, plan: ExpiryPlan) -> tuple[tuple[TableUpdate, ...], tuple[TableRequirement, ...]]:
    updates: list[TableUpdate] = [RemoveSnapshotRefUpdate(ref_name=n) for n in plan.refs]
    expiring = set(plan.snapshot_ids)
    # PyIceberg's RemoveSnapshotsUpdate drops the expired snapshots' table statistics itself,
    # not their partition statistics.
    updates += [
        RemovePartitionStatisticsUpdate(snapshot_id=s.snapshot_id) for s in meta.partition_statistics if s.snapshot_id in expiring
    ]
    if plan.snapshot_ids:
        updates.append(RemoveSnapshotsUpdate(snapshot_ids=list(plan.snapshot_ids)))
    requirements: list[TableRequirement] = [
        AssertRefSnapshotId(ref=name, snapshot_id=ref.snapshot_id) for name, ref in meta.refs.items()
    ]
    if plan.spec_ids:
        updates.append(RemovePartitionSpecsUpdate(spec_ids=list(plan.spec_ids)))
        requirements.append(AssertDefaultSpecId(default_spec_id=meta.default_spec_id))
    if plan.schema_ids:
        updates.append(RemoveSchemasUpdate(schema_ids=list(plan.schema_ids)))
        requirements.append(AssertCurrentSchemaId(current_schema_id=meta.current_schema_id))
    return tuple(updates), tuple(requirements)


# --- expiring -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryResult:
    """What ``expire_snapshots`` removed: snapshots and refs from the metadata, files from storage."""

    expired_snapshot_ids: tuple[int, ...] = ()
    removed_refs: tuple[str, ...] = ()
    removed_spec_ids: tuple[int, ...] = ()
    removed_schema_ids: tuple[int, ...] = ()
    deleted_data_files_count: int = 0
    deleted_position_delete_files_count: int = 0
    deleted_equality_delete_files_count: int = 0
    deleted_manifest_files_count: int = 0
    deleted_manifest_lists_count: int = 0
    deleted_statistics_files_count: int = 0
    # Files that could not be deleted (not counted); they are orphans for remove_orphan_files.
    undeleted_files: tuple[str, ...] = field(default=(), repr=False)

    def counts(self) -> dict[str, int]:
        """The deleted-file counts under Spark's column names."""
        return {name: getattr(self, name) for name in COUNT_COLUMNS}


def expire_snapshots(
    table: Table,
    *,
    older_than_ms: int | None = None,
    retain_last: int | None = None,
    snapshot_ids: list[int] | None = None,
    now_ms: int | None = None,
    clean_expired_metadata: bool = False,
) -> ExpiryResult:
    """Expire snapshots (``plan_expiry``), commit that, then delete the files only they reached.

    Raises ``ValidationError`` on a table with ``gc.enabled=false`` and ``ConflictError`` when
    another client moved a ref meanwhile (nothing is changed then). ``clean_expired_metadata``
    also removes the partition specs and schemas no retained snapshot uses.
    """
    require_gc(table, "expire snapshots")
    work = private(table)
    with commit_lock(work):
        work.refresh()  # decide on the newest metadata: Wharf's writers wait for this lock
        require_gc(work, "expire snapshots")
        base = work.metadata
        plan = plan_expiry(
            work,
            older_than_ms=older_than_ms,
            retain_last=retain_last,
            snapshot_ids=snapshot_ids,
            now_ms=now_ms,
            clean_expired_metadata=clean_expired_metadata,
        )
        if not plan:
            return ExpiryResult()
        updates, requirements = _changes(base, plan)
        tx = compat.MemoizedTransaction(work)
        compat.stage(tx, updates, requirements)
        try:
            tx.commit_transaction()
        except CommitFailedException as exc:
            raise ConflictError(
                f"Concurrent change to {table_label(table)}: {exc}",
                table=table_label(table),
                hint="nothing was changed; run expire_snapshots again",
            ) from exc
    expiring = set(plan.snapshot_ids)
    expired = [s for s in base.snapshots if s.snapshot_id in expiring]
    counts, undeleted = delete_unreachable_files(work, base, expired)
    return ExpiryResult(
        expired_snapshot_ids=plan.snapshot_ids,
        removed_refs=plan.refs,
        removed_spec_ids=plan.spec_ids,
        removed_schema_ids=plan.schema_ids,
        deleted_data_files_count=counts["deleted_data_files_count"],
        deleted_position_delete_files_count=counts["deleted_position_delete_files_count"],
        deleted_equality_delete_files_count=counts["deleted_equality_delete_files_count"],
        deleted_manifest_files_count=counts["deleted_manifest_files_count"],
        deleted_manifest_lists_count=counts["deleted_manifest_lists_count"],
        deleted_statistics_files_count=counts["deleted_statistics_files_count"],
        undeleted_files=tuple(undeleted),
    )


# --- deleting what only expired snapshots reached ------------------------------------------------


def _manifests(table: Table, snapshots: Iterable[Snapshot], *, strict: bool) -> dict[str, ManifestFile]:
    found: dict[str, ManifestFile] = {}
    for s in snapshots:
        try:
            manifests = s.manifests(table.io)
        except FileNotFoundError:
            if strict:
                raise
            continue  # an expired snapshot whose manifest list is already gone: nothing to collect
        for m in manifests:
            found.setdefault(m.manifest_path, m)
    return found


def delete_unreachable_files(table: Table, base: TableMetadata, expired: list[Snapshot]) -> tuple[dict[str, int], list[str]]:
    """Delete the files of ``expired`` (snapshots of ``base``) that no snapshot of ``table``'s
    current (post-expiry) metadata can read. Returns (counts by Spark column, undeletable files)."""
    counts = dict.fromkeys(COUNT_COLUMNS, 0)
    if not expired:
        return counts, []
    after = table.metadata
    retained = list(after.snapshots)
    try:
        kept_manifests = _manifests(table, retained, strict=True)
    except Exception as exc:  # noqa: BLE001 - without the retained set nothing can be deleted safely
        ids = ", ".join(str(s.snapshot_id) for s in expired)
        raise StorageError(
            f"Expired snapshots {ids} of {table_label(table)}, but could not read the manifests of the "
            f"snapshots it keeps ({type(exc).__name__}: {exc}); no file was deleted",
            hint="the expired snapshots' files are now orphans: CALL system.remove_orphan_files collects them",
        ) from exc
    kept_lists = {s.manifest_list for s in retained}
    lists = {s.manifest_list for s in expired} - kept_lists
    gone_manifests = {p: m for p, m in _manifests(table, expired, strict=False).items() if p not in kept_manifests}
    files: dict[str, DataFileContent] = {}
    for manifest in gone_manifests.values():
        try:
            entries = manifest.fetch_manifest_entry(table.io, discard_deleted=False)
        except FileNotFoundError:
            continue
        for entry in entries:
            files.setdefault(entry.data_file.file_path, entry.data_file.content)
    if files:
        for manifest in kept_manifests.values():
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                files.pop(entry.data_file.file_path, None)
    expired_ids = {s.snapshot_id for s in expired}
    kept_stats = {s.statistics_path for s in [*after.statistics, *after.partition_statistics]}
    stats = {
        s.statistics_path
        for s in [*base.statistics, *base.partition_statistics]
        if s.snapshot_id in expired_ids and s.statistics_path not in kept_stats
    }
    undeleted: list[str] = []

    def delete(paths: Iterable[str], column: str | None = None) -> None:
        for path in paths:
            key = column or _COUNT_OF_CONTENT[files[path]]
            try:
                table.io.delete(path)
            except FileNotFoundError:
                continue  # already gone (another cleanup, or a file never written)
            except OSError as exc:
                log.warning("expire_snapshots could not delete %s: %s", path, exc)
                undeleted.append(path)
                continue
            counts[key] += 1

    # Java's order: content files, then the manifests listing them, then the lists of those.
    delete(sorted(files))
    delete(sorted(gone_manifests), "deleted_manifest_files_count")
    delete(sorted(lists), "deleted_manifest_lists_count")
    delete(sorted(stats), "deleted_statistics_files_count")
    return counts, undeleted


__all__ = [
    "COUNT_COLUMNS",
    "GC_ENABLED_PROPERTY",
    "ExpiryPlan",
    "ExpiryResult",
    "expire_snapshots",
    "plan_expiry",
    "require_gc",
]
