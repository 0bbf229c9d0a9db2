"""Column DDL, nested columns included: ``ALTER TABLE t ADD|DROP|RENAME|ALTER COLUMN …`` (Spark + Iceberg syntax).

::

    ALTER TABLE t ADD COLUMN[S] a.b.c <type> [NOT NULL] [COMMENT '…'] [FIRST | AFTER x] [, …]
    ALTER TABLE t ADD COLUMNS (a <type> [COMMENT '…'], …)
    ALTER TABLE t DROP COLUMN[S] [IF EXISTS] a.b [, …]        ALTER TABLE t DROP COLUMNS (a, b)
    ALTER TABLE t RENAME COLUMN a.b TO c
    ALTER TABLE t ALTER COLUMN a.b TYPE <type> [COMMENT '…'] [FIRST | AFTER x]
    ALTER TABLE t ALTER COLUMN a.b COMMENT '…' | FIRST | AFTER x | DROP NOT NULL | SET NOT NULL

A column path names a nested field with dots: ``point.z`` in a struct, ``points.element.z`` in a
list of structs, ``m.key`` / ``m.value.b`` in a map (Iceberg's names). Types are written in the
statement's dialect (``struct<x: double>`` in Spark, ``STRUCT(x DOUBLE)`` in DuckDB). Names
resolve case-insensitively, as Spark's do. Every action of one statement lands in one commit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.update.schema import UpdateSchema
from pyiceberg.types import NestedField
from sqlglot import TokenType, exp
from sqlglot.errors import ParseError

from wharf.errors import AlreadyExists, InvalidArgument, NotFound, SchemaMismatch, UnsupportedStatement
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles
from wharf.sql.parser import TokenStream, dialect_types, extension
from wharf.sql.pipeline import resolve_reference
from wharf.tables.commit import private
from wharf.tables.loader import split_name
from wharf.tables.types import check_promotion, sql_type_to_iceberg

Path = tuple[str, ...]


@dataclass(frozen=True)
class Position:
    """Where a column goes among its siblings: first, or after ``after``."""

    first: bool = False
    after: Path | None = None


@dataclass(frozen=True)
class AddColumn:
    path: Path
    type_sql: str
    required: bool = False
    comment: str | None = None
    position: Position | None = None


@dataclass(frozen=True)
class DropColumn:
    path: Path
    if_exists: bool = False


@dataclass(frozen=True)
class RenameColumn:
    path: Path
    new_name: str


@dataclass(frozen=True)
class AlterColumn:
    path: Path
    type_sql: str | None = None
    comment: str | None = None
    position: Position | None = None
    nullability: str | None = None  # "drop" (DROP NOT NULL) or "set" (SET NOT NULL)


Action = AddColumn | DropColumn | RenameColumn | AlterColumn


@dataclass(frozen=True)
class AlterColumns:
    """``ALTER TABLE t <column actions>``; ``dialect`` reads the types."""

    table: str
    actions: tuple[Action, ...]
    dialect: str = "duckdb"


_VERBS = ("ADD", "DROP", "RENAME", "ALTER")
# Words that end a column type in ADD / ALTER … TYPE.
_AFTER_TYPE = ("NOT", "NULL", "COMMENT", "FIRST", "AFTER", "DEFAULT")


def _matches(s: TokenStream) -> bool:
    if not s.accept("ALTER", "TABLE"):
        return False
    s.dotted_name()
    return s.word() in _VERBS and s.word(1) in ("COLUMN", "COLUMNS")


def _path(s: TokenStream) -> Path:
    return tuple(s.dotted_name().split("."))


def _type_text(s: TokenStream) -> str:
    """The tokens of a type (``struct<x: double, y: double>``, ``DECIMAL(10, 2)``) as written."""
    start = s.peek()
    if start is None:
        s.fail("Expected a column type")
    depth = 0
    end = start
    while (tok := s.peek()) is not None:
        kind = tok.token_type
        if depth == 0 and (kind in (TokenType.COMMA, TokenType.R_PAREN) or s.word() in _AFTER_TYPE):
            break
        if kind in (TokenType.L_PAREN, TokenType.LT, TokenType.L_BRACKET):
            depth += 1
        elif kind in (TokenType.R_PAREN, TokenType.GT, TokenType.R_BRACKET):
            depth -= 1
        end = tok
        s.i += 1
    return s.text[start.start : end.end + 1]


def _position(s: TokenStream) -> Position | None:
    if s.accept("FIRST"):
        return Position(first=True)
    if s.accept("AFTER"):
        return Position(after=_path(s))
    return None


def _comment(s: TokenStream) -> str | None:
    if not s.accept("COMMENT"):
        return None
    value = s.literal()
    if not isinstance(value, str):
        s.i -= 1
        s.fail("Expected a quoted comment")
    return value


def _add(s: TokenStream) -> AddColumn:
    path = _path(s)
    type_sql = _type_text(s)
    required = False
    if s.accept("NOT", "NULL"):
        required = True
    else:
        s.accept("NULL")
    comment = _comment(s)
    position = _position(s)
    return AddColumn(path, type_sql, required, comment, position)


def _alter(s: TokenStream) -> AlterColumn:
    path = _path(s)
    if s.accept("DROP", "NOT", "NULL"):
        return AlterColumn(path, nullability="drop")
    if s.accept("SET", "NOT", "NULL"):
        return AlterColumn(path, nullability="set")
    type_sql = None
    if s.accept("TYPE") or s.accept("SET", "DATA", "TYPE"):
        type_sql = _type_text(s)
    comment = _comment(s)
    position = _position(s)
    if type_sql is None and comment is None and position is None:
        s.fail("Expected TYPE, COMMENT, FIRST, AFTER, DROP NOT NULL or SET NOT NULL")
    return AlterColumn(path, type_sql, comment, position)


def _listed(s: TokenStream, item: object) -> list[object]:
    """``item (, item)*``, or the same in parentheses (``ADD COLUMNS (…)``)."""
    parse = item  # a callable
    parenthesised = s.accept("(")
    items = [parse()]  # type: ignore[operator]
    while s.accept(","):
        items.append(parse())  # type: ignore[operator]
    if parenthesised:
        s.expect(")")
    return items


@extension(_matches)
def _parse(s: TokenStream) -> AlterColumns:
    s.expect("ALTER", "TABLE")
    table = s.dotted_name()
    verb = s.word()
    s.i += 1
    s.accept("COLUMNS") or s.accept("COLUMN")
    actions: list[Action]
    if verb == "ADD":
        actions = _listed(s, lambda: _add(s))  # type: ignore[assignment]
    elif verb == "DROP":
        if_exists = s.accept("IF", "EXISTS")
        actions = [DropColumn(p, if_exists) for p in _listed(s, lambda: _path(s))]  # type: ignore[arg-type]
    elif verb == "RENAME":
        path = _path(s)
        s.expect("TO")
        actions = [RenameColumn(path, s.identifier())]
    else:
        actions = [_alter(s)]
    s.expect_end()
    return AlterColumns(table, tuple(actions), s.dialect)


# --- running ----------------------------------------------------------------------------------------


def _type(type_sql: str, dialect: str, column: str) -> object:
    try:
        parsed = exp.DataType.build(type_sql, dialect=dialect)
    except (ParseError, ValueError) as exc:
        raise SchemaMismatch(f"'{type_sql}' is not a column type", hint="e.g. BIGINT, DECIMAL(10, 2), struct<x: double>") from exc
    return sql_type_to_iceberg(dialect_types(parsed, dialect), column=column)


def _field(schema: Schema, path: Path, label: str) -> NestedField:
    """The field at ``path`` (case-insensitive), with a clear error naming what exists."""
    name = ".".join(path)
    try:
        return schema.find_field(name, case_sensitive=False)
    except ValueError:
        parent = ".".join(path[:-1])
        hint = f"columns: {', '.join(f.name for f in schema.fields)}"
        where = f" (looked in {parent})" if parent else ""
        raise NotFound(f"Column '{name}' does not exist in {label}{where}", hint=hint) from None


def _real_path(schema: Schema, path: Path, label: str) -> Path:
    """``path`` spelled as the schema spells it (so PyIceberg finds it case-sensitively)."""
    field = _field(schema, path, label)
    full = schema.find_column_name(field.field_id)
    assert full is not None
    return tuple(full.split("."))


def _apply(update: UpdateSchema, schema: Schema, action: Action, dialect: str, label: str) -> None:
    if isinstance(action, AddColumn):
        parent = _real_path(schema, action.path[:-1], label) if len(action.path) > 1 else ()
        name = action.path[-1]
        container = schema.find_field(".".join(parent)).field_type if parent else schema.as_struct()
        if hasattr(container, "fields") and any(f.name.lower() == name.lower() for f in container.fields):
            raise AlreadyExists(f"Column '{'.'.join((*parent, name))}' already exists in {label}")
        if action.required:
            raise SchemaMismatch(
                f"Cannot add NOT NULL column '{'.'.join(action.path)}' to {label}: existing rows have no value",
                hint="add it as nullable",
            )
        field_type = _type(action.type_sql, dialect, ".".join(action.path))
        update.add_column((*parent, name), field_type, doc=action.comment)  # type: ignore[arg-type]
        if action.position is not None:
            _move(update, schema, (*parent, name), action.position, label)
    elif isinstance(action, DropColumn):
        try:
            path = _real_path(schema, action.path, label)
        except NotFound:
            if action.if_exists:
                return
            raise
        update.delete_column(path)
    elif isinstance(action, RenameColumn):
        update.rename_column(_real_path(schema, action.path, label), action.new_name)
    else:
        path = _real_path(schema, action.path, label)
        field = schema.find_field(".".join(path))
        if action.nullability == "set":
            raise InvalidArgument(
                f"Cannot make '{'.'.join(path)}' of {label} NOT NULL: Iceberg does not allow tightening a column",
                hint="create a new table with the column NOT NULL and copy the data",
            )
        if action.nullability == "drop":
            update.make_column_optional(path)
            return
        new_type = None
        if action.type_sql is not None:
            new_type = _type(action.type_sql, dialect, ".".join(path))
            check_promotion(".".join(path), field.field_type, new_type)  # type: ignore[arg-type]
        if new_type is not None or action.comment is not None:
            update.update_column(path, field_type=new_type, doc=action.comment)  # type: ignore[arg-type]
        if action.position is not None:
            _move(update, schema, path, action.position, label)


def _move(update: UpdateSchema, schema: Schema, path: Path, position: Position, label: str) -> None:
    if position.first:
        update.move_first(path)
        return
    assert position.after is not None
    after = position.after
    # ``AFTER x`` names a sibling: a bare name is looked up next to the moved column.
    if len(after) == 1 and len(path) > 1:
        after = (*path[:-1], after[0])
    try:
        after = _real_path(schema, after, label)
    except NotFound:
        pass  # a column added in the same statement: PyIceberg knows it by the name given
    update.move_after(path, after)


@handles(AlterColumns, kind="alter_table")
def alter_columns(ctx: Context, stmt: AlterColumns) -> Result:
    ns, name = split_name(stmt.table)
    label = f"{ns}.{name}"
    table: Table = resolve_reference(ctx, (ns, name), role="alter").table
    schema = table.schema()
    from wharf.sql.ddl import refuse_dropping_delete_keys

    dropped = [".".join(a.path) for a in stmt.actions if isinstance(a, DropColumn)]
    refuse_dropping_delete_keys(ctx, table, dropped, label)
    try:
        with private(table).update_schema(case_sensitive=False) as update:
            for action in stmt.actions:
                _apply(update, schema, action, stmt.dialect, label)
    except ValueError as exc:  # PyIceberg's checks on schema changes (a move that makes no sense …)
        raise InvalidArgument(f"Cannot change the columns of {label}: {exc}") from exc
    except NotImplementedError as exc:
        raise UnsupportedStatement(f"Cannot change the columns of {label}: {exc}") from exc
    ctx.forget_table(ns, name)
    message = f"Altered columns of {label}"
    return Result(pa.table({"status": [message]}), rowcount=0, message=message)
