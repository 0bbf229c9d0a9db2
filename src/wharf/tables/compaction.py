"""Compaction: rewrite small files, and files burdened by deletes, into files of the target size.

``rewrite_data_files`` follows Iceberg's Spark action (``RewriteDataFiles``) — its options, file
selection and output counts — so a job tuned for Spark behaves the same here:

1. Plan the table's live data files (optionally only those a ``where`` filter may select), with
   the delete files that apply to each.
2. A file is a *candidate* when it is smaller than ``min-file-size-bytes`` (75% of the target),
   larger than ``max-file-size-bytes`` (180%), has at least ``delete-file-threshold`` delete
   files, or its positional deletes remove at least ``delete-ratio-threshold`` (30%) of its rows;
   ``rewrite-all`` makes every file a candidate.
3. Candidates are grouped per partition, bin-packed into groups of at most
   ``max-file-group-size-bytes``. A group is rewritten when it has at least ``min-input-files``
   files (and more than one), holds more than one target file's worth of data, has a file that
   is too large, or has a file with too many deletes — or always with ``rewrite-all``.
4. DuckDB reads each group with its deletes applied and writes the rows (sorted by the sort
   order, or z-ordered) into files of about ``target-file-size-bytes``.
5. The new files replace the old ones in a ``replace`` snapshot: same rows, so incremental
   readers and changelogs skip it. The new files get the sequence number of the snapshot the
   rewrite read (``use-starting-sequence-number``), so equality deletes committed meanwhile
   still apply to them; delete files that applied only to rewritten files are removed with them.
   A concurrent commit that deleted rows from a file being rewritten aborts that group (its
   rewrite would resurrect the rows); with ``partial-progress.enabled`` the other groups commit
   in up to ``partial-progress.max-commits`` commits and the failed files are counted.

``rewrite_position_delete_files`` compacts the positional delete files themselves and drops the
ones (and the rows of ones) that no longer apply to a live data file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg import expressions as ie
from pyiceberg.manifest import DataFile, DataFileContent
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import Operation, Snapshot

from wharf import pyiceberg_compat as compat
from wharf.errors import ConflictError, InvalidArgument, SchemaMismatch
from wharf.tables.commit import FileChanges, commit_changes, private, remove_files, sort_keys, write_data_files
from wharf.tables.deletes import (
    FILE_PATH_ID,
    dangling_deletes,
    live_files,
    referenced_paths,
    removable_deletes,
    write_position_deletes,
)
from wharf.tables.refs import table_label
from wharf.tables.rewrite import Run, duckdb_can_write, write_query
from wharf.tables.scan import PlannedFile, ScanPlan, ScanPlanner, local_path, partition_key, quote_ident

TARGET_FILE_SIZE_PROPERTY = "write.target-file-size-bytes"
DEFAULT_TARGET_FILE_SIZE = 512 * 1024 * 1024

Progress = Callable[[int, int], None]
"""Called with (bytes rewritten so far, bytes to rewrite) as groups finish."""


# --- options ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewriteOptions:
    """Spark's ``rewrite_data_files`` options (``options => map(...)``), with Iceberg's defaults."""

    target_file_size_bytes: int
    min_file_size_bytes: int
    max_file_size_bytes: int
    min_input_files: int = 5
    rewrite_all: bool = False
    delete_file_threshold: int = 2**31 - 1
    delete_ratio_threshold: float = 0.3
    max_file_group_size_bytes: int = 100 * 1024**3
    partial_progress_enabled: bool = False
    partial_progress_max_commits: int = 10
    remove_dangling_deletes: bool = False

    @classmethod
    def parse(cls, table: Table, options: dict[str, str] | None = None) -> RewriteOptions:
        """Options from a map of Spark option names; unknown names are an error (a typo must not pass)."""
        given = {k.strip().lower(): str(v).strip() for k, v in (options or {}).items()}
        unknown = sorted(set(given) - _KNOWN_OPTIONS)
        if unknown:
            raise InvalidArgument(
                f"Unknown rewrite_data_files option(s): {', '.join(unknown)}",
                hint=f"options are: {', '.join(sorted(_KNOWN_OPTIONS))}",
            )
        default_target = int(table.metadata.properties.get(TARGET_FILE_SIZE_PROPERTY, DEFAULT_TARGET_FILE_SIZE))
        target = _int(given, "target-file-size-bytes", default_target)
        values = cls(
            target_file_size_bytes=target,
            min_file_size_bytes=_int(given, "min-file-size-bytes", int(target * 0.75)),
            max_file_size_bytes=_int(given, "max-file-size-bytes", int(target * 1.8)),
            min_input_files=_int(given, "min-input-files", 5),
            rewrite_all=_bool(given, "rewrite-all", False),
            delete_file_threshold=_int(given, "delete-file-threshold", 2**31 - 1),
            delete_ratio_threshold=_float(given, "delete-ratio-threshold", 0.3),
            max_file_group_size_bytes=_int(given, "max-file-group-size-bytes", 100 * 1024**3),
            partial_progress_enabled=_bool(given, "partial-progress.enabled", False),
            partial_progress_max_commits=_int(given, "partial-progress.max-commits", 10),
            remove_dangling_deletes=_bool(given, "remove-dangling-deletes", False),
        )
        if not 0 <= values.min_file_size_bytes <= values.target_file_size_bytes <= values.max_file_size_bytes:
            raise InvalidArgument(
                "rewrite_data_files needs min-file-size-bytes <= target-file-size-bytes <= max-file-size-bytes, got "
                f"{values.min_file_size_bytes}, {values.target_file_size_bytes}, {values.max_file_size_bytes}"
            )
        if values.min_input_files < 1 or values.partial_progress_max_commits < 1 or values.delete_file_threshold < 1:
            raise InvalidArgument("min-input-files, delete-file-threshold and partial-progress.max-commits must be at least 1")
        if not 0 < values.delete_ratio_threshold <= 1:
            raise InvalidArgument(f"delete-ratio-threshold must be in (0, 1], got {values.delete_ratio_threshold}")
        return values


# Accepted for compatibility with Spark jobs; Wharf rewrites groups one after another in one
# process, so concurrency and job ordering have nothing to steer.
_ACCEPTED = {
    "max-concurrent-file-group-rewrites",
    "partial-progress.max-failed-commits",
    "rewrite-job-order",
    "use-starting-sequence-number",
    "output-spec-id",
    "compression-factor",
    "shuffle-partitions-per-file",
}
_KNOWN_OPTIONS = {
    "target-file-size-bytes",
    "min-file-size-bytes",
    "max-file-size-bytes",
    "min-input-files",
    "rewrite-all",
    "delete-file-threshold",
    "delete-ratio-threshold",
    "max-file-group-size-bytes",
    "partial-progress.enabled",
    "partial-progress.max-commits",
    "remove-dangling-deletes",
} | _ACCEPTED


def _int(given: dict[str, str], key: str, default: int) -> int:
    if key not in given:
        return default
    try:
        return int(given[key])
    except ValueError:
        raise InvalidArgument(f"Option {key} must be an integer, got {given[key]!r}") from None


def _float(given: dict[str, str], key: str, default: float) -> float:
    if key not in given:
        return default
    try:
        return float(given[key])
    except ValueError:
        raise InvalidArgument(f"Option {key} must be a number, got {given[key]!r}") from None


def _bool(given: dict[str, str], key: str, default: bool) -> bool:
    if key not in given:
        return default
    value = given[key].lower()
    if value not in ("true", "false"):
        raise InvalidArgument(f"Option {key} must be true or false, got {given[key]!r}")
    return value == "true"


# --- sort orders --------------------------------------------------------------------------------

_SORT_ITEM = re.compile(
    r"^\s*(?P<col>`[^`]+`|\"[^\"]+\"|[^\s,]+)(?:\s+(?P<dir>ASC|DESC))?(?:\s+NULLS\s+(?P<nulls>FIRST|LAST))?\s*$", re.I
)
_ZORDER = re.compile(r"^\s*zorder\s*\((?P<cols>.*)\)\s*$", re.I | re.S)
ZORDER_BITS = 16  # bits per column of the z-value at most (65,536 rank buckets per column)


def order_clause(table: Table, strategy: str, sort_order: str | None) -> str | None:
    """The DuckDB ORDER BY list a rewrite writes rows in (None: the table's own sort order, if any).

    ``binpack`` keeps the table's sort order; ``sort`` takes ``sort_order`` (Spark's syntax:
    ``c1 DESC NULLS LAST, c2`` or ``zorder(c1, c2)``) or else the table's sort order, which it
    then requires.
    """
    strategy = strategy.lower()
    if strategy not in ("binpack", "sort"):
        raise InvalidArgument(f"Unknown rewrite strategy {strategy!r}", hint="use 'binpack' or 'sort'")
    if strategy == "binpack":
        if sort_order:
            raise InvalidArgument(
                "sort_order needs strategy => 'sort'",
                hint="CALL system.rewrite_data_files(t, strategy => 'sort', sort_order => '…')",
            )
        return None
    if not sort_order:
        if not sort_keys(table):
            raise InvalidArgument(
                f"Table {table_label(table)} has no sort order to rewrite by",
                hint="pass sort_order => 'col [ASC|DESC] [NULLS FIRST|LAST], …' or ALTER TABLE … WRITE ORDERED BY …",
            )
        return None
    names = {f.name.lower(): f.name for f in table.schema().fields}

    def column(raw: str) -> str:
        bare = raw.strip().strip('`"')
        if bare.lower() not in names:
            raise SchemaMismatch(
                f"Sort column '{bare}' does not exist in table {table_label(table)}",
                hint=f"its columns are: {', '.join(names.values())}",
            )
        return quote_ident(names[bare.lower()])

    zorder = _ZORDER.match(sort_order)
    if zorder:
        columns = [column(c) for c in zorder.group("cols").split(",") if c.strip()]
        if not columns:
            raise InvalidArgument("zorder() needs at least one column")
        if len(columns) == 1:
            return f"{columns[0]} ASC NULLS LAST"
        return _zvalue(columns, bits=max(1, min(ZORDER_BITS, 63 // len(columns))))
    items = []
    for part in sort_order.split(","):
        match = _SORT_ITEM.match(part)
        if not match:
            raise InvalidArgument(
                f"Cannot read sort order item {part.strip()!r}",
                hint="write 'col [ASC|DESC] [NULLS FIRST|LAST]' items separated by commas",
            )
        direction = (match.group("dir") or "ASC").upper()
        nulls = (match.group("nulls") or ("FIRST" if direction == "ASC" else "LAST")).upper()
        items.append(f"{column(match.group('col'))} {direction} NULLS {nulls}")
    return ", ".join(items)


def _zvalue(columns: list[str], *, bits: int) -> str:
    """An ORDER BY on the Morton code of the columns' ranks: rows close in every column land close.

    Iceberg's Spark action interleaves the bytes of order-preserving encodings of the values;
    ranks (scaled to ``bits`` bits) interleave the same way and spread skewed columns evenly.
    """
    scale = (1 << bits) - 1
    ranks = [f"CAST(floor(percent_rank() OVER (ORDER BY {c} NULLS LAST) * {scale}) AS UBIGINT)" for c in columns]
    terms = []
    n = len(columns)
    for bit in range(bits):
        for i, rank in enumerate(ranks):
            terms.append(f"(CAST((({rank}) >> {bit}) & 1 AS UBIGINT) << {bit * n + i})")
    return " + ".join(terms) if terms else "1"


# --- planning -----------------------------------------------------------------------------------


@dataclass
class FileGroup:
    """Data files of one partition rewritten together, with the delete files that apply to them."""

    partition: tuple[object, ...]
    files: list[PlannedFile]
    deletes: ScanPlan

    @property
    def size(self) -> int:
        return sum(f.data_file.file_size_in_bytes for f in self.files)


@dataclass
class RewriteDataFilesResult:
    """Spark's output columns of ``rewrite_data_files``, plus the snapshots committed."""

    rewritten_data_files_count: int = 0
    added_data_files_count: int = 0
    rewritten_bytes_count: int = 0
    failed_data_files_count: int = 0
    removed_delete_files_count: int = 0
    snapshot_ids: list[int] = field(default_factory=list)

    def as_row(self) -> dict[str, int]:
        return {
            "rewritten_data_files_count": self.rewritten_data_files_count,
            "added_data_files_count": self.added_data_files_count,
            "rewritten_bytes_count": self.rewritten_bytes_count,
            "failed_data_files_count": self.failed_data_files_count,
            "removed_delete_files_count": self.removed_delete_files_count,
        }


