"""Writing data: Arrow → Parquet data files → one Iceberg snapshot on a branch.

Every statement that changes data ends in ``commit_files``: files to add, files to remove, and
the filter that defines what the statement read (for serializable validation). The commit
itself goes through the lake catalog's commit path (``wharf.catalog.lake_catalog``), where gates
run and the snapshot summary is stamped with the statement. PyIceberg's commit loop retries on
a fresh base after a concurrent commit and re-validates: appends always rebase; overwrites fail
if a concurrent commit removed a file they rewrote or (serializable) added data matching their
filter. A failed commit removes the data files it wrote, so nothing of a failed statement stays
visible.

Writers never commit on the ``Table`` object the loader shares between threads: ``private``
gives each commit its own copy, so a reader never sees metadata change under it.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import pyarrow as pa
from pyiceberg import expressions as ie
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import Operation, Snapshot
from pyiceberg.table.sorting import NullOrder, SortDirection
from pyiceberg.table.update import TableUpdate

from wharf import pyiceberg_compat as compat
from wharf.errors import ConflictError, SchemaMismatch
from wharf.statement import current
from wharf.tables.arrow_cast import cast_column

# How a commit retries after a concurrent one, unless the table sets ``commit.retry.*`` itself.
# PyIceberg's defaults (4 retries, waits from 100 ms up to a minute) make many concurrent writers
# fail or crawl; commits that do not conflict should simply rebase and land. Each retry
# re-validates against everything committed since the statement read the table.
COMMIT_RETRY_DEFAULTS = {
    "commit.retry.num-retries": "200",
    "commit.retry.min-wait-ms": "2",
    "commit.retry.max-wait-ms": "250",
    "commit.retry.total-timeout-ms": "600000",
}
_RETRY_MESSAGE = "Commit failed due to a concurrent update, retrying"


def private(table: Table) -> Table:
    """A copy of ``table`` to commit on (commits replace the copy's metadata, not the shared object's).

    The copy carries Wharf's commit-retry settings where the table has none of its own; they
    only steer this client's retry loop (the catalog commits on its own current metadata).
    """
    mine = copy.copy(table)
    properties = table.metadata.properties
    missing = {k: v for k, v in COMMIT_RETRY_DEFAULTS.items() if k not in properties}
    if missing:
        mine.metadata = table.metadata.model_copy(update={"properties": {**properties, **missing}})
    return mine


class _CountRetries(logging.Filter):
    """PyIceberg logs a warning per commit retry: count it on the running statement instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(_RETRY_MESSAGE):
            return True
        running = current()
        if running is not None:
            running.retries += 1
        return False


logging.getLogger("pyiceberg.table").addFilter(_CountRetries())


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
                column = cast_column(column, f.type)
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


@dataclass(frozen=True)
class SortKey:
    """One key of a table's sort order that Wharf's writers apply: a column, its direction, its nulls."""

    column: str
    descending: bool
    nulls_first: bool


def sort_keys(table: Table) -> list[SortKey]:
    """The table's default sort order as keys writers can sort by (``WRITE ORDERED BY``).

    Only identity keys: a transform such as ``bucket`` has no order a writer could reproduce, so a
    sort order holding one is not applied (the files then do not claim it).
    """
    order = table.sort_order()
    schema = table.schema()
    keys = []
    for field in order.fields:
        if str(field.transform) != "identity":
            return []
        name = schema.find_column_name(field.source_id)
        if name is None or "." in name:
            return []
        keys.append(SortKey(name, field.direction == SortDirection.DESC, field.null_order == NullOrder.NULLS_FIRST))
    return keys


def sorted_rows(data: pa.Table, keys: list[SortKey]) -> pa.Table:
    """``data`` in the order of ``keys`` (nulls placed per key, as Iceberg sort orders say)."""
    if not keys or data.num_rows < 2:
        return data
    import duckdb

    order = ", ".join(
        f'"{k.column}" {"DESC" if k.descending else "ASC"} NULLS {"FIRST" if k.nulls_first else "LAST"}' for k in keys
    )
    with duckdb.connect(":memory:") as con:
        con.register("rows", data)
        return con.execute(f"SELECT * FROM rows ORDER BY {order}").to_arrow_table().cast(data.schema)


