"""Iceberg metadata tables (``t.snapshots``, ``t.files``, …) as Arrow tables DuckDB can read.

Names and columns are Iceberg's (the Spark "Queries" page). PyIceberg's ``table.inspect``
computes most of them; ``all_entries`` and ``position_deletes``, which it lacks, are built here
from the manifests. A table without snapshots, or a snapshot without manifests, gives no rows
with the table's columns. The ``all_*`` tables cover every snapshot, so, as in Iceberg, they
take no ``FOR VERSION AS OF``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.conversions import from_bytes
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat, ManifestContent, ManifestEntry, ManifestFile
from pyiceberg.partitioning import PartitionField
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.types import PrimitiveType
from pyiceberg.utils.concurrent import ExecutorFactory

from wharf.errors import InvalidArgument, UnsupportedStatement

MetadataTable = Callable[[Table, int | None], pa.Table]

# PyIceberg's partitions needs a snapshot; a table without one has none. Its columns (the
# partition as NULL-typed: there are no values to type it by).
_EMPTY_PARTITIONS = pa.schema(
    [
        ("partition", pa.null()),
        ("spec_id", pa.int32()),
        ("record_count", pa.int64()),
        ("file_count", pa.int32()),
        ("total_data_file_size_in_bytes", pa.int64()),
        ("position_delete_record_count", pa.int64()),
        ("position_delete_file_count", pa.int32()),
        ("equality_delete_record_count", pa.int64()),
        ("equality_delete_file_count", pa.int32()),
        ("last_updated_at", pa.timestamp("ms")),
        ("last_updated_snapshot_id", pa.int64()),
    ]
)


def _duckdb_ready(data: pa.Table) -> pa.Table:
    return pa.table({n: _no_empty_structs(c) for n, c in zip(data.column_names, data.columns, strict=True)})


def _no_empty_structs(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """DuckDB cannot read a struct without fields (``partition`` of an unpartitioned table): make it NULL."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if not pa.types.is_struct(kind) or not _has_empty_struct(kind):
        return array
    if kind.num_fields == 0:
        return pa.nulls(len(array))
    children = [_no_empty_structs(child) for child in array.flatten()]
    fields = [pa.field(kind.field(i).name, child.type) for i, child in enumerate(children)]
    return pa.StructArray.from_arrays(children, fields=fields, mask=array.is_null())


def _has_empty_struct(kind: pa.DataType) -> bool:
    return pa.types.is_struct(kind) and (
        kind.num_fields == 0 or any(_has_empty_struct(kind.field(i).type) for i in range(kind.num_fields))
    )


def _snapshot(table: Table, snapshot_id: int | None) -> Snapshot | None:
    if snapshot_id is None:
        return table.metadata.current_snapshot()
    return table.metadata.snapshot_by_id(snapshot_id)


def _without_snapshots(table: Table) -> Table:
    """``table`` as if it had no snapshots: PyIceberg's tables then answer with no rows and their columns."""
    metadata = table.metadata.model_copy(update={"snapshots": [], "refs": {}, "current_snapshot_id": None})
    return Table(table.name(), metadata, table.metadata_location, table.io, table.catalog)


def _inspect(name: str, with_snapshot: bool = False) -> MetadataTable:
    def run(table: Table, snapshot_id: int | None) -> pa.Table:
        method = getattr(table.inspect, name)
        if not with_snapshot:
            return _duckdb_ready(method())
        snapshot = _snapshot(table, snapshot_id)
        # PyIceberg fails on a snapshot without manifests (an empty append commits one).
        if snapshot is None or not snapshot.manifests(table.io):
            if name == "partitions":
                return _EMPTY_PARTITIONS.empty_table()
            return _duckdb_ready(getattr(_without_snapshots(table).inspect, name)())
        return _duckdb_ready(method(snapshot.snapshot_id))

    return run


def _every_snapshot(name: str, snapshot_id: int | None) -> None:
    if snapshot_id is not None:
        raise InvalidArgument(
            f"Metadata table {name} covers every snapshot and cannot be read AS OF a version",
            hint=f"read {name.removeprefix('all_')} FOR VERSION AS OF … for one snapshot",
        )


def _all(name: str) -> MetadataTable:
    """PyIceberg's ``all_files``, ``all_data_files``, ``all_delete_files`` and ``all_manifests``."""

    def run(table: Table, snapshot_id: int | None) -> pa.Table:
        _every_snapshot(name, snapshot_id)
        if not any(s.manifests(table.io) for s in table.metadata.snapshots):
            table = _without_snapshots(table)  # PyIceberg fails when no snapshot has a manifest
        return _duckdb_ready(getattr(table.inspect, name)())

    return run


# --- entries -----------------------------------------------------------------------------------


def _metrics_type(field_type: Any) -> pa.StructType:
    bound = schema_to_pyarrow(field_type)
    return pa.struct(
        [
            ("column_size", pa.int64()),
            ("value_count", pa.int64()),
            ("null_value_count", pa.int64()),
            ("nan_value_count", pa.int64()),
            ("lower_bound", bound),
            ("upper_bound", bound),
        ]
    )


