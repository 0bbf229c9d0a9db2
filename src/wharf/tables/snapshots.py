"""Snapshot history operations on a PyIceberg table: refs, rollback, fast-forward, cherry-pick.

Plain functions used by ``ALTER TABLE … BRANCH|TAG``, the ``CALL system.*`` procedures and the
Python ``Table`` API. PyIceberg has no fast-forward or cherry-pick; they are built here on its
metadata updates, with Iceberg (Java) semantics. Every function commits one metadata change or
nothing (through the catalog's commit path, on a private copy of the table), and raises Wharf
errors (never a bare ``ValueError``). Expiry lives in ``wharf.tables.expire``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import DataFile, DataFileContent, ManifestContent, ManifestEntryStatus
from pyiceberg.table import Table, Transaction
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRef, SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, ancestors_of
from pyiceberg.table.update import SetSnapshotRefUpdate
from pyiceberg.table.update.snapshot import ManageSnapshots

from wharf import pyiceberg_compat as compat
from wharf.errors import AlreadyExists, ConflictError, InvalidArgument, NotFound, UnsupportedStatement, ValidationError
from wharf.tables.commit import commit_files, commit_lock, private
from wharf.tables.refs import table_label

BRANCH = SnapshotRefType.BRANCH
TAG = SnapshotRefType.TAG


def _kind_name(kind: SnapshotRefType) -> str:
    return "branch" if kind == BRANCH else "tag"


def head(table: Table, branch: str = MAIN_BRANCH) -> int | None:
    """Snapshot id at the head of ``branch`` (None if the branch does not exist / the table is empty)."""
    ref = table.metadata.refs.get(branch)
    return ref.snapshot_id if ref is not None else None


def snapshot(table: Table, snapshot_id: int) -> Snapshot:
    found = table.metadata.snapshot_by_id(snapshot_id)
    if found is None:
        raise NotFound(
            f"Snapshot {snapshot_id} does not exist on table {table_label(table)}",
            hint=f"list snapshots with SELECT snapshot_id, committed_at FROM {table_label(table)}.snapshots",
        )
    return found


def ancestor_ids(table: Table, snapshot_id: int | None) -> list[int]:
    """``snapshot_id`` and its ancestors, newest first (empty for None)."""
    if snapshot_id is None:
        return []
    return [s.snapshot_id for s in ancestors_of(table.metadata.snapshot_by_id(snapshot_id), table.metadata)]


def is_ancestor(table: Table, ancestor_id: int | None, of_id: int | None) -> bool:
    """True when ``ancestor_id`` is ``of_id`` or one of its ancestors (None is an ancestor of everything)."""
    return ancestor_id is None or ancestor_id in ancestor_ids(table, of_id)


def _transaction(table: Table) -> Transaction:
    """A transaction on a private copy of ``table`` (the loader's shared object never changes under readers)."""
    return compat.MemoizedTransaction(private(table))


def _commit(table: Table, tx: Transaction) -> None:
    try:
        with commit_lock(table):
            tx.commit_transaction()
    except CommitFailedException as exc:
        raise ConflictError(
            f"Concurrent change to {table_label(table)}: {exc}",
            table=table_label(table),
            hint="nothing was changed; run the statement again",
        ) from exc


def _ref(table: Table, name: str, kind: SnapshotRefType | None = None) -> SnapshotRef:
    found = table.metadata.refs.get(name)
    if found is None or (kind is not None and found.snapshot_ref_type != kind):
        what = _kind_name(kind).capitalize() if kind is not None else "Branch or tag"
        other = f" ('{name}' is a {_kind_name(found.snapshot_ref_type)})" if found is not None else ""
        raise NotFound(
            f"{what} '{name}' does not exist on table {table_label(table)}{other}",
            hint=f"existing refs: {', '.join(sorted(table.metadata.refs)) or 'none'}",
        )
    return found


# --- branches and tags ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """Retention settings of a ref (``RETAIN … WITH SNAPSHOT RETENTION …``); None keeps table defaults."""

    max_ref_age_ms: int | None = None
    max_snapshot_age_ms: int | None = None
    min_snapshots_to_keep: int | None = None


def create_ref(
    table: Table,
    kind: SnapshotRefType,
    name: str,
    snapshot_id: int | None = None,
    *,
    replace: bool = False,
    must_exist: bool = False,
    if_not_exists: bool = False,
    retention: Retention = Retention(),  # noqa: B008 - frozen, so sharing the default is safe
) -> int | None:
    """Create (or replace) branch/tag ``name`` at ``snapshot_id`` (default: main's head).

    ``replace`` is ``CREATE OR REPLACE``; ``must_exist`` is ``REPLACE`` (the ref must exist).
    A branch on a table without snapshots gets an empty snapshot, as Iceberg (Java) does;
    a tag needs a snapshot to point at. Returns the snapshot id the ref points at, or None when
    ``if_not_exists`` left an existing ref alone.
    """
    label = table_label(table)
    existing = table.metadata.refs.get(name)
    if existing is not None and existing.snapshot_ref_type != kind:
        raise InvalidArgument(
            f"'{name}' is a {_kind_name(existing.snapshot_ref_type)} of {label}, not a {_kind_name(kind)}",
            hint=f"drop it first with ALTER TABLE {label} DROP {_kind_name(existing.snapshot_ref_type).upper()} {name}",
        )
    if existing is not None and not (replace or must_exist):
        if if_not_exists:
            return None
        raise AlreadyExists(
            f"{_kind_name(kind).capitalize()} '{name}' already exists on table {label}",
            hint=f"use CREATE OR REPLACE {_kind_name(kind).upper()} or CREATE {_kind_name(kind).upper()} IF NOT EXISTS",
        )
    if existing is None and must_exist:
        raise NotFound(
            f"{_kind_name(kind).capitalize()} '{name}' does not exist on table {label}",
            hint=f"use CREATE OR REPLACE {_kind_name(kind).upper()} {name}",
        )
    if kind == TAG and (retention.max_snapshot_age_ms is not None or retention.min_snapshots_to_keep is not None):
        raise InvalidArgument("Tags have no snapshot retention; use RETAIN n DAYS for how long the tag is kept")
    if retention.max_ref_age_ms is not None and name == MAIN_BRANCH:
        raise InvalidArgument("The main branch never expires; RETAIN cannot be set on it")
    if snapshot_id is not None:
        snapshot(table, snapshot_id)
    else:
        snapshot_id = head(table)
    tx = _transaction(table)
    if snapshot_id is None:
        if kind == TAG:
            raise ValidationError(
                f"Table {label} has no snapshot to tag", hint="write some data first, or tag a branch's snapshot"
            )
        # Iceberg (Java) creates a branch on an empty table by committing an empty snapshot to it.
        # PyIceberg refuses to write a non-main branch of an empty table, and its ref requirement
        # fails on a table without snapshots, so: stage an empty snapshot on no branch, then point
        # the new branch at it without a requirement (the table UUID is still asserted).
        producer = tx.update_snapshot(branch=None).fast_append()
        producer.commit()
        ref_update = SetSnapshotRefUpdate(
            snapshot_id=producer.snapshot_id,
            ref_name=name,
            type=BRANCH,
            max_ref_age_ms=retention.max_ref_age_ms,
            max_snapshot_age_ms=retention.max_snapshot_age_ms,
            min_snapshots_to_keep=retention.min_snapshots_to_keep,
        )
        compat.stage(tx, (ref_update,))
        _commit(table, tx)
        return producer.snapshot_id
    ms = ManageSnapshots(tx)
    if kind == BRANCH:
        ms.create_branch(
            snapshot_id,
            name,
            max_ref_age_ms=retention.max_ref_age_ms,
            max_snapshot_age_ms=retention.max_snapshot_age_ms,
            min_snapshots_to_keep=retention.min_snapshots_to_keep,
        )
    else:
        ms.create_tag(snapshot_id, name, max_ref_age_ms=retention.max_ref_age_ms)
    ms.commit()
    _commit(table, tx)
    return snapshot_id


def drop_ref(table: Table, kind: SnapshotRefType, name: str, *, if_exists: bool = False) -> bool:
    """Remove branch/tag ``name`` (snapshots stay until expired). Returns False if it did not exist."""
    if kind == BRANCH and name == MAIN_BRANCH:
        raise InvalidArgument(f"Cannot drop the main branch of {table_label(table)}", hint="drop the table instead")
    if name not in table.metadata.refs and if_exists:
        return False
    _ref(table, name, kind)
    tx = _transaction(table)
    ms = ManageSnapshots(tx)
    ms.remove_branch(name) if kind == BRANCH else ms.remove_tag(name)
    ms.commit()
    _commit(table, tx)
    return True


# --- moving main (and other branches) ------------------------------------------------------------


def _set_branch(table: Table, branch: str, snapshot_id: int) -> None:
    tx = _transaction(table)
    existing = table.metadata.refs.get(branch)
    ms = ManageSnapshots(tx)
    ms.create_branch(
        snapshot_id,
        branch,
        max_ref_age_ms=existing.max_ref_age_ms if existing else None,
        max_snapshot_age_ms=existing.max_snapshot_age_ms if existing else None,
        min_snapshots_to_keep=existing.min_snapshots_to_keep if existing else None,
    )
    ms.commit()
    _commit(table, tx)


def rollback_to_snapshot(table: Table, snapshot_id: int) -> tuple[int | None, int]:
    """Move main back to ``snapshot_id``, which must be an ancestor of main. Returns (previous, current)."""
    snapshot(table, snapshot_id)
    previous = head(table)
    if not is_ancestor(table, snapshot_id, previous) or previous is None:
        raise ValidationError(
            f"Cannot roll back {table_label(table)} to snapshot {snapshot_id}: it is not an ancestor of main",
            hint="use CALL system.set_current_snapshot to jump to any snapshot",
        )
    _set_branch(table, MAIN_BRANCH, snapshot_id)
    return previous, snapshot_id


def rollback_to_timestamp(table: Table, timestamp_ms: int) -> tuple[int | None, int]:
    """Move main back to the newest ancestor committed strictly before ``timestamp_ms`` (Iceberg semantics)."""
    previous = head(table)
    chosen: Snapshot | None = None
    for ancestor in ancestors_of(table.metadata.snapshot_by_id(previous) if previous else None, table.metadata):
        if ancestor.timestamp_ms < timestamp_ms:
            chosen = ancestor
            break
    if chosen is None:
        raise ValidationError(
            f"Cannot roll back {table_label(table)}: main has no snapshot committed before the given time",
            hint=f"see SELECT * FROM {table_label(table)}.history",
        )
    _set_branch(table, MAIN_BRANCH, chosen.snapshot_id)
    return previous, chosen.snapshot_id


def set_current_snapshot(table: Table, snapshot_id: int | None = None, ref: str | None = None) -> tuple[int | None, int]:
    """Point main at any snapshot (or at the head of branch/tag ``ref``). Returns (previous, current)."""
    if snapshot_id is not None and ref is None:
        target = snapshot_id
    elif ref is not None and snapshot_id is None:
        target = _ref(table, ref).snapshot_id
    else:
        raise InvalidArgument("set_current_snapshot needs exactly one of snapshot_id or ref")
    snapshot(table, target)
    previous = head(table)
    _set_branch(table, MAIN_BRANCH, target)
    return previous, target


def fast_forward(table: Table, branch: str, to: str) -> tuple[int | None, int]:
    """Move ``branch`` to the head of ``to``; ``branch``'s head must be an ancestor of it.

    A main branch with no snapshot yet (empty table) may be fast-forwarded to anything.
    Returns (previous head, new head).
    """
    label = table_label(table)
    if branch == MAIN_BRANCH and branch not in table.metadata.refs:
        previous = None
    else:
        previous = _ref(table, branch, BRANCH).snapshot_id
    target = _ref(table, to).snapshot_id
    if not is_ancestor(table, previous, target):
        raise ValidationError(
            f"Cannot fast-forward {label} branch '{branch}' to '{to}': '{branch}' (snapshot {previous}) "
            f"is not an ancestor of '{to}' (snapshot {target})",
            hint="the branches have diverged; cherry-pick the changes or replace the branch",
        )
    if previous != target:
        _set_branch(table, branch, target)
    return previous, target


# --- cherry-pick and publish ---------------------------------------------------------------------

SOURCE_SNAPSHOT_PROPERTY = "source-snapshot-id"
PUBLISHED_WAP_PROPERTY = "published-wap-id"
WAP_ID_PROPERTY = "wap.id"


def _changes(table: Table, picked: Snapshot) -> tuple[list[DataFile], list[DataFile]]:
    """The data files ``picked`` added and removed (entries written by that snapshot itself)."""
    added: list[DataFile] = []
    removed: list[DataFile] = []
    for manifest in picked.manifests(table.io):
        if manifest.added_snapshot_id != picked.snapshot_id:
            continue
        if manifest.content != ManifestContent.DATA:
            raise UnsupportedStatement(
                f"Snapshot {picked.snapshot_id} of {table_label(table)} wrote delete files; "
                "cherry-picking merge-on-read changes is not supported"
            )
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
            if entry.snapshot_id != picked.snapshot_id or entry.data_file.content != DataFileContent.DATA:
                continue
            if entry.status == ManifestEntryStatus.ADDED:
                added.append(entry.data_file)
            elif entry.status == ManifestEntryStatus.DELETED:
                removed.append(entry.data_file)
    return added, removed


def _live_paths(table: Table, snapshot_id: int | None) -> set[str]:
    if snapshot_id is None:
        return set()
    snap = table.metadata.snapshot_by_id(snapshot_id)
    assert snap is not None
    return {
        e.data_file.file_path
        for m in snap.manifests(table.io)
        if m.content == ManifestContent.DATA
        for e in m.fetch_manifest_entry(table.io, discard_deleted=True)
    }


def _already_picked(table: Table, snapshot_id: int) -> bool:
    main = head(table)
    for ancestor in ancestors_of(table.metadata.snapshot_by_id(main) if main else None, table.metadata):
        if ancestor.snapshot_id == snapshot_id:
            return True
        props = ancestor.summary.additional_properties if ancestor.summary else {}
        if props.get(SOURCE_SNAPSHOT_PROPERTY) == str(snapshot_id):
            return True
    return False


def cherrypick(table: Table, snapshot_id: int, properties: dict[str, str] | None = None) -> tuple[int, int, Snapshot | None]:
    """Apply the changes of ``snapshot_id`` to main.

    Fast-forwards main when the snapshot's parent is main's head; otherwise commits a new snapshot
    on main that adds and removes the same data files, recording ``source-snapshot-id``. Fails
    with ``ConflictError`` if a file it removed is no longer in main. Returns
    ``(source snapshot id, new main head, new snapshot or None for a fast-forward)``.
    """
    label = table_label(table)
    picked = snapshot(table, snapshot_id)
    if _already_picked(table, snapshot_id):
        raise ValidationError(f"Snapshot {snapshot_id} of {label} is already in main (it or a cherry-pick of it is an ancestor)")
    main = head(table)
    if picked.parent_snapshot_id == main:
        _set_branch(table, MAIN_BRANCH, snapshot_id)
        return snapshot_id, snapshot_id, None
    operation = picked.summary.operation if picked.summary else Operation.APPEND
    if operation not in (Operation.APPEND, Operation.OVERWRITE, Operation.DELETE):
        raise ValidationError(
            f"Cannot cherry-pick snapshot {snapshot_id} of {label}: its operation is {operation.value}",
            hint="only append, overwrite and delete snapshots can be cherry-picked",
        )
    added, removed = _changes(table, picked)
    live = _live_paths(table, main)
    gone = [f.file_path for f in removed if f.file_path not in live]
    if gone:
        raise ConflictError(
            f"Cannot cherry-pick snapshot {snapshot_id} onto main of {label}: it removes {len(gone)} file(s) "
            f"that main no longer has (e.g. {gone[0]})",
            table=label,
            conflicting_snapshot_id=main,
            hint="the change was made against data that main has since rewritten",
        )
    extra = dict(properties or {})
    extra[SOURCE_SNAPSHOT_PROPERTY] = str(snapshot_id)
    source_props = picked.summary.additional_properties if picked.summary else {}
    if WAP_ID_PROPERTY in source_props:
        extra[PUBLISHED_WAP_PROPERTY] = source_props[WAP_ID_PROPERTY]
    new = commit_files(
        table,
        added=added,
        removed=removed,
        properties=extra,
        operation=operation,
        cleanup=False,  # the files belong to the picked snapshot: never delete them on failure
    )
    if new is None:  # the snapshot changed nothing: moving main is all there is to do
        return snapshot_id, main if main is not None else snapshot_id, None
    return snapshot_id, new.snapshot_id, new


def staged_snapshots(table: Table, wap_id: str) -> list[Snapshot]:
    """Snapshots staged with ``SET wharf.wap_id = wap_id``, oldest first."""
    found = [
        s
        for s in table.metadata.snapshots
        if s.summary is not None and s.summary.additional_properties.get(WAP_ID_PROPERTY) == wap_id
    ]
    return sorted(found, key=lambda s: (s.sequence_number or 0, s.timestamp_ms))


def publish(table: Table, wap_id: str) -> tuple[int, int, list[Snapshot]]:
    """Cherry-pick every not yet published snapshot staged under ``wap_id`` onto main, oldest first.

    Returns (last source snapshot id, main's new head, new snapshots committed).
    """
    staged = staged_snapshots(table, wap_id)
    if not staged:
        raise NotFound(
            f"No snapshot of {table_label(table)} was staged with wap_id '{wap_id}'",
            hint="stage writes with SET wharf.wap_id = '<id>' before INSERT/UPDATE/DELETE/MERGE",
        )
    pending = [s for s in staged if not _already_picked(table, s.snapshot_id)]
    work = private(table)
    if not pending:
        raise ValidationError(f"The changes staged with wap_id '{wap_id}' on {table_label(table)} are already published")
    source, current, committed = 0, 0, []
    for s in pending:
        source, current, new = cherrypick(work, s.snapshot_id)
        work.refresh()  # the next pick applies on top of this one
        if new is not None:
            committed.append(new)
    return source, current, committed


# --- expiry -------------------------------------------------------------------------------------


def expire_snapshots(
    table: Table,
    *,
    older_than_ms: int | None = None,
    retain_last: int | None = None,
    snapshot_ids: list[int] | None = None,
    now_ms: int | None = None,
) -> list[int]:
    """Expire snapshots and delete the files only they reached; returns the expired snapshot ids.

    The list form of ``wharf.tables.expire.expire_snapshots``, which has the rules and returns
    the deleted-file counts too.
    """
    from wharf.tables.expire import expire_snapshots as expire  # expire builds on this module's helpers

    result = expire(table, older_than_ms=older_than_ms, retain_last=retain_last, snapshot_ids=snapshot_ids, now_ms=now_ms)
    return list(result.expired_snapshot_ids)
