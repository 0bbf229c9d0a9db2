"""Every private PyIceberg name Wharf relies on, in one place, each with the reason.

PyIceberg 0.12 has public APIs for appending and overwriting *DataFrames*, for managing refs and
for schema changes; Wharf also needs to commit *data files it wrote itself* (DuckDB writes
Parquet directly), validate them with the statement's read filter, stage snapshots for
write-audit-publish, and apply metadata updates without PyIceberg's O(history) deep copy. Those
need the private names below. ``tests/tables/test_pyiceberg_compat.py`` is the canary: it fails
loudly when one of them disappears or changes its signature, so an upgrade breaks a test rather
than a commit.

Nothing outside this module imports a private PyIceberg name.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pyarrow as pa
from pyiceberg.avro.codecs import AVRO_CODEC_KEY, CODEC_MAPPING_ICEBERG_TO_AVRO
from pyiceberg.avro.encoder import BinaryEncoder
from pyiceberg.avro.file import _SCHEMA_KEY, MAGIC, META_SCHEMA, SYNC_SIZE, AvroFileHeader, AvroOutputFile
from pyiceberg.avro.resolver import construct_writer, resolve_writer
from pyiceberg.avro.writer import Writer
from pyiceberg.catalog import MetastoreCatalog
from pyiceberg.exceptions import ValidationException
from pyiceberg.expressions import AlwaysFalse, BooleanExpression
from pyiceberg.expressions.visitors import manifest_evaluator
from pyiceberg.io import FileIO, OutputFile
from pyiceberg.io.pyarrow import _ConvertToIcebergWithoutIDs, _dataframe_to_data_files, visit_pyarrow
from pyiceberg.manifest import (
    DEFAULT_READ_VERSION,
    MANIFEST_LIST_FILE_SCHEMAS,
    UNASSIGNED_SEQ,
    DataFile,
    DataFileContent,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    ManifestWriter,
    ManifestWriterV1,
    ManifestWriterV2,
    write_manifest,
    write_manifest_list,
)
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, SnapshotSummaryCollector, Summary, update_snapshot_summaries
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    AssertRefSnapshotId,
    SetSnapshotRefUpdate,
    TableRequirement,
    TableUpdate,
    UpdatesAndRequirements,
    _apply_table_update,
    _TableMetadataUpdateContext,
    _update_table_metadata_log,
)
from pyiceberg.table.update.snapshot import (
    _FastAppendFiles,
    _ManifestMergeManager,
    _MergeAppendFiles,
    _new_manifest_list_file_name,
    _OverwriteFiles,
    _SnapshotProducer,
)
from pyiceberg.table.update.validate import (
    _added_delete_files,
    _validate_added_data_files,
    _validate_data_files_exist,
)
from pyiceberg.typedef import EMPTY_DICT, Record, TableVersion
from pyiceberg.types import NestedField
from pyiceberg.utils.datetime import datetime_to_millis
from pyiceberg.utils.schema_conversion import AvroSchemaConversion

__all__ = [
    "SQL_CATALOG_COLUMNS",
    "SQL_CATALOG_TABLE",
    "SQL_NAMESPACE_TABLE",
    "SQL_NAMESPACE_COLUMNS",
    "FastAppend",
    "MergeAppend",
    "merge_enabled",
    "merge_data_manifests",
    "MemoizedTransaction",
    "Overwrite",
    "ReplaceManifests",
    "RowDelta",
    "SnapshotProducer",
    "apply_updates",
    "update_metadata",
    "arrow_to_iceberg_fields",
    "catalog_file_io",
    "empty_table_metadata",
    "write_metadata_file",
    "stage",
    "staged",
    "write_data_files",
]

SnapshotProducer = _SnapshotProducer
"""The base class of PyIceberg's snapshot producers (append, overwrite, delete)."""


# --- Avro files with their per-table constant work done once -------------------------------------
#
# Manifests and manifest lists are Avro files whose header holds an Avro form of an Iceberg schema.
# For every file it writes PyIceberg derives the manifest-entry schema of the partition spec (twice:
# file and read schema), the writer tree resolving one against the other, the Avro JSON of the file
# schema and the JSON of the table schema and spec for the header. For a stream of small commits to
# one table these are the same every time and cost more than encoding the records, so they are
# derived once per (writer kind, format version, codec, schema, spec) here; and a manifest list
# re-encodes every manifest it names on every commit, so each manifest's encoded record is kept by
# its (immutable) path. The bytes written are PyIceberg's, the random sync marker aside
# (canary: ``tests/test_pyiceberg_compat.py`` writes the same files both ways and compares them).


@dataclass(frozen=True)
class _AvroTemplate:
    """What an Avro file of one schema needs besides its records: the schema, its JSON, the writer tree."""

    file_schema: Schema
    schema_name: str
    writer: Writer  # stateless (no field is assigned while writing): shared by every file of the template
    avro_schema_json: str


def _avro_template(file_schema: Schema, record_schema: Schema, schema_name: str) -> _AvroTemplate:
    """``AvroOutputFile.__init__`` and ``_write_header``'s derived values (``resolve_writer``, the schema JSON)."""
    return _AvroTemplate(
        file_schema=file_schema,
        schema_name=schema_name,
        writer=resolve_writer(record_schema=record_schema, file_schema=file_schema),
        avro_schema_json=json.dumps(AvroSchemaConversion().iceberg_to_avro(file_schema, schema_name=schema_name)),
    )


_META_WRITER = construct_writer(META_SCHEMA)