def _entries_schema(table: Table) -> pa.Schema:
    """The columns of PyIceberg's ``entries``, which ``all_entries`` shares."""
    schema = table.schema()
    metrics = [pa.field(f.name, _metrics_type(f.field_type), nullable=False) for f in schema.fields]
    data_file = pa.struct(
        [
            pa.field("content", pa.int8(), nullable=False),
            pa.field("file_path", pa.string(), nullable=False),
            pa.field("file_format", pa.string(), nullable=False),
            pa.field("partition", schema_to_pyarrow(table.metadata.specs_struct()), nullable=False),
            pa.field("record_count", pa.int64(), nullable=False),
            pa.field("file_size_in_bytes", pa.int64(), nullable=False),
            ("column_sizes", pa.map_(pa.int32(), pa.int64())),
            ("value_counts", pa.map_(pa.int32(), pa.int64())),
            ("null_value_counts", pa.map_(pa.int32(), pa.int64())),
            ("nan_value_counts", pa.map_(pa.int32(), pa.int64())),
            ("lower_bounds", pa.map_(pa.int32(), pa.binary())),
            ("upper_bounds", pa.map_(pa.int32(), pa.binary())),
            ("key_metadata", pa.binary()),
            ("split_offsets", pa.list_(pa.int64())),
            ("equality_ids", pa.list_(pa.int32())),
            ("sort_order_id", pa.int32()),
        ]
    )
    return pa.schema(
        [
            pa.field("status", pa.int8(), nullable=False),
            pa.field("snapshot_id", pa.int64(), nullable=False),
            pa.field("sequence_number", pa.int64(), nullable=False),
            pa.field("file_sequence_number", pa.int64(), nullable=False),
            pa.field("data_file", data_file, nullable=False),
            pa.field("readable_metrics", pa.struct(metrics)),
        ]
    )


def _readable_bound(field_type: Any, bound: bytes | None) -> Any:
    return from_bytes(field_type, bound) if bound is not None and isinstance(field_type, PrimitiveType) else None


def _readable_metrics(schema: Schema, data_file: DataFile) -> dict[str, dict[str, Any]]:
    sizes = data_file.column_sizes or {}
    values = data_file.value_counts or {}
    nulls = data_file.null_value_counts or {}
    nans = data_file.nan_value_counts or {}
    lower = data_file.lower_bounds or {}
    upper = data_file.upper_bounds or {}
    return {
        f.name: {
            "column_size": sizes.get(f.field_id),
            "value_count": values.get(f.field_id),
            "null_value_count": nulls.get(f.field_id),
            "nan_value_count": nans.get(f.field_id),
            "lower_bound": _readable_bound(f.field_type, lower.get(f.field_id)),
            "upper_bound": _readable_bound(f.field_type, upper.get(f.field_id)),
        }
        for f in schema.fields
    }


def _partition(fields: Sequence[PartitionField], data_file: DataFile) -> dict[str, Any]:
    """A file's partition as ``{partition field name: value}`` (``fields``: its spec's fields)."""
    return {f.name: data_file.partition[i] for i, f in enumerate(fields)}


def _plain(mapping: Any) -> dict[int, Any] | None:
    """A manifest's metrics map (PyIceberg reads them as lazy dicts pyarrow cannot convert)."""
    return None if mapping is None else dict(mapping)


def _entry_row(schema: Schema, fields: Sequence[PartitionField], entry: ManifestEntry) -> dict[str, Any]:
    f = entry.data_file
    return {
        "status": entry.status.value,
        "snapshot_id": entry.snapshot_id,
        "sequence_number": entry.sequence_number,
        "file_sequence_number": entry.file_sequence_number,
        "data_file": {
            "content": f.content.value,
            "file_path": f.file_path,
            "file_format": f.file_format.value,
            "partition": _partition(fields, f),
            "record_count": f.record_count,
            "file_size_in_bytes": f.file_size_in_bytes,
            "column_sizes": _plain(f.column_sizes),
            "value_counts": _plain(f.value_counts),
            "null_value_counts": _plain(f.null_value_counts),
            "nan_value_counts": _plain(f.nan_value_counts),
            "lower_bounds": _plain(f.lower_bounds),
            "upper_bounds": _plain(f.upper_bounds),
            "key_metadata": f.key_metadata,
            "split_offsets": f.split_offsets,
            "equality_ids": f.equality_ids,
            "sort_order_id": f.sort_order_id,
        },
        "readable_metrics": _readable_metrics(schema, f),
    }


def _entries_of(table: Table, manifests: Sequence[ManifestFile]) -> pa.Table:
    """Every entry (added, existing and deleted) of ``manifests``, in manifest order."""

    schema, specs = table.schema(), table.metadata.specs()

    def read(manifest: ManifestFile) -> list[dict[str, Any]]:
        fields = specs[manifest.partition_spec_id].fields
        return [_entry_row(schema, fields, e) for e in manifest.fetch_manifest_entry(table.io, discard_deleted=False)]

    executor = ExecutorFactory.get_or_create()
    rows = [row for chunk in executor.map(read, manifests) for row in chunk]
    return _duckdb_ready(pa.Table.from_pylist(rows, schema=_entries_schema(table)))


