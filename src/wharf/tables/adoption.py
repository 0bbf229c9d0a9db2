"""Adopting data other engines wrote: register a metadata.json, add Parquet files in place, snapshot, migrate.

The procedures ``register_table``, ``add_files``, ``snapshot`` and ``migrate`` (Iceberg's Spark
procedures) end here. Wharf has no Hive metastore, so a *source* is one of:

- a Parquet file or a directory of Parquet files (read recursively; names starting with ``_`` or
  ``.`` are skipped, as Spark skips ``_SUCCESS`` and ``.crc`` files), written as Spark writes it,
  ``` `parquet`.`/data/events` ```, or as a plain absolute path ``/data/events``;
- a table of a DuckDB database file: ``` `duckdb`.`/data/shop.duckdb`.orders ``` (schema
  ``main``) or ``` `duckdb`.`/data/shop.duckdb`.sales.orders ```, or without quotes
  ``/data/shop.duckdb.orders`` / ``/data/shop.duckdb.sales.orders`` (a file ending ``.duckdb``).
  DuckDB's storage is not Parquet, so its rows are *copied* into Parquet files the new table owns.

Parquet files are adopted in place, never copied: each must lie inside the lake's allowed roots
(the warehouse and the locations the owner registered). Partition values come from each file's
column statistics (PyIceberg's public ``parquet_file_to_data_file``), so a file must hold the rows
of one partition; a directory laid out Hive-style (``region=eu/…``) whose files also hold the
partition columns becomes an identity-partitioned table.

Commits that adopt files carry ``wharf.adopted-files`` in their snapshot summary: if a gate
refuses one, the commit path leaves the files where they are (they were never Wharf's).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError as PydanticValidationError
from pyiceberg import types as it
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, TableAlreadyExistsError
from pyiceberg.exceptions import ValidationError as IcebergValidationError
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import parquet_file_to_data_file, pyarrow_to_schema
from pyiceberg.manifest import DataFile, DataFileContent
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
from pyiceberg.schema import Schema, index_by_name
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import MetadataLogEntry, Snapshot
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.table.update import SetPropertiesUpdate
from pyiceberg.transforms import IdentityTransform

from wharf import pyiceberg_compat as compat
from wharf.catalog.lake_catalog import ADOPTED_FILES_PROPERTY, LakeCatalog
from wharf.catalog.locations import normalize
from wharf.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    SchemaMismatch,
    StorageError,
    UnsupportedStatement,
    ValidationError,
)
from wharf.tables.commit import arrow_schema, commit_files, conform, private
from wharf.tables.refs import table_label
from wharf.tables.scan import local_path

GC_ENABLED_PROPERTY = "gc.enabled"
SOURCE_PROPERTY = "wharf.imported-from"  # snapshot summary: where adopted or copied data came from
_FIELD_ID = b"PARQUET:field_id"
_DUCKDB_NAME = re.compile(r"^(?P<db>.+\.duckdb)\.(?:(?P<schema>[^./`]+)\.)?(?P<table>[^./`]+)$", re.IGNORECASE)


# --- sources ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where ``add_files``, ``snapshot`` and ``migrate`` take data from."""

    kind: str  # "parquet" or "duckdb"
    path: str  # absolute local path: the Parquet file or directory, or the DuckDB database file
    schema: str = "main"  # DuckDB only
    table: str = ""  # DuckDB only

    def __str__(self) -> str:
        if self.kind == "duckdb":
            return f"duckdb:{self.path}:{self.schema}.{self.table}"
        return f"parquet:{self.path}"


def _dotted_parts(text: str) -> list[str]:
    """Split ``` `a`.`b.c`.d ``` into ``['a', 'b.c', 'd']`` (backticks quote; a doubled backtick escapes one)."""
    parts: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "`":
            j, chars = i + 1, []
            while True:
                if j >= len(text):
                    raise InvalidArgument(f"Unclosed backtick in source '{text}'")
                if text[j] == "`":
                    if text[j + 1 : j + 2] == "`":
                        chars.append("`")
                        j += 2
                        continue
                    break
                chars.append(text[j])
                j += 1
            parts.append("".join(chars))
            i = j + 1
        else:
            j = text.find(".", i)
            j = len(text) if j < 0 else j
            parts.append(text[i:j])
            i = j
        if i < len(text):
            if text[i] != ".":
                raise InvalidArgument(f"Cannot read source '{text}': expected '.' after '{parts[-1]}'")
            i += 1
    return parts