class _TemplatedAvroOutputFile(AvroOutputFile[Any]):
    """PyIceberg's ``AvroOutputFile`` built from a template: the same header and blocks, nothing re-derived."""

    def __init__(self, output_file: OutputFile, template: _AvroTemplate, metadata: dict[str, str]) -> None:
        self.output_file = output_file
        self.file_schema = template.file_schema
        self.schema_name = template.schema_name
        self.sync_bytes = os.urandom(SYNC_SIZE)
        self.writer = template.writer
        self.metadata = metadata
        self._avro_schema_json = template.avro_schema_json

    def _write_header(self) -> None:
        from pyiceberg.table import TableProperties

        codec_name = self.metadata.get(AVRO_CODEC_KEY, TableProperties.WRITE_AVRO_COMPRESSION_DEFAULT)
        if avro_codec_name := CODEC_MAPPING_ICEBERG_TO_AVRO.get(codec_name):
            codec_name = avro_codec_name
        meta = {**self.metadata, _SCHEMA_KEY: self._avro_schema_json, AVRO_CODEC_KEY: codec_name}
        _META_WRITER.write(self.encoder, AvroFileHeader(MAGIC, meta, self.sync_bytes))

    def write_encoded_block(self, records: list[bytes]) -> None:
        """``write_block`` of records already encoded with this file's writer (same framing)."""
        block = b"".join(records)
        self.encoder.write_int(len(records))
        if codec := self.compression_codec():
            content, content_length = codec.compress(block)
            self.encoder.write_int(content_length)
            self.encoder.write(content)
        else:
            self.encoder.write_int(len(block))
            self.encoder.write(block)
        self.encoder.write(self.sync_bytes)


# (writer class, format version, codec, id(schema), id(spec)) → (schema, spec, template, header metadata).
# Keyed by identity: the metadata objects of one table share their schema and spec objects from
# commit to commit; a reloaded table builds its template once more. The entry holds the objects, so
# their ids cannot be reused while it lives.
_MANIFEST_TEMPLATES: OrderedDict[tuple[Any, ...], tuple[Schema, PartitionSpec, _AvroTemplate, dict[str, str]]] = OrderedDict()
_MANIFEST_TEMPLATES_MAX = 32
_TEMPLATES_LOCK = threading.Lock()


class _TemplatedManifestWriter(ManifestWriter):
    """A manifest writer whose Avro template (schemas, writer tree, header) is derived once per schema and spec."""

    def new_writer(self) -> AvroOutputFile[ManifestEntry]:
        key = (type(self), self.version, self._compression, id(self._schema), id(self._spec))
        with _TEMPLATES_LOCK:
            found = _MANIFEST_TEMPLATES.get(key)
            if found is not None:
                _MANIFEST_TEMPLATES.move_to_end(key)
        if found is None or found[0] is not self._schema or found[1] is not self._spec:
            template = _avro_template(
                self._with_partition(self.version), self._with_partition(DEFAULT_READ_VERSION), "manifest_entry"
            )
            found = (self._schema, self._spec, template, self._meta)
            with _TEMPLATES_LOCK:
                _MANIFEST_TEMPLATES[key] = found
                while len(_MANIFEST_TEMPLATES) > _MANIFEST_TEMPLATES_MAX:
                    _MANIFEST_TEMPLATES.popitem(last=False)
        return _TemplatedAvroOutputFile(self._output_file, found[2], found[3])


class _ManifestWriterV1(_TemplatedManifestWriter, ManifestWriterV1):
    pass


class _ManifestWriterV2(_TemplatedManifestWriter, ManifestWriterV2):
    pass


def _write_manifest(
    format_version: TableVersion,
    spec: PartitionSpec,
    schema: Schema,
    output_file: OutputFile,
    snapshot_id: int,
    avro_compression: Any,
) -> ManifestWriter:
    """``pyiceberg.manifest.write_manifest`` with templated writers (v1, v2; v3 as PyIceberg writes it)."""
    if format_version == 1:
        return _ManifestWriterV1(spec, schema, output_file, snapshot_id, avro_compression)
    if format_version == 2:
        return _ManifestWriterV2(spec, schema, output_file, snapshot_id, avro_compression)
    return write_manifest(format_version, spec, schema, output_file, snapshot_id, avro_compression)


_LIST_TEMPLATES: dict[int, _AvroTemplate] = {}
# (format version, manifest path) → (the prepared record's fields, its encoded bytes). A manifest
# file is immutable and its list record changes only when sequence numbers are assigned, which
# the stored fields catch: a hit is a record equal field for field.
_ENCODED_MANIFESTS: OrderedDict[tuple[int, str], tuple[list[Any], bytes]] = OrderedDict()
_ENCODED_MANIFESTS_MAX = 8192


def _encoded_manifest(version: int, template: _AvroTemplate, manifest: ManifestFile) -> bytes:
    key = (version, manifest.manifest_path)
    with _TEMPLATES_LOCK:
        found = _ENCODED_MANIFESTS.get(key)
    if found is not None and found[0] == manifest._data:
        return found[1]
    buffer = io.BytesIO()
    template.writer.write(BinaryEncoder(buffer), manifest)
    encoded = buffer.getvalue()
    with _TEMPLATES_LOCK:
        _ENCODED_MANIFESTS[key] = (copy.deepcopy(manifest._data), encoded)
        _ENCODED_MANIFESTS.move_to_end(key)
        while len(_ENCODED_MANIFESTS) > _ENCODED_MANIFESTS_MAX:
            _ENCODED_MANIFESTS.popitem(last=False)
    return encoded


def write_manifest_list_file(
    format_version: TableVersion,
    output_file: OutputFile,
    snapshot_id: int,
    parent_snapshot_id: int | None,
    sequence_number: int | None,
    avro_compression: Any,
    manifests: list[ManifestFile],
) -> None:
    """``with write_manifest_list(...) as w: w.add_manifests(manifests)``, the same file, faster.

    PyIceberg's list writer supplies the header metadata and ``prepare_manifest`` (sequence
    numbers); the Avro template is made once per format version and each manifest's record is
    encoded once (the next commit's list names the same manifests). v3 lists assign row ids
    while writing: PyIceberg writes those.
    """
    lister = write_manifest_list(
        format_version=format_version,
        output_file=output_file,
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent_snapshot_id,
        sequence_number=sequence_number,
        avro_compression=avro_compression,
    )
    if format_version not in (1, 2):
        with lister as writer:
            writer.add_manifests(manifests)
        return
    template = _LIST_TEMPLATES.get(format_version)
    if template is None:
        template = _LIST_TEMPLATES[format_version] = _avro_template(
            MANIFEST_LIST_FILE_SCHEMAS[format_version], MANIFEST_LIST_FILE_SCHEMAS[DEFAULT_READ_VERSION], "manifest_file"
        )
    records = [_encoded_manifest(format_version, template, _prepared(lister, m)) for m in manifests]
    avro = _TemplatedAvroOutputFile(output_file, template, lister._meta)
    with avro:
        avro.write_encoded_block(records)


