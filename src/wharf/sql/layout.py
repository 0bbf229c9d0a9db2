"""Table layout DDL: partition evolution and write order (Spark + Iceberg syntax).

::

    ALTER TABLE t ADD PARTITION FIELD <transform> [AS name]
    ALTER TABLE t DROP PARTITION FIELD <transform | name>
    ALTER TABLE t REPLACE PARTITION FIELD <transform | name> WITH <transform> [AS name]
    ALTER TABLE t WRITE [LOCALLY] ORDERED BY col [ASC|DESC] [NULLS FIRST|LAST], …
    ALTER TABLE t WRITE DISTRIBUTED BY PARTITION [LOCALLY ORDERED BY …]
    ALTER TABLE t WRITE UNORDERED

Transforms are ``col``, ``years|months|days|hours(col)`` (also ``year(…)`` …), ``bucket(n, col)``
and ``truncate(n, col)``. Partition evolution changes only new writes: existing files keep the
spec they were written with. ``WRITE … ORDERED BY`` sets the table's sort order (Wharf's writers
sort the rows of every file they write by it) and ``write.distribution-mode`` as Spark does
(``range`` for ``ORDERED BY``, ``none`` for ``LOCALLY ORDERED BY`` and ``UNORDERED``, ``hash`` for
``DISTRIBUTED BY PARTITION``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlglot
from pyiceberg.table import Table
from pyiceberg.table.sorting import NullOrder
from pyiceberg.transforms import (
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    YearTransform,
)
from sqlglot.errors import ParseError

from wharf.errors import InvalidArgument, NotFound, UnsupportedStatement
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles
from wharf.sql.parser import TokenStream, extension
from wharf.sql.pipeline import resolve_reference
from wharf.tables.commit import commit_lock, private
from wharf.tables.loader import split_name

DISTRIBUTION_MODE = "write.distribution-mode"


@dataclass(frozen=True)
class PartitionChange:
    """``ADD`` / ``DROP`` / ``REPLACE PARTITION FIELD``; ``field`` is SQL (a transform or a field name)."""

    table: str
    verb: str  # ADD | DROP | REPLACE
    field: str
    new_field: str | None = None  # REPLACE … WITH <this>
    name: str | None = None  # AS name


@dataclass(frozen=True)
class SortKey:
    column: str
    descending: bool = False
    nulls_first: bool | None = None  # None: the default (first for ASC, last for DESC)


@dataclass(frozen=True)
class WriteOrder:
    """``WRITE …``: the sort order (empty: unordered) and the distribution mode."""

    table: str
    keys: tuple[SortKey, ...]
    distribution: str  # none | hash | range


def _is_alter(s: TokenStream, *words: str) -> bool:
    if not s.accept("ALTER", "TABLE"):
        return False
    s.dotted_name()
    return any(s.at(*w.split()) for w in words)


def _until(s: TokenStream, *stops: str) -> str:
    """The text of the tokens up to one of ``stops`` (at parenthesis depth 0) or the end."""
    start = s.peek()
    if start is None:
        s.fail("Expected a partition field")
    depth = 0
    end = start
    while (tok := s.peek()) is not None:
        if depth == 0 and s.word() in stops:
            break
        depth += tok.text == "("
        depth -= tok.text == ")"
        end = tok
        s.i += 1
    return s.text[start.start : end.end + 1]


@extension(lambda s: _is_alter(s, "ADD PARTITION FIELD", "DROP PARTITION FIELD", "REPLACE PARTITION FIELD"))
def _parse_partition(s: TokenStream) -> PartitionChange:
    s.expect("ALTER", "TABLE")
    table = s.dotted_name()
    verb = s.word()
    s.i += 1
    s.expect("PARTITION", "FIELD")
    field = _until(s, "AS", "WITH")
    new_field = name = None
    if verb == "REPLACE":
        s.expect("WITH")
        new_field = _until(s, "AS")
    if s.accept("AS"):
        if verb == "DROP":
            s.i -= 1
            s.fail("DROP PARTITION FIELD takes no AS name")
        name = s.identifier()
    s.expect_end()
    return PartitionChange(table, verb, field, new_field, name)


def _sort_keys(s: TokenStream) -> tuple[SortKey, ...]:
    keys = []
    while True:
        column = s.dotted_name()
        descending = False
        if s.accept("DESC"):
            descending = True
        else:
            s.accept("ASC")
        nulls: bool | None = None
        if s.accept("NULLS", "FIRST"):
            nulls = True
        elif s.accept("NULLS", "LAST"):
            nulls = False
        keys.append(SortKey(column, descending, nulls))
        if not s.accept(","):
            return tuple(keys)


@extension(lambda s: _is_alter(s, "WRITE"))
def _parse_write(s: TokenStream) -> WriteOrder:
    s.expect("ALTER", "TABLE")
    table = s.dotted_name()
    s.expect("WRITE")
    if s.accept("UNORDERED"):
        s.expect_end()
        return WriteOrder(table, (), "none")
    if s.accept("DISTRIBUTED", "BY", "PARTITION"):
        keys: tuple[SortKey, ...] = ()
        if s.accept("LOCALLY", "ORDERED", "BY"):
            keys = _sort_keys(s)
        s.expect_end()
        return WriteOrder(table, keys, "hash")
    locally = s.accept("LOCALLY")
    s.expect("ORDERED", "BY")
    keys = _sort_keys(s)
    s.expect_end()
    return WriteOrder(table, keys, "none" if locally else "range")


# --- running ----------------------------------------------------------------------------------------


def _transform(sql: str, table: Table, label: str) -> tuple[str, Transform[Any, Any]]:
    """(source column, transform) of a partition field written as SQL (``bucket(16, id)``, ``days(ts)``, ``id``)."""
    from wharf.sql.ddl import partition_spec

    try:
        item = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as exc:
        raise InvalidArgument(
            f"'{sql}' is not a partition transform", hint="col, days(ts), bucket(16, id), truncate(4, s)"
        ) from exc
    spec = partition_spec(table.schema(), [item])  # type: ignore[list-item]  # a parsed expression
    [field] = spec.fields
    column = table.schema().find_column_name(field.source_id)
    assert column is not None
    return column, field.transform


def _field_name(table: Table, sql: str, label: str) -> str | None:
    """The partition field ``sql`` names: by its name, or by its transform (``bucket(16, id)``)."""
    spec = table.spec()
    for f in spec.fields:
        if f.name.lower() == sql.strip().strip('`"').lower():
            return f.name
    column, transform = _transform(sql, table, label)
    source_id = table.schema().find_field(column).field_id
    for f in spec.fields:
        if f.source_id == source_id and f.transform == transform:
            return f.name
    return None


@handles(PartitionChange, kind="alter_table")
def change_partitioning(ctx: Context, stmt: PartitionChange) -> Result:
    ns, name = split_name(stmt.table)
    label = f"{ns}.{name}"
    table = resolve_reference(ctx, (ns, name), role="alter").table
    copy = private(table)
    tx = copy.transaction()
    update = tx.update_spec()
    removed: str | None = None
    try:
        if stmt.verb in ("DROP", "REPLACE"):
            removed = _field_name(table, stmt.field, label)
            if removed is None:
                raise NotFound(
                    f"{label} has no partition field {stmt.field}",
                    hint=f"its partition fields: {', '.join(f.name for f in table.spec().fields) or 'none'}",
                )
            update.remove_field(removed)
        if stmt.verb in ("ADD", "REPLACE"):
            column, transform = _transform(stmt.new_field or stmt.field, table, label)
            _refuse_redundant(table, removed, column, transform, label)
            if stmt.name is None and isinstance(transform, IdentityTransform):
                update.add_identity(column)
            else:
                update.add_field(column, transform, stmt.name)
        update.commit()
        with commit_lock(table):
            tx.commit_transaction()
    except ValueError as exc:  # PyIceberg's checks (a field that already exists, a duplicate name …)
        raise InvalidArgument(f"Cannot change the partitioning of {label}: {exc}") from exc
    ctx.forget_table(ns, name)
    return _ok(f"Changed the partitioning of {label}")


_TIME = (YearTransform, MonthTransform, DayTransform, HourTransform)


def _refuse_redundant(table: Table, removed: str | None, column: str, transform: Transform[Any, Any], label: str) -> None:
    """Two time transforms of one column (``years(ts)`` and ``hours(ts)``) partition redundantly: Iceberg refuses to write."""
    if not isinstance(transform, _TIME):
        return
    source_id = table.schema().find_field(column).field_id
    for f in table.spec().fields:
        if f.name != removed and f.source_id == source_id and isinstance(f.transform, _TIME):
            raise InvalidArgument(
                f"{label} is already partitioned by {f.transform}({column}) ({f.name}); {transform}({column}) would be redundant",
                hint=f"replace it instead: ALTER TABLE {label} REPLACE PARTITION FIELD {f.name} WITH …",
            )


@handles(WriteOrder, kind="alter_table")
def set_write_order(ctx: Context, stmt: WriteOrder) -> Result:
    ns, name = split_name(stmt.table)
    label = f"{ns}.{name}"
    table = resolve_reference(ctx, (ns, name), role="alter").table
    schema = table.schema()
    copy = private(table)
    tx = copy.transaction()
    order = tx.update_sort_order(case_sensitive=False)
    for key in stmt.keys:
        try:
            schema.find_field(key.column, case_sensitive=False)
        except ValueError:
            raise NotFound(f"Column '{key.column}' does not exist in {label}") from None
        first = key.nulls_first if key.nulls_first is not None else not key.descending  # Spark's defaults
        nulls = NullOrder.NULLS_FIRST if first else NullOrder.NULLS_LAST
        if key.descending:
            order.desc(key.column, IdentityTransform(), nulls)
        else:
            order.asc(key.column, IdentityTransform(), nulls)
    try:
        order.commit()
        tx.set_properties({DISTRIBUTION_MODE: stmt.distribution})
        with commit_lock(table):
            tx.commit_transaction()
    except ValueError as exc:
        raise UnsupportedStatement(f"Cannot set the write order of {label}: {exc}") from exc
    ctx.forget_table(ns, name)
    what = ", ".join(k.column + (" DESC" if k.descending else "") for k in stmt.keys) or "unordered"
    return _ok(f"Writes to {label} are now {what} (distribution {stmt.distribution})")


def _ok(message: str) -> Result:
    return Result(pa.table({"status": [message]}), rowcount=0, message=message)