def _deletes_per_file(table: Table, plan: ScanPlan) -> dict[str, list[tuple[DataFile, int]]]:
    """For each planned data file path, the delete files (with sequence numbers) that apply to it."""
    per_file: dict[str, list[tuple[DataFile, int]]] = {f.data_file.file_path: [] for f in plan.files}
    seq_of = {f.data_file.file_path: f.sequence_number for f in plan.files}
    partition_of = {f.data_file.file_path: f.partition for f in plan.files}
    specs = table.metadata.specs()
    for delete, seq in plan.delete_files:
        if delete.content == DataFileContent.POSITION_DELETES:
            lower = (delete.lower_bounds or {}).get(FILE_PATH_ID)
            if lower is not None and lower == (delete.upper_bounds or {}).get(FILE_PATH_ID):
                named = [lower.decode(errors="replace")]
            else:
                named = [p for p, part in partition_of.items() if part == partition_key(delete)]
            for path in named:
                if path in per_file and seq_of[path] <= seq:
                    per_file[path].append((delete, seq))
        else:
            everywhere = specs[delete.spec_id].is_unpartitioned()
            for path, part in partition_of.items():
                if seq_of[path] < seq and (everywhere or part == partition_key(delete)):
                    per_file[path].append((delete, seq))
    return per_file


