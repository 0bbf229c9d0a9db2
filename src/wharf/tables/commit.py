"""The one write path: Arrow data → Parquet data files → one Iceberg snapshot on a branch.

Every statement that changes data ends in ``commit_files``: files to add, files to remove, a
snapshot summary, and the filter that defines what the statement read (for serializable
validation). PyIceberg's commit loop retries on a fresh base after a concurrent commit and
re-validates: appends always rebase; overwrites fail if a concurrent commit removed a file they
rewrote or (serializable) added data matching their filter. A failed commit removes the data
files it wrote, so nothing of a failed statement stays visible.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa
from pyiceberg import expressions as ie
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.io.pyarrow import _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.manifest import DataFile, ManifestWriter
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import Operation, Snapshot
from pyiceberg.table.update import (
    SetSnapshotRefUpdate,
    TableUpdate,
    UpdatesAndRequirements,
    _apply_table_update,
    _TableMetadataUpdateContext,
)
from pyiceberg.table.update.snapshot import _FastAppendFiles, _OverwriteFiles, _SnapshotProducer

from wharf.errors import ConflictError, SchemaMismatch

STATEMENT_LIMIT = 4096


@dataclass
class SnapshotInfo:
    """What a write statement records in its snapshot summary."""

    user: str
    statement: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def properties(self) -> dict[str, str]:
        text = self.statement
        if len(text.encode()) > STATEMENT_LIMIT:
            text = text.encode()[: STATEMENT_LIMIT - 3].decode(errors="ignore") + "..."
        return {"wharf.user": self.user, "wharf.statement": text, **self.extra}


def arrow_schema(schema: Schema) -> pa.Schema:
    """The Arrow schema Wharf writes for an Iceberg schema (no field-id metadata)."""
    return schema_to_pyarrow(schema, include_field_ids=False)


def conform(data: pa.Table, schema: Schema, *, table_name: str) -> pa.Table:
    """Cast ``data`` (matched by column name, case-insensitively) to ``schema``; fill missing optional columns.

    Raises ``SchemaMismatch`` naming the column for an unknown column, an impossible cast or a
    NULL in a required column.
    """
    target = arrow_schema(schema)
    by_lower = {name.lower(): i for i, name in enumerate(data.column_names)}
    known = {f.name.lower() for f in target}
    unknown = [n for n in data.column_names if n.lower() not in known]
    if unknown:
        raise SchemaMismatch(
            f"Column '{unknown[0]}' does not exist in table {table_name}",
            hint=f"the table's columns are: {', '.join(target.names)}",
        )
    arrays = []
    for f, ice in zip(target, schema.fields, strict=True):
        idx = by_lower.get(f.name.lower())
        if idx is None:
            if ice.required:
                raise SchemaMismatch(f"Column '{f.name}' of {table_name} is NOT NULL but no value was given")
            arrays.append(pa.nulls(data.num_rows, type=f.type))
            continue
        column = _uuid_bytes(data.column(idx), f.type)
        if not column.type.equals(f.type):
            try:
                column = column.cast(f.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaMismatch(
                    f"Column '{f.name}' of {table_name} has type {ice.field_type}; cannot store {column.type} values: {exc}"
                ) from exc
        if ice.required and column.null_count:
            raise SchemaMismatch(
                f"Column '{f.name}' of {table_name} is NOT NULL but {column.null_count} row(s) have NULL",
                hint="filter out or fill the NULLs, or ALTER the column to allow NULL",
            )
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=target)


def _uuid_bytes(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """DuckDB hands UUIDs to Arrow as strings; Iceberg stores them as 16 bytes (Arrow's uuid type)."""
    storage = target.storage_type if isinstance(target, pa.BaseExtensionType) else target
    if not (pa.types.is_fixed_size_binary(storage) and storage.byte_width == 16):
        return column
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        import uuid as uuid_module

        values = pa.array([None if v is None else uuid_module.UUID(v).bytes for v in column.to_pylist()], type=storage)
        if isinstance(target, pa.BaseExtensionType):
            values = pa.ExtensionArray.from_storage(target, values)
        return pa.chunked_array([values], type=target)
    return column


def write_data_files(table: Table, data: pa.Table | pa.RecordBatchReader) -> list[DataFile]:
    """Write ``data`` (already conformed) as Parquet data files under the table location."""
    if isinstance(data, pa.Table) and data.num_rows == 0:
        return []
    return list(
        _dataframe_to_data_files(
            table_metadata=table.metadata, df=data, io=table.io, write_uuid=uuid.uuid4(), counter=itertools.count(0)
        )
    )


def remove_files(table: Table, files: Iterable[DataFile]) -> None:
    """Best-effort removal of data files written for a commit that did not land."""
    for f in files:
        try:
            table.io.delete(f.file_path)
        except Exception:  # noqa: BLE001 - an orphan is collected by maintenance later
            pass


class _Transaction(Transaction):
    """PyIceberg's transaction with its derived metadata memoised.

    ``Transaction.table_metadata`` re-applies every staged update to a deep copy of the base
    metadata on each access (a dozen times per commit); with hundreds of snapshots that copy
    dominated small appends. The result depends only on the base metadata and the staged
    updates, so it is cached on exactly those.
    """

    _memo: tuple[int, int, TableMetadata] | None = None

    @property
    def table_metadata(self) -> TableMetadata:
        key = (id(self._table.metadata), len(self._updates))
        if self._memo is None or self._memo[:2] != key:
            self._memo = (*key, _apply_updates(self._table.metadata, self._updates))
        return self._memo[2]


def _apply_updates(base: TableMetadata, updates: tuple[TableUpdate, ...]) -> TableMetadata:
    """``update_table_metadata`` without its final deep copy.

    Each update builds a new (frozen) metadata object from the previous one and never mutates
    it, so sharing unchanged parts is safe; the deep copy cost O(history) per call and made
    appends to a table with many snapshots slow.
    """
    if not updates:
        return base
    context = _TableMetadataUpdateContext()
    metadata = base
    for update in updates:
        metadata = _apply_table_update(update, metadata, context)
    metadata.spec().check_compatible(metadata.schema())
    metadata.sort_order().check_compatible(metadata.schema())
    return metadata


class _Overwrite(_OverwriteFiles):
    """Overwrite whose manifests for files of an *old* partition spec use a schema that spec binds to.

    PyIceberg writes every manifest with the current schema; after a REPLACE TABLE (or dropping a
    partition source column) an old spec no longer binds to it and writing the manifest fails.
    """

    def new_manifest_writer(self, spec: PartitionSpec) -> ManifestWriter:
        from pyiceberg.manifest import write_manifest

        metadata = self._transaction.table_metadata
        needed = {f.source_id for f in spec.fields}
        schema = metadata.schema()
        if not needed <= {f.field_id for f in schema.fields}:
            for candidate in reversed(metadata.schemas):
                if needed <= {f.field_id for f in candidate.fields}:
                    schema = candidate
                    break
        return write_manifest(
            format_version=metadata.format_version,
            spec=spec,
            schema=schema,
            output_file=self.new_manifest_output(),
            snapshot_id=self._snapshot_id,
            avro_compression=self._compression,
        )


_Producer = TypeVar("_Producer", bound=_SnapshotProducer[Any])


def _staged(producer_class: type[_Producer]) -> type[_Producer]:
    """A producer that adds its snapshot without moving any branch (write-audit-publish staging)."""

    class Staged(producer_class):  # type: ignore[misc, valid-type]  # a subclass of a class parameter
        def _commit(self) -> UpdatesAndRequirements:
            updates, _requirements = super()._commit()
            return tuple(u for u in updates if not isinstance(u, SetSnapshotRefUpdate)), ()

    return Staged


def commit_files(
    table: Table,
    *,
    added: list[DataFile],
    removed: Sequence[DataFile] = (),
    info: SnapshotInfo,
    branch: str = MAIN_BRANCH,
    read_filter: ie.BooleanExpression | None = None,
    stage_only: bool = False,
    operation: Operation | None = None,
    cleanup: bool = True,
    prelude: tuple[TableUpdate, ...] = (),
) -> Snapshot | None:
    """Commit one snapshot that adds ``added`` and removes ``removed`` on ``branch``.

    ``read_filter`` is what the statement read (serializable validation: a concurrent append
    of matching rows is a conflict); ``AlwaysTrue`` when it read the whole table. Returns the new
    snapshot, or None when there was nothing to commit. ``cleanup=False`` keeps the ``added`` files
    when the commit fails (cherry-pick re-commits files that another snapshot owns).
    """
    if not added and not removed:
        return None
    owned = added if cleanup else []
    props = info.properties()
    # Appends never conflict: after PyIceberg's own retries run out under heavy contention
    # (many writers), rebuild on the fresh head and try again rather than fail the statement.
    attempts = APPEND_ATTEMPTS if not removed else 1
    for attempt in range(attempts):
        tx = _Transaction(table)
        if prelude:
            # Metadata changes that must land in the same commit as the snapshot (REPLACE TABLE).
            tx._apply(prelude, ())
        producer: _SnapshotProducer[Any]
        if removed:
            op = operation or (Operation.OVERWRITE if added else Operation.DELETE)
            overwrite = _staged(_Overwrite) if stage_only else _Overwrite
            producer = overwrite(op, transaction=tx, io=table.io, snapshot_properties=props, branch=branch)
            producer._predicate = read_filter if read_filter is not None else ie.AlwaysTrue()
        else:
            append = _staged(_FastAppendFiles) if stage_only else _FastAppendFiles
            producer = append(Operation.APPEND, transaction=tx, io=table.io, snapshot_properties=props, branch=branch)
        for f in removed:
            producer.delete_data_file(f)
        for f in added:
            producer.append_data_file(f)
        snapshot_id = producer.snapshot_id
        try:
            producer.commit()
            tx.commit_transaction()
            return table.metadata.snapshot_by_id(snapshot_id)
        except CommitFailedException as exc:
            if attempt + 1 < attempts:
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
                table.refresh()
                continue
            _conflict(table, owned, branch, exc)
        except ValidationException as exc:
            _conflict(table, owned, branch, exc)
        except BaseException:
            remove_files(table, owned)
            raise
    raise AssertionError("unreachable")  # pragma: no cover


APPEND_ATTEMPTS = 30


def _conflict(table: Table, added: list[DataFile], branch: str, exc: Exception) -> None:
    remove_files(table, added)
    table.refresh()
    head = table.metadata.snapshot_by_name(branch)
    name = ".".join(table.name())
    raise ConflictError(
        f"Concurrent commit to {name} (branch '{branch}') conflicts with this statement: {exc}",
        table=name,
        conflicting_snapshot_id=head.snapshot_id if head else None,
        hint="nothing was committed; run the statement again",
    ) from exc
