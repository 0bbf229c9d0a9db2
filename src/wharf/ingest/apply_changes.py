"""``CALL system.apply_changes``: apply a batch of change events (CDC) to a table, exactly once.

A batch is a table or query of events: key columns, a sequence column (``sequence_by``: an LSN,
a commit timestamp — anything that orders the events of one key), the row's values, and
something that says which events are deletes (``delete_when``, a condition on the event's
columns; by default ``upper(<operation_column>) IN ('D', 'DELETE')``). The batch is applied in
sequence order as ONE statement through Wharf's own MERGE (``wharf.sql.merge.merge_into``), so
copy-on-write or merge-on-read (``write.merge.mode``), commit gates, events and conflict
validation all apply, and the statement commits one snapshot or nothing.

SCD type 1 (the table holds the latest version of each key):

- exact duplicates inside the batch count once; of the events of one key, the one with the
  highest sequence wins (two *different* events with the same key and sequence are an error);
- every commit records in its snapshot summary the highest sequence applied so far (the
  *high-water mark*) and a fingerprint of the batch. An event whose sequence is at or below the
  high-water mark is *late* and ignored — unless the target stores the sequence column itself
  (a target column named like ``sequence_by``): then a late event still applies to a key whose
  row holds an older sequence (the per-key comparison is exact for keys present in the table;
  for absent keys it cannot tell a late insert from a resurrected delete, so it ignores them);
- hence re-running a batch, or any batch already applied, changes nothing and commits nothing.

SCD type 2 (the table holds every version, ``__start_at`` / ``__end_at`` typed like the
sequence, ``__end_at`` NULL for the current version): the history of each key in the batch is
rebuilt from its existing versions and the new events, so a late event lands in its place (an
update between two versions splits the interval; a delete closes the version it falls in). An
event whose key and sequence already start (or, for a delete, end) a version is a duplicate.
A delete that closes nothing (the key had no version open at that sequence) leaves no trace.

The summary properties are ``wharf.cdc.high-water-mark`` (text of the sequence value),
``wharf.cdc.sequence-by`` and ``wharf.cdc.batch-fingerprint``; the last snapshot of the target
branch that carries them is the target's state. A batch that moves the high-water mark but
changes no row still commits one (empty) snapshot, so the mark it saw is not lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Snapshot
from pyiceberg.types import NestedField
from sqlglot import exp
from sqlglot.errors import ParseError

from wharf import pyiceberg_compat as compat
from wharf.errors import ConflictError, InvalidArgument, SchemaMismatch, SqlParseError, WharfError
from wharf.sql.context import Context
from wharf.sql.merge import merge_into
from wharf.sql.parser import parse
from wharf.sql.pipeline import compile_query
from wharf.sql.procedures import Param, procedure
from wharf.sql.update import TargetScan, temp_name
from wharf.tables.commit import commit_lock, private
from wharf.tables.scan import quote_ident, quote_str
from wharf.tables.types import iceberg_to_duckdb

SCD1 = 1
SCD2 = 2
START_AT = "__start_at"
END_AT = "__end_at"

HIGH_WATER_MARK_PROPERTY = "wharf.cdc.high-water-mark"
SEQUENCE_BY_PROPERTY = "wharf.cdc.sequence-by"
FINGERPRINT_PROPERTY = "wharf.cdc.batch-fingerprint"

# Columns of the working tables (never columns of the target: names starting with __wharf_).
_SEQ = "__wharf_seq"
_DEL = "__wharf_del"
_RESET = "__wharf_reset"
_HASH = "__wharf_hash"
_START = "__wharf_start"
_END = "__wharf_end"
_T = "__wharf_t"
_S = "__wharf_s"

APPLIED = "applied"
UNCHANGED = "unchanged"
ALREADY_APPLIED = "already applied"


@dataclass(frozen=True)
class ChangeSpec:
    """How to read a batch of change events (the procedure's arguments besides target and source)."""

    keys: tuple[str, ...]
    sequence_by: str
    operation_column: str | None = None
    delete_when: str | None = None
    columns_except: tuple[str, ...] = ()
    scd_type: int = SCD1
    ignore_null_updates: bool = False


@dataclass
class ApplyResult:
    """What one ``apply_changes`` did (one row of the procedure's output)."""

    events: int = 0
    duplicate_events: int = 0
    late_events: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    snapshot_id: int | None = None
    high_water_mark: str | None = None
    status: str = UNCHANGED

    def as_row(self) -> dict[str, Any]:
        return {
            "num_events": self.events,
            "num_duplicate_events": self.duplicate_events,
            "num_late_events": self.late_events,
            "num_inserted_rows": self.inserted,
            "num_updated_rows": self.updated,
            "num_deleted_rows": self.deleted,
            "snapshot_id": self.snapshot_id,
            "high_water_mark": self.high_water_mark,
            "status": self.status,
        }


OUTPUT: list[tuple[str, pa.DataType]] = [
    ("num_events", pa.int64()),
    ("num_duplicate_events", pa.int64()),
    ("num_late_events", pa.int64()),
    ("num_inserted_rows", pa.int64()),
    ("num_updated_rows", pa.int64()),
    ("num_deleted_rows", pa.int64()),
    ("snapshot_id", pa.int64()),
    ("high_water_mark", pa.string()),
    ("status", pa.string()),
]


@dataclass
class _Layout:
    """Where each part of an event is, validated against the source and the target."""

    keys: list[str]  # target names of the key columns
    written: list[tuple[str, NestedField]]  # source column -> target column it sets (keys included)
    sequence: str  # source column
    sequence_type: str  # DuckDB type the working tables hold the sequence in
    delete_sql: str  # DuckDB condition over the source's columns
    stores_sequence: str | None  # the target column holding the sequence (SCD1), if any
    start_at: NestedField | None = None
    end_at: NestedField | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def values(self) -> list[str]:
        """Target names of the written non-key columns."""
        return [f.name for _s, f in self.written if f.name not in self.keys]


def _q(name: str) -> str:
    return quote_ident(name)


def _keys_equal(keys: list[str], left: str, right: str) -> str:
    return " AND ".join(f"{_q(left)}.{_q(k)} = {_q(right)}.{_q(k)}" for k in keys)


# --- arguments ------------------------------------------------------------------------------------


def _target_node(ctx: Context, target: str) -> exp.Table:
    try:
        node = sqlglot.parse_one(f"SELECT 1 FROM {target} AS {_T}", read=ctx.dialect).find(exp.Table)
    except ParseError:
        node = None
    if node is None:
        raise InvalidArgument(f"apply_changes: target {target!r} is not a table name", hint="target => 'db.table'")
    return node


def _source_query(ctx: Context, source: str) -> exp.Expr:
    """``source`` is a query (SELECT/WITH/VALUES/FROM …) or the name of a table or registered frame."""
    text = source.strip().rstrip(";")
    try:
        node = sqlglot.parse_one(text, read=ctx.dialect)
    except ParseError:
        node = None
    if isinstance(node, exp.Query):
        return parse(text, ctx.dialect)[0].node  # Wharf's parser: time travel and branches in it
    try:
        statements = parse(f"SELECT * FROM {text}", ctx.dialect)
    except SqlParseError as exc:
        raise InvalidArgument(
            f"apply_changes: source {source!r} is neither a query nor a table name: {exc.message}",
            hint="source => 'db.events' or source => 'SELECT * FROM db.events WHERE batch = 7'",
        ) from exc
    return statements[0].node


def _delete_condition(ctx: Context, spec: ChangeSpec, source_columns: dict[str, str]) -> str:
    """The DuckDB SQL of ``delete_when`` (checked: it parses, and names only the events' columns)."""
    text = spec.delete_when
    if text is None:
        if spec.operation_column is None:
            return "false"
        return f"upper(CAST({_q(source_columns[spec.operation_column.lower()])} AS VARCHAR)) IN ('D', 'DELETE')"
    try:
        node = sqlglot.parse_one(text, read=ctx.dialect)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise SqlParseError(
            f"delete_when cannot be parsed: {first.get('description') or str(exc).splitlines()[0]}",
            line=first.get("line"),
            column=first.get("col"),
            sql=text,
            hint="a condition on the events' columns, such as op = 'D'",
        ) from None
    if node.find(exp.Select, exp.Subquery):
        raise InvalidArgument(
            f"delete_when {text!r} is a condition on one event's columns; it cannot hold a subquery",
            hint="a condition such as op = 'D'",
        )
    for col in node.find_all(exp.Column):
        name = source_columns.get(col.name.lower())
        if name is None:
            raise SchemaMismatch(
                f"delete_when {text!r}: the events have no column '{col.name}'",
                hint=f"their columns are: {', '.join(source_columns.values())}",
            )
        col.set("table", None)
        col.set("this", exp.to_identifier(name, quoted=True))
    return node.sql("duckdb")


def _layout(ctx: Context, scan: TargetScan, source_types: dict[str, str], spec: ChangeSpec) -> _Layout:
    """Check the events against the target and decide which column goes where."""
    label = scan.target.label
    source = {name.lower(): name for name in source_types}
    target = {f.name.lower(): f for f in scan.schema.fields}

    def in_source(name: str, what: str) -> str:
        found = source.get(name.lower())
        if found is None:
            raise SchemaMismatch(
                f"apply_changes: the events have no {what} column '{name}'",
                hint=f"their columns are: {', '.join(source_types)}",
            )
        return found

    if not spec.keys:
        raise InvalidArgument("apply_changes needs at least one key column", hint="keys => array('id')")
    keys_src = [in_source(k, "key") for k in spec.keys]
    sequence = in_source(spec.sequence_by, "sequence_by")
    if spec.operation_column is not None:
        in_source(spec.operation_column, "operation")
    for name in spec.columns_except:
        in_source(name, "columns_except")
    for k in keys_src:
        if k.lower() not in target:
            raise SchemaMismatch(
                f"apply_changes: target {label} has no key column '{k}'",
                hint=f"its columns are: {', '.join(f.name for f in scan.schema.fields)}",
            )
        if k.lower() in {c.lower() for c in spec.columns_except}:
            raise InvalidArgument(f"apply_changes: key column '{k}' cannot be in columns_except")
    sequence_type = source_types[sequence]
    if any(word in sequence_type.upper() for word in ("STRUCT", "MAP", "[]", "UNION")):
        raise SchemaMismatch(
            f"apply_changes: sequence_by column '{sequence}' has type {sequence_type}, which has no order",
            hint="use a number, a timestamp or a string that sorts the events of a key",
        )

    layout = _Layout(
        keys=[target[k.lower()].name for k in keys_src],
        written=[],
        sequence=sequence,
        sequence_type=sequence_type,
        delete_sql=_delete_condition(ctx, spec, source),
        stores_sequence=None,
    )
    if spec.scd_type == SCD2:
        for name in (START_AT, END_AT):
            if name not in target:
                raise SchemaMismatch(
                    f"apply_changes with scd_type => 2: target {label} has no column {name}",
                    hint=f"an SCD2 target holds the key and value columns plus {START_AT} and {END_AT}, "
                    f"typed like the sequence: ALTER TABLE {label} ADD COLUMN {START_AT} {sequence_type}",
                )
        layout.start_at, layout.end_at = target[START_AT], target[END_AT]
        layout.sequence_type = iceberg_to_duckdb(layout.start_at.field_type)

    excluded = {c.lower() for c in spec.columns_except} | {START_AT, END_AT}
    implicit = {spec.sequence_by.lower(), (spec.operation_column or "").lower()}
    for lowered, name in source.items():
        if lowered in excluded:
            continue
        f = target.get(lowered)
        if f is None:
            if lowered in implicit:
                continue  # the sequence and operation columns are written only if the target has them
            raise SchemaMismatch(
                f"apply_changes: target {label} has no column '{name}' for the events' column of that name",
                hint=f"add '{name}' to columns_except, or ALTER TABLE {label} ADD COLUMN",
            )
        layout.written.append((name, f))
        if lowered == spec.sequence_by.lower() and spec.scd_type == SCD1:
            layout.stores_sequence = f.name
    return layout


# --- state kept in snapshot summaries ---------------------------------------------------------------


@dataclass(frozen=True)
class _Applied:
    high_water_mark: str
    sequence_by: str
    fingerprint: str | None


def last_applied(table: Table, snapshot_id: int | None) -> _Applied | None:
    """The CDC state of the newest snapshot from ``snapshot_id`` back that carries one."""
    while snapshot_id is not None:
        snapshot = table.metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            return None  # history expired below here
        props = snapshot.summary.additional_properties if snapshot.summary is not None else {}
        if HIGH_WATER_MARK_PROPERTY in props:
            return _Applied(props[HIGH_WATER_MARK_PROPERTY], props.get(SEQUENCE_BY_PROPERTY, ""), props.get(FINGERPRINT_PROPERTY))
        snapshot_id = snapshot.parent_snapshot_id
    return None


def _record_batch(ctx: Context, scan: TargetScan) -> Snapshot:
    """Commit an empty snapshot that only records the batch (it moved the high-water mark, changed no row)."""
    target = scan.target
    table = private(target.table)
    props = {**ctx.statement.summary, **target.summary_properties()}
    with commit_lock(table):
        table.refresh()
        head = table.metadata.snapshot_by_name(target.branch)
        if (head.snapshot_id if head else None) != target.snapshot_id:
            raise ConflictError(
                f"apply_changes: {target.label} changed while the batch was applied",
                table=target.label,
                conflicting_snapshot_id=head.snapshot_id if head else None,
                hint="nothing was committed; run it again",
            )
        tx = compat.MemoizedTransaction(table)
        producer: compat.SnapshotProducer[Any]
        if target.stage_only:
            producer = compat.staged(compat.FastAppend)(
                Operation.APPEND, transaction=tx, io=table.io, snapshot_properties=props, branch=target.branch
            )
        else:
            producer = tx.update_snapshot(snapshot_properties=props, branch=target.branch).fast_append()
        snapshot_id = producer.snapshot_id
        producer.commit()
        tx.commit_transaction()
    snapshot = table.metadata.snapshot_by_id(snapshot_id)
    assert snapshot is not None
    return snapshot


# --- the batch -------------------------------------------------------------------------------------


class _Run:
    """One application of a batch: the working tables live on the statement's connection."""

    def __init__(self, ctx: Context, scan: TargetScan, spec: ChangeSpec, temps: list[str]) -> None:
        self.ctx = ctx
        self.scan = scan
        self.spec = spec
        self.temps = temps
        self.views: list[str] = []

    def sql(self, text: str) -> duckdb.DuckDBPyConnection:
        return self.scan.run(text)

    def scalar(self, text: str) -> Any:
        row = self.sql(text).fetchone()
        return row[0] if row else None

    def temp(self, kind: str, query: str) -> str:
        name = temp_name(f"cdc_{kind}")
        self.temps.append(name)
        self.sql(f"CREATE TEMP TABLE {name} AS {query}")
        return name

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table}"))

    def target_rows(self, columns: list[str], keys_from: str) -> str:
        """The target's rows (``columns``) at the snapshot the MERGE reads, for the keys in ``keys_from``."""
        target = self.scan.target
        if target.snapshot_id is None:
            types = {f.name: iceberg_to_duckdb(f.field_type) for f in self.scan.schema.fields}
            nulls = ", ".join(f"CAST(NULL AS {types[c]}) AS {_q(c)}" for c in columns)
            return self.temp("rows", f"SELECT {nulls} LIMIT 0")
        name = f"{_q(target.namespace)}.{_q(target.name)}"
        select = f"SELECT {', '.join(_q(c) for c in columns)} FROM {name} FOR VERSION AS OF {target.snapshot_id}"
        query = parse(select + self.key_bounds(keys_from), "duckdb")[0].node
        compiled = compile_query(self.ctx, query).sql
        keys = self.layout.keys
        return self.temp(
            "rows",
            f"SELECT r.* FROM ({compiled}) AS r WHERE EXISTS "
            f"(SELECT 1 FROM {keys_from} AS k WHERE {_keys_equal(keys, 'k', 'r')})",
        )

    def key_bounds(self, keys_from: str) -> str:
        """``WHERE k BETWEEN lo AND hi`` for each key over the events in ``keys_from``, so the scan
        planner skips the target's files that cannot hold them (literals cast to the column's type)."""
        bounds = []
        fields = {f.name: f for f in self.scan.schema.fields}
        for key in self.layout.keys:
            kind = iceberg_to_duckdb(fields[key].field_type)
            if kind in ("FLOAT", "DOUBLE", "BLOB", "BOOLEAN") or ("(" in kind and not kind.startswith("DECIMAL")):
                continue
            row = self.sql(f"SELECT CAST(min({_q(key)}) AS VARCHAR), CAST(max({_q(key)}) AS VARCHAR) FROM {keys_from}").fetchone()
            if row is None or row[0] is None:
                continue
            numeric = kind in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT") or kind.startswith("DECIMAL")
            low, high = (v if numeric else f"CAST({quote_str(v)} AS {kind})" for v in row)
            bounds.append(f"{_q(key)} BETWEEN {low} AND {high}")
        return f" WHERE {' AND '.join(bounds)}" if bounds else ""

    def apply(self, source: str) -> ApplyResult:
        spec, scan = self.spec, self.scan
        # The source is read through a view (a query over Wharf tables takes the reference
        # pipeline); the events are materialised once, in the target's types.
        raw = temp_name("cdc_source")
        self.sql(f"CREATE TEMP VIEW {raw} AS {compile_query(self.ctx, _source_query(self.ctx, source)).sql}")
        self.views.append(raw)
        types = {str(r[0]): str(r[1]) for r in self.sql(f"DESCRIBE {raw}").fetchall()}
        self.layout = layout = _layout(self.ctx, scan, types, spec)
        result = ApplyResult(events=self._check_not_null(raw, layout))
        applied = last_applied(scan.target.table, scan.target.snapshot_id)
        if applied is not None and applied.sequence_by.lower() != spec.sequence_by.lower():
            applied = None  # a different sequence: its mark says nothing about this one
        if result.events == 0:
            result.high_water_mark = applied.high_water_mark if applied is not None else None
            return result

        # Every event with its sequence, its delete flag and a hash of all of it (duplicates hash alike).
        columns = [f"CAST({_q(s)} AS {iceberg_to_duckdb(f.field_type)}) AS {_q(f.name)}" for s, f in layout.written]
        hashed = [*(_q(f.name) for _s, f in layout.written), _SEQ, _DEL]
        try:
            events = self.temp(
                "events",
                f"SELECT *, hash({', '.join(hashed)}) AS {_HASH} FROM (SELECT {', '.join(columns)}, "
                f"CAST({_q(layout.sequence)} AS {layout.sequence_type}) AS {_SEQ}, "
                f"coalesce(CAST(({layout.delete_sql}) AS BOOLEAN), false) AS {_DEL} FROM {raw})",
            )
        except WharfError as exc:
            raise SchemaMismatch(
                f"apply_changes: the events do not fit target {scan.target.label}: {exc.message}",
                hint="cast the events' columns to the target's types in the source query",
            ) from exc
        self._check_unambiguous(events, layout)
        distinct, fingerprint = self._fingerprint(events)
        result.duplicate_events = result.events - distinct

        if applied is not None and applied.fingerprint == fingerprint:
            result.duplicate_events = result.events
            result.high_water_mark = applied.high_water_mark
            result.status = ALREADY_APPLIED
            return result
        mark, advances = self._high_water_mark(events, applied)
        result.high_water_mark = mark
        self.ctx.statement.summary.update(
            {
                HIGH_WATER_MARK_PROPERTY: mark,
                SEQUENCE_BY_PROPERTY: layout.sequence,
                FINGERPRINT_PROPERTY: fingerprint,
            }
        )
        if spec.scd_type == SCD2:
            source_table = self._scd2_changes(self.temp("distinct", f"SELECT DISTINCT * EXCLUDE ({_HASH}) FROM {events}"), result)
        else:
            source_table = self._scd1_changes(events, applied, distinct, result)
        if source_table is not None:
            merged = merge_into(self.ctx, scan, self._merge(source_table))
            counts = merged.to_arrow().to_pylist()[0]
            result.inserted = int(counts.get("num_inserted_rows", 0))
            result.updated = int(counts.get("num_updated_rows", 0))
            result.deleted = int(counts.get("num_deleted_rows", 0))
            result.snapshot_id = merged.snapshot_id
        if result.snapshot_id is None and advances:
            result.snapshot_id = _record_batch(self.ctx, scan).snapshot_id
        if result.snapshot_id is not None:
            result.status = APPLIED
            self.ctx.forget_table(scan.target.namespace, scan.target.name)
        else:
            result.high_water_mark = applied.high_water_mark if applied is not None else None
        return result

    # --- checks and state

    def _check_not_null(self, raw: str, layout: _Layout) -> int:
        """The number of events, after checking that none has a NULL key or sequence."""
        keys_src = [s for s, f in layout.written if f.name in layout.keys]
        null_key = " OR ".join(f"{_q(k)} IS NULL" for k in keys_src)
        row = self.sql(
            f"SELECT count(*), count(*) FILTER (WHERE {null_key}), count(*) FILTER (WHERE {_q(layout.sequence)} IS NULL) "
            f"FROM {raw}"
        ).fetchone()
        assert row is not None
        if row[1]:
            raise InvalidArgument(
                f"apply_changes: {row[1]} event(s) have a NULL key ({', '.join(keys_src)})",
                hint="every event must name the row it changes; filter those events out in the source query",
            )
        if row[2]:
            raise InvalidArgument(
                f"apply_changes: {row[2]} event(s) have a NULL sequence ({layout.sequence})",
                hint="every event needs a sequence value to be ordered by; filter or fill them in the source query",
            )
        return int(row[0])

    def _check_unambiguous(self, events: str, layout: _Layout) -> None:
        keys = ", ".join(_q(k) for k in layout.keys)
        row = self.sql(
            f"SELECT {keys}, {_SEQ} FROM {events} GROUP BY {keys}, {_SEQ} HAVING min({_HASH}) <> max({_HASH}) LIMIT 1"
        ).fetchone()
        if row is not None:
            where = ", ".join(f"{k} = {v!r}" for k, v in zip(layout.keys, row[:-1], strict=True))
            raise InvalidArgument(
                f"apply_changes: two different events for key ({where}) have the same sequence {row[-1]!r}; "
                "which one wins is ambiguous",
                hint=f"sequence_by must order the events of a key; {layout.sequence} repeats for this key",
            )

    def _fingerprint(self, events: str) -> tuple[int, str]:
        """The number of distinct events, and an order-independent digest of them and of how they are applied."""
        row = self.sql(
            f"SELECT count(*), bit_xor(h), sum(h::HUGEINT) FROM (SELECT DISTINCT {_HASH} AS h FROM {events})"
        ).fetchone()
        assert row is not None
        spec = self.spec
        text = repr(
            (row, spec.keys, spec.sequence_by, spec.scd_type, spec.ignore_null_updates, [f.name for _s, f in self.layout.written])
        )
        return int(row[0]), hashlib.sha256(text.encode()).hexdigest()[:32]

    def _high_water_mark(self, events: str, applied: _Applied | None) -> tuple[str, bool]:
        """The new high-water mark (text) and whether this batch moves it."""
        if applied is None:
            return str(self.scalar(f"SELECT CAST(max({_SEQ}) AS VARCHAR) FROM {events}")), True
        previous = self._previous(applied)
        row = self.sql(
            f"SELECT CAST(greatest(max({_SEQ}), {previous}) AS VARCHAR), max({_SEQ}) > {previous} FROM {events}"
        ).fetchone()
        assert row is not None
        return str(row[0]), bool(row[1])

    def _previous(self, applied: _Applied) -> str:
        literal = f"CAST({quote_str(applied.high_water_mark)} AS {self.layout.sequence_type})"
        try:
            self.sql(f"SELECT {literal}")
        except WharfError as exc:
            raise SchemaMismatch(
                f"apply_changes: the high-water mark {applied.high_water_mark!r} recorded on "
                f"{self.scan.target.label} is not a {self.layout.sequence_type}",
                hint=f"sequence_by must keep its type from batch to batch ({exc.message})",
            ) from exc
        return literal

    # --- SCD type 1

    def _scd1_changes(self, events: str, applied: _Applied | None, distinct: int, result: ApplyResult) -> str | None:
        layout = self.layout
        fresh = events
        if applied is not None:
            previous = self._previous(applied)
            if layout.stores_sequence is not None and self.scalar(f"SELECT count(*) FROM {events} WHERE {_SEQ} <= {previous}"):
                # Late events still apply to keys whose row holds an older sequence.
                rows = self.target_rows(
                    [*layout.keys, layout.stores_sequence], f"(SELECT * FROM {events} WHERE {_SEQ} <= {previous})"
                )
                newer = f"r.{_q(layout.stores_sequence)} IS NULL OR r.{_q(layout.stores_sequence)} < e.{_SEQ}"
                fresh = self.temp(
                    "fresh",
                    f"SELECT * FROM {events} AS e WHERE {_SEQ} > {previous} OR EXISTS "
                    f"(SELECT 1 FROM {rows} AS r WHERE {_keys_equal(layout.keys, 'r', 'e')} AND ({newer}))",
                )
            else:
                fresh = self.temp("fresh", f"SELECT * FROM {events} WHERE {_SEQ} > {previous}")
        if fresh != events:
            result.late_events = distinct - int(self.scalar(f"SELECT count(DISTINCT {_HASH}) FROM {fresh}"))
        keys = ", ".join(_q(k) for k in layout.keys)
        if not self.spec.ignore_null_updates:
            latest = self.temp(
                "latest",
                f"SELECT * EXCLUDE ({_HASH}), false AS {_RESET} FROM {fresh} "
                f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {_SEQ} DESC) = 1",
            )
        else:
            # NULL means "unchanged": fold the key's upserts after its last delete, column by column.
            last_del = "__wharf_last_del"
            after = f"NOT {_DEL} AND ({last_del} IS NULL OR {_SEQ} > {last_del})"
            values = ", ".join(
                f"arg_max({_q(c)}, {_SEQ}) FILTER (WHERE {_q(c)} IS NOT NULL AND {after}) AS {_q(c)}" for c in layout.values
            )
            latest = self.temp(
                "latest",
                f"SELECT {keys}{', ' + values if values else ''}, max({_SEQ}) AS {_SEQ}, "
                f"coalesce(max({_SEQ}) = any_value({last_del}), false) AS {_DEL}, any_value({last_del}) IS NOT NULL AS {_RESET} "
                f"FROM (SELECT *, max(CASE WHEN {_DEL} THEN {_SEQ} END) OVER (PARTITION BY {keys}) AS {last_del} FROM {fresh}) "
                f"GROUP BY {keys}",
            )
        return latest if self.count(latest) else None

    # --- SCD type 2

    def _scd2_changes(self, events: str, result: ApplyResult) -> str | None:
        layout = self.layout
        assert layout.start_at is not None and layout.end_at is not None
        start, end = layout.start_at.name, layout.end_at.name
        keys, cols = layout.keys, [f.name for _s, f in layout.written]
        history = self.target_rows([*cols, start, end], events)
        key_list = ", ".join(_q(k) for k in keys)
        col_list = ", ".join(_q(c) for c in cols)
        nulls = ", ".join(_q(c) if c in keys else f"NULL AS {_q(c)}" for c in cols)
        # The history as events: each version an upsert at its start; a version whose end starts
        # no other version, a delete at its end.
        known = self.temp(
            "known",
            f"SELECT {col_list}, CAST({_q(start)} AS {layout.sequence_type}) AS {_SEQ}, false AS {_DEL} FROM {history} "
            f"UNION ALL SELECT {nulls}, CAST(h.{_q(end)} AS {layout.sequence_type}), true FROM {history} AS h "
            f"WHERE h.{_q(end)} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {history} AS n "
            f"WHERE {_keys_equal(keys, 'n', 'h')} AND n.{_q(start)} = h.{_q(end)})",
        )
        new = self.temp(
            "new",
            f"SELECT * FROM {events} AS e WHERE NOT EXISTS (SELECT 1 FROM {known} AS k "
            f"WHERE {_keys_equal(keys, 'k', 'e')} AND k.{_SEQ} = e.{_SEQ})",
        )
        result.duplicate_events += self.count(events) - self.count(new)
        if not self.count(new):
            return None
        changed = self.temp(
            "versions",
            f"SELECT v.* EXCLUDE ({_DEL}) FROM (SELECT {col_list}, {_SEQ} AS {_START}, "
            f"lead({_SEQ}) OVER (PARTITION BY {key_list} ORDER BY {_SEQ}) AS {_END}, {_DEL} "
            f"FROM (SELECT {col_list}, {_SEQ}, {_DEL} FROM {known} UNION ALL SELECT {col_list}, {_SEQ}, {_DEL} FROM {new})) AS v "
            f"WHERE NOT v.{_DEL} AND NOT EXISTS (SELECT 1 FROM {history} AS h WHERE {_keys_equal(keys, 'h', 'v')} "
            f"AND h.{_q(start)} = v.{_START} AND h.{_q(end)} IS NOT DISTINCT FROM v.{_END})",
        )
        return changed if self.count(changed) else None

    # --- the MERGE

    def _merge(self, source: str) -> exp.Merge:
        layout = self.layout
        on = _keys_equal(layout.keys, _T, _S)
        written = [f.name for _s, f in layout.written]
        if self.spec.scd_type == SCD2:
            assert layout.start_at is not None and layout.end_at is not None
            start, end = layout.start_at.name, layout.end_at.name
            on += f" AND {_q(_T)}.{_q(start)} = {_q(_S)}.{_START}"
            names = ", ".join(_q(c) for c in [*written, start, end])
            values = ", ".join([*(f"{_q(_S)}.{_q(c)}" for c in written), f"{_q(_S)}.{_START}", f"{_q(_S)}.{_END}"])
            clauses = (
                f"WHEN MATCHED THEN UPDATE SET {_q(end)} = {_q(_S)}.{_END} "
                f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
            )
        else:
            s, t = _q(_S), _q(_T)
            sets = ", ".join(
                f"{_q(c)} = CASE WHEN {s}.{_RESET} THEN {s}.{_q(c)} ELSE coalesce({s}.{_q(c)}, {t}.{_q(c)}) END"
                if self.spec.ignore_null_updates
                else f"{_q(c)} = {s}.{_q(c)}"
                for c in layout.values
            )
            clauses = f"WHEN MATCHED AND {s}.{_DEL} THEN DELETE "
            if sets:
                clauses += f"WHEN MATCHED THEN UPDATE SET {sets} "
            names = ", ".join(_q(c) for c in written)
            values = ", ".join(f"{s}.{_q(c)}" for c in written)
            clauses += f"WHEN NOT MATCHED AND NOT {s}.{_DEL} THEN INSERT ({names}) VALUES ({values})"
        node = sqlglot.parse_one(f"MERGE INTO {_T} USING {source} AS {_S} ON {on} {clauses}", read="duckdb")
        assert isinstance(node, exp.Merge)
        node.set("this", self.scan_node.copy())
        return node

    scan_node: exp.Table
    layout: _Layout


