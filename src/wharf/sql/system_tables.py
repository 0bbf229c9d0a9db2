"""System tables that are not Iceberg tables: ``system.audit_log`` and any other a feature registers.

Some of what a lake knows lives in its metadata database, written many times a second in small
rows (the audit log, access requests, grants with their expiry), where one Iceberg commit per row
would be absurd, and whose rows depend on who asks. Such a table is registered here under a
name in the ``system`` namespace with a *reader*: a function ``(ctx) -> pyarrow.Table`` that
decides itself who may read it (it raises ``AccessDenied``) and returns its rows for the
statement's principal.

The resolve pass (``wharf.sql.pipeline``) calls ``replace_system_tables`` first: every
``system.<name>`` node naming a registered table is replaced by a DuckDB relation over the rows
the reader returned (registered on the statement's own cursor), so the table works in every query
shape (joins, CTEs, subqueries, aggregates) like any other. The rows are read per statement: such a
statement is never kept in the statement cache, and what it read is recorded as a table read.

>>> sorted(SYSTEM_TABLES)  # doctest: +SKIP
['access_requests', 'audit_log', 'grants']
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from wharf.errors import UnsupportedStatement
from wharf.statement import TableRead

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.sql.context import Context

SYSTEM_NAMESPACE = "system"

SystemTableReader = Callable[["Context"], pa.Table]

SYSTEM_TABLES: dict[str, SystemTableReader] = {}
_lock = threading.Lock()


def register_system_table(name: str, reader: SystemTableReader) -> None:
    """Make ``system.<name>`` queryable: ``reader(ctx)`` returns its rows for ``ctx.principal`` (or refuses).

    A name registered here wins over an Iceberg table of the same name in namespace ``system``.
    """
    with _lock:
        SYSTEM_TABLES[name.lower()] = reader


def system_table_name(node: exp.Table) -> str | None:
    """The registered system table ``node`` names (``system.audit_log``, any case), or None."""
    if not isinstance(node.this, exp.Identifier) or node.args.get("catalog") is not None:
        return None
    namespace = node.args.get("db")
    if namespace is None or namespace.name.lower() != SYSTEM_NAMESPACE:
        return None
    name = node.name.lower()
    return name if name in SYSTEM_TABLES else None


def replace_system_tables(ctx: Context, expression: exp.Expression) -> list[str]:
    """Replace each registered system table in ``expression`` by its rows; returns the names registered on the cursor."""
    from wharf.sql.generate import metadata_name

    registered: list[str] = []
    for node in list(expression.find_all(exp.Table)):
        name = system_table_name(node)
        if name is None:
            continue
        data = SYSTEM_TABLES[name](ctx)  # the reader decides who may read it
        relation = metadata_name()
        ctx.con.register(relation, data)
        ctx.registered[relation] = data  # qualification sees its columns
        registered.append(relation)
        ctx.cacheable = False  # its rows are read per statement
        ctx.statement.record_read(TableRead(f"{SYSTEM_NAMESPACE}.{name}", None))  # every column (not qualified)
        alias = node.args.get("alias")
        replacement = exp.Table(this=exp.to_identifier(relation, quoted=True))
        replacement.set("alias", alias.copy() if alias is not None else exp.TableAlias(this=exp.to_identifier(node.name)))
        node.replace(replacement)
    return registered


def mentions(expression: exp.Expression) -> bool:
    """Whether ``expression`` names a registered system table (its rows are read per statement)."""
    return bool(SYSTEM_TABLES) and any(system_table_name(node) is not None for node in expression.find_all(exp.Table))


def _lake(ctx: Context, name: str) -> Lakehouse:
    if ctx.lake is None:
        raise UnsupportedStatement(f"system.{name} is read through a lake handle (wharf.connect)")
    return ctx.lake


# Access requests and grants (wharf.governance.lake_access): each principal sees its own, those it
# decides or manages; the owner sees all.
register_system_table("access_requests", lambda ctx: _lake(ctx, "access_requests").governance.access.requests_table())
register_system_table("grants", lambda ctx: _lake(ctx, "grants").governance.access.grants_table())


__all__ = [
    "SYSTEM_TABLES",
    "SystemTableReader",
    "mentions",
    "register_system_table",
    "replace_system_tables",
    "system_table_name",
]
