"""``CALL system.<procedure>(…)``: Iceberg's Spark procedures, as a registry of signatures.

Arguments are named (``table => 'db.t'``) or positional, written as SQL expressions in the
session's dialect (``TIMESTAMP '2024-01-01'``, ``now() - INTERVAL 1 DAY``, ``array(1, 2)``).
Each procedure returns one row with Spark's column names. Adding a procedure is one entry in
``PROCEDURES``: its parameters, its output columns and a function over the coerced arguments.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlglot
from pyiceberg.table import Table
from sqlglot import TokenType, exp
from sqlglot.errors import ParseError

from wharf.errors import InvalidArgument, NotFound, UnsupportedStatement
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.parser import TokenStream, extension
from wharf.sql.pipeline import compile_query, resolve_reference
from wharf.tables import snapshots
from wharf.tables.loader import split_name
from wharf.tables.refs import parse_timestamp_ms

# --- the statement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """``CALL [catalog.]system.name(args)``; argument values are unevaluated SQL expressions."""

    procedure: str
    positional: tuple[exp.Expr, ...] = ()
    named: tuple[tuple[str, exp.Expr], ...] = ()


_OPEN = (TokenType.L_PAREN, TokenType.L_BRACKET)
_CLOSE = (TokenType.R_PAREN, TokenType.R_BRACKET)


def _argument(s: TokenStream) -> exp.Expr:
    """One argument expression: the tokens up to the next top-level ``,`` or ``)``."""
    start = s.peek()
    if start is None:
        s.fail("Expected an argument")
    depth = 0
    end = start
    while (tok := s.peek()) is not None:
        if depth == 0 and tok.token_type in (TokenType.COMMA, TokenType.R_PAREN):
            break
        depth += tok.token_type in _OPEN
        depth -= tok.token_type in _CLOSE
        end = tok
        s.i += 1
    text = s.text[start.start : end.end + 1]
    # Iceberg's procedures are Spark's: map('k1', 'v1', 'k2', 'v2') means Spark's map in any dialect
    # (DuckDB's map() takes a key list and a value list).
    dialect = "spark" if re.match(r"(?i)map\s*\(", text) else s.dialect
    try:
        return sqlglot.parse_one(text, read=dialect)
    except ParseError as exc:
        s.fail(f"Cannot read argument '{text}': {str(exc).splitlines()[0]}")


@extension(lambda s: s.word() == "CALL")
def _parse_call(s: TokenStream) -> Call:
    t = s.command_tail()
    parts = t.dotted_name().split(".")
    if len(parts) > 1 and parts[-2].lower() != "system":
        t.i = 0
        t.fail(f"Unknown procedure namespace '{'.'.join(parts[:-1])}'", hint="procedures are called as system.<name>")
    positional: list[exp.Expr] = []
    named: list[tuple[str, exp.Expr]] = []
    t.expect("(")
    if not t.accept(")"):
        while True:
            following = t.peek(1)
            if following is not None and following.token_type == TokenType.FARROW:
                key = t.identifier().lower()
                t.i += 1
                named.append((key, _argument(t)))
            else:
                if named:
                    t.fail("Positional arguments cannot follow named arguments")
                positional.append(_argument(t))
            if t.accept(")"):
                break
            t.expect(",")
    t.expect_end()
    return Call(parts[-1].lower(), tuple(positional), tuple(named))


# --- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # a key of COERCE
    required: bool = True

    def __str__(self) -> str:
        return f"{self.name} {self.kind}" if self.required else f"[{self.name} {self.kind}]"


# A procedure returns one row (a dict of output columns) or several (a list of them), or a whole
# Arrow table when its columns depend on its arguments (evaluate_data_quality with row_level).
ProcedureFn = Callable[[Context, dict[str, Any]], dict[str, Any] | list[dict[str, Any]] | pa.Table]


@dataclass(frozen=True)
class Procedure:
    params: tuple[Param, ...]
    output: tuple[tuple[str, pa.DataType], ...]
    run: ProcedureFn
    doc: str = ""

    def signature(self, name: str) -> str:
        return f"system.{name}({', '.join(str(p) for p in self.params)})"


PROCEDURES: dict[str, Procedure] = {}


def procedure(name: str, params: list[Param], output: list[tuple[str, pa.DataType]]) -> Callable[[ProcedureFn], ProcedureFn]:
    """Decorator: register ``fn(ctx, args) -> {output column: value}`` as ``system.<name>``."""

    def register(fn: ProcedureFn) -> ProcedureFn:
        PROCEDURES[name] = Procedure(tuple(params), tuple(output), fn, (fn.__doc__ or "").strip())
        return fn

    return register


def _evaluate(ctx: Context, node: exp.Expr) -> Any:
    """The Python value of an argument expression (literals directly, anything else through DuckDB)."""
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return int(text) if text.lstrip("-").isdigit() else float(text)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return -_evaluate(ctx, node.this)
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Column):
        return ".".join(p.name for p in node.parts)  # a bare (dotted) name: table => db.t, branch => dev
    if isinstance(node, exp.Identifier):
        return node.name
    if isinstance(node, exp.VarMap):  # Spark's map('k', 'v', …) of literals
        keys, values = node.args["keys"].expressions, node.args["values"].expressions
        if all(isinstance(e, exp.Literal) for e in (*keys, *values)):
            return {k.this: v.this for k, v in zip(keys, values, strict=True)}
    # Anything else is SQL: it takes the reference pipeline like any query (tables, guard, policies).
    compiled = compile_query(ctx, exp.select(node.copy()))
    column = run_duckdb(ctx.con, compiled.sql).to_arrow_table().column(0)
    if pa.types.is_timestamp(column.type):
        # Epoch milliseconds (naive timestamps are UTC), without Python time-zone objects.
        column = column.cast(pa.timestamp("ms", tz=column.type.tz), safe=False).cast(pa.int64())
    return column[0].as_py()


def _as_table(ctx: Context, value: Any, param: str) -> Table:
    if not isinstance(value, str):
        raise InvalidArgument(f"Argument '{param}' must be a table name such as 'db.t', got {value!r}")
    parts = value.split(".")
    if len(parts) == 3:  # catalog.db.t (Spark): the catalog is this lake
        parts = parts[1:]
    return resolve_reference(ctx, split_name(".".join(parts)), role="maintain").table


def _as_long(ctx: Context, value: Any, param: str) -> int:
    text = value if isinstance(value, str) else ""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (text and not text.lstrip("-").isdigit()):
        raise InvalidArgument(f"Argument '{param}' must be a whole number (a snapshot id), got {value!r}")
    return int(value)


def _as_positive(ctx: Context, value: Any, param: str) -> int:
    number = _as_long(ctx, value, param)
    if number < 1:
        raise InvalidArgument(f"Argument '{param}' must be at least 1, got {number}")
    return number


def _as_string(ctx: Context, value: Any, param: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"Argument '{param}' must be a non-empty string, got {value!r}")
    return value


def _as_timestamp_ms(ctx: Context, value: Any, param: str) -> int:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, bool) or not isinstance(value, (str, int, float, dt.datetime)):
        raise InvalidArgument(f"Argument '{param}' must be a timestamp, got {value!r}")
    try:
        return parse_timestamp_ms(value)
    except InvalidArgument as exc:
        raise InvalidArgument(f"Argument '{param}': {exc.message}", hint=exc.hint) from exc


def _as_boolean(ctx: Context, value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidArgument(f"Argument '{param}' must be true or false, got {value!r}")


def _as_long_list(ctx: Context, value: Any, param: str) -> list[int]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [_as_long(ctx, v, param) for v in values]


COERCE: dict[str, Callable[[Context, Any, str], Any]] = {
    "table": _as_table,
    "long": _as_long,
    "positive_int": _as_positive,
    "string": _as_string,
    "timestamp": _as_timestamp_ms,
    "array<long>": _as_long_list,
    "boolean": _as_boolean,
}


# Iceberg's Spark procedures Wharf does not run yet, with why and what to do meanwhile.
NOT_YET = {
    "rewrite_table_path": "copying a table to a new location is not supported; CREATE TABLE … AS SELECT copies its current rows",
    "compute_partition_stats": "partition statistics files are not written; "
    "the partitions metadata table computes the same figures on demand",
}


def bind(ctx: Context, call: Call) -> tuple[Procedure, dict[str, Any]]:
    """Match a call's arguments to the procedure's parameters and coerce them."""
    proc = PROCEDURES.get(call.procedure)
    if proc is None and call.procedure in NOT_YET:
        raise UnsupportedStatement(f"system.{call.procedure} is not supported yet: {NOT_YET[call.procedure]}")
    if proc is None:
        raise NotFound(
            f"Unknown procedure system.{call.procedure}",
            hint="procedures: " + ", ".join(sorted(PROCEDURES)),
        )
    signature = proc.signature(call.procedure)
    if len(call.positional) > len(proc.params):
        raise InvalidArgument(
            f"system.{call.procedure} takes at most {len(proc.params)} arguments, got {len(call.positional)}",
            hint=f"signature: {signature}",
        )
    given: dict[str, exp.Expr] = {p.name: v for p, v in zip(proc.params, call.positional, strict=False)}
    names = {p.name for p in proc.params}
    for key, node in call.named:
        if key not in names:
            raise InvalidArgument(f"system.{call.procedure} has no parameter '{key}'", hint=f"signature: {signature}")
        if key in given:
            raise InvalidArgument(f"Parameter '{key}' of system.{call.procedure} is given twice", hint=f"signature: {signature}")
        given[key] = node
    args: dict[str, Any] = {}
    for p in proc.params:
        value = _evaluate(ctx, given[p.name]) if p.name in given else None
        if value is None:
            if p.required:
                raise InvalidArgument(
                    f"system.{call.procedure} needs parameter '{p.name}' ({p.kind})", hint=f"signature: {signature}"
                )
            args[p.name] = None
            continue
        try:
            args[p.name] = COERCE[p.kind](ctx, value, p.name)
        except InvalidArgument as exc:
            raise InvalidArgument(exc.message, hint=exc.hint or f"signature: {signature}") from exc
    return proc, args


@handles(Call, kind="call")
def run_call(ctx: Context, call: Call) -> Result:
    proc, args = bind(ctx, call)
    returned = proc.run(ctx, args)
    if isinstance(returned, pa.Table):
        return Result(returned, rowcount=0, message=f"system.{call.procedure} done")
    rows = returned if isinstance(returned, list) else [returned]
    table = pa.table({name: pa.array([row[name] for row in rows], type=kind) for name, kind in proc.output})
    return Result(table, rowcount=0, message=f"system.{call.procedure} done")


_MOVE = [("previous_snapshot_id", pa.int64()), ("current_snapshot_id", pa.int64())]
_PICK = [("source_snapshot_id", pa.int64()), ("current_snapshot_id", pa.int64())]
TABLE = Param("table", "table")


# --- the procedures -------------------------------------------------------------------------------


@procedure("rollback_to_snapshot", [TABLE, Param("snapshot_id", "long")], _MOVE)
def _rollback_to_snapshot(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Move main back to an ancestor snapshot."""
    previous, current = snapshots.rollback_to_snapshot(a["table"], a["snapshot_id"])
    return {"previous_snapshot_id": previous, "current_snapshot_id": current}