def _absolute(path: str, text: str) -> str:
    local = local_path(path)
    if not os.path.isabs(local):
        raise InvalidArgument(
            f"Source path '{path}' is relative", hint=f"give an absolute path, e.g. '{os.path.abspath(local)}' (in {text})"
        )
    return os.path.normpath(local)


def parse_source(text: str) -> Source:
    """Read a ``source_table`` argument (see the module docstring for the forms)."""
    text = text.strip()
    if text.startswith("`"):
        parts = _dotted_parts(text)
        kind = parts[0].lower()
        if kind == "parquet" and len(parts) == 2:
            return Source("parquet", _absolute(parts[1], text))
        if kind == "duckdb" and len(parts) in (3, 4):
            schema = parts[2] if len(parts) == 4 else "main"
            return Source("duckdb", _absolute(parts[1], text), schema, parts[-1])
        if kind in ("parquet", "duckdb"):
            raise InvalidArgument(
                f"Cannot read source '{text}'",
                hint="write `parquet`.`/path/to/dir` or `duckdb`.`/path/to/file.duckdb`.[schema.]table",
            )
        raise UnsupportedStatement(
            f"Source format '{parts[0]}' is not supported",
            hint="sources are `parquet`.`/path` (a file or a directory) or `duckdb`.`/path/file.duckdb`.table; "
            "convert other formats with CREATE TABLE … AS SELECT * FROM read_csv(…)",
        )
    match = _DUCKDB_NAME.match(text)
    if match:
        return Source("duckdb", _absolute(match["db"], text), match["schema"] or "main", match["table"])
    if text.lower().endswith(".duckdb"):
        raise InvalidArgument(
            f"Source '{text}' is a DuckDB database; name the table in it",
            hint=f"write `duckdb`.`{text}`.<table> or `duckdb`.`{text}`.<schema>.<table>",
        )
    return Source("parquet", _absolute(text, text))


def _hidden(name: str) -> bool:
    return name.startswith(("_", "."))


def parquet_files(source: Source) -> list[str]:
    """The files of a Parquet source, sorted (a single file, or every non-hidden file below a directory)."""
    root = Path(source.path)
    if root.is_file():
        return [str(root)]
    if not root.is_dir():
        raise NotFound(f"Source {source.path} does not exist", hint="give the path of a Parquet file or a directory of them")
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        found.extend(os.path.join(directory, f) for f in sorted(files) if not _hidden(f))
    if not found:
        raise NotFound(f"No Parquet files under {source.path}", hint="names starting with '_' or '.' are skipped")
    return found


def hive_values(root: str, path: str) -> dict[str, str]:
    """Partition values in a Hive-style path below ``root``: ``…/region=eu/day=1/x.parquet`` → region, day."""
    relative = os.path.relpath(path, root)
    values: dict[str, str] = {}
    for segment in Path(relative).parts[:-1]:
        key, eq, value = segment.partition("=")
        if eq and key:
            values[unquote(key)] = unquote(value)
    return values


def filter_partitions(root: str, files: list[str], partition_filter: dict[str, str]) -> list[str]:
    """The files whose Hive-style directories match every ``key = value`` of ``partition_filter``."""
    if not partition_filter:
        return files
    values = {f: {k.lower(): v for k, v in hive_values(root, f).items()} for f in files}
    keys = {k for v in values.values() for k in v}
    for key in partition_filter:
        if key.lower() not in keys:
            raise InvalidArgument(
                f"partition_filter names '{key}', but no directory under {root} is named '{key}=…'",
                hint=f"partition directories found: {', '.join(sorted(keys)) or 'none'}",
            )
    chosen = [f for f in files if all(values[f].get(k.lower()) == str(v) for k, v in partition_filter.items())]
    if not chosen:
        raise NotFound(f"No source files under {root} match partition_filter {partition_filter}")
    return chosen


