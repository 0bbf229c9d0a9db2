"""The one read path: Iceberg scan planning → a DuckDB relation over exactly the planned files.

``plan_scan`` uses PyIceberg's manifest machinery (partition and column-statistics pruning with
the query's predicates) to choose data files and the delete files that apply to them;
``ScanPlan.relation_sql`` turns the plan into SQL that DuckDB runs directly on the Parquet files
(columns matched by Iceberg field id, so renamed/added/dropped columns read correctly), with
positional and equality deletes applied as anti-joins inside DuckDB. Files written without field
ids (adopted with ``add_files``/``snapshot``/``migrate``) are matched through the table's name
mapping (``schema.name-mapping.default``), as the Iceberg spec prescribes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import unquote, urlparse

from pyiceberg import expressions as ie
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat, ManifestContent, ManifestEntry, ManifestFile
from pyiceberg.schema import Schema, sanitize_column_names
from pyiceberg.table import ManifestGroupPlanner, Table
from pyiceberg.table.metadata import TableMetadata

from wharf.errors import UnsupportedStatement
from wharf.tables.manifest_cache import manifest_entries
from wharf.tables.types import iceberg_to_duckdb

ALWAYS_TRUE = ie.AlwaysTrue()
NO_HIVE = "hive_partitioning = false"
FILE_COLUMN = "__wharf_file"
POS_COLUMN = "__wharf_pos"


def local_path(uri: str) -> str:
    """Turn a ``file://`` URI from Iceberg metadata into a path DuckDB can open."""
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path)
    return uri


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def partition_key(data_file: DataFile) -> tuple[object, ...]:
    """``(spec id, partition values...)`` of a data or delete file."""
    partition = data_file.partition
    return (data_file.spec_id, *(partition[i] for i in range(len(partition))))


@dataclass(frozen=True)
class PlannedFile:
    data_file: DataFile
    sequence_number: int
    # Fields (id, name, type) of the schema the file was written with, when known: a file whose
    # fields equal the read schema's is read by name, which DuckDB does faster than by field id.
    written_fields: tuple[tuple[int, str, str], ...] | None = None
    # For a file without Iceberg field ids: the file's column holding each read-schema field (by
    # the table's name mapping), None where the file lacks it. None: read by field id.
    mapped_columns: tuple[str | None, ...] | None = None

    @property
    def path(self) -> str:
        return local_path(self.data_file.file_path)

    @property
    def partition(self) -> tuple[object, ...]:
        """(spec id, partition values): equality deletes of a partitioned spec apply only within it."""
        return partition_key(self.data_file)


@dataclass(frozen=True)
class EqualityDelete:
    path: str
    equality_ids: tuple[int, ...]
    sequence_number: int
    # ``PlannedFile.partition`` of the data files it applies to; None: an unpartitioned spec's delete applies to all.
    partition: tuple[object, ...] | None = None


