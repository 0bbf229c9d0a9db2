"""Copy-on-write: turn row-level changes into the new contents of exactly the affected data files.

UPDATE, DELETE and MERGE all describe what they do as a *changes table* in DuckDB, one row per
changed row::

    __wharf_file  VARCHAR   data file of the target row (NULL for an inserted row)
    __wharf_pos   BIGINT    row position in that file     (NULL for an inserted row)
    __wharf_op    VARCHAR   'U' update, 'D' delete, 'I' insert
    <columns>               the row's new values (for 'U' and 'I'; anything for 'D')

``copy_on_write`` then finds the files with at least one changed row, drops files whose every
row is deleted without reading them again, and computes the new contents of the others — the
untouched rows (an anti-join on file + position) plus updated and inserted rows — in one DuckDB
query. Files without changes are never read a second time nor rewritten.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow.parquet as pq
from pyiceberg import expressions as ie
from pyiceberg import types as it
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.locations import load_location_provider
from pyiceberg.typedef import Record

from wharf.errors import SchemaMismatch
from wharf.storage import file_size, list_files, open_input, prepare_write, remove_file
from wharf.tables import predicates
from wharf.tables.commit import sort_keys
from wharf.tables.scan import FILE_COLUMN, POS_COLUMN, PlannedFile, ScanPlan, local_path, quote_ident, quote_str
from wharf.tables.types import iceberg_to_duckdb

OP_COLUMN = "__wharf_op"
UPDATE, DELETE, INSERT = "U", "D", "I"

Run = Callable[[str], duckdb.DuckDBPyConnection]
"""Executes SQL on the statement's DuckDB connection (raising Wharf errors)."""


@dataclass
class Rewrite:
    """What one copy-on-write statement commits: files to remove and the rows of the files to add."""

    removed: list[PlannedFile] = field(default_factory=list)
    query: str | None = None  # DuckDB SQL for the rows of the files to add (None: add nothing)
    # Merge-on-read (``tables.deletes``): DuckDB SQL for the (file as read, position) of the rows
    # to mark deleted in positional delete files, and the data files those rows are in.
    positions: str | None = None
    referenced: list[PlannedFile] = field(default_factory=list)
    updated: int = 0
    deleted: int = 0
    inserted: int = 0

    @property
    def affected(self) -> int:
        return self.updated + self.deleted + self.inserted


def column_list(schema: Schema, prefix: str = "") -> str:
    return ", ".join(f"{prefix}{quote_ident(f.name)}" for f in schema.fields)


def copy_on_write(run: Run, plan: ScanPlan, changes: str, *, with_values: bool = True) -> Rewrite:
    """Compute the rewrite described by the changes table ``changes`` over the files of ``plan``.

    ``with_values`` is False when ``changes`` holds only deletes (no column values).
    """
    result = counted(run, changes)
    per_file = run(
        f"SELECT {FILE_COLUMN}, count(DISTINCT {POS_COLUMN}) FILTER (WHERE {OP_COLUMN} = '{DELETE}') "
        f"FROM {changes} WHERE {FILE_COLUMN} IS NOT NULL GROUP BY ALL"
    ).fetchall()
    by_path = {f.path: f for f in plan.files}
    # With delete files in play a file's record_count includes rows already deleted.
    exact_counts = not plan.position_deletes and not plan.equality_deletes
    rewrite: list[PlannedFile] = []
    for path, deleted in per_file:
        planned = by_path[path]
        result.removed.append(planned)
        if not (exact_counts and deleted == planned.data_file.record_count):
            rewrite.append(planned)
    parts: list[str] = []
    if rewrite:
        parts.append(
            f"SELECT {column_list(plan.schema, 'r.')} FROM {plan.relation_sql(with_position=True, files=rewrite)} r "
            f"ANTI JOIN (SELECT {FILE_COLUMN}, {POS_COLUMN} FROM {changes} WHERE {FILE_COLUMN} IS NOT NULL) c "
            f"ON r.{FILE_COLUMN} = c.{FILE_COLUMN} AND r.{POS_COLUMN} = c.{POS_COLUMN}"
        )
    if with_values and (result.updated or result.inserted):
        parts.append(f"SELECT {column_list(plan.schema)} FROM {changes} WHERE {OP_COLUMN} IN ('{UPDATE}', '{INSERT}')")
    if parts:
        result.query = " UNION ALL ".join(parts)
    return result


def counted(run: Run, changes: str) -> Rewrite:
    """A ``Rewrite`` holding only the statement's counts of updated, deleted and inserted rows."""
    # A target row may repeat only for deletes (MERGE's unconditional DELETE skips the cardinality check).
    counts = run(
        f"SELECT {OP_COLUMN}, CASE WHEN {OP_COLUMN} = '{DELETE}' THEN count(DISTINCT ({FILE_COLUMN}, {POS_COLUMN})) "
        f"ELSE count(*) END FROM {changes} GROUP BY {OP_COLUMN}"
    ).fetchall()
    by_op = dict(counts)
    return Rewrite(updated=by_op.get(UPDATE, 0), deleted=by_op.get(DELETE, 0), inserted=by_op.get(INSERT, 0))


