"""Branch and tag DDL (Spark + Iceberg syntax), parsed by a Wharf grammar in every dialect.

::

    ALTER TABLE t CREATE [OR REPLACE] BRANCH [IF NOT EXISTS] b [AS OF VERSION id]
        [RETAIN n DAYS|HOURS|MINUTES] [WITH SNAPSHOT RETENTION [n SNAPSHOTS] [n DAYS|HOURS|MINUTES]]
    ALTER TABLE t CREATE [OR REPLACE] TAG [IF NOT EXISTS] x [AS OF VERSION id] [RETAIN n DAYS]
    ALTER TABLE t REPLACE BRANCH|TAG b [AS OF VERSION id] [RETAIN …]
    ALTER TABLE t DROP BRANCH|TAG [IF EXISTS] b
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.table.refs import SnapshotRefType

from wharf.errors import InvalidArgument
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles
from wharf.sql.parser import TokenStream, extension
from wharf.sql.pipeline import resolve_reference
from wharf.tables import snapshots
from wharf.tables.loader import split_name
from wharf.tables.refs import version_from_literal

_KINDS = {"BRANCH": SnapshotRefType.BRANCH, "TAG": SnapshotRefType.TAG}

# Time units of RETAIN / SNAPSHOT RETENTION, in milliseconds (singular forms accepted too).
_UNITS_MS = {"DAYS": 86_400_000, "HOURS": 3_600_000, "MINUTES": 60_000}
_UNITS_MS.update({unit[:-1]: ms for unit, ms in list(_UNITS_MS.items())})


@dataclass(frozen=True)
class CreateRef:
    """``ALTER TABLE t CREATE [OR REPLACE] | REPLACE BRANCH|TAG …``."""

    table: str
    kind: str  # "BRANCH" | "TAG"
    name: str
    version: int | str | None = None  # AS OF VERSION: snapshot id, or a branch/tag name
    replace: bool = False
    must_exist: bool = False
    if_not_exists: bool = False
    retain_ms: int | None = None
    min_snapshots_to_keep: int | None = None
    max_snapshot_age_ms: int | None = None


@dataclass(frozen=True)
class DropRef:
    """``ALTER TABLE t DROP BRANCH|TAG [IF EXISTS] name``."""

    table: str
    kind: str
    name: str
    if_exists: bool = False


def _matches(s: TokenStream) -> bool:
    if not s.accept("ALTER", "TABLE"):
        return False
    while not s.done() and s.word() not in ("CREATE", "REPLACE", "DROP"):
        s.i += 1
    if s.accept("CREATE"):
        s.accept("OR", "REPLACE")
        return s.word() in _KINDS
    if s.accept("REPLACE"):
        return s.word() in _KINDS
    if s.accept("DROP"):
        # ``DROP BRANCH b`` / ``DROP TAG IF EXISTS b``, not ``DROP branch`` (a column named branch)
        return s.word() in _KINDS and s.peek(1) is not None
    return False


def _duration(s: TokenStream, what: str) -> int:
    amount = s.number()
    unit = s.word()
    if unit not in _UNITS_MS:
        s.fail(f"Expected DAYS, HOURS or MINUTES after {what} {amount}")
    s.i += 1
    return amount * _UNITS_MS[unit]


@extension(_matches)
def _parse_ref_ddl(s: TokenStream) -> CreateRef | DropRef:
    s.expect("ALTER", "TABLE")
    table = s.dotted_name()
    if s.accept("DROP"):
        kind = s.word()
        s.i += 1
        if_exists = s.accept("IF", "EXISTS")
        name = s.identifier()
        s.expect_end()
        return DropRef(table, kind, name, if_exists)
    replace = must_exist = False
    if s.accept("CREATE"):
        replace = s.accept("OR", "REPLACE")
    else:
        s.expect("REPLACE")
        must_exist = True
    kind = s.word()
    s.i += 1
    if_not_exists = s.accept("IF", "NOT", "EXISTS")
    if if_not_exists and replace:
        s.fail("CREATE OR REPLACE and IF NOT EXISTS cannot be used together")
    name = s.identifier()
    version: int | str | None = None
    retain = keep = age = None
    if s.accept("AS", "OF", "VERSION") or s.accept("FOR", "VERSION", "AS", "OF"):
        value = s.literal()
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            s.i -= 1
            s.fail("Expected a snapshot id or a branch/tag name after AS OF VERSION")
        version = value
    if s.accept("RETAIN"):
        retain = _duration(s, "RETAIN")
    if s.accept("WITH", "SNAPSHOT", "RETENTION"):
        if kind == "TAG":
            s.i -= 1
            s.fail("Tags have no snapshot retention", hint="use RETAIN n DAYS for how long the tag is kept")
        while not s.done():
            amount = s.number()
            if s.accept("SNAPSHOTS") or s.accept("SNAPSHOT"):
                keep = amount
            else:
                s.i -= 1
                age = _duration(s, "WITH SNAPSHOT RETENTION")
        if keep is None and age is None:
            s.fail("Expected n SNAPSHOTS and/or n DAYS after WITH SNAPSHOT RETENTION")
    s.expect_end()
    return CreateRef(table, kind, name, version, replace, must_exist, if_not_exists, retain, keep, age)


def _status(message: str, **columns: object) -> Result:
    data = {"status": [message], **{k: [v] for k, v in columns.items()}}
    return Result(pa.table(data), rowcount=0, message=message)


@handles(CreateRef, kind="create_ref")
def create_ref(ctx: Context, stmt: CreateRef) -> Result:
    ns, name = split_name(stmt.table)
    table = resolve_reference(ctx, (ns, name), role="alter").table
    snapshot_id: int | None = None
    if stmt.version is not None:
        version = version_from_literal(table, stmt.version)
        # version_from_literal sets exactly one of them: a snapshot id, or the name of an existing ref.
        snapshot_id = version.snapshot_id if version.ref is None else table.metadata.refs[version.ref].snapshot_id
    kind = _KINDS[stmt.kind]
    existed = stmt.name in table.metadata.refs
    pointed = snapshots.create_ref(
        table,
        kind,
        stmt.name,
        snapshot_id,
        replace=stmt.replace,
        must_exist=stmt.must_exist,
        if_not_exists=stmt.if_not_exists,
        retention=snapshots.Retention(stmt.retain_ms, stmt.max_snapshot_age_ms, stmt.min_snapshots_to_keep),
    )
    ctx.forget_table(ns, name)
    what = stmt.kind.lower()
    if pointed is None:
        return _status(f"{what.capitalize()} {stmt.name} already exists on {ns}.{name}", snapshot_id=None)
    verb = "Replaced" if existed else "Created"
    return _status(f"{verb} {what} {stmt.name} of {ns}.{name} at snapshot {pointed}", snapshot_id=pointed)


@handles(DropRef, kind="drop_ref")
def drop_ref(ctx: Context, stmt: DropRef) -> Result:
    ns, name = split_name(stmt.table)
    table = resolve_reference(ctx, (ns, name), role="alter").table
    if not stmt.name:
        raise InvalidArgument("A branch or tag name is required")
    dropped = snapshots.drop_ref(table, _KINDS[stmt.kind], stmt.name, if_exists=stmt.if_exists)
    ctx.forget_table(ns, name)
    what = stmt.kind.lower()
    if not dropped:
        return _status(f"{what.capitalize()} {stmt.name} does not exist on {ns}.{name}")
    return _status(f"Dropped {what} {stmt.name} of {ns}.{name}")
