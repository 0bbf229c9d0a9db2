"""Iceberg metadata tables (``t.snapshots``, ``t.files``, …) as Arrow tables DuckDB can read."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from pyiceberg.table import Table

MetadataTable = Callable[[Table, int | None], pa.Table]


def _inspect(name: str, with_snapshot: bool = False) -> MetadataTable:
    def run(table: Table, snapshot_id: int | None) -> pa.Table:
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
