"""Dispatch a parsed statement to the module that runs its kind (a registry, not an if/elif chain)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb

from wharf.errors import UnsupportedStatement
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.translate import duckdb_error

Handler = Callable[[Context, Any], Result]
HANDLERS: dict[type, Handler] = {}
KINDS: dict[type, str] = {}


def handles(*types: type, kind: str) -> Callable[[Handler], Handler]:
    """Decorator: ``fn`` runs statements whose node is an instance of one of ``types``.

    ``kind`` names the statement kind in statement events (``select``, ``insert``, ``call`` …);
    a handler that runs several kinds (``CREATE TABLE`` / ``CREATE SCHEMA``) refines it on
    ``ctx.statement.kind``.
    """

    def register(fn: Handler) -> Handler:
        for klass in types:
            HANDLERS[klass] = fn
            KINDS[klass] = kind
        return fn

    return register


def statement_kind(node: Any) -> str:
    """The kind of a parsed statement, before it runs (``statement`` when Wharf does not run it)."""
    for klass in type(node).__mro__:
        if klass in KINDS:
            return KINDS[klass]
    return "statement"


def execute(ctx: Context, node: Any) -> Result:
    """Run one parsed statement."""
    for klass in type(node).__mro__:
        handler = HANDLERS.get(klass)
        if handler is not None:
            return handler(ctx, node)
    raise UnsupportedStatement(
        f"Wharf does not run {type(node).__name__.upper()} statements",
        hint="supported: SELECT, INSERT, INSERT OVERWRITE, UPDATE, DELETE, MERGE, TRUNCATE, "
        "CREATE/DROP/ALTER/REPLACE TABLE, CREATE/DROP/ALTER VIEW, CREATE/DROP SCHEMA, SHOW, DESCRIBE, "
        "SET/RESET, CALL system.* — see docs/sql.md",
    )


def run_duckdb(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
    """Execute on DuckDB, turning its errors into Wharf errors."""
    try:
        return con.execute(sql, params) if params else con.execute(sql)
    except duckdb.Error as exc:
        raise duckdb_error(exc) from exc
