"""Resolve what a table reference points at: a branch, a tag, a snapshot id or a point in time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType

from wharf.errors import InvalidArgument, NotFound


@dataclass(frozen=True)
class Version:
    """A requested version of a table: at most one of ``ref``, ``snapshot_id``, ``timestamp_ms``."""

    ref: str | None = None
    snapshot_id: int | None = None
    timestamp_ms: int | None = None

    @property
    def is_default(self) -> bool:
        return self.ref is None and self.snapshot_id is None and self.timestamp_ms is None


def parse_timestamp_ms(value: str | int | float | dt.datetime) -> int:
    """Milliseconds since the epoch for a timestamp literal (naive values are UTC)."""
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = value.strip()
        if text.upper().endswith(" UTC"):  # Trino writes TIMESTAMP '2025-01-01 00:00:00 UTC'
            text = text[:-4] + "+00:00"
        try:
            moment = dt.datetime.fromisoformat(text.replace(" ", "T") if len(text) > 10 else text)
        except ValueError as exc:
            raise InvalidArgument(
                f"'{value}' is not a timestamp", hint="write it as 'YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]'"
            ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def table_label(table: Table) -> str:
    return ".".join(table.name())


def ref_snapshot_id(table: Table, ref: str, *, kind: SnapshotRefType | None = None) -> int:
    """Snapshot id at the head of branch/tag ``ref``."""
    found = table.metadata.refs.get(ref)
    if found is None or (kind is not None and found.snapshot_ref_type != kind):
        names: dict[SnapshotRefType | None, str] = {SnapshotRefType.BRANCH: "Branch", SnapshotRefType.TAG: "Tag"}
        what = names.get(kind, "Branch or tag")
        known = ", ".join(sorted(table.metadata.refs)) or "none"
        raise NotFound(f"{what} '{ref}' does not exist on table {table_label(table)}", hint=f"existing refs: {known}")
    return found.snapshot_id


def snapshot_at(table: Table, timestamp_ms: int) -> int:
    """The snapshot that was current on main at ``timestamp_ms`` (Spark's TIMESTAMP AS OF)."""
    chosen: int | None = None
    for entry in table.metadata.snapshot_log:
        if entry.timestamp_ms <= timestamp_ms:
            chosen = entry.snapshot_id
    if chosen is None:
        first = table.metadata.snapshot_log[0].timestamp_ms if table.metadata.snapshot_log else None
        when = dt.datetime.fromtimestamp(first / 1000, dt.UTC).isoformat() if first else "never"
        raise NotFound(
            f"Table {table_label(table)} has no snapshot at or before "
            f"{dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC).isoformat()}",
            hint=f"its first snapshot was committed at {when}",
        )
    return chosen


def resolve_snapshot(table: Table, version: Version, *, session_branch: str | None = None) -> int | None:
    """Snapshot id to read for ``version`` (None: the table or branch has no data yet)."""
    if version.snapshot_id is not None:
        if table.metadata.snapshot_by_id(version.snapshot_id) is None:
            raise NotFound(f"Snapshot {version.snapshot_id} does not exist on table {table_label(table)}")
        return version.snapshot_id
    if version.timestamp_ms is not None:
        return snapshot_at(table, version.timestamp_ms)
    if version.ref is not None:
        return ref_snapshot_id(table, version.ref)
    if session_branch and session_branch in table.metadata.refs:
        return table.metadata.refs[session_branch].snapshot_id
    main = table.metadata.refs.get(MAIN_BRANCH)
    return main.snapshot_id if main else None


def version_from_literal(table: Table, value: object) -> Version:
    """``FOR VERSION AS OF <value>``: a number is a snapshot id, a string a branch or tag name."""
    if isinstance(value, int):
        return Version(snapshot_id=value)
    text = str(value)
    if text in table.metadata.refs:
        return Version(ref=text)
    if text.isdigit():
        return Version(snapshot_id=int(text))
    raise NotFound(
        f"'{text}' is neither a branch, a tag nor a snapshot id of table {table_label(table)}",
        hint=f"existing refs: {', '.join(sorted(table.metadata.refs)) or 'none'}",
    )