def plan_groups(table: Table, plan: ScanPlan, options: RewriteOptions) -> list[FileGroup]:
    """The file groups ``rewrite_data_files`` rewrites, by Spark's selection rules."""
    per_file = _deletes_per_file(table, plan)

    def too_many_deletes(f: PlannedFile) -> bool:
        deletes = per_file[f.data_file.file_path]
        if len(deletes) >= options.delete_file_threshold:
            return True
        scoped = [d for d, _ in deletes if d.content == DataFileContent.POSITION_DELETES and _file_scoped(d)]
        deleted = sum(d.record_count for d in scoped)
        return f.data_file.record_count > 0 and deleted / f.data_file.record_count >= options.delete_ratio_threshold

    def too_large(f: PlannedFile) -> bool:
        return f.data_file.file_size_in_bytes > options.max_file_size_bytes

    candidates = [
        f
        for f in plan.files
        if options.rewrite_all
        or f.data_file.file_size_in_bytes < options.min_file_size_bytes
        or too_large(f)
        or too_many_deletes(f)
    ]
    by_partition: dict[tuple[object, ...], list[PlannedFile]] = {}
    for f in candidates:
        by_partition.setdefault(f.partition, []).append(f)
    groups: list[FileGroup] = []
    for partition, files in by_partition.items():
        for chunk in _bin_pack(files, options.max_file_group_size_bytes):
            size = sum(f.data_file.file_size_in_bytes for f in chunk)
            wanted = options.rewrite_all or (
                (len(chunk) > 1 and len(chunk) >= options.min_input_files)
                or (len(chunk) > 1 and size > options.target_file_size_bytes)
                or any(too_large(f) for f in chunk)
                or any(too_many_deletes(f) for f in chunk)
            )
            if wanted:
                groups.append(FileGroup(partition, chunk, _sub_plan(plan, chunk, per_file)))
    return groups