def _prepared(lister: Any, manifest: ManifestFile) -> ManifestFile:
    """``lister.prepare_manifest(manifest)``; a v2 manifest whose sequence numbers are assigned is returned
    as is (PyIceberg returns a copy that shares its fields: nothing to assign, nothing to copy)."""
    if (
        lister._format_version == 2
        and manifest.sequence_number != UNASSIGNED_SEQ
        and manifest.min_sequence_number != UNASSIGNED_SEQ
    ):
        return manifest
    return lister.prepare_manifest(manifest)  # type: ignore[no-any-return]


class _InlineMergeManager(_ManifestMergeManager):
    """PyIceberg's manifest merge manager, merging each bin in the calling thread.

    ``_merge_group`` hands every bin to a thread pool and waits: pure Python under the GIL, so no
    parallelism, and a hand-off per commit (see ``_InlineManifests``). Same bins, same order.
    """

    def _merge_group(self, first_manifest: ManifestFile, spec_id: int, manifests: list[ManifestFile]) -> list[ManifestFile]:
        from pyiceberg.utils.bin_packing import ListPacker

        packer: ListPacker[ManifestFile] = ListPacker(target_weight=self._target_size_bytes, lookback=1, largest_bin_first=False)
        merged: list[ManifestFile] = []
        for manifest_bin in packer.pack_end(manifests, lambda m: m.manifest_length):
            if len(manifest_bin) == 1:
                merged.append(manifest_bin[0])
            elif first_manifest in manifest_bin and len(manifest_bin) < self._min_count_to_merge:
                merged.extend(manifest_bin)  # the bin of the new manifest merges only once it is large enough
            else:
                merged.append(self._create_manifest(spec_id, manifest_bin))
        return merged


class _ListWriting(_SnapshotProducer[Any]):
    """A producer whose manifests and manifest list are written with the templates above.

    ``_commit`` is PyIceberg's ``_SnapshotProducer._commit`` step for step (the snapshot, the
    ref update and its requirement), except that the manifest list goes through
    ``write_manifest_list_file``; the canary test checks the result against PyIceberg's.
    """

    def new_manifest_writer(self, spec: PartitionSpec) -> ManifestWriter:
        return _write_manifest(
            format_version=self._transaction.table_metadata.format_version,
            spec=spec,
            schema=self.schema(),
            output_file=self.new_manifest_output(),
            snapshot_id=self._snapshot_id,
            avro_compression=self._compression,
        )

    def _commit(self) -> UpdatesAndRequirements:
        new_manifests = self._manifests()
        metadata = self._transaction.table_metadata
        next_sequence_number = metadata.next_sequence_number()
        summary = self._summary(self.snapshot_properties)
        file_name = _new_manifest_list_file_name(snapshot_id=self._snapshot_id, attempt=0, commit_uuid=self.commit_uuid)
        manifest_list_file_path = self._transaction._table.location_provider().new_metadata_location(file_name)
        self._written_manifest_lists.append(manifest_list_file_path)
        write_manifest_list_file(
            format_version=metadata.format_version,
            output_file=self._io.new_output(manifest_list_file_path),
            snapshot_id=self._snapshot_id,
            parent_snapshot_id=self._parent_snapshot_id,
            sequence_number=next_sequence_number,
            avro_compression=self._compression,
            manifests=new_manifests,
        )
        snapshot = Snapshot(
            snapshot_id=self._snapshot_id,
            parent_snapshot_id=self._parent_snapshot_id,
            manifest_list=manifest_list_file_path,
            sequence_number=next_sequence_number,
            summary=summary,
            schema_id=metadata.current_schema_id,
            first_row_id=metadata.next_row_id if metadata.format_version >= 3 else None,  # type: ignore[union-attr]  # v3 only
        )
        add_snapshot_update = AddSnapshotUpdate(snapshot=snapshot)
        if self._target_branch is None:
            return (add_snapshot_update,), ()
        return (
            (
                add_snapshot_update,
                SetSnapshotRefUpdate(  # type: ignore[call-arg]  # parent_snapshot_id: passed as PyIceberg's _commit does
                    snapshot_id=self._snapshot_id,
                    parent_snapshot_id=self._parent_snapshot_id,
                    ref_name=self._target_branch,
                    type=SnapshotRefType.BRANCH,
                ),
            ),
            (
                AssertRefSnapshotId(
                    snapshot_id=metadata.refs[self._target_branch].snapshot_id if self._target_branch in metadata.refs else None,
                    ref=self._target_branch,
                ),
            ),
        )


class _InlineManifests(_ListWriting):
    """Write a snapshot's new manifests in the calling thread.

    PyIceberg's ``_manifests`` hands the added, deleted and existing manifests to three tasks of
    its thread pool and waits for them. The work is Python holding the GIL, so the threads run
    one after the other anyway; on a busy machine each hand-off costs milliseconds of a commit
    that otherwise takes a few. Same steps, same order, same files.
    """

    def _manifests(self) -> list[ManifestFile]:
        self._build_delete_files_partition_predicate()
        deleted_entries = self._deleted_entries()  # before writing: a validation failure leaves no orphans
        manifests: list[ManifestFile] = []
        if self._added_data_files:
            with self.new_manifest_writer(spec=self._transaction.table_metadata.spec()) as writer:
                for data_file in self._added_data_files:
                    writer.add(
                        ManifestEntry.from_args(
                            status=ManifestEntryStatus.ADDED,
                            snapshot_id=self._snapshot_id,
                            sequence_number=None,
                            file_sequence_number=None,
                            data_file=data_file,
                        )
                    )
            manifests.append(writer.to_manifest_file())
        by_spec: dict[int, list[ManifestEntry]] = {}
        for entry in deleted_entries:
            by_spec.setdefault(entry.data_file.spec_id, []).append(entry)
        for spec_id, entries in by_spec.items():
            with self.new_manifest_writer(self.spec(spec_id)) as writer:
                for entry in entries:
                    writer.add_entry(entry)
            manifests.append(writer.to_manifest_file())
        listed = self._process_manifests(manifests + self._existing_manifests())
        _remember_manifest_list(self, listed)
        return listed