def _uri(path: str) -> str:
    return "file://" + path if os.path.isabs(path) else path


# --- Parquet files → data files ---------------------------------------------------------------------


def _read_schema(path: str) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except FileNotFoundError as exc:
        raise NotFound(f"Source file {path} does not exist") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidArgument(
            f"Source file {path} is not a readable Parquet file: {exc}",
            hint="give a directory holding only Parquet files (other files may start with '_' or '.')",
        ) from exc


def data_files(metadata: TableMetadata, io: FileIO, paths: list[str], label: str) -> list[DataFile]:
    """Data files (statistics, partition values from them) for Parquet files added to a table with ``metadata``."""
    found: list[DataFile] = []
    for path in paths:
        _read_schema(path)  # a clear error for a file that is not Parquet
        try:
            found.append(parquet_file_to_data_file(io=io, table_metadata=metadata, file_path=_uri(path)))
        except ValueError as exc:
            message = str(exc)
            if "partition" in message.lower():
                raise InvalidArgument(
                    f"Cannot add {path} to {label}: {message}",
                    hint="each added file must hold the rows of one partition of the table (its partition "
                    "columns' minimum and maximum must give the same partition value)",
                ) from exc
            raise SchemaMismatch(
                f"Parquet file {path} does not fit the schema of {label}: {message}",
                hint="the file's columns must be columns of the table with compatible types",
            ) from exc
    return found


def _with_name_mapping(metadata: TableMetadata) -> dict[str, str]:
    """The name-mapping property to add, if the table has none (files without field ids are read by name)."""
    if metadata.name_mapping() is not None:
        return {}
    return {TableProperties.DEFAULT_NAME_MAPPING: metadata.schema().name_mapping.model_dump_json()}


def live_paths(table: Table) -> set[str]:
    """Normalised paths of the data files of main's current snapshot."""
    snapshot = table.metadata.current_snapshot()
    if snapshot is None:
        return set()
    return {
        normalize(_uri(local_path(e.data_file.file_path)))
        for m in snapshot.manifests(table.io)
        for e in m.fetch_manifest_entry(table.io, discard_deleted=True)
    }


@dataclass(frozen=True)
class AddResult:
    added_files: int
    changed_partitions: int  # distinct partitions the added files belong to (1 for an unpartitioned table)
    snapshot: Snapshot | None


def add_files(table: Table, paths: list[str], *, check_duplicate_files: bool = True, source: str = "") -> AddResult:
    """Add Parquet files to ``table`` in place, as one append snapshot."""
    label = table_label(table)
    if check_duplicate_files:
        latest = private(table)  # the loader's table is shared: refresh a copy
        latest.refresh()
        present = live_paths(latest)
        duplicates = [p for p in paths if normalize(_uri(p)) in present]
        if duplicates:
            raise AlreadyExists(
                f"{len(duplicates)} of the files are already in table {label}, e.g. {duplicates[0]}",
                hint="nothing was added; pass check_duplicate_files => false to add them again (their rows then count twice)",
            )
    mapping = _with_name_mapping(table.metadata)
    metadata = table.metadata
    if mapping:
        metadata = metadata.model_copy(update={"properties": {**metadata.properties, **mapping}})
    added = data_files(metadata, table.io, paths, label)
    properties = {ADOPTED_FILES_PROPERTY: str(len(added))}
    if source:
        properties[SOURCE_PROPERTY] = source
    snapshot = commit_files(
        table,
        added=added,
        properties=properties,
        cleanup=False,  # the files were never Wharf's: a failed commit must leave them alone
        prelude=(SetPropertiesUpdate(updates=mapping),) if mapping else (),
    )
    partitions = {tuple(f.partition[i] for i in range(len(f.partition))) for f in added}  # all of the default spec
    return AddResult(len(added), len(partitions), snapshot)


