"""Table statistics: per-column distinct counts in an Iceberg Puffin file, registered in the table metadata.

``compute_table_stats`` (Iceberg's Spark procedure of that name) reads the distinct values of
each column at a snapshot, writes one ``apache-datasketches-theta-v1`` blob per column — the
theta sketch of the values (``wharf.tables.theta``), with the ``ndv`` property the Puffin spec
defines — into ``<table>/metadata/<snapshot-id>-<uuid>.stats``, and registers the file with
PyIceberg's ``UpdateStatistics`` through the lake catalog's commit path. Readers that plan with
statistics (Trino, Spark's CBO) read ``ndv``; readers that merge sketches get ones hashed as
Iceberg's Java implementation hashes them.

The ``ndv`` written is the exact number of distinct non-NULL values (the sketch is computed
from all of them, so nothing is estimated twice); the sketch's own estimate equals it up to
4096 distinct values and approximates it beyond.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg import types as it
from pyiceberg.conversions import to_bytes
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.puffin import MAGIC_BYTES, Footer, PuffinBlobMetadata
from pyiceberg.table.statistics import BlobMetadata, StatisticsFile

from wharf import pyiceberg_compat as compat
from wharf.errors import ConflictError, InvalidArgument, NotFound, WharfError
from wharf.tables import theta
from wharf.tables.commit import commit_lock, private
from wharf.tables.refs import table_label

THETA_BLOB = "apache-datasketches-theta-v1"
NDV_PROPERTY = "ndv"
CREATED_BY = "Wharf (wharf-lakehouse)"

DistinctValues = Callable[[str], pa.Array]
"""Given a column name, its distinct non-NULL values at the snapshot being analysed."""

# Iceberg types whose single-value serialization is a fixed-width little-endian number:
# (Arrow type to cast the column to, numpy dtype of the serialized value).
_FIXED: dict[type[it.PrimitiveType], tuple[pa.DataType, str]] = {
    it.BooleanType: (pa.uint8(), "<u1"),
    it.IntegerType: (pa.int32(), "<i4"),
    it.DateType: (pa.int32(), "<i4"),
    it.LongType: (pa.int64(), "<i8"),
    it.TimeType: (pa.int64(), "<i8"),
    it.FloatType: (pa.float32(), "<f4"),
    it.DoubleType: (pa.float64(), "<f8"),
}
_TIMESTAMPS = {
    it.TimestampType: "us",
    it.TimestamptzType: "us",
    it.TimestampNanoType: "ns",
    it.TimestamptzNanoType: "ns",
}


@dataclass(frozen=True)
class ColumnStatistics:
    field_id: int
    name: str
    ndv: int
    sketch: bytes


def _as_numbers(values: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_date(values.type) or pa.types.is_time(values.type):
        return values.view(pa.int32() if pa.types.is_date32(values.type) or pa.types.is_time32(values.type) else pa.int64())
    return values.cast(arrow_type)


def value_hashes(field_type: it.IcebergType, values: pa.Array) -> np.ndarray:
    """Theta hashes of non-NULL ``values`` of an Iceberg primitive type, serialized as Iceberg serializes single values."""
    values = pc.drop_null(values)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    kind = type(field_type)
    if kind in _FIXED:
        arrow_type, dtype = _FIXED[kind]
        if kind is it.TimeType and pa.types.is_time(values.type) and values.type.unit != "us":
            values = values.cast(pa.time64("us"))
        numbers = _as_numbers(values, arrow_type).to_numpy(zero_copy_only=False).astype(dtype)
        return theta.fixed_width_hashes(numbers.view(np.uint8).reshape(len(numbers), np.dtype(dtype).itemsize))
    if kind in _TIMESTAMPS:
        unit = _TIMESTAMPS[kind]
        if not pa.types.is_timestamp(values.type) or values.type.unit != unit:
            values = values.cast(pa.timestamp(unit, tz=getattr(values.type, "tz", None)))
        numbers = values.view(pa.int64()).to_numpy(zero_copy_only=False).astype("<i8")
        return theta.fixed_width_hashes(numbers.view(np.uint8).reshape(len(numbers), 8))
    if isinstance(field_type, it.StringType):
        return theta.theta_hashes(v.encode() for v in values.to_pylist())
    if isinstance(field_type, (it.BinaryType, it.FixedType)):
        return theta.theta_hashes(values.to_pylist())
    if isinstance(field_type, it.UUIDType):
        return theta.theta_hashes(to_bytes(field_type, _uuid(v)) for v in values.to_pylist())
    if isinstance(field_type, it.DecimalType):
        return theta.theta_hashes(to_bytes(field_type, v) for v in values.to_pylist())
    raise InvalidArgument(f"Statistics cannot be computed for columns of type {field_type}")


def _uuid(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, bytes):
        return uuid.UUID(bytes=value)
    return uuid.UUID(str(value))


def stats_columns(schema: Schema, columns: list[str] | None, label: str) -> list[it.NestedField]:
    """The top-level primitive columns to analyse: ``columns`` (case-insensitive), or all of them."""
    if not columns:
        return [f for f in schema.fields if isinstance(f.field_type, it.PrimitiveType)]
    by_name = {f.name.lower(): f for f in schema.fields}
    chosen: list[it.NestedField] = []
    for name in columns:
        found = by_name.get(name.lower())
        if found is None:
            raise NotFound(
                f"Column '{name}' does not exist in table {label}",
                hint=f"the columns are: {', '.join(f.name for f in schema.fields)}",
            )
        if not isinstance(found.field_type, it.PrimitiveType):
            raise InvalidArgument(
                f"Column '{found.name}' of {label} has type {found.field_type}; statistics are computed for primitive columns"
            )
        if found not in chosen:
            chosen.append(found)
    return chosen


def puffin_bytes(
    blobs: list[tuple[PuffinBlobMetadata, bytes]], properties: dict[str, str] | None = None
) -> tuple[bytes, int, list[PuffinBlobMetadata]]:
    """A Puffin file holding ``blobs`` (their offsets and lengths are filled in), with an uncompressed footer.

    Returns (file bytes, footer size in bytes, blob metadata as written).
    """
    body = bytearray(MAGIC_BYTES)
    placed: list[PuffinBlobMetadata] = []
    for meta, payload in blobs:
        placed.append(meta.model_copy(update={"offset": len(body), "length": len(payload)}))
        body += payload
    footer = Footer(blobs=placed, properties=properties or {})
    payload_json = json.dumps(footer.model_dump(by_alias=True, exclude_none=True), separators=(",", ":")).encode()
    footer_bytes = MAGIC_BYTES + payload_json + len(payload_json).to_bytes(4, "little") + bytes(4) + MAGIC_BYTES
    return bytes(body + footer_bytes), len(footer_bytes), placed


def compute_table_stats(
    table: Table, distinct: DistinctValues, *, snapshot_id: int | None = None, columns: list[str] | None = None
) -> StatisticsFile:
    """Write the Puffin statistics file of ``snapshot_id`` (default: current) and register it. Returns it."""
    label = table_label(table)
    metadata = table.metadata
    sid = metadata.current_snapshot_id if snapshot_id is None else snapshot_id
    snapshot = metadata.snapshot_by_id(sid) if sid is not None else None
    if snapshot is None:
        if sid is None:
            raise NotFound(f"Table {label} has no snapshot to compute statistics for", hint="write some data first")
        raise NotFound(
            f"Snapshot {sid} does not exist on table {label}",
            hint=f"list snapshots with SELECT snapshot_id, committed_at FROM {label}.snapshots",
        )
    schema = metadata.schema_by_id(snapshot.schema_id) if snapshot.schema_id is not None else None
    schema = schema or metadata.schema()
    fields = stats_columns(schema, columns, label)
    sequence_number = snapshot.sequence_number or 0
    blobs: list[tuple[PuffinBlobMetadata, bytes]] = []
    for field in fields:
        values = distinct(field.name)
        hashes = value_hashes(field.field_type, values)
        blobs.append(
            (
                PuffinBlobMetadata(
                    type=THETA_BLOB,
                    fields=[field.field_id],
                    snapshot_id=snapshot.snapshot_id,
                    sequence_number=sequence_number,
                    offset=0,
                    length=0,
                    properties={NDV_PROPERTY: str(len(values))},
                ),
                theta.compact_sketch(hashes),
            )
        )
    content, footer_size, placed = puffin_bytes(blobs, {"created-by": CREATED_BY})
    path = table.location_provider().new_metadata_location(f"{snapshot.snapshot_id}-{uuid.uuid4()}.stats")
    with table.io.new_output(path).create(overwrite=False) as out:
        out.write(content)
    statistics = StatisticsFile(
        snapshot_id=snapshot.snapshot_id,
        statistics_path=path,
        file_size_in_bytes=len(content),
        file_footer_size_in_bytes=footer_size,
        blob_metadata=[
            BlobMetadata(
                type=THETA_BLOB,
                snapshot_id=b.snapshot_id,
                sequence_number=b.sequence_number,
                fields=b.fields,
                properties=b.properties,
            )
            for b in placed
        ],
    )
    try:
        with commit_lock(table):
            tx = compat.MemoizedTransaction(private(table))
            tx.update_statistics().set_statistics(statistics).commit()
            tx.commit_transaction()
    except CommitFailedException as exc:
        _remove(table, path)
        raise ConflictError(
            f"Concurrent change to {label} while registering its statistics: {exc}",
            table=label,
            hint="nothing was changed; run the procedure again",
        ) from exc
    except WharfError:  # a gate refused the change: it did not land
        _remove(table, path)
        raise
    return statistics


def _remove(table: Table, path: str) -> None:
    try:
        table.io.delete(path)
    except Exception:  # noqa: BLE001 - an orphan for remove_orphan_files to collect
        pass