@dataclass
class ScanPlan:
    """The files one table reference reads, at one snapshot, under one filter."""

    schema: Schema
    snapshot_id: int | None
    files: list[PlannedFile] = field(default_factory=list)
    position_deletes: list[str] = field(default_factory=list)
    equality_deletes: list[EqualityDelete] = field(default_factory=list)
    files_considered: int = 0
    # The delete files behind ``position_deletes`` and ``equality_deletes``, with sequence numbers.
    delete_files: list[tuple[DataFile, int]] = field(default_factory=list)

    @property
    def bytes_planned(self) -> int:
        return sum(f.data_file.file_size_in_bytes for f in self.files)

    @property
    def record_count(self) -> int:
        return sum(f.data_file.record_count for f in self.files)

    @cached_property
    def _renamed_in_files(self) -> bool:
        """Whether writers store some column under another name: PyIceberg writes names that are not
        valid Avro names (``a b``, ``count(1)``) sanitized (``a_x20b``), so those are read by field id."""
        return sanitize_column_names(self.schema) != self.schema

    def _schema_map(self) -> str:
        entries = [
            f"{f.field_id}: {{name: {quote_str(f.name)}, type: {quote_str(iceberg_to_duckdb(f.field_type))}, "
            f"default_value: NULL}}"
            for f in self.schema.fields
        ]
        return "MAP {" + ", ".join(entries) + "}"

    def _mapped_source(self, by_id: list[PlannedFile], by_name: list[PlannedFile], options: list[str], positions: bool) -> str:
        """A UNION ALL of the files read by field id and, per column layout, the name-mapped files."""
        extra = ", filename, file_row_number" if positions else ""
        parts: list[str] = []
        if by_id:
            paths = "[" + ", ".join(quote_str(f.path) for f in by_id) + "]"
            cols = ", ".join(quote_ident(f.name) for f in self.schema.fields)
            parts.append(f"SELECT {cols}{extra} FROM read_parquet({', '.join([paths, *options])})")
        layouts: dict[tuple[str | None, ...], list[PlannedFile]] = {}
        for f in by_name:
            layouts.setdefault(f.mapped_columns or (), []).append(f)
        flags = ", filename = true, file_row_number = true" if positions else ""
        for layout, files in layouts.items():
            paths = "[" + ", ".join(quote_str(f.path) for f in files) + "]"
            cols = ", ".join(
                f"CAST({quote_ident(column) if column is not None else 'NULL'} AS {iceberg_to_duckdb(f.field_type)}) "
                f"AS {quote_ident(f.name)}"
                for f, column in zip(self.schema.fields, layout, strict=True)
            )
            parts.append(f"SELECT {cols}{extra} FROM read_parquet({paths}, {NO_HIVE}{flags})")
        return "(" + " UNION ALL ".join(parts) + ")"

    def relation_sql(self, *, with_position: bool = False, files: list[PlannedFile] | None = None) -> str:
        """SQL for a subquery producing the table's rows (plus file/position columns if asked)."""
        chosen = self.files if files is None else files
        columns = ", ".join(quote_ident(f.name) for f in self.schema.fields)
        if not chosen:
            typed = ", ".join(
                f"CAST(NULL AS {iceberg_to_duckdb(f.field_type)}) AS {quote_ident(f.name)}" for f in self.schema.fields
            )
            extra = f", CAST(NULL AS VARCHAR) AS {FILE_COLUMN}, CAST(NULL AS BIGINT) AS {POS_COLUMN}" if with_position else ""
            return f"(SELECT {typed}{extra} WHERE false)"
        paths = "[" + ", ".join(quote_str(f.path) for f in chosen) + "]"
        needs_position = with_position or bool(self.position_deletes)
        needs_seq = bool(self.equality_deletes)
        # Reading by field id (schema map) handles renamed/added/dropped columns but costs DuckDB up
        # to 2x on wide scans; files written with exactly the read schema are read by name.
        read_fields = _fields(self.schema)
        read_by_id = [f for f in chosen if f.mapped_columns is None]
        plain = not self._renamed_in_files and all(f.written_fields == read_fields for f in read_by_id)
        # Iceberg paths such as data/grp=2/… are not Hive partitions: DuckDB must not add a column
        # from them (it would shadow the file's own column, with another type).
        options = [NO_HIVE] if plain else [NO_HIVE, f"schema = {self._schema_map()}"]
        if needs_position or needs_seq:
            options += ["filename = true", "file_row_number = true"]
        by_name = [f for f in chosen if f.mapped_columns is not None]
        if by_name:
            source = self._mapped_source(read_by_id, by_name, options, needs_position or needs_seq)
        else:
            source = f"read_parquet({', '.join([paths, *options])})"
        if not (needs_position or needs_seq):
            return f"(SELECT {columns} FROM {source})"
        if not with_position and not needs_seq and not by_name:
            per_file = self._per_file_deletes(chosen)
            if per_file is not None:
                return self._apply_per_file(chosen, per_file, [o for o in options if "filename" not in o and "file_row" not in o])
        body = f"SELECT *, filename AS {FILE_COLUMN}, file_row_number AS {POS_COLUMN} FROM {source}"
        conditions: list[str] = []
        # Each data file's Iceberg path (positional deletes name it exactly, whatever its URI form),
        # sequence number and partition group.
        groups: dict[tuple[object, ...], int] = {}
        joins = ""
        if self.position_deletes or self.equality_deletes:
            file_values = ", ".join(
                f"({quote_str(f.path)}, {quote_str(f.data_file.file_path)}, {f.sequence_number}, "
                f"{groups.setdefault(f.partition, len(groups))})"
                for f in chosen
            )
            joins = (
                f" JOIN (VALUES {file_values}) AS s(__wharf_path, __wharf_uri, __wharf_seq, __wharf_part) "
                f"ON s.__wharf_path = d.{FILE_COLUMN}"
            )
        if self.position_deletes:
            deletes = "[" + ", ".join(quote_str(p) for p in self.position_deletes) + "]"
            conditions.append(
                f"NOT EXISTS (SELECT 1 FROM read_parquet({deletes}, {NO_HIVE}) p "
                f"WHERE p.file_path = s.__wharf_uri AND p.pos = d.{POS_COLUMN})"
            )
        if self.equality_deletes:
            by_id = {f.field_id: f for f in self.schema.fields}
            for eq in self.equality_deletes:
                # An equality delete removes matching rows of data files with a *lower* sequence number,
                # in its own partition unless its spec is unpartitioned.
                if eq.partition is not None and eq.partition not in groups:
                    continue
                scope = f" AND s.__wharf_part = {groups[eq.partition]}" if eq.partition is not None else ""
                missing = [i for i in eq.equality_ids if i not in by_id]
                if missing or not eq.equality_ids:
                    raise UnsupportedStatement(
                        f"Equality delete file {eq.path} matches on field id(s) {missing or '(none)'}, "
                        "which the schema being read does not have",
                        hint="rewrite the table's data files with an engine that applies the delete "
                        "(e.g. Spark's rewrite_data_files) before dropping its columns",
                    )
                fields = [by_id[i] for i in eq.equality_ids]
                # Read by field id: the columns may have been renamed or promoted since the delete was written.
                eq_map = ", ".join(
                    f"{f.field_id}: {{name: {quote_str(f.name)}, type: {quote_str(iceberg_to_duckdb(f.field_type))}, "
                    f"default_value: NULL}}"
                    for f in fields
                )
                match = " AND ".join(f"e.{quote_ident(f.name)} IS NOT DISTINCT FROM d.{quote_ident(f.name)}" for f in fields)
                conditions.append(
                    f"NOT (s.__wharf_seq < {eq.sequence_number}{scope} AND EXISTS (SELECT 1 FROM "
                    f"read_parquet([{quote_str(eq.path)}], {NO_HIVE}, schema = MAP {{{eq_map}}}) e WHERE {match}))"
                )
        keep = ", " + ", ".join(f"d.{c}" for c in (FILE_COLUMN, POS_COLUMN)) if with_position else ""
        cols = ", ".join(f"d.{quote_ident(f.name)}" for f in self.schema.fields)
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        return f"(SELECT {cols}{keep} FROM ({body}) d{joins}{where})"

    def _per_file_deletes(self, chosen: list[PlannedFile]) -> dict[str, list[str]] | None:
        """For each chosen file with positional deletes, the delete files that may apply to it.

        None when too many files have deletes for one query per file to pay off (or a delete
        file's scope is unknown): the generic anti-join then applies them all at once.
        """
        if not self.delete_files:
            return None
        uri_of = {f.data_file.file_path: f for f in chosen}
        applying: dict[str, list[str]] = {}
        for delete, seq in self.delete_files:
            if delete.content != DataFileContent.POSITION_DELETES:
                return None
            named = _named_file(delete)
            if named is not None:
                targets = [uri_of[named]] if named in uri_of else []
            else:
                targets = [f for f in chosen if f.partition == partition_key(delete)]
            for f in targets:
                if f.sequence_number <= seq:
                    applying.setdefault(f.path, []).append(local_path(delete.file_path))
        if len(applying) > PER_FILE_DELETES_MAX:
            return None
        return applying

    def _apply_per_file(self, chosen: list[PlannedFile], per_file: dict[str, list[str]], options: list[str]) -> str:
        """Rows of ``chosen`` with positional deletes applied file by file.

        Files without deletes are read as they are (no file name or row number per row); each
        file with deletes is anti-joined on its row number with the positions naming it, an
        integer join instead of one on (file name, position) over every row of the scan.
        """
        columns = ", ".join(quote_ident(f.name) for f in self.schema.fields)
        clean = [f for f in chosen if f.path not in per_file]
        parts: list[str] = []
        if clean:
            paths = "[" + ", ".join(quote_str(f.path) for f in clean) + "]"
            parts.append(f"SELECT {columns} FROM read_parquet({', '.join([paths, *options])})")
        for f in chosen:
            deletes = per_file.get(f.path)
            if deletes is None:
                continue
            read = f"read_parquet({', '.join([f'[{quote_str(f.path)}]', *options, 'file_row_number = true'])})"
            positions = (
                f"SELECT pos FROM read_parquet([{', '.join(quote_str(p) for p in deletes)}], {NO_HIVE}) "
                f"WHERE file_path = {quote_str(f.data_file.file_path)}"
            )
            parts.append(f"SELECT {columns} FROM {read} d ANTI JOIN ({positions}) p ON d.file_row_number = p.pos")
        return "(" + " UNION ALL ".join(parts) + ")"