def _file_scoped(delete: DataFile) -> bool:
    lower = (delete.lower_bounds or {}).get(FILE_PATH_ID)
    return lower is not None and lower == (delete.upper_bounds or {}).get(FILE_PATH_ID)


def _bin_pack(files: list[PlannedFile], limit: int) -> list[list[PlannedFile]]:
    """First-fit decreasing: groups of at most ``limit`` bytes (a larger file gets a group alone)."""
    bins: list[tuple[int, list[PlannedFile]]] = []
    for f in sorted(files, key=lambda f: -f.data_file.file_size_in_bytes):
        size = f.data_file.file_size_in_bytes
        for i, (used, members) in enumerate(bins):
            if used + size <= limit:
                members.append(f)
                bins[i] = (used + size, members)
                break
        else:
            bins.append((size, [f]))
    return [members for _, members in bins]


def _sub_plan(plan: ScanPlan, files: list[PlannedFile], per_file: dict[str, list[tuple[DataFile, int]]]) -> ScanPlan:
    """A plan reading just ``files``, applying just the delete files that apply to them."""
    applying: dict[str, tuple[DataFile, int]] = {}
    for f in files:
        for delete, seq in per_file[f.data_file.file_path]:
            applying[delete.file_path] = (delete, seq)
    paths = {local_path(p) for p in applying}
    return ScanPlan(
        schema=plan.schema,
        snapshot_id=plan.snapshot_id,
        files=list(files),
        position_deletes=[p for p in plan.position_deletes if p in paths],
        equality_deletes=[e for e in plan.equality_deletes if e.path in paths],
        delete_files=list(applying.values()),
    )