def _entries(table: Table, snapshot_id: int | None) -> pa.Table:
    snapshot = _snapshot(table, snapshot_id)
    if snapshot is None:
        return _entries_of(table, [])
    return _duckdb_ready(table.inspect.entries(snapshot.snapshot_id))


def _all_entries(table: Table, snapshot_id: int | None) -> pa.Table:
    """Entries of every manifest any snapshot reaches, each manifest once (Iceberg's AllEntriesTable)."""
    _every_snapshot("all_entries", snapshot_id)
    manifests = {m.manifest_path: m for s in table.metadata.snapshots for m in s.manifests(table.io)}
    return _entries_of(table, list(manifests.values()))


# --- position_deletes --------------------------------------------------------------------------


def _position_deletes_schema(table: Table) -> pa.Schema:
    """Spark's ``position_deletes``: one row per deleted position, with the delete file it is in."""
    return pa.schema(
        [
            pa.field("file_path", pa.string(), nullable=False),
            pa.field("pos", pa.int64(), nullable=False),
            pa.field("row", _row_type(table)),
            pa.field("partition", schema_to_pyarrow(table.metadata.specs_struct())),
            pa.field("spec_id", pa.int32(), nullable=False),
            pa.field("delete_file_path", pa.string(), nullable=False),
        ]
    )


def _row_type(table: Table) -> pa.StructType:
    return pa.struct(list(schema_to_pyarrow(table.schema(), include_field_ids=False)))


def _rows_like(column: pa.Array, kind: pa.StructType) -> pa.Array:
    """A delete file's ``row`` column (written with the schema of its day) as the table's row type, by name."""
    if column.type == kind:
        return column
    present = {column.type.field(i).name: column.field(i) for i in range(column.type.num_fields)}
    children = [present[f.name].cast(f.type) if f.name in present else pa.nulls(len(column), f.type) for f in kind]
    return pa.StructArray.from_arrays(children, fields=list(kind), mask=column.is_null())


def _position_delete_rows(table: Table, spec_id: int, data_file: DataFile, schema: pa.Schema) -> pa.Table:
    if data_file.file_format != FileFormat.PARQUET:
        raise UnsupportedStatement(
            f"position_deletes reads Parquet positional delete files; {data_file.file_path} is "
            f"{data_file.file_format.value} (deletion vectors are not supported yet)"
        )
    with table.io.new_input(data_file.file_path).open() as stream:
        parquet = pq.ParquetFile(stream)
        columns = ["file_path", "pos"] + (["row"] if "row" in parquet.schema_arrow.names else [])
        read = parquet.read(columns=columns)
    count = read.num_rows
    row_type = schema.field("row").type
    rows = _rows_like(read["row"].combine_chunks(), row_type) if "row" in columns else pa.nulls(count, row_type)
    partition = _partition(table.metadata.specs()[spec_id].fields, data_file)
    return pa.Table.from_arrays(
        [
            read["file_path"].cast(pa.string()),
            read["pos"].cast(pa.int64()),
            rows,
            pa.array([partition] * count, schema.field("partition").type),
            pa.array([spec_id] * count, pa.int32()),
            pa.array([data_file.file_path] * count, pa.string()),
        ],
        schema=schema,
    )


def _position_deletes(table: Table, snapshot_id: int | None) -> pa.Table:
    """The positions the live positional delete files of a snapshot delete (default: the current one)."""
    schema = _position_deletes_schema(table)
    snapshot = _snapshot(table, snapshot_id)
    manifests = [m for m in snapshot.manifests(table.io) if m.content == ManifestContent.DELETES] if snapshot else []
    parts = [
        _position_delete_rows(table, manifest.partition_spec_id, entry.data_file, schema)
        for manifest in manifests
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
        if entry.data_file.content == DataFileContent.POSITION_DELETES
    ]
    return _duckdb_ready(pa.concat_tables(parts) if parts else schema.empty_table())


METADATA_TABLES: dict[str, MetadataTable] = {
    "snapshots": _inspect("snapshots"),
    "history": _inspect("history"),
    "refs": _inspect("refs"),
    "files": _inspect("files", True),
    "data_files": _inspect("data_files", True),
    "delete_files": _inspect("delete_files", True),
    "manifests": _inspect("manifests"),
    "partitions": _inspect("partitions", True),
    "metadata_log_entries": _inspect("metadata_log_entries"),
    "entries": _entries,
    "position_deletes": _position_deletes,
    "all_data_files": _all("all_data_files"),
    "all_delete_files": _all("all_delete_files"),
    "all_files": _all("all_files"),
    "all_manifests": _all("all_manifests"),
    "all_entries": _all_entries,
}