PER_FILE_DELETES_MAX = 64
"""Files with deletes up to which a scan applies positional deletes file by file."""


def _named_file(delete_file: DataFile) -> str | None:
    """The one data file a positional delete file names (its file_path bounds agree), else None."""
    lower = (delete_file.lower_bounds or {}).get(_DELETE_FILE_PATH_ID)
    if lower is None or lower != (delete_file.upper_bounds or {}).get(_DELETE_FILE_PATH_ID):
        return None
    try:
        return lower.decode()
    except UnicodeDecodeError:
        return None


class ScanPlanner:
    """Plans scans and caches plans, so repeated queries on an unchanged table skip the manifests."""

    def __init__(self, max_entries: int = 256) -> None:
        self._cache: OrderedDict[tuple[str, int | None, str, int], ScanPlan] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def plan(
        self,
        table: Table,
        snapshot_id: int | None,
        row_filter: ie.BooleanExpression = ALWAYS_TRUE,
        schema: Schema | None = None,
    ) -> ScanPlan:
        """Plan a scan of ``table`` at ``snapshot_id`` (None = empty table) keeping only files that may match."""
        metadata = table.metadata
        key = (table.metadata_location, snapshot_id, repr(row_filter), schema.schema_id if schema else -1)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        plan = _plan(table, metadata, snapshot_id, row_filter, schema or metadata.schema())
        with self._lock:
            self._cache[key] = plan
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return plan


