"""Merge-on-read: row-level changes as Iceberg v2 positional delete files plus new rows.

``write.delete.mode``, ``write.update.mode`` and ``write.merge.mode`` (``copy-on-write``, the
default, or ``merge-on-read``) choose how DELETE, UPDATE and MERGE change a table. Copy-on-write
rewrites every data file holding a changed row (``tables.rewrite``); merge-on-read leaves the data
files alone and records the (file, position) of every deleted or updated row in positional delete
files, adding updated and inserted rows as new data files — in one snapshot, so readers see all
of it or nothing. Writes are small whatever the file size; reads pay for applying the deletes
until compaction (``tables.compaction``) folds them into the data.

Delete files follow the spec: Parquet with ``file_path`` (field id 2147483546) and ``pos``
(2147483545), sorted by both, full (untruncated) bounds on both columns so readers can tell which
data file a delete file applies to. ``write.delete.granularity`` = ``file`` (Iceberg's default
since 1.8: one delete file per data file) or ``partition`` (one per partition and statement).

This module also finds *dangling* delete files — ones that no longer apply to any live row —
so that rewrites remove them instead of leaving them in every later scan plan (PyIceberg's
overwrite leaves them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.conversions import to_bytes
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import Table
from pyiceberg.table.locations import load_location_provider
from pyiceberg.types import LongType, StringType

from wharf.errors import InvalidArgument
from wharf.storage import file_size, open_output, remove_file
from wharf.tables.manifest_cache import manifest_entries
from wharf.tables.rewrite import DELETE, INSERT, OP_COLUMN, UPDATE, Rewrite, Run, column_list, counted
from wharf.tables.scan import FILE_COLUMN, POS_COLUMN, PlannedFile, ScanPlan, partition_key, quote_str

COPY_ON_WRITE = "copy-on-write"
MERGE_ON_READ = "merge-on-read"
MODES = (COPY_ON_WRITE, MERGE_ON_READ)
GRANULARITY_PROPERTY = "write.delete.granularity"

# The spec's reserved field ids of a positional delete file's columns.
FILE_PATH_ID = 2147483546
POS_ID = 2147483545
_DELETE_SCHEMA = pa.schema(
    [
        pa.field("file_path", pa.string(), nullable=False, metadata={b"PARQUET:field_id": str(FILE_PATH_ID).encode()}),
        pa.field("pos", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": str(POS_ID).encode()}),
    ]
)


def write_mode(table: Table, statement: str) -> str:
    """The table's ``write.<statement>.mode`` (statement: delete, update or merge)."""
    key = f"write.{statement}.mode"
    mode = table.metadata.properties.get(key, COPY_ON_WRITE).strip().lower()
    if mode not in MODES:
        raise InvalidArgument(
            f"Table property {key} = {mode!r} is not a write mode",
            hint=f"ALTER TABLE … SET TBLPROPERTIES ('{key}' = 'copy-on-write' | 'merge-on-read')",
        )
    return mode


def merge_on_read(run: Run, plan: ScanPlan, changes: str, *, with_values: bool = True) -> Rewrite:
    """The merge-on-read form of the changes in ``changes`` (see ``tables.rewrite`` for its columns).

    Deleted and updated rows are marked by position; updated and inserted rows become new rows.
    A data file losing every row (known exactly only while no delete applies to it) is removed
    outright instead of being shadowed by a delete file.
    """
    result = counted(run, changes)
    per_file = run(
        f"SELECT {FILE_COLUMN}, count(DISTINCT {POS_COLUMN}) FROM {changes} "
        f"WHERE {FILE_COLUMN} IS NOT NULL AND {OP_COLUMN} IN ('{UPDATE}', '{DELETE}') GROUP BY ALL"
    ).fetchall()
    by_path = {f.path: f for f in plan.files}
    exact_counts = not plan.position_deletes and not plan.equality_deletes
    for path, changed in per_file:
        planned = by_path[path]
        whole = exact_counts and changed == planned.data_file.record_count
        (result.removed if whole else result.referenced).append(planned)
    if result.referenced:
        dropped = ", ".join(quote_str(f.path) for f in result.removed)
        not_dropped = f" AND {FILE_COLUMN} NOT IN ({dropped})" if dropped else ""
        result.positions = (
            f"SELECT DISTINCT {FILE_COLUMN}, {POS_COLUMN} FROM {changes} WHERE {FILE_COLUMN} IS NOT NULL "
            f"AND {OP_COLUMN} IN ('{UPDATE}', '{DELETE}'){not_dropped}"
        )
    if with_values and (result.updated or result.inserted):
        result.query = f"SELECT {column_list(plan.schema)} FROM {changes} WHERE {OP_COLUMN} IN ('{UPDATE}', '{INSERT}')"
    return result