# The manifest lists this process wrote, by path, as ManifestFile objects equal to what reading the
# file gives: the next commit to the table lists its parent's manifests without reading and
# decoding that Avro file again (a stream of small appends re-read the list it had just written on
# every commit). A path names one immutable file, so an entry never goes stale; a commit that
# failed leaves an entry nobody looks up. Bounded: one entry per recently committed table.
_WRITTEN_LISTS: OrderedDict[str, tuple[ManifestFile, ...]] = OrderedDict()
_WRITTEN_LISTS_MAX = 64
_WRITTEN_LISTS_LOCK = threading.Lock()


def _remember_manifest_list(producer: _SnapshotProducer[Any], manifests: list[ManifestFile]) -> None:
    """Keep the manifests the list ``producer`` is about to write will hold (what its writer stores)."""
    metadata = producer._transaction.table_metadata
    version = metadata.format_version
    if version not in (1, 2):
        return  # v3 lists carry row ids assigned while writing: read those back
    sequence_number = metadata.next_sequence_number()
    snapshot_id = producer._snapshot_id
    prepared = []
    for manifest in manifests:
        stored = manifest
        if version == 2 and UNASSIGNED_SEQ in (manifest.sequence_number, manifest.min_sequence_number):
            stored = copy.copy(manifest)
            # ManifestListWriterV2.prepare_manifest: the commit's sequence number for its own manifests.
            if stored.sequence_number == UNASSIGNED_SEQ:
                if stored.added_snapshot_id != snapshot_id:
                    return  # the writer will refuse this list; remember nothing
                stored.sequence_number = sequence_number
            if stored.min_sequence_number == UNASSIGNED_SEQ:
                if stored.added_snapshot_id != snapshot_id:
                    return
                stored.min_sequence_number = sequence_number
        prepared.append(stored)
    path = _new_manifest_list_file_name(snapshot_id=snapshot_id, attempt=0, commit_uuid=producer.commit_uuid)
    location = producer._transaction._table.location_provider().new_metadata_location(path)
    with _WRITTEN_LISTS_LOCK:
        _WRITTEN_LISTS[location] = tuple(prepared)
        _WRITTEN_LISTS.move_to_end(location)
        while len(_WRITTEN_LISTS) > _WRITTEN_LISTS_MAX:
            _WRITTEN_LISTS.popitem(last=False)


def snapshot_manifests(snapshot: Snapshot, io: FileIO) -> list[ManifestFile]:
    """``snapshot.manifests(io)``, from memory when this process wrote that manifest list."""
    with _WRITTEN_LISTS_LOCK:
        known = _WRITTEN_LISTS.get(snapshot.manifest_list)
    return list(known) if known is not None else snapshot.manifests(io=io)


class _ParentFromMemory(_FastAppendFiles):
    """An append listing its parent's manifests from ``snapshot_manifests`` (PyIceberg's
    ``_FastAppendFiles._existing_manifests``, same rule, without re-reading a list this process wrote)."""

    def _existing_manifests(self) -> list[ManifestFile]:
        if self._parent_snapshot_id is None:
            return []
        previous = self._transaction.table_metadata.snapshot_by_id(self._parent_snapshot_id)
        if previous is None:
            raise ValueError(f"Snapshot could not be found: {self._parent_snapshot_id}")
        return [
            m
            for m in snapshot_manifests(previous, self._io)
            if m.has_added_files() or m.has_existing_files() or m.added_snapshot_id == self._snapshot_id
        ]


class FastAppend(_InlineManifests, _ParentFromMemory):
    """An append producer (``tx.update_snapshot().fast_append()``'s class), writing its manifests inline;
    staged (write-audit-publish) appends subclass it, see ``staged``."""


class MergeAppend(_InlineManifests, _MergeAppendFiles, _ParentFromMemory):
    """An append that merges small manifests (``commit.manifest-merge.enabled``, ``commit.manifest.min-count-to-merge``).

    A stream of small appends adds one manifest per commit; every later commit rewrites a
    manifest list naming all of them and every scan opens them all. Iceberg (Java) merges by
    default: once a table has ``min-count-to-merge`` (100) small manifests, the next append writes
    them as one. PyIceberg has the merge but leaves it off unless the table property is set;
    Wharf follows Iceberg's default (see ``merge_enabled``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._merge_enabled = merge_enabled(self._transaction.table_metadata)

    def _process_manifests(self, manifests: list[ManifestFile]) -> list[ManifestFile]:
        return merge_data_manifests(self, manifests)  # _MergeAppendFiles' rule, merging inline


MANIFEST_MERGE_ENABLED = "commit.manifest-merge.enabled"


def merge_enabled(metadata: TableMetadata) -> bool:
    """Whether appends to this table merge manifests: Iceberg's default (true) unless the table says otherwise."""
    return str(metadata.properties.get(MANIFEST_MERGE_ENABLED, "true")).lower() == "true"


