"""Write Iceberg v2 delete files and commit them into a table the way another engine would.

Wharf itself only writes copy-on-write, so merge-on-read tables come from Spark, Trino, Flink or
DuckDB's iceberg extension. These helpers build the same artefacts by the Iceberg spec: a
positional delete file (``file_path`` string id 2147483546, ``pos`` long id 2147483545, sorted by
path then position) or an equality delete file (the equality columns with their field ids), with
full column metrics like those engines write; then one new snapshot whose manifest list is the
parent's manifests plus a ``content=deletes`` manifest holding the delete files (their sequence
number inherited from the snapshot), committed with an assertion on the branch head.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
    schema_to_pyarrow,
)
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    ManifestWriterV2,
    write_manifest_list,
)
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, SnapshotSummaryCollector, Summary, update_snapshot_summaries
from pyiceberg.table.update import AddSnapshotUpdate, AssertRefSnapshotId, SetSnapshotRefUpdate
from pyiceberg.typedef import Record
from pyiceberg.types import LongType, NestedField, StringType

from wharf.tables.scan import local_path

POS_FILE_PATH_ID = 2147483546
POS_ID = 2147483545
POSITION_DELETE_SCHEMA = Schema(
    NestedField(POS_FILE_PATH_ID, "file_path", StringType(), required=True),
    NestedField(POS_ID, "pos", LongType(), required=True),
)


class DeleteManifestWriter(ManifestWriterV2):
    """PyIceberg's v2 manifest writer, for a manifest of delete files (``content = deletes``)."""

    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


def live_entries(table: Table, snapshot_id: int | None = None) -> list[ManifestEntry]:
    """The live manifest entries (data and delete files) of a snapshot (default: the current one)."""
    snapshot = table.current_snapshot() if snapshot_id is None else table.metadata.snapshot_by_id(snapshot_id)
    assert snapshot is not None
    return [e for m in snapshot.manifests(table.io) for e in m.fetch_manifest_entry(table.io, discard_deleted=True)]


def data_files(table: Table, snapshot_id: int | None = None) -> list[DataFile]:
    """The live data files of a snapshot, ordered by the smallest value of their first column."""
    files = [e.data_file for e in live_entries(table, snapshot_id) if e.data_file.content == DataFileContent.DATA]
    first = table.schema().fields[0].field_id
    return sorted(files, key=lambda f: (f.lower_bounds or {}).get(first, b""))


def file_rows(table: Table, data_file: DataFile) -> list[dict[str, Any]]:
    """A data file's rows in file order (row ``i`` has position ``i``)."""
    return pq.read_table(local_path(data_file.file_path)).to_pylist()


def _write(
    table: Table,
    schema: Schema,
    rows: pa.Table,
    content: DataFileContent,
    *,
    partition: Record,
    spec_id: int,
    equality_ids: list[int] | None,
    file_format: FileFormat = FileFormat.PARQUET,
) -> DataFile:
    provider = table.location_provider()
    uri = provider.new_data_location(f"{uuid.uuid4()}-{content.name.lower()}.parquet")
    path = local_path(uri)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(rows, path)
    statistics = data_file_statistics_from_parquet_metadata(
        parquet_metadata=pq.read_metadata(path),
        stats_columns=compute_statistics_plan(schema, table.metadata.properties),
        parquet_column_mapping=parquet_path_to_id_mapping(schema),
    )
    data_file = DataFile.from_args(
        content=content,
        file_path=uri,
        file_format=file_format,
        partition=partition,
        file_size_in_bytes=os.path.getsize(path),
        sort_order_id=None,
        key_metadata=None,
        equality_ids=equality_ids,
        **statistics.to_serialized_dict(),
    )
    data_file.spec_id = spec_id  # not a manifest field: set like PyIceberg's readers do
    return data_file


def position_delete_file(
    table: Table,
    deletes: Mapping[str, Iterable[int]] | Sequence[tuple[DataFile, Iterable[int]]],
    file_format: FileFormat = FileFormat.PARQUET,
) -> DataFile:
    """A positional delete file removing the given row positions of the given data files.

    All data files must share one partition; the delete file gets that partition and spec.
    """
    pairs = list(deletes.items()) if isinstance(deletes, Mapping) else list(deletes)
    targets: list[DataFile] = [f for f, _ in pairs]  # type: ignore[misc]
    partitions = {(f.spec_id, tuple(f.partition)) for f in targets}
    assert len(partitions) == 1, "a positional delete file covers data files of one partition"
    rows = sorted((f.file_path, int(p)) for f, positions in pairs for p in positions)  # type: ignore[union-attr]
    arrow = pa.table(
        {"file_path": pa.array([r[0] for r in rows], pa.string()), "pos": pa.array([r[1] for r in rows], pa.int64())},
        schema=schema_to_pyarrow(POSITION_DELETE_SCHEMA),
    )
    return _write(
        table,
        POSITION_DELETE_SCHEMA,
        arrow,
        DataFileContent.POSITION_DELETES,
        partition=targets[0].partition,
        spec_id=targets[0].spec_id,
        equality_ids=None,
        file_format=file_format,  # recorded as another format (a v3 deletion vector's PUFFIN) to test refusals
    )


