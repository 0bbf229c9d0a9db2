"""Virtual ``system.*`` tables: rows computed for the principal asking, from the metadata database.

``system.access_requests`` and ``system.grants`` are not Iceberg tables (unlike
``system.maintenance_log``): their rows live in the governance tables and depend on who asks (a
user sees their own requests and grants, and those they decide or manage). The first pass of the
reference pipeline replaces each such name with an Arrow table registered on the statement's
cursor for that statement only (the query handler drops it afterwards); a lake table of the same
name wins. Statements naming one are never taken from the statement or result caches.

Register another with ``@system_table("name")``: a function ``Lakehouse -> pyarrow.Table``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.sql.pipeline import Compilation

SYSTEM_META = "wharf.system"  # meta of a table node replaced by a virtual system table
SystemTable = Callable[["Lakehouse"], pa.Table]
SYSTEM_TABLES: dict[str, SystemTable] = {}
_names = itertools.count()


def system_table(name: str) -> Callable[[SystemTable], SystemTable]:
    """Decorator: register ``fn`` as ``system.<name>``."""

    def register(fn: SystemTable) -> SystemTable:
        SYSTEM_TABLES[name] = fn
        return fn

    return register


def _named(node: exp.Table) -> str | None:
    """The virtual table ``node`` names (``system.x`` or ``<catalog>.system.x``), or None."""
    if not isinstance(node.this, exp.Identifier) or node.args.get("db") is None:
        return None
    if node.db.lower() != "system" or node.name.lower() not in SYSTEM_TABLES:
        return None
    return node.name.lower()


def mentions(expression: exp.Expr) -> bool:
    """Whether ``expression`` names a virtual system table (such statements are not cached)."""
    return any(_named(node) is not None for node in expression.find_all(exp.Table))


def system_pass(expression: exp.Expression, c: Compilation) -> exp.Expression:
    """Replace each virtual system table with its rows, registered on the statement's cursor."""
    lake = c.ctx.lake
    if lake is None:
        return expression
    for node in list(expression.find_all(exp.Table)):
        name = _named(node)
        if name is None or c.ctx.find_table("system", name) is not None:
            continue
        registered = f"__wharf_system_{name}_{next(_names)}"
        c.ctx.con.register(registered, SYSTEM_TABLES[name](lake))
        c.registered.append(registered)
        replacement = exp.Table(this=exp.to_identifier(registered, quoted=True))
        replacement.set("alias", node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name)))
        replacement.meta[SYSTEM_META] = name
        c.ctx.cacheable = False
        node.replace(replacement)
    return expression


@system_table("access_requests")
def _access_requests(lake: Lakehouse) -> pa.Table:
    return lake.governance.access.requests_table()


@system_table("grants")
def _grants(lake: Lakehouse) -> pa.Table:
    return lake.governance.access.grants_table()
