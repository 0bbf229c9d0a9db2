"""REPLACE TABLE with Iceberg semantics: new schema, spec, properties and data in one commit,
while the table keeps its identity and history (time travel to before the replace still works)."""

from __future__ import annotations

from itertools import count

import pyarrow as pa
from pyiceberg import expressions as ie
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import (
    AddPartitionSpecUpdate,
    AddSchemaUpdate,
    SetCurrentSchemaUpdate,
    SetDefaultSpecUpdate,
    SetPropertiesUpdate,
    TableUpdate,
)
from pyiceberg.types import NestedField

from wharf import pyiceberg_compat as compat
from wharf.tables.commit import commit_files, conform, private, remove_files, write_data_files
from wharf.tables.scan import ScanPlanner


def _renumber(schema: Schema, base: Schema, next_id: count[int]) -> Schema:
    """Reuse the ids of same-named, same-typed top-level columns (as Iceberg's replace does)."""
    from pyiceberg.schema import assign_fresh_schema_ids

    fresh = assign_fresh_schema_ids(schema, next_id=lambda: next(next_id))
    fields = []
    for f in fresh.fields:
        old = next((o for o in base.fields if o.name == f.name and o.field_type == f.field_type), None)
        fields.append(NestedField(old.field_id if old else f.field_id, f.name, f.field_type, required=f.required, doc=f.doc))
    return Schema(*fields, schema_id=max(s.schema_id for s in [base]) + 1)


def replace_table(
    table: Table,
    schema: Schema,
    spec: PartitionSpec,
    properties: dict[str, str],
    rows: pa.Table | None,
    label: str,
) -> None:
    """Replace ``table``'s definition and contents atomically (one metadata commit)."""
    metadata = table.metadata
    ids = count(metadata.last_column_id + 1)
    new_schema = _renumber(schema, metadata.schema(), ids)
    new_schema = Schema(*new_schema.fields, schema_id=max(s.schema_id for s in metadata.schemas) + 1)
    by_old_id = {f.field_id: f.name for f in schema.fields}
    part_ids = count((metadata.last_partition_id or 999) + 1)
    fields = [
        PartitionField(
            source_id=new_schema.find_field(by_old_id[p.source_id]).field_id,
            field_id=next(part_ids),
            transform=p.transform,
            name=p.name,
        )
        for p in spec.fields
    ]
    new_spec = PartitionSpec(*fields, spec_id=max(s.spec_id for s in metadata.partition_specs) + 1)
    tx = compat.MemoizedTransaction(private(table))
    updates: tuple[TableUpdate, ...] = (
        AddSchemaUpdate(schema_=new_schema),
        SetCurrentSchemaUpdate(schema_id=-1),
        AddPartitionSpecUpdate(spec=new_spec),
        SetDefaultSpecUpdate(spec_id=-1),
    )
    if properties:
        updates += (SetPropertiesUpdate(updates=properties),)
    compat.stage(tx, updates)
    staged = tx.table_metadata
    added = []
    if rows is not None and rows.num_rows:
        added = write_data_files_for(table, staged, conform(rows, staged.schema(), table_name=label))
    current = metadata.current_snapshot_id
    old_files = [f.data_file for f in ScanPlanner(max_entries=1).plan(table, current).files] if current else []
    try:
        if added or old_files:
            # One commit: the new schema/spec/properties and the snapshot that swaps the data.
            commit_files(table, added=added, removed=old_files, read_filter=ie.AlwaysTrue(), prelude=updates)
        else:
            tx.commit_transaction()
    except BaseException:
        remove_files(table, added)
        raise


def write_data_files_for(table: Table, metadata: TableMetadata, rows: pa.Table) -> list[DataFile]:
    """Write rows against staged (not yet committed) metadata, e.g. a replaced schema."""
    # A shallow copy: the loader shares ``table`` between threads, which must never see
    # uncommitted metadata.
    shadow = private(table)
    shadow.metadata = metadata
    return write_data_files(shadow, rows)