# --- new tables from files ----------------------------------------------------------------------------


def new_identifier(catalog: Catalog, name: str) -> tuple[str, str]:
    """``'db.t'`` / ``'t'`` / ``'catalog.db.t'`` of a table to create: its namespace must exist, the table must not."""
    parts = [p.strip('"`') for p in name.split(".")]
    if len(parts) == 3:  # catalog.db.t (Spark): the catalog is this lake
        parts = parts[1:]
    if len(parts) == 1:
        parts = ["default", parts[0]]
    if len(parts) != 2 or not all(parts):
        raise InvalidArgument(f"Table name '{name}' must be 'namespace.table' or 'table'")
    namespace, table = parts
    if not catalog.namespace_exists(namespace):
        raise NotFound(f"Namespace '{namespace}' does not exist", hint=f"CREATE SCHEMA {namespace}")
    if catalog.table_exists((namespace, table)):
        raise AlreadyExists(f"Table {namespace}.{table} already exists", hint="choose another name, or DROP TABLE it first")
    return namespace, table


def _schema_of(files: list[str]) -> tuple[Schema, bool]:
    """The Iceberg schema of Parquet files (all columns optional), and whether the files carry field ids."""
    schemas = [_read_schema(f) for f in files]
    with_ids = [all(f.metadata and _FIELD_ID in f.metadata for f in s) for s in schemas]
    if any(with_ids) and not all(with_ids):
        raise SchemaMismatch("Some source files carry Iceberg field ids and some do not", hint="adopt them separately")
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaMismatch(f"The source files' schemas do not agree: {exc}") from exc
    try:
        if all(with_ids):
            fields = list(pyarrow_to_schema(unified).fields)
        else:
            fields = compat.arrow_to_iceberg_fields(unified)
    except (ValueError, TypeError) as exc:
        raise SchemaMismatch(f"The source files hold a type Iceberg cannot store: {exc}") from exc
    # Like a table Spark imports from files: every column may be NULL (files added later may lack one).
    return Schema(*(f.model_copy(update={"required": False}) for f in fields)), all(with_ids)


def _identity_spec(schema: Schema, root: str, files: list[str], label: str) -> PartitionSpec:
    """Identity partitioning on Hive-style directory names (``region=eu/``) that are columns of the files."""
    layouts = {tuple(hive_values(root, f)) for f in files}
    if len(layouts) != 1:
        return UNPARTITIONED_PARTITION_SPEC  # mixed layouts: values come from the files' statistics alone
    keys = next(iter(layouts))
    if not keys:
        return UNPARTITIONED_PARTITION_SPEC
    by_name = {f.name.lower(): f for f in schema.fields}
    missing = [k for k in keys if k.lower() not in by_name]
    if missing:
        raise UnsupportedStatement(
            f"The files under {root} are partitioned by directory name ({missing[0]}=…) but do not hold column "
            f"'{missing[0]}': Iceberg data files must hold their partition columns",
            hint=f"copy them instead: CREATE TABLE {label} AS SELECT * FROM read_parquet('{root}/**/*.parquet', "
            "hive_partitioning = true)",
        )
    fields = [
        PartitionField(source_id=by_name[k.lower()].field_id, field_id=1000 + i, transform=IdentityTransform(), name=k)
        for i, k in enumerate(keys)
        if isinstance(by_name[k.lower()].field_type, it.PrimitiveType)
    ]
    return PartitionSpec(*fields) if fields else UNPARTITIONED_PARTITION_SPEC


def _check_field_ids(schema: Schema, created: Schema, label: str) -> None:
    """Files with field ids are read by id: the new table must give every column the id the files use."""
    if index_by_name(schema) != index_by_name(created):
        raise ValidationError(
            f"The source files of {label} carry Iceberg field ids that a new table cannot keep",
            hint="they were written for an Iceberg table: register its metadata.json with CALL system.register_table",
        )