def merge_data_manifests(producer: _SnapshotProducer[Any], manifests: list[ManifestFile]) -> list[ManifestFile]:
    """``manifests`` with the small data manifests merged as a merge-append would (delete manifests untouched)."""
    from pyiceberg.table import TableProperties
    from pyiceberg.utils.properties import property_as_int

    metadata = producer._transaction.table_metadata
    if not merge_enabled(metadata):
        return manifests
    properties = metadata.properties
    manager = _InlineMergeManager(
        target_size_bytes=property_as_int(
            properties, TableProperties.MANIFEST_TARGET_SIZE_BYTES, TableProperties.MANIFEST_TARGET_SIZE_BYTES_DEFAULT
        ),  # type: ignore[arg-type]
        min_count_to_merge=property_as_int(
            properties, TableProperties.MANIFEST_MIN_MERGE_COUNT, TableProperties.MANIFEST_MIN_MERGE_COUNT_DEFAULT
        ),  # type: ignore[arg-type]
        merge_enabled=True,
        snapshot_producer=producer,
    )
    data = [m for m in manifests if m.content == ManifestContent.DATA]
    deletes = [m for m in manifests if m.content != ManifestContent.DATA]
    return manager.merge_manifests(data) + deletes


def write_data_files(table: Table, data: pa.Table | pa.RecordBatchReader) -> list[DataFile]:
    """Write Arrow data as Parquet data files of ``table`` (partitioned, with metrics) without committing.

    Private because PyIceberg's public ``append`` always commits; Wharf commits the files itself,
    together with the files it removes and the statement's read filter.
    """
    return list(
        _dataframe_to_data_files(
            table_metadata=table.metadata, df=data, io=table.io, write_uuid=uuid.uuid4(), counter=itertools.count(0)
        )
    )


def arrow_to_iceberg_fields(schema: pa.Schema) -> list[NestedField]:
    """Iceberg fields (numbered 1..n, nested fields after) for an Arrow schema without field ids.

    Private because the public ``pyarrow_to_schema`` insists on field ids (or a name mapping).
    """
    converted = visit_pyarrow(schema, _ConvertToIcebergWithoutIDs())
    if not isinstance(converted, Schema):
        raise TypeError(f"An Arrow schema did not convert to an Iceberg schema: {schema}")
    return list(assign_fresh_schema_ids(Schema(*converted.fields)).fields)


def apply_updates(base: TableMetadata, updates: tuple[TableUpdate, ...]) -> TableMetadata:
    """``pyiceberg.table.update.update_table_metadata`` without its final deep copy.

    Each update builds a new (frozen) metadata object from the previous one and never mutates
    it, so sharing unchanged parts is safe; the deep copy costs O(history) per call. Everything
    else follows ``update_table_metadata`` step by step, including the ``last-updated-ms`` bump
    (an earlier fork skipped it). The metadata log is added by the catalog when it writes the
    metadata file, from the file it replaces; staged metadata has no file yet.
    """
    if not updates:
        return base
    context = _TableMetadataUpdateContext()
    metadata = base
    for update in updates:
        metadata = _apply_table_update(update, metadata, context)
    if context.has_changes() and base.last_updated_ms == metadata.last_updated_ms:
        metadata = metadata.model_copy(update={"last_updated_ms": datetime_to_millis(datetime.now().astimezone())})
    metadata.spec().check_compatible(metadata.schema())
    metadata.sort_order().check_compatible(metadata.schema())
    return metadata


def update_metadata(base: TableMetadata, updates: tuple[TableUpdate, ...], location: str | None) -> TableMetadata:
    """``update_table_metadata(base, updates, metadata_location=location)`` without its final deep copy.

    What a catalog commit applies to the current metadata (at ``location``): the updates, the
    metadata-log entry for the file being replaced (private ``_update_table_metadata_log``) and
    the ``last-updated-ms`` bump, then the spec and sort-order checks — step for step as
    PyIceberg's, so the metadata file written is the same. The deep copy it ends with costs
    O(history) per commit and protects nothing: updates build new frozen objects.
    """
    context = _TableMetadataUpdateContext()
    metadata = base
    for update in updates:
        metadata = _apply_table_update(update, metadata, context)
    if context.has_changes() and location is not None:  # None: a proposal only read (a gate's view)
        metadata = _update_table_metadata_log(metadata, location, base.last_updated_ms)
        if base.last_updated_ms == metadata.last_updated_ms:
            metadata = metadata.model_copy(update={"last_updated_ms": datetime_to_millis(datetime.now().astimezone())})
    metadata.spec().check_compatible(metadata.schema())
    metadata.sort_order().check_compatible(metadata.schema())
    return metadata


class MemoizedTransaction(Transaction):
    """PyIceberg's transaction with its derived metadata memoised.

    ``Transaction.table_metadata`` re-applies every staged update to a deep copy of the base
    metadata on each access (a dozen times per commit). The result depends only on the base
    metadata object and the staged updates, so it is cached on exactly those: the memo keeps
    both objects alive and compares them by identity (an ``id()`` could be reused after a
    retry replaced the base).
    """

    _memo: tuple[TableMetadata, tuple[TableUpdate, ...], TableMetadata] | None = None

    @property
    def table_metadata(self) -> TableMetadata:
        base, updates = self._table.metadata, self._updates
        memo = self._memo
        if memo is None or memo[0] is not base or memo[1] is not updates:
            memo = (base, updates, apply_updates(base, updates))
            self._memo = memo
        return memo[2]


def stage(tx: Transaction, updates: tuple[TableUpdate, ...], requirements: tuple[TableRequirement, ...] = ()) -> None:
    """Add metadata updates to a transaction without committing it.

    Private because PyIceberg's public builders (``update_schema``, ``manage_snapshots``) each
    stage their own kind only; REPLACE TABLE and ref changes on empty tables need raw updates.
    """
    tx._stage(updates, requirements)


class Overwrite(_InlineManifests, _OverwriteFiles):
    """Overwrite whose manifests for files of an *old* partition spec use a schema that spec binds to.

    PyIceberg writes every manifest with the current schema; after a REPLACE TABLE (or dropping a
    partition source column) an old spec no longer binds to it and writing the manifest fails.
    """

    def new_manifest_writer(self, spec: PartitionSpec) -> ManifestWriter:
        return _manifest_writer(self, spec)