class _Planner(ManifestGroupPlanner):
    """Prunes data files by column metrics, but never delete files.

    Pruning an equality delete file by the query's filter is only sound while every row read is
    re-checked against that filter; copy-on-write DML rewrites *whole* files of the plan, whose
    other rows would come back if the delete file that removed them had been pruned.
    """

    def _build_metrics_evaluator(self) -> Callable[[DataFile], bool]:
        for_data = super()._build_metrics_evaluator()
        return lambda data_file: data_file.content != DataFileContent.DATA or for_data(data_file)

    def plan_manifest_entries(self, manifests: Iterable[ManifestFile]) -> Iterator[list[ManifestEntry]]:
        """PyIceberg's manifest filtering, reading each manifest's entries from ``manifest_cache``.

        Manifests are pruned by their partition summaries; delete manifests older than every
        data manifest are skipped (they cannot apply); entries are filtered by partition and
        metrics. Only manifests not seen before are decoded.
        """
        by_spec: dict[int, Callable[[ManifestFile], bool]] = {}
        partition_filters: dict[int, Callable[[DataFile], bool]] = {}
        chosen: list[ManifestFile] = []
        for manifest in manifests:
            spec_id = manifest.partition_spec_id
            if spec_id not in by_spec:
                by_spec[spec_id] = self._build_manifest_evaluator(spec_id)
            if by_spec[spec_id](manifest):
                chosen.append(manifest)
        data_seqs = [m.min_sequence_number or 0 for m in chosen if m.content == ManifestContent.DATA]
        min_seq = min(data_seqs) if data_seqs else 0
        metrics = self._build_metrics_evaluator()
        for manifest in chosen:
            if manifest.content == ManifestContent.DELETES and (manifest.sequence_number or 0) < min_seq:
                continue  # deletes older than every data file apply to none
            spec_id = manifest.partition_spec_id
            if spec_id not in partition_filters:
                partition_filters[spec_id] = self._build_partition_evaluator(spec_id)
            keep = partition_filters[spec_id]
            yield [e for e in manifest_entries(self.io, manifest) if keep(e.data_file) and metrics(e.data_file)]