# --- rewriting ----------------------------------------------------------------------------------


def _check_no_deletes_since(table: Table, start: Snapshot, branch: str, changes: FileChanges) -> None:
    """Refuse a batch whose files got delete files after ``start`` (the snapshot the rewrite read).

    The commit's own validation covers commits after the metadata it is built on; with partial
    progress a later batch is built on the metadata an earlier batch committed, so a delete
    committed between ``start`` and that commit must be caught here — else the batch would
    rewrite rows that delete removed, and they would come back.
    """
    ref = table.metadata.refs.get(branch)
    head = table.metadata.snapshot_by_id(ref.snapshot_id) if ref is not None else None
    if head is None or head.snapshot_id == start.snapshot_id:
        return
    found = compat.new_deletes_for(table, head, start, changes.removed, equality=False)
    if found:
        remove_files(table, changes.added)
        delete, data_file = found[0]
        raise ConflictError(
            f"Compaction of {table_label(table)}: delete file {delete.file_path} was committed for "
            f"{data_file.file_path} after the rewrite read it",
            hint="nothing was committed for these files; run the compaction again",
        )


def rewrite_data_files(
    table: Table,
    run: Run,
    *,
    strategy: str = "binpack",
    sort_order: str | None = None,
    options: dict[str, str] | None = None,
    where: ie.BooleanExpression | None = None,
    branch: str = MAIN_BRANCH,
    progress: Progress | None = None,
) -> RewriteDataFilesResult:
    """Compact ``table``'s data files (see the module docstring); returns Spark's counts.

    ``run`` executes SQL on a DuckDB connection (the statement's). Commits go through the
    lake catalog's commit path as ``replace`` snapshots.
    """
    opts = RewriteOptions.parse(table, options)
    order_by = order_clause(table, strategy, sort_order)
    ref = table.metadata.refs.get(branch)
    result = RewriteDataFilesResult()
    if ref is None:
        return result
    start = table.metadata.snapshot_by_id(ref.snapshot_id)
    assert start is not None
    plan = ScanPlanner().plan(table, start.snapshot_id, where if where is not None else ie.AlwaysTrue())
    groups = plan_groups(table, plan, opts)
    total = sum(g.size for g in groups)
    done = 0
    if progress is not None:
        progress(0, total)
    commits = _batches(groups, opts.partial_progress_max_commits) if opts.partial_progress_enabled else [groups]
    for batch in commits:
        if not batch:
            continue
        changes = FileChanges(data_sequence_number=start.sequence_number)
        rewritten: list[FileGroup] = []
        try:
            for group in batch:
                changes.added += _rewrite_group(table, run, group, order_by, opts)
                changes.removed += [f.data_file for f in group.files]
                rewritten.append(group)
                done += group.size
                if progress is not None:
                    progress(done, total)
            changes.removed_deletes = _absorbed_deletes(table, plan, rewritten)
            _check_no_deletes_since(table, start, branch, changes)
            snapshot = commit_changes(
                table,
                changes,
                operation=Operation.REPLACE,
                branch=branch,
                serializable=False,  # compaction adds no rows: appends meanwhile cannot conflict
            )
        except ConflictError:
            if not opts.partial_progress_enabled:
                raise
            result.failed_data_files_count += sum(len(g.files) for g in batch)
            continue
        except BaseException:
            remove_files(table, changes.added)
            raise
        if snapshot is not None:
            result.snapshot_ids.append(snapshot.snapshot_id)
        result.rewritten_data_files_count += len(changes.removed)
        result.added_data_files_count += len(changes.added)
        result.rewritten_bytes_count += sum(f.file_size_in_bytes for f in changes.removed)
        result.removed_delete_files_count += len(changes.removed_deletes)
    if opts.remove_dangling_deletes:
        # A private copy: ``table`` may be the loader's shared object, which other statements
        # planned on; refreshing it in place would move their commits' base past this compaction
        # (and skip the validation that catches it).
        latest = private(table)
        latest.refresh()
        result.removed_delete_files_count += remove_dangling_deletes(latest, branch=branch)
    return result