def check_required(run: Run, schema: Schema, changes: str, table_name: str) -> None:
    """Raise ``SchemaMismatch`` if an updated or inserted row has NULL in a NOT NULL column.

    Rows copied unchanged from existing files already satisfy the constraint, so only the
    changes are checked.
    """
    required = [f for f in schema.fields if f.required]
    if not required:
        return
    counts = ", ".join(f"count(*) FILTER (WHERE {quote_ident(f.name)} IS NULL)" for f in required)
    row = run(f"SELECT {counts} FROM {changes} WHERE {OP_COLUMN} IN ('{UPDATE}', '{INSERT}')").fetchone()
    for f, nulls in zip(required, row or (), strict=False):
        if nulls:
            raise SchemaMismatch(
                f"Column '{f.name}' of {table_name} is NOT NULL but {nulls} row(s) would have NULL",
                hint="filter out or fill the NULLs, or ALTER the column to allow NULL",
            )


# Types DuckDB writes to Parquet exactly as Iceberg expects them (others go through PyArrow).
_DUCKDB_WRITES = (
    it.BooleanType,
    it.IntegerType,
    it.LongType,
    it.FloatType,
    it.DoubleType,
    it.DecimalType,
    it.StringType,
    it.DateType,
    it.TimestampType,
    it.TimestamptzType,
)
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODECS = {"zstd", "snappy", "gzip", "uncompressed", "lz4", "brotli"}


def duckdb_can_write(table: Table, *, one_partition: bool = False) -> bool:
    """Whether ``write_query`` can write this table's files (plain Parquet types, local; unpartitioned
    unless the caller writes rows of ``one_partition``, as compaction does)."""
    props = table.metadata.properties
    return (
        (one_partition or table.spec().is_unpartitioned())
        and props.get("write.format.default", "parquet").lower() == "parquet"
        and (table.metadata.location.startswith("file:") or table.metadata.location.startswith("/"))
        and all(_duckdb_writes(f.field_type) and _PLAIN_NAME.match(f.name) for f in table.schema().fields)
    )


def _duckdb_writes(t: it.IcebergType) -> bool:
    # DuckDB stores wide decimals as 16-byte fixed, Iceberg as the minimal width: leave those to PyArrow.
    return isinstance(t, _DUCKDB_WRITES) and not (isinstance(t, it.DecimalType) and t.precision > 18)


def write_query(
    run: Run,
    table: Table,
    query: str,
    *,
    partition: Record | None = None,
    spec_id: int | None = None,
    target_file_size: int | None = None,
    order_by: str | None = None,
) -> list[DataFile]:
    """Let DuckDB write the rows of ``query`` as Parquet data files of ``table`` (with Iceberg field ids).

    DuckDB encodes and compresses row groups in parallel and nothing passes through Python; the
    Iceberg metrics come from each file's footer exactly as PyIceberg computes them for its
    writes. One file, or files of about ``target_file_size`` bytes; rows in the table's sort
    order unless ``order_by`` (a DuckDB ORDER BY list) says otherwise. ``partition`` / ``spec_id``
    label files whose rows all belong to one partition (compaction of a partition's files).
    """
    schema = table.schema()
    props = table.metadata.properties
    provider = load_location_provider(table_location=table.metadata.location, table_properties=props)
    uri = provider.new_data_location(f"{uuid.uuid4()}-wharf.parquet")
    if target_file_size is not None:
        uri = uri[: -len(".parquet")]  # a directory DuckDB fills with files of about the target size
    # A local path, or the s3:// URI itself (DuckDB's httpfs writes it; see wharf.storage).
    path = local_path(uri)
    prepare_write(path)
    io = table.io
    ids = "{" + ", ".join(f"{quote_str(f.name)}: {f.field_id}" for f in schema.fields) + "}"
    codec = props.get("write.parquet.compression-codec", "zstd").lower()
    codec = codec if codec in _CODECS else "zstd"
    # Cast to the table's types: a query over files written by other engines (or by older schema
    # versions) may produce wider types than the column's, which Iceberg readers reject.
    columns = ", ".join(
        f"CAST({quote_ident(f.name)} AS {iceberg_to_duckdb(f.field_type)}) AS {quote_ident(f.name)}" for f in schema.fields
    )
    keys = sort_keys(table)
    sorted_by_table = order_by is None and bool(keys)
    if order_by is None:
        order_by = ", ".join(
            f"{quote_ident(k.column)} {'DESC' if k.descending else 'ASC'} NULLS {'FIRST' if k.nulls_first else 'LAST'}"
            for k in keys
        )
    order = f" ORDER BY {order_by}" if order_by else ""
    split = f", FILE_SIZE_BYTES {int(target_file_size)}, FILENAME_PATTERN 'part-{{uuid}}'" if target_file_size else ""
    written: list[str] = []
    try:
        run(
            f"COPY (SELECT {columns} FROM ({query}){order}) TO {quote_str(path)} "
            f"(FORMAT parquet, COMPRESSION {codec}, FIELD_IDS {ids}{split})"
        )
        if target_file_size is None:
            written = [path]
        else:  # the files DuckDB split the output into
            written = sorted(f.uri for f in list_files(io, path))
        files: list[DataFile] = []
        for file_path in written:
            with open_input(io, file_path) as stream:
                metadata = pq.read_metadata(stream)
            if metadata.num_rows == 0:
                continue
            statistics = data_file_statistics_from_parquet_metadata(
                parquet_metadata=metadata,
                stats_columns=compute_statistics_plan(schema, props),
                parquet_column_mapping=parquet_path_to_id_mapping(schema),
            )
            data_file = DataFile.from_args(
                content=DataFileContent.DATA,
                file_path=uri if file_path == path else f"{uri}/{os.path.basename(file_path)}",
                file_format=FileFormat.PARQUET,
                partition=partition if partition is not None else Record(),
                file_size_in_bytes=file_size(io, file_path),
                sort_order_id=table.metadata.default_sort_order_id if sorted_by_table else None,
                equality_ids=None,
                key_metadata=None,
                **statistics.to_serialized_dict(),
            )
            # Not an Avro field of the data file struct: from_args would drop it.
            data_file.spec_id = spec_id if spec_id is not None else table.metadata.default_spec_id
            files.append(data_file)
        for file_path in written:
            if not any(local_path(f.file_path) == file_path for f in files):
                remove_file(io, file_path)  # empty output
        return files
    except BaseException:
        for file_path in written or [path]:
            remove_file(io, file_path)
        raise