@dataclass(frozen=True)
class ImportResult:
    table: Table
    files: int  # files adopted in place, or written for copied rows
    copied_rows: int | None  # rows copied (DuckDB sources), None when files were adopted in place


def create_from_files(
    catalog: LakeCatalog,
    identifier: tuple[str, str],
    source: Source,
    *,
    location: str | None,
    properties: dict[str, str],
    owns_files: bool,
) -> ImportResult:
    """Create a table whose first snapshot holds the source's Parquet files, in place, in one catalog commit."""
    label = ".".join(identifier)
    files = parquet_files(source)
    _check_inside(catalog, files, source.path)
    schema, with_ids = _schema_of(files)
    root = source.path if os.path.isdir(source.path) else os.path.dirname(source.path)
    spec = _identity_spec(schema, root, files, label)
    props = dict(properties)
    if not owns_files:
        props[GC_ENABLED_PROPERTY] = "false"  # the files are the source's: nothing this table does may delete them
    try:
        tx = catalog.create_table_transaction(identifier, schema, location=location, partition_spec=spec, properties=props)
    except TableAlreadyExistsError as exc:
        raise AlreadyExists(f"Table {label} already exists") from exc
    except NoSuchNamespaceError as exc:
        raise NotFound(f"Namespace '{identifier[0]}' does not exist", hint=f"CREATE SCHEMA {identifier[0]}") from exc
    if with_ids:
        _check_field_ids(schema, tx.table_metadata.schema(), label)
    else:  # files without field ids are read by name: map names to the ids the new table assigned
        tx.set_properties(_with_name_mapping(tx.table_metadata))
    io = compat.catalog_file_io(catalog, tx.table_metadata.location)
    added = data_files(tx.table_metadata, io, files, label)
    summary = {ADOPTED_FILES_PROPERTY: str(len(added)), SOURCE_PROPERTY: str(source)}
    with tx.update_snapshot(snapshot_properties=summary).fast_append() as append:
        for f in added:
            append.append_data_file(f)
    tx.commit_transaction()
    return ImportResult(catalog.load_table(identifier), len(added), None)


def _check_inside(catalog: LakeCatalog, files: list[str], root: str) -> None:
    """Every adopted file must lie in the lake's allowed roots (refused as a whole, naming the directory)."""
    locations = catalog.locations
    if locations is None:
        return
    roots = locations.roots()
    locations.check(root, "Source", roots)
    for f in files:
        locations.check(f, "Data file", roots)


# --- DuckDB tables ---------------------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def duckdb_rows(source: Source, *, batch_rows: int = 1 << 17) -> Iterator[pa.RecordBatchReader]:
    """Stream the rows of a DuckDB table (the database file opened read-only)."""
    if not os.path.isfile(source.path):
        raise NotFound(f"DuckDB database {source.path} does not exist")
    try:
        con = duckdb.connect(source.path, read_only=True)
    except duckdb.Error as exc:
        raise StorageError(
            f"Cannot open DuckDB database {source.path}: {exc}",
            hint="is it a DuckDB file, and is another process writing to it? close it there first",
        ) from exc
    try:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()
        if (source.schema, source.table) not in {(s, t) for s, t in tables}:
            raise NotFound(
                f"Table {source.schema}.{source.table} does not exist in DuckDB database {source.path}",
                hint="tables there: " + (", ".join(f"{s}.{t}" for s, t in sorted(tables)) or "none"),
            )
        yield con.execute(f"SELECT * FROM {_quote(source.schema)}.{_quote(source.table)}").to_arrow_reader(batch_rows)
    finally:
        con.close()