def _batches(groups: list[FileGroup], count: int) -> list[list[FileGroup]]:
    size = max(1, math.ceil(len(groups) / count))
    return [groups[i : i + size] for i in range(0, len(groups), size)]


def _rewrite_group(table: Table, run: Run, group: FileGroup, order_by: str | None, opts: RewriteOptions) -> list[DataFile]:
    """Write the rows of one group (deletes applied) as new files; nothing committed."""
    query = f"SELECT * FROM {group.deletes.relation_sql()}"
    spec_id = group.files[0].data_file.spec_id
    same_spec = spec_id == table.metadata.default_spec_id
    if same_spec and duckdb_can_write(table, one_partition=True):
        partition = group.files[0].data_file.partition
        return write_query(
            run,
            table,
            query,
            partition=partition,
            spec_id=spec_id,
            target_file_size=opts.target_file_size_bytes,
            order_by=order_by,
        )
    # Other types, another spec (rows may spread over the current spec's partitions), object storage:
    # PyIceberg's writer partitions and sizes the files.
    order = f" ORDER BY {order_by}" if order_by else ""
    rows: pa.Table = run(f"{query}{order}").to_arrow_table()
    if rows.num_rows == 0:
        return []
    return write_data_files(table, rows)


def _absorbed_deletes(table: Table, plan: ScanPlan, groups: Iterable[FileGroup]) -> list[DataFile]:
    """Delete files that applied only to rewritten data files (their rows are gone from the new files)."""
    removed = [f for g in groups for f in g.files]
    candidates = {d.file_path: (d, s) for g in groups for d, s in g.deletes.delete_files}
    sub = ScanPlan(schema=plan.schema, snapshot_id=plan.snapshot_id, files=removed, delete_files=list(candidates.values()))
    return removable_deletes(table, sub, removed)


def remove_dangling_deletes(table: Table, *, branch: str = MAIN_BRANCH) -> int:
    """Remove delete files that apply to no live data file, in one ``replace`` snapshot; returns how many."""
    ref = table.metadata.refs.get(branch)
    if ref is None:
        return 0
    data, deletes = live_files(table, ref.snapshot_id)
    dangling = dangling_deletes(table, deletes, data)
    if not dangling:
        return 0
    commit_changes(table, FileChanges(removed_deletes=dangling), operation=Operation.REPLACE, branch=branch, serializable=False)
    return len(dangling)


# --- position delete files ----------------------------------------------------------------------


@dataclass
class RewritePositionDeletesResult:
    """Spark's output columns of ``rewrite_position_delete_files``."""

    rewritten_delete_files_count: int = 0
    added_delete_files_count: int = 0
    rewritten_bytes_count: int = 0
    added_bytes_count: int = 0

    def as_row(self) -> dict[str, int]:
        return dict(self.__dict__)