def apply_changes(ctx: Context, target: str, source: str, spec: ChangeSpec) -> ApplyResult:
    """Apply the change events of ``source`` (a query or a table name) to ``target`` as one commit."""
    if spec.scd_type not in (SCD1, SCD2):
        raise InvalidArgument(f"apply_changes: scd_type must be 1 or 2, got {spec.scd_type}")
    if spec.scd_type == SCD2 and spec.ignore_null_updates:
        raise InvalidArgument(
            "apply_changes: ignore_null_updates applies to scd_type => 1",
            hint="an SCD2 version holds the values its event carried",
        )
    node = _target_node(ctx, target)
    scan = TargetScan.of(ctx, node)
    scan.mode_kind = "merge"  # write.merge.mode decides copy-on-write or merge-on-read
    with scan.temp_tables() as temps:
        run = _Run(ctx, scan, spec, temps)
        run.scan_node = node
        try:
            return run.apply(source)
        finally:
            for view in run.views:
                try:
                    ctx.con.execute(f"DROP VIEW IF EXISTS {view}")
                except duckdb.Error:
                    pass


# --- the procedure ---------------------------------------------------------------------------------


@procedure(
    "apply_changes",
    [
        Param("target", "string"),
        Param("source", "string"),
        Param("keys", "array<string>"),
        Param("sequence_by", "string"),
        Param("operation_column", "string", False),
        Param("delete_when", "string", False),
        Param("columns_except", "array<string>", False),
        Param("scd_type", "positive_int", False),
        Param("ignore_null_updates", "boolean", False),
    ],
    OUTPUT,
)
def _apply_changes(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Apply a batch of change events (upserts and deletes ordered by a sequence) as one commit, exactly once."""
    spec = ChangeSpec(
        keys=tuple(a["keys"]),
        sequence_by=a["sequence_by"],
        operation_column=a["operation_column"],
        delete_when=a["delete_when"],
        columns_except=tuple(a["columns_except"] or ()),
        scd_type=a["scd_type"] or SCD1,
        ignore_null_updates=bool(a["ignore_null_updates"]),
    )
    return apply_changes(ctx, a["target"], a["source"], spec).as_row()


def call_sql(
    target: str,
    source: str,
    *,
    keys: list[str],
    sequence_by: str,
    operation_column: str | None = None,
    delete_when: str | None = None,
    columns_except: list[str] | None = None,
    scd_type: int = SCD1,
    ignore_null_updates: bool = False,
) -> str:
    """The ``CALL system.apply_changes(…)`` statement for these arguments (the Python API and CLI run it)."""

    def array(values: list[str]) -> str:
        return f"array({', '.join(quote_str(v) for v in values)})"

    args = [
        f"target => {quote_str(target)}",
        f"source => {quote_str(source)}",
        f"keys => {array(keys)}",
        f"sequence_by => {quote_str(sequence_by)}",
    ]
    if operation_column is not None:
        args.append(f"operation_column => {quote_str(operation_column)}")
    if delete_when is not None:
        args.append(f"delete_when => {quote_str(delete_when)}")
    if columns_except:
        args.append(f"columns_except => {array(columns_except)}")
    if scd_type != SCD1:
        args.append(f"scd_type => {int(scd_type)}")
    if ignore_null_updates:
        args.append("ignore_null_updates => true")
    return f"CALL system.apply_changes({', '.join(args)})"


__all__ = ["ApplyResult", "ChangeSpec", "apply_changes", "call_sql", "last_applied"]