def create_from_duckdb(
    catalog: LakeCatalog,
    identifier: tuple[str, str],
    source: Source,
    *,
    location: str | None,
    properties: dict[str, str],
) -> ImportResult:
    """Create a table holding a copy of a DuckDB table's rows (written as Parquet), in one catalog commit."""
    label = ".".join(identifier)
    locations = catalog.locations
    if locations is not None:
        locations.check(source.path, "DuckDB database")
    with duckdb_rows(source) as reader:
        try:
            schema = Schema(*compat.arrow_to_iceberg_fields(reader.schema))
        except (ValueError, TypeError) as exc:
            raise SchemaMismatch(f"DuckDB table {source.schema}.{source.table} holds a type Iceberg cannot store: {exc}") from exc
        try:
            tx = catalog.create_table_transaction(identifier, schema, location=location, properties=properties)
        except TableAlreadyExistsError as exc:
            raise AlreadyExists(f"Table {label} already exists") from exc
        target = tx.table_metadata.schema()
        arrow_target = arrow_schema(target)
        rows = {"count": 0}

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                rows["count"] += batch.num_rows
                yield from conform(pa.Table.from_batches([batch]), target, table_name=label).to_batches()

        tx.append(pa.RecordBatchReader.from_batches(arrow_target, batches()), snapshot_properties={SOURCE_PROPERTY: str(source)})
        tx.commit_transaction()
    table = catalog.load_table(identifier)
    snapshot = table.metadata.current_snapshot()
    files = 0
    if snapshot is not None and snapshot.summary is not None:
        files = int(snapshot.summary.additional_properties.get("added-data-files", 0))
    return ImportResult(table, files, rows["count"])


def drop_duckdb_table(source: Source) -> None:
    """Drop the source table from its DuckDB database (``migrate`` with ``drop_backup``)."""
    try:
        con = duckdb.connect(source.path)
        try:
            con.execute(f"DROP TABLE {_quote(source.schema)}.{_quote(source.table)}")
        finally:
            con.close()
    except duckdb.Error as exc:
        raise StorageError(
            f"The table was migrated, but dropping {source.schema}.{source.table} from {source.path} failed: {exc}",
            hint="drop it in DuckDB yourself; the migrated table is complete",
        ) from exc


def migrate_directory(
    catalog: LakeCatalog, identifier: tuple[str, str], source: Source, *, properties: dict[str, str]
) -> ImportResult:
    """Turn a directory of Parquet files into a table located there that owns them."""
    if not os.path.isdir(source.path):
        raise InvalidArgument(
            f"migrate adopts a directory; {source.path} is not one",
            hint="use CALL system.snapshot for a single file, or move it into a directory of its own",
        )
    if os.path.exists(os.path.join(source.path, "metadata")):
        raise ValidationError(
            f"{source.path} already has a metadata/ directory: it looks like an Iceberg table",
            hint="register its newest metadata.json with CALL system.register_table",
        )
    return create_from_files(catalog, identifier, source, location=_uri(source.path), properties=properties, owns_files=True)


def check_snapshot_location(location: str | None, source: Source) -> None:
    """Spark's rule, extended to nesting: a snapshot's files never mix with the source's."""
    if location is None or source.kind != "parquet":
        return
    mine, theirs = normalize(location), normalize(source.path if os.path.isdir(source.path) else os.path.dirname(source.path))
    if mine == theirs or mine.startswith(theirs + "/") or theirs.startswith(mine + "/"):
        raise InvalidArgument(
            f"The snapshot's location {location} overlaps the source {source.path}",
            hint="a snapshot writes its own files elsewhere: choose a location outside the source directory",
        )


# --- register_table ----------------------------------------------------------------------------------