def rewrite_position_delete_files(
    table: Table, *, options: dict[str, str] | None = None, branch: str = MAIN_BRANCH
) -> RewritePositionDeletesResult:
    """Rewrite positional delete files: drop dangling ones and the rows naming files no longer live,
    and combine the rest into one delete file per data file (or per partition, by
    ``write.delete.granularity``). Same rows deleted before and after: a ``replace`` snapshot.

    Options: ``rewrite-all`` (default true here: delete files are small) and ``min-input-files``
    (rewrite a data file's deletes only when it has at least that many delete files, default 2).
    """
    given = {k.strip().lower(): str(v).strip() for k, v in (options or {}).items()}
    known = {
        "rewrite-all",
        "min-input-files",
        "target-file-size-bytes",
        "partial-progress.enabled",
        "max-concurrent-file-group-rewrites",
    }
    unknown = sorted(set(given) - known)
    if unknown:
        raise InvalidArgument(
            f"Unknown rewrite_position_delete_files option(s): {', '.join(unknown)}",
            hint=f"options are: {', '.join(sorted(known))}",
        )
    min_inputs = _int(given, "min-input-files", 2)
    rewrite_all = _bool(given, "rewrite-all", False)
    result = RewritePositionDeletesResult()
    ref = table.metadata.refs.get(branch)
    if ref is None:
        return result
    data, deletes = live_files(table, ref.snapshot_id)
    live = {d.file_path: (d, s) for d, s in data}
    positional = [(d, s) for d, s in deletes if d.content == DataFileContent.POSITION_DELETES]
    # Which delete files name which live data files.
    names: dict[str, list[tuple[DataFile, int]]] = {}
    removed: list[DataFile] = []
    for delete, seq in positional:
        named = [p for p in referenced_paths(table, delete) if p in live and live[p][1] <= seq]
        if not named:
            removed.append(delete)  # dangling
            continue
        for path in named:
            names.setdefault(path, []).append((delete, seq))
    rewrite = {path for path, ds in names.items() if rewrite_all or len(ds) >= min_inputs}
    inputs = {d.file_path: d for path in rewrite for d, _ in names[path]}
    # A delete file is replaced only if every data file it names is being rewritten.
    inputs = {p: d for p, d in inputs.items() if all(path in rewrite for path in _named(table, d, live))}
    paths_rewritten = {path for path in rewrite if all(d.file_path in inputs for d, _ in names[path])}
    if not inputs:
        if removed:
            commit_changes(
                table, FileChanges(removed_deletes=removed), operation=Operation.REPLACE, branch=branch, serializable=False
            )
        result.rewritten_delete_files_count = len(removed)
        result.rewritten_bytes_count = sum(d.file_size_in_bytes for d in removed)
        return result
    rows = _positions(table, list(inputs.values()), paths_rewritten)
    files = [PlannedFile(live[p][0], live[p][1]) for p in paths_rewritten]
    # write_position_deletes keys data files by their local path, as scans read them.
    local_rows = pa.table(
        {
            "file": pa.array([local_path(p) for p in rows.column("file_path").to_pylist()], pa.string()),
            "pos": rows.column("pos"),
        }
    )
    added = write_position_deletes(table, local_rows, files)
    changes = FileChanges(added_deletes=added, removed_deletes=[*inputs.values(), *removed])
    commit_changes(table, changes, operation=Operation.REPLACE, branch=branch, serializable=False)
    result.rewritten_delete_files_count = len(changes.removed_deletes)
    result.added_delete_files_count = len(added)
    result.rewritten_bytes_count = sum(d.file_size_in_bytes for d in changes.removed_deletes)
    result.added_bytes_count = sum(d.file_size_in_bytes for d in added)
    return result


def _named(table: Table, delete: DataFile, live: dict[str, Any]) -> list[str]:
    return [p for p in referenced_paths(table, delete) if p in live]


def _positions(table: Table, deletes: list[DataFile], keep: set[str]) -> pa.Table:
    """The (file_path, pos) rows of ``deletes`` that name one of the ``keep`` data files, deduplicated."""
    parts = []
    for delete in deletes:
        with table.io.new_input(delete.file_path).open() as stream:
            parts.append(pq.read_table(stream, columns=["file_path", "pos"]))
    rows = pa.concat_tables(parts)
    rows = rows.filter(pc.is_in(rows.column("file_path"), value_set=pa.array(sorted(keep), pa.string())))
    return rows.group_by(["file_path", "pos"]).aggregate([]).select(["file_path", "pos"])