def _fields(schema: Schema) -> tuple[tuple[int, str, str], ...]:
    return tuple((f.field_id, f.name, str(f.field_type)) for f in schema.fields)


def _plan(
    table: Table, metadata: TableMetadata, snapshot_id: int | None, row_filter: ie.BooleanExpression, schema: Schema
) -> ScanPlan:
    plan = ScanPlan(schema=schema, snapshot_id=snapshot_id)
    if snapshot_id is None:
        return plan
    snapshot = metadata.snapshot_by_id(snapshot_id)
    if snapshot is None:
        return plan
    # Planning binds the filter against the table's current schema by name, case-insensitively.
    planner = _Planner(metadata, table.io, row_filter=row_filter, case_sensitive=False)
    manifests = snapshot.manifests(table.io)
    data: list[PlannedFile] = []
    schemas = {s.schema_id: _fields(s) for s in metadata.schemas}
    written_by: dict[int, tuple[tuple[int, str, str], ...] | None] = {}
    for snap in metadata.snapshots:
        written_by[snap.snapshot_id] = schemas.get(snap.schema_id) if snap.schema_id is not None else None
    positional: list[tuple[int, DataFile]] = []
    equality: list[EqualityDelete] = []
    equality_files: list[tuple[int, DataFile]] = []
    read_fields = _fields(schema)
    mapping = _top_level_mapping(metadata)
    for entries in planner.plan_manifest_entries(manifests):
        for entry in entries:
            df = entry.data_file
            seq = entry.sequence_number or 0
            if df.content == DataFileContent.DATA:
                if df.file_format != FileFormat.PARQUET:
                    raise UnsupportedStatement(
                        f"Table {'.'.join(table.name())} has {df.file_format.value} data files ({df.file_path}); "
                        "Wharf reads Parquet data files only",
                        hint="rewrite the table as Parquet with the engine that wrote it "
                        "(Spark: ALTER TABLE … SET TBLPROPERTIES ('write.format.default'='parquet') and rewrite_data_files)",
                    )
                written = written_by.get(entry.snapshot_id) if entry.snapshot_id else None
                mapped = None
                if mapping is not None and written != read_fields:
                    mapped = _mapped_columns(table, df.file_path, schema, mapping)
                data.append(PlannedFile(df, seq, written, mapped))
            elif df.content == DataFileContent.POSITION_DELETES:
                if df.file_format != FileFormat.PARQUET:
                    # Format v3 deletion vectors (Puffin blobs) and Avro/ORC delete files: reading the
                    # table without applying them would show deleted rows, so refuse instead.
                    raise UnsupportedStatement(
                        f"Table {'.'.join(table.name())} has {df.file_format.value} position deletes "
                        f"({df.file_path}), e.g. format v3 deletion vectors, which Wharf cannot apply yet",
                        hint="compact the table's deletes with the engine that wrote them (Spark: "
                        "CALL system.rewrite_position_delete_files, or rewrite_data_files), then read it here",
                    )
                positional.append((seq, df))
            elif df.content == DataFileContent.EQUALITY_DELETES:
                if df.file_format != FileFormat.PARQUET:
                    raise UnsupportedStatement(
                        f"Table {'.'.join(table.name())} has {df.file_format.value} equality deletes ({df.file_path}); "
                        "Wharf applies Parquet delete files only",
                        hint="compact the table's deletes with the engine that wrote them, then read it here",
                    )
                unpartitioned = metadata.specs()[df.spec_id].is_unpartitioned()
                scope = None if unpartitioned else partition_key(df)
                equality.append(EqualityDelete(local_path(df.file_path), tuple(df.equality_ids or ()), seq, scope))
                equality_files.append((seq, df))
    plan.files_considered = sum(m.existing_files_count or 0 for m in manifests) + sum(m.added_files_count or 0 for m in manifests)
    plan.files = data
    if positional and data:
        min_seq = min(f.sequence_number for f in data)
        planned = {f.data_file.file_path for f in data}
        # A positional delete applies to data files with a sequence number <= its own; one whose
        # file_path bounds agree names a single data file, needed only if that file is planned.
        applying = [(seq, df) for seq, df in positional if seq >= min_seq and _may_name(df, planned)]
        plan.position_deletes = [local_path(df.file_path) for _seq, df in applying]
        plan.delete_files += [(df, seq) for seq, df in applying]
    if equality and data:
        min_seq = min(f.sequence_number for f in data)
        plan.equality_deletes = [e for e in equality if e.sequence_number > min_seq]
        kept = {e.path for e in plan.equality_deletes}
        plan.delete_files += [(df, seq) for seq, df in equality_files if local_path(df.file_path) in kept]
    return plan