def read_metadata(catalog: LakeCatalog, metadata_file: str) -> tuple[TableMetadata, FileIO]:
    io = compat.catalog_file_io(catalog, metadata_file)
    try:
        return FromInputFile.table_metadata(io.new_input(metadata_file)), io
    except FileNotFoundError as exc:
        raise NotFound(f"Metadata file {metadata_file} does not exist", hint="give the path of a *.metadata.json file") from exc
    except (IcebergValidationError, PydanticValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise InvalidArgument(f"{metadata_file} is not an Iceberg table metadata file: {first}") from exc
    except OSError as exc:
        raise StorageError(f"Cannot read metadata file {metadata_file}: {exc}") from exc


def repaired(metadata: TableMetadata) -> TableMetadata | None:
    """Metadata that names its default sort order, or None when it already does.

    DuckDB's ``COPY … (FORMAT iceberg)`` writes ``"sort-orders": []`` with
    ``"default-sort-order-id": 0``; the spec requires the default order to be listed, and PyIceberg
    refuses to add a snapshot to such a table. The fix lists the unsorted order (id 0), which is
    what ``default-sort-order-id: 0`` means.
    """
    ids = {o.order_id for o in metadata.sort_orders}
    if metadata.default_sort_order_id in ids:
        return None
    orders = list(metadata.sort_orders)
    if UNSORTED_SORT_ORDER.order_id not in ids:
        orders.insert(0, UNSORTED_SORT_ORDER)
    return metadata.model_copy(update={"sort_orders": orders, "default_sort_order_id": UNSORTED_SORT_ORDER.order_id})


def _next_metadata_path(metadata_file: str) -> str:
    import uuid

    directory, name = metadata_file.rsplit("/", 1)
    match = re.match(r"^(\d+)-", name)
    version = int(match.group(1)) + 1 if match else 0
    return f"{directory}/{version:05d}-{uuid.uuid4()}.metadata.json"


def register_table(catalog: LakeCatalog, identifier: tuple[str, str], metadata_file: str) -> Table:
    """Register an existing metadata.json under ``identifier`` (through the catalog's gates).

    Metadata that PyIceberg could read but not write to (DuckDB's missing sort order) is written
    again, fixed, as the next metadata file beside it; that file is the one registered and the
    original stays in the metadata log, untouched.
    """
    metadata, io = read_metadata(catalog, metadata_file)
    fixed = repaired(metadata)
    location = metadata_file
    if fixed is not None:
        if catalog.locations is not None:  # check before writing anything
            catalog.locations.check(metadata_file, "Metadata file")
            catalog.locations.check(metadata.location, "Table location")
        now = max(int(time.time() * 1000), metadata.last_updated_ms)
        log = [*fixed.metadata_log, MetadataLogEntry(metadata_file=metadata_file, timestamp_ms=metadata.last_updated_ms)]
        fixed = fixed.model_copy(update={"metadata_log": log, "last_updated_ms": now})
        location = _next_metadata_path(metadata_file)
        try:
            compat.write_metadata_file(fixed, io, location)
        except OSError as exc:
            raise StorageError(f"Cannot write the repaired metadata file {location}: {exc}") from exc
    try:
        return catalog.register_table(identifier, location)
    except TableAlreadyExistsError as exc:
        raise AlreadyExists(f"Table {'.'.join(identifier)} already exists", hint="choose another name") from exc
    except NoSuchNamespaceError as exc:
        raise NotFound(f"Namespace '{identifier[0]}' does not exist", hint=f"CREATE SCHEMA {identifier[0]}") from exc
    except BaseException:
        if location != metadata_file:
            _delete_quietly(io, location)
        raise


def _delete_quietly(io: FileIO, path: str) -> None:
    try:
        io.delete(path)
    except Exception:  # noqa: BLE001 - an orphan at worst
        pass


def totals(table: Table) -> tuple[int | None, int, int]:
    """(current snapshot id, total records, total data files) of main's current snapshot."""
    snapshot = table.metadata.current_snapshot()
    if snapshot is None:
        return None, 0, 0
    props = snapshot.summary.additional_properties if snapshot.summary is not None else {}
    if "total-records" in props and "total-data-files" in props:
        return snapshot.snapshot_id, int(props["total-records"]), int(props["total-data-files"])
    files = [
        e.data_file
        for m in snapshot.manifests(table.io)
        for e in m.fetch_manifest_entry(table.io, discard_deleted=True)
        if e.data_file.content == DataFileContent.DATA
    ]
    return snapshot.snapshot_id, sum(f.record_count for f in files), len(files)


__all__ = [
    "AddResult",
    "ImportResult",
    "Source",
    "add_files",
    "create_from_duckdb",
    "create_from_files",
    "migrate_directory",
    "parse_source",
    "register_table",
]
