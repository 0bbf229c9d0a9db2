"""Canary for the private PyIceberg names Wharf relies on (``wharf.pyiceberg_compat``).

When PyIceberg is upgraded and one of these changes, this file fails with the name and what
changed, instead of a commit failing somewhere in a user's job.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.manifest import ManifestFile
from pyiceberg.table.update import AddSnapshotUpdate, SetPropertiesUpdate, SetSnapshotRefUpdate, update_table_metadata

import wharf
from wharf import pyiceberg_compat as compat

# (module, name, the parameters Wharf passes or overrides)
PRIVATE_CALLABLES = [
    ("pyiceberg.io.pyarrow", "_dataframe_to_data_files", {"table_metadata", "df", "io", "write_uuid", "counter"}),
    ("pyiceberg.table.update", "_apply_table_update", {"update", "base_metadata", "context"}),
    (
        "pyiceberg.table.update.snapshot",
        "_SnapshotProducer.__init__",
        {"operation", "transaction", "io", "snapshot_properties", "branch"},
    ),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer.delete_by_predicate", {"predicate", "case_sensitive"}),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer._commit", set()),
    ("pyiceberg.table.update.snapshot", "_OverwriteFiles.new_manifest_writer", {"spec"}),
    # ReplaceManifests (rewrite_manifests) overrides these hooks of the base producer
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer._existing_manifests", set()),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer._deleted_entries", set()),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer._summary", {"snapshot_properties"}),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer._validate_concurrency", set()),
    ("pyiceberg.table", "Transaction._stage", {"updates", "requirements"}),
    # the scan planner's cached plan_manifest_entries builds PyIceberg's own evaluators
    ("pyiceberg.table", "ManifestGroupPlanner._build_manifest_evaluator", {"spec_id"}),
    ("pyiceberg.table", "ManifestGroupPlanner._build_partition_evaluator", {"spec_id"}),
    ("pyiceberg.table", "ManifestGroupPlanner._build_metrics_evaluator", set()),
    # RowDelta (merge-on-read, compaction) validates like PyIceberg's overwrite does on retry
    (
        "pyiceberg.table.update.validate",
        "_validate_added_data_files",
        {"table", "starting_snapshot", "data_filter", "parent_snapshot"},
    ),
    (
        "pyiceberg.table.update.validate",
        "_validate_data_files_exist",
        {"table", "starting_snapshot", "data_files", "parent_snapshot"},
    ),
    (
        "pyiceberg.table.update.validate",
        "_added_delete_files",
        {"table", "starting_snapshot", "data_filter", "partition_set", "parent_snapshot"},
    ),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer._refresh_for_retry", set()),
    ("pyiceberg.table", "Transaction._build_partition_predicate", {"partition_records", "partition_fields"}),
    ("pyiceberg.catalog", "MetastoreCatalog._empty_table_metadata", set()),
    # the catalog's commit applies updates and the metadata-log entry without the deep copy
    ("pyiceberg.table.update", "_update_table_metadata_log", {"base_metadata", "metadata_location", "last_updated_ms"}),
    # manifests written inline, and merged as merge-append does (appends, RowDelta)
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer._build_delete_files_partition_predicate", set()),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer._process_manifests", {"manifests"}),
    ("pyiceberg.table.update.snapshot", "_MergeAppendFiles.__init__", {"operation", "transaction", "io", "branch"}),
    (
        "pyiceberg.table.update.snapshot",
        "_ManifestMergeManager.__init__",
        {"target_size_bytes", "min_count_to_merge", "merge_enabled", "snapshot_producer"},
    ),
    ("pyiceberg.table.update.snapshot", "_ManifestMergeManager.merge_manifests", {"manifests"}),
    ("pyiceberg.catalog", "MetastoreCatalog._load_file_io", {"location"}),
    ("pyiceberg.catalog", "MetastoreCatalog._write_metadata", {"metadata", "io", "metadata_path"}),
    # the manifest list a commit writes is kept in memory under the name _commit gives it
    ("pyiceberg.table.update.snapshot", "_new_manifest_list_file_name", {"snapshot_id", "attempt", "commit_uuid"}),
    # manifests and manifest lists written from templates made once per schema and spec
    ("pyiceberg.manifest", "ManifestWriter._with_partition", {"format_version"}),
    ("pyiceberg.manifest", "ManifestWriter.new_writer", set()),
    ("pyiceberg.avro.file", "AvroOutputFile._write_header", set()),
    ("pyiceberg.avro.file", "AvroOutputFile.compression_codec", set()),
    ("pyiceberg.avro.resolver", "resolve_writer", {"record_schema", "file_schema"}),
]
PRIVATE_ATTRIBUTES = [
    ("pyiceberg.table.update", "_TableMetadataUpdateContext", "has_changes"),
    ("pyiceberg.io.pyarrow", "_ConvertToIcebergWithoutIDs", "schema"),
    ("pyiceberg.table.update.snapshot", "_FastAppendFiles", "_existing_manifests"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_snapshot_id"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_compression"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_transaction"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_io"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_parent_snapshot_id"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_commit_window"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_deleted_data_files"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_added_data_files"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_predicate"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "commit_uuid"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_isolation_operation"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_target_branch"),
    ("pyiceberg.table.update.snapshot", "_SnapshotProducer", "_written_manifest_lists"),
    ("pyiceberg.manifest", "ManifestWriter", "_meta"),
    ("pyiceberg.table", "Transaction", "_table"),
    ("pyiceberg.table", "Transaction", "_updates"),
    ("pyiceberg.table", "Transaction", "_snapshot_producers"),
]


def _resolve(module: str, dotted: str) -> object:
    import importlib

    target: object = importlib.import_module(module)
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


@pytest.mark.parametrize(("module", "name", "params"), PRIVATE_CALLABLES, ids=[f"{m}.{n}" for m, n, _ in PRIVATE_CALLABLES])
def test_private_callables_keep_their_signatures(module: str, name: str, params: set[str]) -> None:
    fn = _resolve(module, name)
    assert callable(fn), f"{module}.{name} is no longer callable"
    have = set(inspect.signature(fn).parameters)  # type: ignore[arg-type]
    missing = params - have
    assert not missing, f"{module}.{name} lost parameter(s) {sorted(missing)}; it now takes {sorted(have)}"


@pytest.mark.parametrize(
    ("module", "owner", "attribute"), PRIVATE_ATTRIBUTES, ids=[f"{m}.{o}.{a}" for m, o, a in PRIVATE_ATTRIBUTES]
)
def test_private_attributes_still_exist(lake: wharf.Lakehouse, module: str, owner: str, attribute: str) -> None:
    klass = _resolve(module, owner)
    if hasattr(klass, attribute):
        return
    # Instance attributes: look at a real instance.
    lake.sql("CREATE TABLE canary (x INT)")
    table = lake.catalog.load_table("default.canary")
    tx = compat.MemoizedTransaction(table)
    instances = {"Transaction": tx, "_SnapshotProducer": tx.update_snapshot().fast_append()}
    instance = instances.get(owner)
    assert instance is not None and hasattr(instance, attribute), f"{module}.{owner} has no attribute {attribute}"


def test_apply_updates_matches_update_table_metadata_without_the_deep_copy(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (x INT)")
    lake.sql("INSERT INTO t VALUES (1)")
    base = lake.catalog.load_table("default.t").metadata
    updates = (SetPropertiesUpdate(updates={"k": "v"}),)
    ours = compat.apply_updates(base, updates)
    theirs = update_table_metadata(base, updates)
    assert ours.model_dump(exclude={"last_updated_ms"}) == theirs.model_dump(exclude={"last_updated_ms"})
    assert ours.last_updated_ms != base.last_updated_ms  # the bump an earlier fork skipped
    assert compat.apply_updates(base, ()) is base


def test_the_memo_follows_staged_updates(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (x INT)")
    tx = compat.MemoizedTransaction(lake.catalog.load_table("default.t"))
    first = tx.table_metadata
    assert tx.table_metadata is first
    compat.stage(tx, (SetPropertiesUpdate(updates={"k": "v"}),))
    assert tx.table_metadata is not first and tx.table_metadata.properties["k"] == "v"


def test_a_staged_producer_adds_a_snapshot_without_moving_a_branch(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (x INT)")
    lake.sql("INSERT INTO t VALUES (1)")
    table = lake.catalog.load_table("default.t")
    tx = compat.MemoizedTransaction(table)
    producer = compat.staged(compat.FastAppend)("append", transaction=tx, io=table.io, branch="main")  # type: ignore[arg-type]
    producer.append_data_file(compat.write_data_files(table, pa.table({"x": pa.array([2], pa.int32())}))[0])
    producer.commit()
    kinds = {type(u) for u in tx._updates}
    assert AddSnapshotUpdate in kinds and SetSnapshotRefUpdate not in kinds


def test_a_replace_manifests_producer_lists_the_same_files_in_new_manifests(lake: wharf.Lakehouse) -> None:
    """The producer behind rewrite_manifests: a ``replace`` snapshot whose manifests the plan chose."""
    lake.sql("CREATE TABLE t (x INT)")
    lake.sql("INSERT INTO t VALUES (1)")
    lake.sql("INSERT INTO t VALUES (2)")
    table = lake.catalog.load_table("default.t")
    before = table.current_snapshot()
    assert before is not None and before.summary is not None

    def plan(producer: compat.ReplaceManifests) -> tuple[list[ManifestFile], dict[str, str]]:
        assert producer.parent is not None and producer.parent.snapshot_id == before.snapshot_id
        entries = [e for m in producer.parent.manifests(producer.io) for e in m.fetch_manifest_entry(producer.io)]
        with producer.manifest_writer(producer.metadata.spec()) as writer:
            for entry in entries:
                writer.existing(entry)
        return [writer.to_manifest_file()], {"manifests-created": "1"}

    tx = compat.MemoizedTransaction(table)
    compat.ReplaceManifests(tx, table.io, plan).commit()
    tx.commit_transaction()
    after = lake.catalog.load_table("default.t").current_snapshot()
    assert after is not None and after.summary is not None and after.parent_snapshot_id == before.snapshot_id
    assert after.summary.operation.value == "replace"
    assert after.summary["manifests-created"] == "1"
    assert after.summary["total-records"] == before.summary["total-records"] == "2"
    assert len(after.manifests(table.io)) == 1
    assert lake.sql("SELECT sum(x) FROM t").scalar() == 3


def test_metadata_files_match_what_pyiceberg_writes(lake: wharf.Lakehouse, tmp_path: Path) -> None:
    """The same changes made by Wharf and by PyIceberg alone leave metadata files of the same shape."""
    import json

    from pyiceberg.catalog.sql import SqlCatalog

    lake.sql("CREATE TABLE w (x INT)")
    lake.sql("INSERT INTO w VALUES (1)")
    lake.sql("ALTER TABLE w SET TBLPROPERTIES ('k' = 'v')")
    lake.sql("ALTER TABLE w CREATE BRANCH b")
    lake.sql("INSERT INTO w VALUES (2)")

    plain = SqlCatalog("plain", uri=f"sqlite:///{tmp_path / 'plain.db'}", warehouse=tmp_path.as_uri())
    plain.create_namespace("default")
    p = plain.create_table("default.p", schema=lake.table("w").schema)
    p.append(pa.table({"x": pa.array([1], pa.int32())}))
    p.transaction().set_properties(k="v").commit_transaction()
    p.manage_snapshots().create_branch(p.metadata.current_snapshot_id, "b").commit()  # type: ignore[arg-type]
    p.append(pa.table({"x": pa.array([2], pa.int32())}))

    def shape(location: str) -> dict[str, object]:
        meta = json.loads(Path(location.removeprefix("file://")).read_text())
        times = [s["timestamp-ms"] for s in meta["snapshots"]]
        return {
            "keys": sorted(meta),
            "metadata-log": len(meta["metadata-log"]),
            "snapshot-log": len(meta["snapshot-log"]),
            "snapshots": len(meta["snapshots"]),
            "refs": sorted(meta["refs"]),
            "updated-after-last-snapshot": meta["last-updated-ms"] >= max(times),
            "properties": {k: v for k, v in meta["properties"].items() if k == "k"},
        }

    wharf_table = lake.catalog.load_table("default.w")
    assert shape(wharf_table.metadata_location) == shape(p.metadata_location)


def test_the_sql_catalog_table_the_loader_reads(lake: wharf.Lakehouse) -> None:
    import sqlalchemy

    columns = {c["name"] for c in sqlalchemy.inspect(lake.catalog.engine).get_columns(compat.SQL_CATALOG_TABLE)}
    assert set(compat.SQL_CATALOG_COLUMNS) <= columns
    namespaces = {c["name"] for c in sqlalchemy.inspect(lake.catalog.engine).get_columns(compat.SQL_NAMESPACE_TABLE)}
    assert set(compat.SQL_NAMESPACE_COLUMNS) <= namespaces


def test_the_manifest_list_kept_in_memory_is_the_one_written(lake: wharf.Lakehouse) -> None:
    """Appends list their parent's manifests from memory (``compat.snapshot_manifests``): what is kept
    must equal what reading the manifest list file gives, for plain and for merging appends."""
    from pyiceberg.manifest import read_manifest_list

    lake.sql("CREATE TABLE kept (x INT) TBLPROPERTIES ('commit.manifest.min-count-to-merge' = '3')")
    table = lake.table("kept")
    lengths = []
    for i in range(6):  # every third manifest, the append merges the small ones into one
        table.append(pa.table({"x": pa.array([i], pa.int32())}))
        iceberg = lake.catalog.load_table("default.kept")
        snapshot = iceberg.metadata.current_snapshot()
        assert snapshot is not None
        kept = compat._WRITTEN_LISTS.get(snapshot.manifest_list)
        assert kept is not None, "the list this process just wrote is not kept"
        read = list(read_manifest_list(iceberg.io.new_input(snapshot.manifest_list)))
        assert list(kept) == read
        assert compat.snapshot_manifests(snapshot, iceberg.io) == read
        lengths.append(len(read))
    assert any(after < before for before, after in zip(lengths, lengths[1:], strict=False)), lengths  # merges happened
    assert lake.sql("SELECT sum(x) FROM kept").scalar() == 15


def _without_sync(data: bytes) -> bytes:
    """An Avro file's bytes with its random sync marker (the file's last 16 bytes) blanked everywhere."""
    return data.replace(data[-16:], bytes(16))


@pytest.mark.parametrize("format_version", [1, 2])
def test_templated_avro_files_are_the_ones_pyiceberg_writes(lake: wharf.Lakehouse, tmp_path: Path, format_version: int) -> None:
    """Manifests and manifest lists written from cached templates (``compat._write_manifest``,
    ``compat.write_manifest_list_file``) are byte for byte PyIceberg's own, sync marker aside —
    also the second time, when the templates and encoded records come from the caches."""
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.manifest import ManifestEntry, read_manifest_list, write_manifest, write_manifest_list

    lake.sql(
        "CREATE TABLE t (id BIGINT, day DATE, v VARCHAR) PARTITIONED BY (day) "
        f"TBLPROPERTIES ('format-version' = '{format_version}')"
    )
    for i in range(3):
        lake.sql(f"INSERT INTO t VALUES ({i}, DATE '2024-01-0{i + 1}', 'v{i}'), ({i + 10}, DATE '2024-02-0{i + 1}', NULL)")
    iceberg = lake.catalog.load_table("default.t")
    assert iceberg.metadata.format_version == format_version
    snapshot = iceberg.metadata.current_snapshot()
    assert snapshot is not None and snapshot.sequence_number is not None
    manifests = list(read_manifest_list(iceberg.io.new_input(snapshot.manifest_list)))
    entries: list[ManifestEntry] = [e for m in manifests for e in m.fetch_manifest_entry(iceberg.io, discard_deleted=False)]
    assert len(manifests) == 3 and len(entries) == 6
    io = PyArrowFileIO()
    spec, schema = iceberg.metadata.spec(), iceberg.metadata.schema()
    new_id = snapshot.snapshot_id + 1

    def manifest_bytes(writer_of: object, name: str) -> bytes:
        path = str(tmp_path / name)
        with writer_of(format_version, spec, schema, io.new_output(path), new_id, "deflate") as writer:  # type: ignore[operator]
            for entry in entries:
                writer.add_entry(entry)
        return _without_sync(Path(path).read_bytes())

    theirs = manifest_bytes(write_manifest, "theirs.avro")
    assert manifest_bytes(compat._write_manifest, "ours-1.avro") == theirs
    assert manifest_bytes(compat._write_manifest, "ours-2.avro") == theirs

    # A list naming the table's manifests (sequence numbers assigned) and a new one (assigned while writing).
    new = compat._write_manifest(format_version, spec, schema, io.new_output(str(tmp_path / "new.avro")), new_id, "deflate")
    with new as writer:
        writer.add_entry(entries[0])
    listed = [new.to_manifest_file(), *manifests]

    def list_bytes(name: str, ours: bool) -> bytes:
        path = str(tmp_path / name)
        args = {
            "format_version": format_version,
            "output_file": io.new_output(path),
            "snapshot_id": new_id,
            "parent_snapshot_id": snapshot.snapshot_id,
            "sequence_number": snapshot.sequence_number + 1,
            "avro_compression": "deflate",
        }
        if ours:
            compat.write_manifest_list_file(**args, manifests=listed)  # type: ignore[arg-type]
        else:
            with write_manifest_list(**args) as writer:  # type: ignore[arg-type]
                writer.add_manifests(listed)
        return _without_sync(Path(path).read_bytes())

    theirs = list_bytes("list-theirs.avro", ours=False)
    assert list_bytes("list-ours-1.avro", ours=True) == theirs
    assert list_bytes("list-ours-2.avro", ours=True) == theirs
    assert list(read_manifest_list(io.new_input(str(tmp_path / "list-ours-2.avro")))) == list(
        read_manifest_list(io.new_input(str(tmp_path / "list-theirs.avro")))
    )