@procedure("rollback_to_timestamp", [TABLE, Param("timestamp", "timestamp")], _MOVE)
def _rollback_to_timestamp(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Move main back to the ancestor that was current just before ``timestamp``."""
    previous, current = snapshots.rollback_to_timestamp(a["table"], a["timestamp"])
    return {"previous_snapshot_id": previous, "current_snapshot_id": current}


@procedure("set_current_snapshot", [TABLE, Param("snapshot_id", "long", False), Param("ref", "string", False)], _MOVE)
def _set_current_snapshot(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Point main at any snapshot, or at a branch's/tag's head."""
    previous, current = snapshots.set_current_snapshot(a["table"], a["snapshot_id"], a["ref"])
    return {"previous_snapshot_id": previous, "current_snapshot_id": current}


@procedure(
    "fast_forward",
    [TABLE, Param("branch", "string"), Param("to", "string")],
    [("branch_updated", pa.string()), ("previous_ref", pa.int64()), ("updated_ref", pa.int64())],
)
def _fast_forward(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Move ``branch`` to the head of ``to`` (``branch`` must be its ancestor)."""
    previous, current = snapshots.fast_forward(a["table"], a["branch"], a["to"])
    return {"branch_updated": a["branch"], "previous_ref": previous, "updated_ref": current}


@procedure("cherrypick_snapshot", [TABLE, Param("snapshot_id", "long")], _PICK)
def _cherrypick_snapshot(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Apply one snapshot's changes to main."""
    source, current, _new = snapshots.cherrypick(a["table"], a["snapshot_id"])
    return {"source_snapshot_id": source, "current_snapshot_id": current}


@procedure("publish_changes", [TABLE, Param("wap_id", "string")], _PICK)
def _publish_changes(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Cherry-pick the snapshots staged with ``SET wharf.wap_id`` onto main."""
    source, current, _new = snapshots.publish(a["table"], a["wap_id"])
    return {"source_snapshot_id": source, "current_snapshot_id": current}


from wharf.tables import expire, orphans  # noqa: E402 - kept with the procedures that use them


@procedure(
    "expire_snapshots",
    [
        TABLE,
        Param("older_than", "timestamp", False),
        Param("retain_last", "positive_int", False),
        Param("max_concurrent_deletes", "positive_int", False),
        Param("stream_results", "boolean", False),
        Param("snapshot_ids", "array<long>", False),
        Param("clean_expired_metadata", "boolean", False),
    ],
    [*((c, pa.int64()) for c in expire.COUNT_COLUMNS), ("expired_snapshots_count", pa.int64())],
)
def _expire_snapshots(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Remove old snapshots, then delete the files only they reached (Spark's parameters and columns).

    ``max_concurrent_deletes`` and ``stream_results`` are accepted and have no effect: files are
    deleted one after another and never collected on a driver. ``clean_expired_metadata`` also
    removes the partition specs and schemas no remaining snapshot uses.
    """
    result = expire.expire_snapshots(
        a["table"],
        older_than_ms=a["older_than"],
        retain_last=a["retain_last"],
        snapshot_ids=a["snapshot_ids"],
        clean_expired_metadata=bool(a["clean_expired_metadata"]),
    )
    return {**result.counts(), "expired_snapshots_count": len(result.expired_snapshot_ids)}


@procedure(
    "remove_orphan_files",
    [TABLE, Param("older_than", "timestamp", False), Param("location", "string", False), Param("dry_run", "boolean", False)],
    [("orphan_file_location", pa.string())],
)
def _remove_orphan_files(ctx: Context, a: dict[str, Any]) -> list[dict[str, Any]]:
    """Delete files under the table's location that no metadata references, older than ``older_than`` (default 3 days)."""
    import time

    older_than = a["older_than"] if a["older_than"] is not None else int(time.time() * 1000) - orphans.DEFAULT_RETENTION_MS
    removed = orphans.remove_orphan_files(
        a["table"], older_than_ms=older_than, location=a["location"], dry_run=bool(a["dry_run"])
    )
    return [{"orphan_file_location": path} for path in removed]