def write_position_deletes(table: Table, positions: pa.Table, files: Iterable[PlannedFile]) -> list[DataFile]:
    """Write positional delete files for ``positions`` (columns: data file path as read, pos).

    One file per data file, or per partition with ``write.delete.granularity = partition``.
    Rows are sorted by (file_path, pos) as the spec requires; ``file_path`` holds the data
    file's exact Iceberg path.
    """
    if positions.num_rows == 0:
        return []
    by_path = {f.path: f.data_file for f in files}
    granularity = table.metadata.properties.get(GRANULARITY_PROPERTY, "file").strip().lower()
    if granularity not in ("file", "partition"):
        raise InvalidArgument(
            f"Table property {GRANULARITY_PROPERTY} = {granularity!r} is not valid", hint="use 'file' or 'partition'"
        )
    # Paths as DuckDB read them → the data files' Iceberg paths, once per distinct file.
    encoded = positions.column(0).combine_chunks().dictionary_encode()
    as_uri = pa.array([by_path[p].file_path for p in encoded.dictionary.to_pylist()], pa.string())
    uris = pa.DictionaryArray.from_arrays(encoded.indices, as_uri).cast(pa.string())
    rows = pa.table([uris, positions.column(1).cast(pa.int64())], schema=_DELETE_SCHEMA).sort_by(
        [("file_path", "ascending"), ("pos", "ascending")]
    )
    data_files = {f.file_path: f for f in by_path.values()}
    # Sorted by path, each data file's rows are one slice; a delete file is the slices of its group.
    slices: dict[str, tuple[int, int]] = {}
    start = 0
    for item in pc.value_counts(rows.column("file_path")).to_pylist():
        slices[item["values"]] = (start, item["counts"])
        start += item["counts"]
    groups: dict[object, list[str]] = {}
    for uri in sorted(slices):
        key = uri if granularity == "file" else partition_key(data_files[uri])
        groups.setdefault(key, []).append(uri)
    written: list[DataFile] = []
    try:
        for members in groups.values():
            part = pa.concat_tables([rows.slice(*slices[uri]) for uri in members])
            written.append(_write_delete_file(table, part, data_files[members[0]]))
    except BaseException:
        for f in written:
            _remove(f.file_path, table.io)
        raise
    return written


def _write_delete_file(table: Table, rows: pa.Table, data_file: DataFile) -> DataFile:
    props = table.metadata.properties
    provider = load_location_provider(table_location=table.metadata.location, table_properties=props)
    uri = provider.new_data_location(f"{uuid.uuid4()}-deletes.parquet")
    codec = props.get("write.delete.parquet.compression-codec", props.get("write.parquet.compression-codec", "zstd")).lower()
    try:
        with open_output(table.io, uri) as stream:
            pq.write_table(rows, stream, compression=codec if codec != "uncompressed" else "none")
    except BaseException:
        _remove(uri, table.io)
        raise
    file_paths, pos = rows.column("file_path"), rows.column("pos")
    # Full bounds (Iceberg's metrics config for position deletes never truncates them): a reader
    # sees from lower == upper that the file applies to exactly one data file.
    bounds = {
        FILE_PATH_ID: (pc.min(file_paths).as_py(), pc.max(file_paths).as_py(), StringType()),
        POS_ID: (pc.min(pos).as_py(), pc.max(pos).as_py(), LongType()),
    }
    size = file_size(table.io, uri)
    delete_file = DataFile.from_args(
        content=DataFileContent.POSITION_DELETES,
        file_path=uri,
        file_format=FileFormat.PARQUET,
        partition=data_file.partition,
        record_count=rows.num_rows,
        file_size_in_bytes=size,
        column_sizes={},
        value_counts={FILE_PATH_ID: rows.num_rows, POS_ID: rows.num_rows},
        null_value_counts={FILE_PATH_ID: 0, POS_ID: 0},
        nan_value_counts={},
        lower_bounds={k: to_bytes(t, lo) for k, (lo, _hi, t) in bounds.items()},
        upper_bounds={k: to_bytes(t, hi) for k, (_lo, hi, t) in bounds.items()},
        split_offsets=None,
        equality_ids=None,
        sort_order_id=None,
        key_metadata=None,
    )
    delete_file.spec_id = data_file.spec_id  # not a field of the Avro struct: from_args would drop it
    return delete_file