def _manifest_writer(producer: _SnapshotProducer[Any], spec: PartitionSpec) -> ManifestWriter:
    """A manifest writer of ``producer`` for ``spec``, with a schema the spec binds to (see ``Overwrite``)."""
    metadata = producer._transaction.table_metadata
    needed = {f.source_id for f in spec.fields}
    schema = metadata.schema()
    if not needed <= {f.field_id for f in schema.fields}:
        for candidate in reversed(metadata.schemas):
            if needed <= {f.field_id for f in candidate.fields}:
                schema = candidate
                break
    return _write_manifest(
        format_version=metadata.format_version,
        spec=spec,
        schema=schema,
        output_file=producer.new_manifest_output(),
        snapshot_id=producer._snapshot_id,
        avro_compression=producer._compression,
    )


ManifestPlan = Callable[["ReplaceManifests"], tuple[list[ManifestFile], dict[str, str]]]
"""Given the producer, the manifests the new snapshot lists and the summary properties describing the rewrite."""

# Summary totals a ``replace`` snapshot carries over unchanged from its parent (it changes no data).
_TOTALS = (
    "total-data-files",
    "total-delete-files",
    "total-records",
    "total-files-size",
    "total-position-deletes",
    "total-equality-deletes",
)


class ReplaceManifests(_ListWriting, _SnapshotProducer["ReplaceManifests"]):
    """A producer of a ``replace`` snapshot that lists rewritten manifests and changes no data (rewrite_manifests).

    Private because PyIceberg 0.12 has no rewrite-manifests operation and its public producers
    refuse the ``replace`` operation (``update_snapshot_summaries``); this one reuses the base
    producer's manifest-list writing, snapshot and ref updates, requirements and retry cleanup,
    and overrides the hooks that decide the manifests (``_existing_manifests``), the entries
    deleted (none), the summary and the concurrency validation. ``plan`` runs on every attempt,
    against the branch head of that attempt, so a retry after a concurrent commit rewrites the
    fresh head's manifests: it cannot conflict with anything, and validation is a no-op.
    """

    def __init__(
        self,
        transaction: Transaction,
        io: FileIO,
        plan: ManifestPlan,
        snapshot_properties: dict[str, str] | None = None,
        branch: str = MAIN_BRANCH,
    ) -> None:
        super().__init__(Operation.REPLACE, transaction, io, snapshot_properties=snapshot_properties or {}, branch=branch)
        self._plan = plan
        self._rewrite_summary: dict[str, str] = {}

    @property
    def metadata(self) -> TableMetadata:
        """The metadata the snapshot is built on (the transaction's, refreshed on retry)."""
        return self._transaction.table_metadata

    @property
    def io(self) -> FileIO:
        return self._io

    @property
    def parent(self) -> Snapshot | None:
        """The branch head this attempt rewrites."""
        return self.metadata.snapshot_by_id(self._parent_snapshot_id) if self._parent_snapshot_id is not None else None

    def manifest_writer(self, spec: PartitionSpec) -> ManifestWriter:
        """A writer for one new manifest of ``spec`` (tracked, so a failed commit removes it)."""
        return _manifest_writer(self, spec)

    def _existing_manifests(self) -> list[ManifestFile]:
        manifests, self._rewrite_summary = self._plan(self)
        return manifests

    def _deleted_entries(self) -> list[ManifestEntry]:
        return []

    def _validate_concurrency(self) -> None:
        return None

    def _summary(self, snapshot_properties: dict[str, str] | None = None) -> Summary:
        parent = self.parent
        previous = parent.summary.additional_properties if parent is not None and parent.summary is not None else {}
        totals = {k: previous[k] for k in _TOTALS if k in previous}
        return Summary(operation=Operation.REPLACE, **totals, **self._rewrite_summary, **(snapshot_properties or {}))


class _DeleteManifestWriter(_ManifestWriterV2):
    """PyIceberg's v2 manifest writer, for a manifest of delete files (``content = deletes``).

    Private because PyIceberg 0.12 writes no delete files, so it has no writer for their manifests.
    """

    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