def write_data_files(table: Table, data: pa.Table | pa.RecordBatchReader) -> list[DataFile]:
    """Write ``data`` (already conformed) as Parquet data files under the table location, sorted by the
    table's sort order."""
    if isinstance(data, pa.Table) and data.num_rows == 0:
        return []
    keys = sort_keys(table)
    if keys:  # (PyIceberg's writer records no sort order id: the files are sorted, but do not claim it)
        data = sorted_rows(data.read_all() if isinstance(data, pa.RecordBatchReader) else data, keys)
    return compat.write_data_files(table, data)


def remove_files(table: Table, files: Iterable[DataFile]) -> None:
    """Best-effort removal of data files written for a commit that did not land."""
    for f in files:
        try:
            table.io.delete(f.file_path)
        except Exception:  # noqa: BLE001 - an orphan is collected by maintenance later
            pass


def commit_files(
    table: Table,
    *,
    added: list[DataFile],
    removed: Sequence[DataFile] = (),
    branch: str = MAIN_BRANCH,
    read_filter: ie.BooleanExpression | None = None,
    stage_only: bool = False,
    operation: Operation | None = None,
    properties: dict[str, str] | None = None,
    cleanup: bool = True,
    prelude: tuple[TableUpdate, ...] = (),
) -> Snapshot | None:
    """Commit one snapshot that adds ``added`` and removes ``removed`` on ``branch``.

    ``read_filter`` is what the statement read (serializable validation: a concurrent append
    of matching rows is a conflict); ``AlwaysTrue`` when it read the whole table. ``properties``
    are extra snapshot-summary properties (the statement's own are stamped by the commit path).
    Returns the new snapshot, or None when there was nothing to commit. ``cleanup=False`` keeps
    the ``added`` files when the commit fails (cherry-pick re-commits files another snapshot owns).
    """
    if not added and not removed:
        return None
    table = private(table)
    owned = added if cleanup else []
    props = dict(properties or {})
    # Appends never conflict: after PyIceberg's own retries run out under heavy contention
    # (many writers), rebuild on the fresh head and try again rather than fail the statement.
    attempts = APPEND_ATTEMPTS if not removed else 1
    for attempt in range(attempts):
        with commit_lock(table):
            if not removed and not prelude:
                # An append builds on the newest head (it never conflicts), so under the lock
                # its first attempt lands. A rewrite keeps the head it read: PyIceberg validates
                # what was committed since and rebuilds once, still under the lock.
                table = private(_latest(table))
            tx = compat.MemoizedTransaction(table)
            if prelude:
                # Metadata changes that must land in the same commit as the snapshot (REPLACE TABLE).
                compat.stage(tx, prelude)
            producer: compat.SnapshotProducer[Any]
            if removed:
                op = operation or (Operation.OVERWRITE if added else Operation.DELETE)
                overwrite = compat.staged(compat.Overwrite) if stage_only else compat.Overwrite
                producer = overwrite(op, transaction=tx, io=table.io, snapshot_properties=props, branch=branch)
                producer.delete_by_predicate(read_filter if read_filter is not None else ie.AlwaysTrue(), case_sensitive=False)
            elif stage_only:
                producer = compat.staged(compat.FastAppend)(
                    Operation.APPEND, transaction=tx, io=table.io, snapshot_properties=props, branch=branch
                )
            else:
                append = compat.MergeAppend if compat.merge_enabled(table.metadata) else compat.FastAppend
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
                if attempt + 1 == attempts:
                    _conflict(table, owned, branch, exc)
            except ValidationException as exc:
                _conflict(table, owned, branch, exc)
            except BaseException:
                remove_files(table, owned)
                raise
        # Lost to a writer that does not take the lock (another engine): back off and rebuild.
        if (running := current()) is not None:
            running.retries += 1
        time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        table = private(_refreshed(table))
    raise AssertionError("unreachable")  # pragma: no cover