def equality_delete_file(
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    partition: Record | None = None,
    spec_id: int | None = None,
) -> DataFile:
    """An equality delete file: rows of ``table`` whose ``columns`` equal one of ``rows`` are deleted.

    ``partition``/``spec_id`` scope it (default: the table's default spec, which must then be
    unpartitioned, i.e. a global delete).
    """
    schema = table.schema()
    fields = [schema.find_field(c) for c in columns]
    delete_schema = Schema(*fields)
    arrow_schema = schema_to_pyarrow(delete_schema)
    arrow = pa.Table.from_pylist([dict(zip(columns, r, strict=True)) for r in rows], schema=arrow_schema)
    spec_id = table.metadata.default_spec_id if spec_id is None else spec_id
    if partition is None:
        assert table.specs()[spec_id].is_unpartitioned(), "pass the partition of a partitioned spec"
        partition = Record()
    return _write(
        table,
        delete_schema,
        arrow,
        DataFileContent.EQUALITY_DELETES,
        partition=partition,
        spec_id=spec_id,
        equality_ids=[f.field_id for f in fields],
    )


def specs_id_of(data_file: DataFile, default: int) -> int:
    """A data file's spec id (files PyIceberg just wrote do not carry one: they use the default spec)."""
    try:
        return data_file.spec_id
    except AttributeError:
        return default


def commit_delete_files(
    table: Table,
    files: Sequence[DataFile],
    *,
    added_data: Sequence[DataFile] = (),
    operation: Operation = Operation.DELETE,
    branch: str = MAIN_BRANCH,
) -> Snapshot:
    """Commit one snapshot on ``branch`` adding ``files`` (delete files) in a new delete manifest.

    ``added_data`` (written but uncommitted data files) go into a data manifest of the same
    snapshot, as a Flink upsert or a Spark merge-on-read MERGE commits them. The manifest list is
    the parent snapshot's manifests plus the new ones; the new entries inherit the snapshot's
    sequence number (the next one of the table). Like any other client, it commits on the
    table's current metadata (``refresh``): Wharf's own commits never change a loaded table.
    """
    table.refresh()
    metadata = table.metadata
    parent = metadata.snapshot_by_name(branch)
    assert parent is not None, "commit data before deleting it"
    snapshot_id = metadata.new_snapshot_id()
    sequence_number = metadata.next_sequence_number()
    provider = table.location_provider()
    specs = metadata.specs()
    new_manifests: list[ManifestFile] = []
    for writer_class, group in ((ManifestWriterV2, added_data), (DeleteManifestWriter, files)):
        for spec_id in sorted({specs_id_of(f, metadata.default_spec_id) for f in group}):
            spec: PartitionSpec = specs[spec_id]
            output = table.io.new_output(provider.new_metadata_location(f"{uuid.uuid4()}-m0.avro"))
            with writer_class(spec, metadata.schema(), output, snapshot_id, "deflate") as writer:
                for f in group:
                    if specs_id_of(f, metadata.default_spec_id) == spec_id:
                        entry = ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id, data_file=f)
                        writer.add(entry)
            new_manifests.append(writer.to_manifest_file())
    list_path = provider.new_metadata_location(f"snap-{snapshot_id}-0-{uuid.uuid4()}.avro")
    with write_manifest_list(
        format_version=2,
        output_file=table.io.new_output(list_path),
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id,
        sequence_number=sequence_number,
        avro_compression="deflate",
    ) as manifest_list:
        manifest_list.add_manifests(new_manifests + list(parent.manifests(table.io)))
    collector = SnapshotSummaryCollector()
    for f in [*added_data, *files]:
        collector.add_file(f, metadata.schema(), specs[specs_id_of(f, metadata.default_spec_id)])
    summary = update_snapshot_summaries(
        Summary(operation=operation, **collector.build(), **{"engine-name": "wharf-tests"}), parent.summary
    )
    snapshot = Snapshot(
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id,
        sequence_number=sequence_number,
        manifest_list=list_path,
        summary=summary,
        schema_id=metadata.current_schema_id,
    )
    tx = table.transaction()
    tx._apply(
        (
            AddSnapshotUpdate(snapshot=snapshot),
            SetSnapshotRefUpdate(
                snapshot_id=snapshot_id,
                parent_snapshot_id=parent.snapshot_id,
                ref_name=branch,
                type=SnapshotRefType.BRANCH,
            ),
        ),
        (AssertRefSnapshotId(snapshot_id=parent.snapshot_id, ref=branch),),
    )
    tx.commit_transaction()
    committed = table.metadata.snapshot_by_id(snapshot_id)
    assert committed is not None
    return committed