class RowDelta(_ListWriting, _SnapshotProducer["RowDelta"]):
    """A snapshot that adds and removes data files *and delete files* (Iceberg's RowDelta / RewriteFiles).

    Private because PyIceberg 0.12 can neither write delete files nor commit a ``replace``
    snapshot. It serves merge-on-read writes (new positional delete files, new rows), compaction
    (``replace``: rewritten data files in, the files and deletes they absorb out) and the removal
    of delete files that no longer apply to any live data.

    - Added data files are entries of new manifests, one per partition spec. They normally
      inherit the snapshot's sequence number; compaction gives them ``data_sequence_number``,
      the sequence number of the snapshot it read, so that equality deletes committed while it
      ran still apply to the rewritten rows (Iceberg's RewriteFiles does the same).
    - Removed files (data or delete) must be live in the parent: their manifests are rewritten
      with them marked deleted; manifests without any removed file are carried over untouched.
    - Validation on retry (another commit landed since the statement read the table): every
      removed data file and every data file the new deletes reference must still exist with no
      new deletes against it, and with ``serializable`` set no data matching the read filter may
      have been added.
    """

    def __init__(
        self,
        operation: Operation,
        transaction: Transaction,
        io: FileIO,
        *,
        snapshot_properties: dict[str, str] | None = None,
        branch: str | None = MAIN_BRANCH,
        data_sequence_number: int | None = None,
        serializable: bool = True,
    ) -> None:
        super().__init__(operation, transaction, io, snapshot_properties=snapshot_properties or {}, branch=branch)
        self._added_delete_files: list[DataFile] = []
        self._removed_delete_files: set[DataFile] = set()
        self._referenced_data_files: set[DataFile] = set()
        self._data_sequence_number = data_sequence_number
        self._serializable = serializable
        self._isolation_operation = Operation.DELETE if operation == Operation.DELETE else Operation.OVERWRITE
        self._plan: tuple[list[ManifestFile], list[ManifestEntry]] | None = None

    def add_delete_file(self, delete_file: DataFile) -> RowDelta:
        self._added_delete_files.append(delete_file)
        return self

    def remove_delete_file(self, delete_file: DataFile) -> RowDelta:
        self._removed_delete_files.add(delete_file)
        return self

    def reference_data_file(self, data_file: DataFile) -> RowDelta:
        """A data file the added deletes apply to: it must still be live when the commit lands."""
        self._referenced_data_files.add(data_file)
        return self

    def read_filter(self, predicate: BooleanExpression) -> RowDelta:
        """What the statement read (a concurrent append of matching rows is a conflict)."""
        self._predicate = predicate
        self._case_sensitive = False
        return self

    # --- manifests ---------------------------------------------------------------------------------

    def _writer(self, spec_id: int, content: ManifestContent) -> ManifestWriter:
        spec = self.spec(spec_id)
        if content == ManifestContent.DATA:
            return _manifest_writer(self, spec)
        writer = _manifest_writer(self, spec)  # for its schema choice and tracked output file
        return _DeleteManifestWriter(spec, writer._schema, writer._output_file, self._snapshot_id, self._compression)

    def _planned(self) -> tuple[list[ManifestFile], list[ManifestEntry]]:
        """(manifests carried into the snapshot, entries of removed files marked deleted), once per attempt."""
        if self._plan is not None:
            return self._plan
        metadata = self._transaction.table_metadata
        parent = metadata.snapshot_by_id(self._parent_snapshot_id) if self._parent_snapshot_id is not None else None
        removed = {f.file_path for f in self._deleted_data_files} | {f.file_path for f in self._removed_delete_files}
        evaluators = self._removed_partitions_evaluators()
        kept: list[ManifestFile] = []
        deleted: list[ManifestEntry] = []
        found: set[str] = set()
        for manifest in parent.manifests(self._io) if parent is not None else []:
            evaluator = evaluators.get(manifest.partition_spec_id)
            if not removed or evaluator is None or not evaluator(manifest):
                kept.append(manifest)
                continue
            entries = manifest.fetch_manifest_entry(self._io, discard_deleted=True)
            hits = [e for e in entries if e.data_file.file_path in removed]
            if not hits:
                kept.append(manifest)
                continue
            found.update(e.data_file.file_path for e in hits)
            deleted.extend(_with_status(e, ManifestEntryStatus.DELETED, self._snapshot_id) for e in hits)
            rest = [e for e in entries if e.data_file.file_path not in removed]
            if rest:
                with self._writer(manifest.partition_spec_id, manifest.content) as writer:
                    for entry in rest:
                        writer.add_entry(_with_status(entry, ManifestEntryStatus.EXISTING, self._snapshot_id))
                kept.append(writer.to_manifest_file())
        missing = removed - found
        if missing:
            raise ValidationException(f"Files to remove are no longer live in the table: {sorted(missing)[:3]}")
        self._plan = (kept, deleted)
        return self._plan

    def _removed_partitions_evaluators(self) -> dict[int, Callable[[ManifestFile], bool]]:
        """Per spec id: whether a manifest may hold one of the removed files (by its partition summaries)."""
        by_spec: dict[int, set[Record]] = {}
        for f in itertools.chain(self._deleted_data_files, self._removed_delete_files):
            by_spec.setdefault(_spec_id(f, self._transaction.table_metadata.default_spec_id), set()).add(f.partition)
        evaluators: dict[int, Callable[[ManifestFile], bool]] = {}
        for spec_id, partitions in by_spec.items():
            spec = self.spec(spec_id)
            predicate = self._transaction._build_partition_predicate(
                partition_records=partitions, partition_fields=[f.name for f in spec.fields]
            )
            evaluators[spec_id] = manifest_evaluator(spec, self.schema(), predicate, case_sensitive=True)
        return evaluators

    def _existing_manifests(self) -> list[ManifestFile]:
        return self._planned()[0]

    def _deleted_entries(self) -> list[ManifestEntry]:
        return self._planned()[1]

    def _manifests(self) -> list[ManifestFile]:
        kept, deleted = self._planned()
        metadata_spec = self._transaction.table_metadata.default_spec_id
        written: list[ManifestFile] = []
        groups: dict[tuple[int, ManifestContent], list[ManifestEntry]] = {}
        for f in self._added_data_files:
            entry = ManifestEntry.from_args(
                status=ManifestEntryStatus.ADDED,
                snapshot_id=self._snapshot_id,
                sequence_number=self._data_sequence_number,
                file_sequence_number=None,
                data_file=f,
            )
            groups.setdefault((_spec_id(f, metadata_spec), ManifestContent.DATA), []).append(entry)
        for f in self._added_delete_files:
            entry = ManifestEntry.from_args(
                status=ManifestEntryStatus.ADDED,
                snapshot_id=self._snapshot_id,
                sequence_number=None,
                file_sequence_number=None,
                data_file=f,
            )
            groups.setdefault((_spec_id(f, metadata_spec), ManifestContent.DELETES), []).append(entry)
        for entry in deleted:
            content = ManifestContent.DATA if entry.data_file.content == DataFileContent.DATA else ManifestContent.DELETES
            groups.setdefault((_spec_id(entry.data_file, metadata_spec), content), []).append(entry)
        for (spec_id, content), entries in groups.items():
            with self._writer(spec_id, content) as writer:
                for entry in entries:
                    writer.add_entry(entry)
            written.append(writer.to_manifest_file())
        # A stream of small merge-on-read commits adds manifests as appends do: merged likewise.
        return merge_data_manifests(self, written + kept)

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        metadata = self._transaction.table_metadata
        specs, schema = metadata.specs(), metadata.schema()
        collector = SnapshotSummaryCollector()
        for f in itertools.chain(self._added_data_files, self._added_delete_files):
            collector.add_file(f, schema=schema, partition_spec=specs[_spec_id(f, metadata.default_spec_id)])
        for f in itertools.chain(self._deleted_data_files, self._removed_delete_files):
            collector.remove_file(f, schema=schema, partition_spec=specs[f.spec_id])
        parent = metadata.snapshot_by_id(self._parent_snapshot_id) if self._parent_snapshot_id is not None else None
        # PyIceberg's total-* bookkeeping accepts append/overwrite/delete only; a replace keeps the
        # same arithmetic (added minus removed), so compute it as an overwrite and relabel it.
        totals = update_snapshot_summaries(
            summary=Summary(operation=Operation.OVERWRITE, **collector.build(), **snapshot_properties),
            previous_summary=parent.summary if parent is not None else None,
        )
        return Summary(operation=self._operation, **totals.additional_properties)

    # --- concurrency -------------------------------------------------------------------------------

    def _refresh_for_retry(self) -> None:
        super()._refresh_for_retry()
        self._plan = None

    def _validate_concurrency(self) -> None:
        window = self._commit_window
        if window is None or window.is_empty() or window.head is None:
            return
        table = self._transaction._table
        head, base = window.head, window.base
        data_filter = self._predicate if self._predicate != AlwaysFalse() else None
        if self._serializable and data_filter is not None:
            _validate_added_data_files(table, head, data_filter, base)
        must_exist = self._deleted_data_files | self._referenced_data_files
        if must_exist:
            _validate_data_files_exist(table, head, must_exist, base)
            self._validate_no_new_deletes(table, head, base, must_exist)

    def _validate_no_new_deletes(self, table: Table, head: Snapshot, base: Snapshot | None, files: set[DataFile]) -> None:
        """No delete file committed since ``base`` may apply to ``files`` (it would be lost or duplicated).

        PyIceberg's ``_validate_no_new_deletes_for_data_files`` compares with the *head's* sequence
        number, so it misses a delete followed by any other commit; Iceberg compares with the
        starting snapshot's, as here. A compaction (``data_sequence_number`` set) keeps the rows'
        old sequence number, so equality deletes committed meanwhile still apply to its new
        files and are no conflict (Iceberg's RewriteFiles ignores them likewise).
        """
        found = new_deletes_for(table, head, base, files, equality=self._data_sequence_number is None)
        if found:
            delete, data_file = found[0]
            raise ValidationException(
                f"Cannot commit: delete file {delete.file_path} was committed meanwhile for data file {data_file.file_path}"
            )