APPEND_ATTEMPTS = 30


@dataclass
class FileChanges:
    """Everything one snapshot changes beyond plain appends and copy-on-write rewrites.

    ``added`` / ``removed`` are data files; ``added_deletes`` / ``removed_deletes`` delete files
    (positional or equality); ``referenced`` the data files the added deletes apply to, which
    must still be live when the commit lands. ``data_sequence_number`` gives the added data files
    an older sequence number (compaction: the snapshot it read), so deletes committed meanwhile
    still apply to the rewritten rows.
    """

    added: list[DataFile] = dataclass_field(default_factory=list)
    removed: list[DataFile] = dataclass_field(default_factory=list)
    added_deletes: list[DataFile] = dataclass_field(default_factory=list)
    removed_deletes: list[DataFile] = dataclass_field(default_factory=list)
    referenced: list[DataFile] = dataclass_field(default_factory=list)
    data_sequence_number: int | None = None

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.added_deletes or self.removed_deletes)

    @property
    def written(self) -> list[DataFile]:
        """Files this change wrote (removed again if its commit fails)."""
        return [*self.added, *self.added_deletes]


def commit_changes(
    table: Table,
    changes: FileChanges,
    *,
    operation: Operation,
    branch: str = MAIN_BRANCH,
    read_filter: ie.BooleanExpression | None = None,
    stage_only: bool = False,
    serializable: bool = True,
    properties: dict[str, str] | None = None,
) -> Snapshot | None:
    """Commit one snapshot of ``changes`` (merge-on-read writes, compaction, dangling-delete removal).

    Like ``commit_files``: through the catalog's commit path, under the table's commit lock, on
    the metadata the statement read; a concurrent commit makes PyIceberg rebuild it once on the
    new head after validation (``RowDelta``), and a conflict removes the files written for it.
    """
    if changes.empty:
        return None
    table = private(table)
    props = dict(properties or {})
    with commit_lock(table):
        tx = compat.MemoizedTransaction(table)
        producer_class = compat.staged(compat.RowDelta) if stage_only else compat.RowDelta
        producer = producer_class(
            operation,
            tx,
            table.io,
            snapshot_properties=props,
            branch=branch,
            data_sequence_number=changes.data_sequence_number,
            serializable=serializable,
        )
        if read_filter is not None:
            producer.read_filter(read_filter)
        for f in changes.added:
            producer.append_data_file(f)
        for f in changes.removed:
            producer.delete_data_file(f)
        for f in changes.added_deletes:
            producer.add_delete_file(f)
        for f in changes.removed_deletes:
            producer.remove_delete_file(f)
        for f in changes.referenced:
            producer.reference_data_file(f)
        snapshot_id = producer.snapshot_id
        try:
            producer.commit()
            tx.commit_transaction()
        except (CommitFailedException, ValidationException) as exc:
            _conflict(table, changes.written, branch, exc)
        except BaseException:
            remove_files(table, changes.written)
            raise
        return table.metadata.snapshot_by_id(snapshot_id)


def _refreshed(table: Table) -> Table:
    table.refresh()
    return table


def _latest(table: Table) -> Table:
    """``table`` at the catalog's current metadata (re-read only if another commit moved it)."""
    current = getattr(table.catalog, "metadata_location", None)
    if current is not None and current(table.name()) == table.metadata_location:
        return table
    return _refreshed(table)


@contextmanager
def commit_lock(table: Table) -> Iterator[None]:
    """The table's commit lock when its catalog is a Wharf lake's (``wharf.catalog.locks``)."""
    lock = getattr(table.catalog, "commit_lock", None)
    if lock is None:
        yield
        return
    with lock(table.name()):
        yield


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
