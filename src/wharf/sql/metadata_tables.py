"""Iceberg metadata tables (``t.snapshots``, ``t.files``, …) as Arrow tables DuckDB can read."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from pyiceberg.table import Table

MetadataTable = Callable[[Table, int | None], pa.Table]


# PyIceberg's entries and partitions need a snapshot; a table without one has none of either.
# Their columns (nested ones as NULL-typed: there are no values to type them by).
_EMPTY: dict[str, pa.Schema] = {
    "entries": pa.schema(
        [
            ("status", pa.int8()),
            ("snapshot_id", pa.int64()),
            ("sequence_number", pa.int64()),
            ("file_sequence_number", pa.int64()),
            ("data_file", pa.null()),
            ("readable_metrics", pa.null()),
        ]
    ),
    "partitions": pa.schema(
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
    ),
}


def _inspect(name: str, with_snapshot: bool = False) -> MetadataTable:
    def run(table: Table, snapshot_id: int | None) -> pa.Table:
        if name in _EMPTY and snapshot_id is None and table.metadata.current_snapshot() is None:
            return _EMPTY[name].empty_table()
        method = getattr(table.inspect, name)
        data = method(snapshot_id) if with_snapshot and snapshot_id is not None else method()
        return pa.table({n: _no_empty_structs(c) for n, c in zip(data.column_names, data.columns, strict=True)})

    return run


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
    "entries": _inspect("entries", True),
}