def _remove(uri: str, io: Any) -> None:
    remove_file(io, uri)


# --- dangling delete files ----------------------------------------------------------------------


def referenced_paths(table: Table, delete_file: DataFile) -> set[str]:
    """The data file paths a positional delete file names (from its bounds when they agree, else its rows)."""
    lower = (delete_file.lower_bounds or {}).get(FILE_PATH_ID)
    upper = (delete_file.upper_bounds or {}).get(FILE_PATH_ID)
    if lower is not None and lower == upper:
        return {lower.decode()}
    with table.io.new_input(delete_file.file_path).open() as stream:
        column = pq.read_table(stream, columns=["file_path"]).column("file_path")
    return set(pc.unique(column).to_pylist())


def dangling_deletes(
    table: Table,
    deletes: Iterable[tuple[DataFile, int]],
    live_data: Iterable[tuple[DataFile, int]],
) -> list[DataFile]:
    """The delete files of ``deletes`` (file, sequence number) that apply to no data file of ``live_data``.

    A positional delete applies to the data files it names, if they have a sequence number no
    higher than its own; an equality delete to data files of its partition (any partition if its
    spec is unpartitioned) with a lower sequence number.
    """
    live = list(live_data)
    live_seq = {df.file_path: seq for df, seq in live}
    specs = table.metadata.specs()
    dangling: list[DataFile] = []
    for df, seq in deletes:
        if df.content == DataFileContent.POSITION_DELETES:
            applies = any(live_seq.get(p, seq + 1) <= seq for p in referenced_paths(table, df))
        else:
            unpartitioned = specs[df.spec_id].is_unpartitioned()
            scope = partition_key(df)
            applies = any(s < seq and (unpartitioned or partition_key(d) == scope) for d, s in live)
        if not applies:
            dangling.append(df)
    return dangling


def live_files(table: Table, snapshot_id: int | None) -> tuple[list[tuple[DataFile, int]], list[tuple[DataFile, int]]]:
    """(data files, delete files) live in a snapshot, each with its data sequence number."""
    data: list[tuple[DataFile, int]] = []
    deletes: list[tuple[DataFile, int]] = []
    snapshot = table.metadata.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    if snapshot is None:
        return data, deletes
    for manifest in snapshot.manifests(table.io):
        for entry in manifest_entries(table.io, manifest):
            pair = (entry.data_file, entry.sequence_number or 0)
            (data if entry.data_file.content == DataFileContent.DATA else deletes).append(pair)
    return data, deletes


def removable_deletes(table: Table, plan: ScanPlan, removed: Iterable[PlannedFile]) -> list[DataFile]:
    """Delete files of ``plan`` that apply to no live row once the ``removed`` data files are gone.

    File-scoped positional deletes (one data file, by their bounds) are decided without reading
    anything; the others only when they name a removed file (positional) or by the table's live
    data files (equality), read from the manifests only when needed.
    """
    gone = {f.data_file.file_path for f in removed}
    if not plan.delete_files or not gone:
        return []
    dangling: list[DataFile] = []
    unsure: list[tuple[DataFile, int]] = []
    for df, seq in plan.delete_files:
        if df.content != DataFileContent.POSITION_DELETES:
            unsure.append((df, seq))
            continue
        lower = (df.lower_bounds or {}).get(FILE_PATH_ID)
        if lower is not None and lower == (df.upper_bounds or {}).get(FILE_PATH_ID):
            if lower.decode(errors="replace") in gone:
                dangling.append(df)
        elif referenced_paths(table, df) & gone:
            unsure.append((df, seq))
    if unsure:
        data, _deletes = live_files(table, plan.snapshot_id)
        dangling += dangling_deletes(table, unsure, [(d, s) for d, s in data if d.file_path not in gone])
    return dangling