def check_unique_targets(run: Run, joined: str) -> tuple[str, int] | None:
    """The (file, position) of a target row that appears more than once in ``joined``, if any."""
    row = run(
        f"SELECT {FILE_COLUMN}, {POS_COLUMN} FROM {joined} WHERE {POS_COLUMN} IS NOT NULL "
        f"GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    return (row[0], row[1]) if row else None


# Iceberg types whose min/max/IN values prune files safely (ordering agrees between DuckDB and Iceberg).
_PRUNABLE = (
    it.IntegerType,
    it.LongType,
    it.DecimalType,
    it.StringType,
    it.DateType,
    it.TimestampType,
    it.TimestamptzType,
)


def key_filter(
    run: Run, source: str, column: str, field_type: it.IcebergType, duckdb_type: str, expression: str, *, max_in: int = 200
) -> ie.BooleanExpression:
    """An Iceberg filter keeping every target row whose ``column`` equals some value of ``expression`` in ``source``.

    Uses ``IN`` for few distinct values, else ``column BETWEEN min AND max``. Returns ``AlwaysTrue``
    when the values cannot be compared safely (type mismatch, failed casts).
    """
    if not isinstance(field_type, _PRUNABLE):
        return ie.AlwaysTrue()
    value = f"TRY_CAST({expression} AS {duckdb_type})"
    if isinstance(field_type, (it.TimestampType, it.TimestamptzType)):
        value = f"epoch_us({value})"  # microseconds: no time-zone objects cross into Python
    stats = run(
        f"SELECT count({expression}), count({value}), min({value}), max({value}), approx_count_distinct({value}) FROM {source}"
    ).fetchone()
    assert stats is not None
    given, cast, low, high, distinct = stats
    if given != cast:
        return ie.AlwaysTrue()  # some keys do not convert to the column's type: no safe pruning
    if cast == 0:
        return ie.AlwaysFalse()  # only NULL keys: nothing can match
    try:
        if distinct <= max_in // 2:
            values = [r[0] for r in run(f"SELECT DISTINCT {value} FROM {source} WHERE {value} IS NOT NULL").fetchall()]
            if len(values) <= max_in:
                return (
                    predicates.is_in(column, {_literal(v) for v in values})
                    if len(values) > 1
                    else predicates.equal_to(column, _literal(values[0]))
                )
        return ie.And(
            predicates.greater_than_or_equal(column, _literal(low)), predicates.less_than_or_equal(column, _literal(high))
        )
    except (TypeError, ValueError):
        return ie.AlwaysTrue()


def _literal(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        raise TypeError("not a prunable literal")
    return value


def any_of(filters: Sequence[ie.BooleanExpression]) -> ie.BooleanExpression:
    """OR of filters (``AlwaysFalse`` if none; ``AlwaysTrue`` absorbs)."""
    result: ie.BooleanExpression = ie.AlwaysFalse()
    for f in filters:
        if f == ie.AlwaysTrue():
            return ie.AlwaysTrue()
        if f == ie.AlwaysFalse():
            continue
        result = f if result == ie.AlwaysFalse() else ie.Or(result, f)
    return result