_DELETE_FILE_PATH_ID = 2147483546  # the spec's field id of a positional delete file's file_path


def _may_name(delete_file: DataFile, planned: set[str]) -> bool:
    """Whether a positional delete file may name one of the ``planned`` data file paths."""
    lower = (delete_file.lower_bounds or {}).get(_DELETE_FILE_PATH_ID)
    upper = (delete_file.upper_bounds or {}).get(_DELETE_FILE_PATH_ID)
    if lower is None or lower != upper:
        return True
    try:
        return lower.decode() in planned
    except UnicodeDecodeError:
        return True


def _top_level_mapping(metadata: TableMetadata) -> dict[int, tuple[str, ...]] | None:
    """Field id → the column names the table's name mapping gives it (top level), or None."""
    mapping = metadata.name_mapping()
    if mapping is None:
        return None
    return {m.field_id: tuple(m.names) for m in mapping if m.field_id is not None}


def _mapped_columns(table: Table, uri: str, schema: Schema, mapping: dict[int, tuple[str, ...]]) -> tuple[str | None, ...] | None:
    """For a data file without field ids, the file column holding each of ``schema``'s fields."""
    columns = _parquet_columns(table, uri)
    if columns is None:
        return None
    present = set(columns)
    return tuple(next((n for n in mapping.get(f.field_id, ()) if n in present), None) for f in schema.fields)


# Data files never change once written: a footer read once answers for the process's lifetime.
_FOOTERS: OrderedDict[str, tuple[str, ...] | None] = OrderedDict()
_FOOTERS_MAX = 4096
_FOOTERS_LOCK = threading.Lock()


def _parquet_columns(table: Table, uri: str) -> tuple[str, ...] | None:
    """The top-level column names of a Parquet file that has no Iceberg field ids; None if it has them."""
    with _FOOTERS_LOCK:
        if uri in _FOOTERS:
            return _FOOTERS[uri]
    import pyarrow.parquet as pq

    with table.io.new_input(uri).open() as stream:
        arrow_schema = pq.read_schema(stream)
    has_ids = any(f.metadata and b"PARQUET:field_id" in f.metadata for f in arrow_schema)
    columns = None if has_ids else tuple(arrow_schema.names)
    with _FOOTERS_LOCK:
        _FOOTERS[uri] = columns
        if len(_FOOTERS) > _FOOTERS_MAX:
            _FOOTERS.popitem(last=False)
    return columns
