"""Change history derived from snapshots: the changelog (Spark's ``create_changelog_view``) and SCD Type-2.

Every snapshot already says what it changed, in its manifests: the data files it added hold
inserted rows, the data files it removed held deleted rows (those still live before it), and
the delete files it added mark rows as deleted. This module turns one snapshot's manifest
entries into DuckDB SQL over exactly those Parquet files — reading each file through the scan
planner's relation (``ScanPlan.relation_sql``), so field-id mapping, positional and equality
deletes apply as they do for any read — and combines the snapshots of a range:

* carry-over rows (a copy-on-write rewrite deletes a file and re-adds its untouched rows) are
  cancelled: in one snapshot, an identical deleted and inserted row is no change;
* updates: a DELETE and an INSERT of the same identifier columns in one snapshot become
  ``UPDATE_BEFORE`` / ``UPDATE_AFTER``;
* net changes: the range collapsed to what differs between its start and its end;
* SCD Type-2: every inserted row starts a version of its key, ended by the next change of the key.

Compaction (``replace``) snapshots change no rows and are skipped. Unlike Spark, tables with
positional and equality delete files (merge-on-read) and branches are supported. Everything runs
as one DuckDB query; nothing loops over rows in Python.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from pyiceberg.manifest import DataFile, DataFileContent, ManifestEntryStatus
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import Operation, Snapshot

from wharf.errors import InvalidArgument, NotFound
from wharf.tables.manifest_cache import manifest_entries
from wharf.tables.scan import FILE_COLUMN, NO_HIVE, POS_COLUMN, PlannedFile, ScanPlan, ScanPlanner, local_path, partition_key
from wharf.tables.scan import quote_ident as q
from wharf.tables.scan import quote_str as s
from wharf.tables.types import iceberg_to_duckdb

CHANGE_TYPE = "_change_type"
CHANGE_ORDINAL = "_change_ordinal"
COMMIT_SNAPSHOT_ID = "_commit_snapshot_id"
COMMIT_TIMESTAMP = "_commit_timestamp"
CHANGE_COLUMNS = (CHANGE_TYPE, CHANGE_ORDINAL, COMMIT_SNAPSHOT_ID, COMMIT_TIMESTAMP)
INSERT, DELETE, UPDATE_BEFORE, UPDATE_AFTER = "INSERT", "DELETE", "UPDATE_BEFORE", "UPDATE_AFTER"

EFFECTIVE_START, EFFECTIVE_END, IS_CURRENT, IS_DELETED = "effective_start", "effective_end", "is_current", "is_deleted"

_WEIGHT = "__wharf_weight"  # +1 an inserted row, -1 a deleted one (carry-over cancels by summing)
_POSITION_DELETE_PATH_ID = 2147483546


@dataclass(frozen=True)
class ChangelogOptions:
    """Which changes to show and how (the arguments of ``system.create_changelog_view``).

    ``start_snapshot_id`` / ``start_ms`` are exclusive, ``end_snapshot_id`` / ``end_ms``
    inclusive (Spark's semantics); ``ref`` is the branch whose history is read (None: main).
    """

    ref: str | None = None
    start_snapshot_id: int | None = None
    end_snapshot_id: int | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    net_changes: bool = False
    compute_updates: bool = False
    identifier_columns: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ChangelogOptions:
        data = json.loads(text)
        data["identifier_columns"] = tuple(data.get("identifier_columns") or ())
        return cls(**data)


@dataclass(frozen=True)
class Scd2Options:
    """How ``t.scd2`` / ``system.create_scd2_view`` build versions: the key, delete markers, the branch."""

    identifier_columns: tuple[str, ...] = ()
    delete_markers: bool = False
    ref: str | None = None
    end_snapshot_id: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Scd2Options:
        data = json.loads(text)
        data["identifier_columns"] = tuple(data.get("identifier_columns") or ())
        return cls(**data)


# --- which snapshots ------------------------------------------------------------------------------


def head_snapshot_id(table: Table, ref: str | None) -> int | None:
    """The head of branch ``ref`` (None: main); None when it has no snapshot."""
    name = ref or MAIN_BRANCH
    found = table.metadata.refs.get(name)
    if found is None:
        if ref is None:
            return None
        raise NotFound(f"Table {'.'.join(table.name())} has no branch '{ref}'", hint="SELECT * FROM t.refs lists them")
    return found.snapshot_id


def _ancestry(table: Table, snapshot_id: int | None) -> list[Snapshot]:
    """``snapshot_id`` and its ancestors, newest first."""
    chain: list[Snapshot] = []
    current = table.metadata.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    while current is not None:
        chain.append(current)
        parent = current.parent_snapshot_id
        current = table.metadata.snapshot_by_id(parent) if parent is not None else None
    return chain


def visible_ms(table: Table) -> dict[int, int]:
    """When each snapshot of the main branch's history became the table's state (epoch ms).

    Usually its own timestamp. A commit that adds several snapshots at once (DuckDB's MERGE
    commits an overwrite and an append in one transaction) makes only the last one current: the
    snapshot log never names the others, and time travel to a moment between their timestamps
    finds the state before the commit. So a snapshot the log does not name takes the time of its
    first descendant that it does — the moment its rows became visible. Snapshots older than the
    log (it may be cut short), and those of other branches, keep their own timestamps.
    """
    log = table.metadata.snapshot_log
    logged = {entry.snapshot_id for entry in log}
    since = min((entry.timestamp_ms for entry in log), default=None)
    visible: dict[int, int] = {}
    inherited: int | None = None
    for snapshot in _ancestry(table, head_snapshot_id(table, None)):  # newest first
        if snapshot.snapshot_id in logged or since is None or snapshot.timestamp_ms < since:
            inherited = snapshot.timestamp_ms if snapshot.snapshot_id in logged else None
            visible[snapshot.snapshot_id] = snapshot.timestamp_ms
        else:
            visible[snapshot.snapshot_id] = inherited if inherited is not None else snapshot.timestamp_ms
    return visible


def snapshots_in_range(table: Table, options: ChangelogOptions) -> list[Snapshot]:
    """The snapshots whose changes the range covers, oldest first (compactions included).

    The range follows the ancestry of its end (the branch head unless an end is given): after
    the start snapshot (exclusive), up to the end (inclusive); timestamps bound it the same way.
    """
    label = ".".join(table.name())
    end = options.end_snapshot_id
    if end is not None and table.metadata.snapshot_by_id(end) is None:
        raise NotFound(f"Table {label} has no snapshot {end}", hint="SELECT snapshot_id FROM t.snapshots lists them")
    chain = _ancestry(table, end if end is not None else head_snapshot_id(table, options.ref))
    visible = visible_ms(table) if options.end_ms is not None or options.start_ms is not None else {}
    if options.end_ms is not None:
        chain = [snap for snap in chain if visible.get(snap.snapshot_id, snap.timestamp_ms) <= options.end_ms]
    start = options.start_snapshot_id
    if start is not None:
        ids = [snap.snapshot_id for snap in chain]
        if start not in ids:
            if table.metadata.snapshot_by_id(start) is None:
                raise NotFound(f"Table {label} has no snapshot {start}", hint="SELECT snapshot_id FROM t.snapshots lists them")
            raise InvalidArgument(
                f"Snapshot {start} of {label} is not an ancestor of the end of the range",
                hint="start-snapshot-id must be an older snapshot of the same branch",
            )
        chain = chain[: ids.index(start)]
    if options.start_ms is not None:
        chain = [snap for snap in chain if visible.get(snap.snapshot_id, snap.timestamp_ms) > options.start_ms]
    # After snapshot expiry the oldest remaining snapshot's parent is gone: what it deleted
    # cannot be read any more, so history starts after it.
    chain = [snap for snap in chain if snap.parent_snapshot_id is None or table.metadata.snapshot_by_id(snap.parent_snapshot_id)]
    return list(reversed(chain))


def _changes_rows(snapshot: Snapshot) -> bool:
    """Whether a snapshot may change rows: compactions (``replace``) rewrite files, never rows."""
    return snapshot.summary is None or snapshot.summary.operation != Operation.REPLACE


# --- one snapshot ---------------------------------------------------------------------------------


@dataclass
class SnapshotChanges:
    """The SQL of the rows one snapshot inserted and deleted (each None when there are none)."""

    inserted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # Positional delete files it added on files it kept, and those files: read for the whole
    # range at once (``_positional_deletes_sql``) rather than snapshot by snapshot.
    position_deletes: list[DataFile] = field(default_factory=list)
    touched: list[PlannedFile] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # Iceberg paths of the data files it added
    older_deletes: list[str] = field(default_factory=list)  # positional delete files live before it

    @property
    def empty(self) -> bool:
        return not (self.inserted or self.deleted or self.position_deletes)


def _own_entries(table: Table, snapshot: Snapshot) -> tuple[list[DataFile], list[DataFile], list[DataFile], list[DataFile]]:
    """(added data, removed data, added deletes, removed deletes) files of ``snapshot`` itself."""
    added: list[DataFile] = []
    removed: list[DataFile] = []
    added_deletes: list[DataFile] = []
    removed_deletes: list[DataFile] = []
    for manifest in snapshot.manifests(table.io):
        if manifest.added_snapshot_id != snapshot.snapshot_id:
            continue  # entries a snapshot adds or removes live only in the manifests it writes
        for entry in manifest_entries(table.io, manifest, discard_deleted=False):
            if entry.snapshot_id != snapshot.snapshot_id or entry.status == ManifestEntryStatus.EXISTING:
                continue
            data = entry.data_file.content == DataFileContent.DATA
            if entry.status == ManifestEntryStatus.ADDED:
                (added if data else added_deletes).append(entry.data_file)
            else:
                (removed if data else removed_deletes).append(entry.data_file)
    return added, removed, added_deletes, removed_deletes


def _named_file(delete_file: DataFile) -> str | None:
    lower = (delete_file.lower_bounds or {}).get(_POSITION_DELETE_PATH_ID)
    if lower is None or lower != (delete_file.upper_bounds or {}).get(_POSITION_DELETE_PATH_ID):
        return None
    try:
        return lower.decode()
    except UnicodeDecodeError:
        return None


def _targets(before: ScanPlan, deletes: Sequence[DataFile], kept: set[str]) -> list[PlannedFile]:
    """Files live before a snapshot (and kept by it) that its added or removed delete files may touch."""
    chosen: dict[str, PlannedFile] = {}
    for delete in deletes:
        named = _named_file(delete) if delete.content == DataFileContent.POSITION_DELETES else None
        for f in before.files:
            uri = f.data_file.file_path
            if uri not in kept or uri in chosen:
                continue
            if named is not None:
                hit = uri == named
            else:
                # Partition-scoped positional deletes, equality deletes: the files of their partition
                # (any, for an equality delete of an unpartitioned spec — planning decides exactly).
                hit = delete.content == DataFileContent.EQUALITY_DELETES or f.partition == partition_key(delete)
            if hit:
                chosen[uri] = f
    return list(chosen.values())


def snapshot_changes(table: Table, planner: ScanPlanner, snapshot: Snapshot, schema: Schema) -> SnapshotChanges:
    """The rows ``snapshot`` inserted and deleted, as SQL over its files (with the table's ``schema``).

    * data files it added: their rows, less those its own positional deletes remove;
    * data files it removed: their rows as live just before it (the parent's deletes applied);
    * delete files it added (or removed) on files it kept: rows live before and not after (or the
      reverse) — for positional deletes only, the positions it added, read from the kept files.
    """
    changes = SnapshotChanges()
    if not _changes_rows(snapshot):
        return changes
    added, removed, added_deletes, removed_deletes = _own_entries(table, snapshot)
    if not (added or removed or added_deletes or removed_deletes):
        return changes
    after = planner.plan(table, snapshot.snapshot_id, schema=schema)
    before = planner.plan(table, snapshot.parent_snapshot_id, schema=schema)
    added_uris = {f.file_path for f in added}
    changes.added = sorted(added_uris)
    removed_uris = {f.file_path for f in removed}
    new_files = [f for f in after.files if f.data_file.file_path in added_uris]
    if new_files:
        changes.inserted.append(after.relation_sql(files=new_files))
    gone = [f for f in before.files if f.data_file.file_path in removed_uris]
    if gone:
        changes.deleted.append(before.relation_sql(files=gone))
    kept = {f.data_file.file_path for f in before.files} - removed_uris
    touched = _targets(before, [*added_deletes, *removed_deletes], kept)
    if not touched:
        return changes
    columns = ", ".join(f"d.{q(f.name)}" for f in schema.fields)
    positional_only = not removed_deletes and all(d.content == DataFileContent.POSITION_DELETES for d in added_deletes)
    if positional_only and not before.equality_deletes:
        changes.position_deletes = list(added_deletes)
        changes.touched = touched
        changes.older_deletes = list(before.position_deletes)
        return changes
    # Equality deletes (or deletes removed without their data files): compare the touched files'
    # live rows before and after, by file and position.
    touched_uris = {f.data_file.file_path for f in touched}
    later = [f for f in after.files if f.data_file.file_path in touched_uris]
    old = before.relation_sql(with_position=True, files=touched)
    new = after.relation_sql(with_position=True, files=later) if later else None
    if new is None:
        changes.deleted.append(f"(SELECT {columns} FROM {old} d)")
        return changes
    on = f"d.{FILE_COLUMN} = e.{FILE_COLUMN} AND d.{POS_COLUMN} = e.{POS_COLUMN}"
    changes.deleted.append(f"(SELECT {columns} FROM {old} d ANTI JOIN {new} e ON {on})")
    changes.inserted.append(f"(SELECT {columns} FROM {new} d ANTI JOIN {old} e ON {on})")
    return changes


# --- a range --------------------------------------------------------------------------------------


def _check_columns(schema: Schema, names: Sequence[str], what: str) -> list[str]:
    by_lower = {f.name.lower(): f.name for f in schema.fields}
    found = []
    for name in names:
        if name.lower() not in by_lower:
            raise InvalidArgument(
                f"{what} '{name}' is not a column of the table", hint=f"its columns are: {', '.join(by_lower.values())}"
            )
        found.append(by_lower[name.lower()])
    return found


def identifier_columns(table: Table, given: Sequence[str], *, what: str = "identifier column") -> list[str]:
    """``given`` (checked against the table's columns), else the table's identifier fields."""
    schema = table.schema()
    if given:
        return _check_columns(schema, given, what)
    return [schema.find_column_name(i) or "" for i in schema.identifier_field_ids]


def _typed_empty(schema: Schema) -> str:
    cols = ", ".join(f"CAST(NULL AS {iceberg_to_duckdb(f.field_type)}) AS {q(f.name)}" for f in schema.fields)
    return f"SELECT {cols}, CAST(NULL AS INTEGER) AS {_WEIGHT}, CAST(NULL AS INTEGER) AS {CHANGE_ORDINAL} WHERE false"


def raw_changes_sql(table: Table, planner: ScanPlanner, snapshots: Sequence[Snapshot], schema: Schema) -> tuple[str, str]:
    """(rows, commits): every changed row of ``snapshots`` with its weight and ordinal, carry-over removed;
    and a VALUES list of (ordinal, snapshot id, commit time) of the snapshots that changed rows."""
    columns = ", ".join(q(f.name) for f in schema.fields)
    plain: list[str] = []
    mixed: list[str] = []
    commits: list[str] = []
    positional: list[tuple[int, SnapshotChanges]] = []
    added_at: dict[str, int] = {}  # data file → ordinal of the snapshot that added it (in range)
    any_mixed_positional = False
    ordinal = 0
    visible = visible_ms(table)
    for snapshot in snapshots:
        if not _changes_rows(snapshot):
            continue
        changes = snapshot_changes(table, planner, snapshot, schema)
        commits.append(f"({ordinal}, {snapshot.snapshot_id}, {visible.get(snapshot.snapshot_id, snapshot.timestamp_ms)})")
        for uri in changes.added:
            added_at.setdefault(uri, ordinal)
        parts = [f"SELECT {columns}, 1 AS {_WEIGHT}, {ordinal} AS {CHANGE_ORDINAL} FROM {r}" for r in changes.inserted]
        parts += [f"SELECT {columns}, -1 AS {_WEIGHT}, {ordinal} AS {CHANGE_ORDINAL} FROM {r}" for r in changes.deleted]
        if changes.position_deletes:
            positional.append((ordinal, changes))
            any_mixed_positional |= bool(changes.inserted)
        # Only a snapshot that both deletes and inserts can carry rows over.
        (mixed if changes.inserted and (changes.deleted or changes.position_deletes) else plain).extend(parts)
        ordinal += 1
    if positional:
        (mixed if any_mixed_positional else plain).append(_positional_deletes_sql(schema, positional, added_at))
    pieces = list(plain)
    if mixed:
        # Carry-over: an identical row deleted and re-inserted by one snapshot is no change; the
        # sum of weights per (row, snapshot) leaves what really changed (duplicates counted).
        summed = (
            f"SELECT * EXCLUDE ({_WEIGHT}), sum({_WEIGHT})::INTEGER AS {_WEIGHT} FROM ({' UNION ALL '.join(mixed)}) "
            f"GROUP BY ALL HAVING sum({_WEIGHT}) <> 0"
        )
        pieces.append(_expanded(summed, schema))
    rows = " UNION ALL ".join(pieces) if pieces else _typed_empty(schema)
    values = ", ".join(commits) if commits else "(NULL, NULL, NULL)"
    return rows, f"(VALUES {values}) AS c({CHANGE_ORDINAL}, {COMMIT_SNAPSHOT_ID}, __wharf_ms)"


def _positional_deletes_sql(schema: Schema, positional: Sequence[tuple[int, SnapshotChanges]], added_at: dict[str, int]) -> str:
    """Rows the range's positional delete files removed from files they did not add, with the ordinal that removed them.

    One pass for the whole range: every data file is read once (with row numbers) and joined
    with every position deleted in the range, keeping each position's first deletion; positions
    deleted before the range (or before the file came into the range: a snapshot's delete of a
    row it added itself) are no change.
    """
    files: dict[str, PlannedFile] = {}
    deletes: dict[str, int] = {}
    for ordinal, changes in positional:
        for f in changes.touched:
            files.setdefault(f.data_file.file_path, f)
        for d in changes.position_deletes:
            deletes.setdefault(local_path(d.file_path), ordinal)
    older = positional[0][1].older_deletes  # live before the first of them: deleted before the range
    mapping = ", ".join(f"({s(f.path)}, {s(uri)}, {added_at.get(uri, -1)})" for uri, f in files.items())
    listed = ", ".join(f"({s(path)}, {ordinal})" for path, ordinal in deletes.items())
    paths = ", ".join(s(path) for path in deletes)
    first = (
        f"(SELECT p.file_path AS uri, p.pos, min(o.ord) AS ord FROM read_parquet([{paths}], {NO_HIVE}, filename = true) p "
        f"JOIN (VALUES {listed}) o(path, ord) ON p.filename = o.path GROUP BY ALL)"
    )
    data = ScanPlan(schema=schema, snapshot_id=None).relation_sql(with_position=True, files=list(files.values()))
    columns = ", ".join(f"d.{q(f.name)}" for f in schema.fields)
    sql = (
        f"SELECT {columns}, -1 AS {_WEIGHT}, n.ord AS {CHANGE_ORDINAL}, m.uri, d.{POS_COLUMN} FROM {data} d "
        f"JOIN (VALUES {mapping}) m(path, uri, added) ON d.{FILE_COLUMN} = m.path "
        f"JOIN {first} n ON n.uri = m.uri AND n.pos = d.{POS_COLUMN} WHERE n.ord > m.added"
    )
    if older:
        old = ", ".join(s(p) for p in older)
        sql = (
            f"SELECT * FROM ({sql}) k ANTI JOIN (SELECT file_path, pos FROM read_parquet([{old}], {NO_HIVE})) o "
            f"ON o.file_path = k.uri AND o.pos = k.{POS_COLUMN}"
        )
    names = ", ".join(q(f.name) for f in schema.fields)
    return f"SELECT {names}, {_WEIGHT}, {CHANGE_ORDINAL} FROM ({sql})"


def _expanded(summed: str, schema: Schema) -> str:
    """Rows with a summed weight of ±n become n rows of weight ±1 (a row value present n times)."""
    columns = ", ".join(q(f.name) for f in schema.fields)
    return (
        "SELECT * FROM ("
        + (
            f"WITH __wharf_summed AS MATERIALIZED ({summed}) "
            f"SELECT {columns}, sign({_WEIGHT})::INTEGER AS {_WEIGHT}, {CHANGE_ORDINAL} FROM __wharf_summed "
            f"WHERE abs({_WEIGHT}) = 1 UNION ALL "
            f"SELECT {columns}, sign({_WEIGHT})::INTEGER AS {_WEIGHT}, {CHANGE_ORDINAL} FROM "
            f"(SELECT *, unnest(range(abs({_WEIGHT}))) AS __wharf_copy FROM __wharf_summed WHERE abs({_WEIGHT}) > 1)"
        )
        + ")"
    )


def changelog_sql(table: Table, planner: ScanPlanner, options: ChangelogOptions) -> str:
    """The changelog of ``options``'s range as one DuckDB query: the table's columns plus
    ``_change_type``, ``_change_ordinal``, ``_commit_snapshot_id``, ``_commit_timestamp``."""
    if options.net_changes and options.compute_updates:
        raise InvalidArgument(
            "net_changes and compute_updates cannot both be true",
            hint="net changes collapse updates; ask for one or the other (as in Spark)",
        )
    schema = table.schema()
    clash = [c for c in CHANGE_COLUMNS if _has(schema, c)]
    if clash:
        raise InvalidArgument(f"Table {'.'.join(table.name())} has a column named {clash[0]}, which the changelog adds")
    snapshots = snapshots_in_range(table, options)
    rows, commits = raw_changes_sql(table, planner, snapshots, schema)
    columns = ", ".join(q(f.name) for f in schema.fields)
    kind = f"CASE WHEN {_WEIGHT} > 0 THEN '{INSERT}' ELSE '{DELETE}' END"
    if options.net_changes:
        # Net effect per row value between the range's start and end; the last change's commit.
        netted = (
            f"SELECT {columns}, sum({_WEIGHT})::INTEGER AS {_WEIGHT}, max({CHANGE_ORDINAL}) AS {CHANGE_ORDINAL} "
            f"FROM ({rows}) GROUP BY ALL HAVING sum({_WEIGHT}) <> 0"
        )
        rows = _expanded(netted, schema)
    if options.compute_updates:
        keys = identifier_columns(table, options.identifier_columns)
        if not keys:
            raise InvalidArgument(
                f"Cannot compute updates of {'.'.join(table.name())}: it has no identifier fields",
                hint="pass identifier_columns => array('id', …) or ALTER TABLE … SET IDENTIFIER FIELDS id",
            )
        partition = ", ".join([f"r.{CHANGE_ORDINAL}", *(q(k) for k in keys)])
        # A key deleted once and inserted once by one snapshot was updated.
        kind = (
            f"CASE WHEN count(*) FILTER (WHERE {_WEIGHT} < 0) OVER __w = 1 "
            f"AND count(*) FILTER (WHERE {_WEIGHT} > 0) OVER __w = 1 "
            f"THEN CASE WHEN {_WEIGHT} < 0 THEN '{UPDATE_BEFORE}' ELSE '{UPDATE_AFTER}' END "
            f"ELSE CASE WHEN {_WEIGHT} > 0 THEN '{INSERT}' ELSE '{DELETE}' END END"
        )
        return (
            f"SELECT {columns}, {kind} AS {CHANGE_TYPE}, r.{CHANGE_ORDINAL}, c.{COMMIT_SNAPSHOT_ID}, "
            f"epoch_ms(c.__wharf_ms) AS {COMMIT_TIMESTAMP} FROM ({rows}) r JOIN {commits} "
            f"ON r.{CHANGE_ORDINAL} = c.{CHANGE_ORDINAL} WINDOW __w AS (PARTITION BY {partition})"
        )
    return (
        f"SELECT {columns}, {kind} AS {CHANGE_TYPE}, r.{CHANGE_ORDINAL}, c.{COMMIT_SNAPSHOT_ID}, "
        f"epoch_ms(c.__wharf_ms) AS {COMMIT_TIMESTAMP} FROM ({rows}) r JOIN {commits} ON r.{CHANGE_ORDINAL} = c.{CHANGE_ORDINAL}"
    )


def _has(schema: Schema, name: str) -> bool:
    return any(f.name.lower() == name.lower() for f in schema.fields)


# --- SCD Type-2 -----------------------------------------------------------------------------------


def scd2_columns(schema: Schema, delete_markers: bool) -> list[str]:
    return (
        [f.name for f in schema.fields] + [EFFECTIVE_START, EFFECTIVE_END, IS_CURRENT] + ([IS_DELETED] if delete_markers else [])
    )


def scd2_sql(
    table: Table, planner: ScanPlanner, options: Scd2Options, *, start_snapshot_id: int | None = None
) -> tuple[str, list[str]]:
    """SCD Type-2 versions of the table's rows as one DuckDB query, and the key columns used.

    One row per version of each key: all columns plus ``effective_start`` (commit time of the
    version), ``effective_end`` (commit time of the key's next change; NULL while current) and
    ``is_current``. Keys are the identifier columns (given, else the table's identifier fields,
    else every column). With ``delete_markers`` a deleted key also gets a marker row (``is_deleted``)
    from its deletion until it comes back. ``start_snapshot_id`` limits it to the versions
    created after that snapshot (incremental refresh).
    """
    schema = table.schema()
    # Without a key (no identifier fields, none given), a row value is its own key: each version
    # lives from its insert to its delete, and an update ends one row and starts another.
    keys = identifier_columns(table, options.identifier_columns) or [f.name for f in schema.fields]
    range_options = ChangelogOptions(
        ref=options.ref, start_snapshot_id=start_snapshot_id, end_snapshot_id=options.end_snapshot_id
    )
    rows, commits = raw_changes_sql(table, planner, snapshots_in_range(table, range_options), schema)
    columns = ", ".join(q(f.name) for f in schema.fields)
    key_list = ", ".join(q(k) for k in keys)
    # Within a key, a snapshot's delete comes before its insert: an update ends one version and
    # starts the next at the same commit.
    order = f"r.{CHANGE_ORDINAL}, {_WEIGHT}"
    events = (
        f"SELECT {columns}, {_WEIGHT}, r.{CHANGE_ORDINAL}, epoch_ms(c.__wharf_ms) AS __wharf_at, "
        f"lead(epoch_ms(c.__wharf_ms)) OVER __k AS __wharf_next, lead(r.{CHANGE_ORDINAL}) OVER __k AS __wharf_next_ordinal, "
        f"lead({_WEIGHT}) OVER __k AS __wharf_next_weight "
        f"FROM ({rows}) r JOIN {commits} ON r.{CHANGE_ORDINAL} = c.{CHANGE_ORDINAL} "
        f"WINDOW __k AS (PARTITION BY {key_list} ORDER BY {order})"
    )
    marker = ", false AS is_deleted" if options.delete_markers else ""
    sql = (
        f"SELECT {columns}, __wharf_at AS {EFFECTIVE_START}, __wharf_next AS {EFFECTIVE_END}, "
        f"__wharf_next IS NULL AS {IS_CURRENT}{marker} FROM ({events}) WHERE {_WEIGHT} > 0"
    )
    if options.delete_markers:
        sql += (
            f" UNION ALL SELECT {columns}, __wharf_at, __wharf_next, __wharf_next IS NULL, true FROM ({events}) "
            f"WHERE {_WEIGHT} < 0 AND NOT (__wharf_next_ordinal IS NOT DISTINCT FROM {CHANGE_ORDINAL} "
            f"AND __wharf_next_weight > 0)"
        )
    return sql, keys