def new_deletes_for(
    table: Table, head: Snapshot, base: Snapshot | None, files: Iterable[DataFile], *, equality: bool = True
) -> list[tuple[DataFile, DataFile]]:
    """(delete file, data file) pairs: delete files committed after ``base`` up to ``head`` that apply to ``files``.

    Compared with ``base``'s sequence number, as Iceberg does (PyIceberg's own check uses the
    head's; see ``RowDelta._validate_no_new_deletes``). ``equality=False`` ignores equality
    deletes (a compaction keeps the rows' old sequence number, so they still apply to its files).
    """
    if base is not None and head.snapshot_id == base.snapshot_id:
        return []
    index = _added_delete_files(table, head, None, None, base)
    if index.is_empty():
        return []
    base_seq = base.sequence_number if base is not None and base.sequence_number else 0
    found: list[tuple[DataFile, DataFile]] = []
    for data_file in files:
        for delete in index.for_data_file(base_seq, data_file, data_file.partition):
            if not equality and delete.content == DataFileContent.EQUALITY_DELETES:
                continue
            found.append((delete, data_file))
    return found


def _spec_id(data_file: DataFile, default: int) -> int:
    """A data file's partition spec id; files built with ``DataFile.from_args`` may lack one (the default spec)."""
    try:
        return data_file.spec_id
    except AttributeError:
        return default


def _with_status(entry: ManifestEntry, status: ManifestEntryStatus, snapshot_id: int) -> ManifestEntry:
    """``entry`` rewritten with ``status`` (a deleted entry records the snapshot that deleted it)."""
    return ManifestEntry.from_args(
        status=status,
        snapshot_id=snapshot_id if status == ManifestEntryStatus.DELETED else entry.snapshot_id,
        sequence_number=entry.sequence_number,
        file_sequence_number=entry.file_sequence_number,
        data_file=entry.data_file,
    )


_Producer = TypeVar("_Producer", bound=_SnapshotProducer[Any])


def staged(producer_class: type[_Producer]) -> type[_Producer]:
    """A producer that adds its snapshot without moving any branch (write-audit-publish staging).

    PyIceberg's ``branch=None`` also stages, but then the snapshot has no parent, so an
    overwrite cannot name the files it replaces; this keeps the branch as parent and drops only
    the ref update (private: it overrides ``_commit``).
    """

    class Staged(producer_class):  # type: ignore[misc, valid-type]  # a subclass of a class parameter
        def _commit(self) -> UpdatesAndRequirements:
            updates, _requirements = super()._commit()
            return tuple(u for u in updates if not isinstance(u, SetSnapshotRefUpdate)), ()

    return Staged


def empty_table_metadata(catalog: MetastoreCatalog) -> TableMetadata:
    """The metadata a new table's creation updates apply to (what the catalog itself starts from).

    Private because only the catalog's commit uses it; Wharf's commit path needs it to show a
    gate the metadata a ``CREATE TABLE`` would produce.
    """
    return catalog._empty_table_metadata()


def write_metadata_file(metadata: TableMetadata, io: FileIO, path: str) -> None:
    """Write a ``metadata.json`` as PyIceberg's catalogs do (their private static ``_write_metadata``)."""
    MetastoreCatalog._write_metadata(metadata, io, path)


def catalog_file_io(catalog: MetastoreCatalog, location: str) -> FileIO:
    """The catalog's file IO for ``location`` (to read a metadata file before registering it)."""
    return catalog._load_file_io(location=location)


# Columns of PyIceberg's SQL-catalog table that the table loader reads with one plain SQL query
# (the ORM costs more than the query). Checked by the canary test.
SQL_CATALOG_TABLE = "iceberg_tables"
SQL_CATALOG_COLUMNS = ("catalog_name", "table_namespace", "table_name", "metadata_location")
# Namespaces without tables live here (catalog.names folds namespace names over both tables).
SQL_NAMESPACE_TABLE = "iceberg_namespace_properties"
SQL_NAMESPACE_COLUMNS = ("catalog_name", "namespace")
