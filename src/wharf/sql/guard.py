"""The guard pass: DuckDB's own ways to reach files and the network, only for principals allowed them.

DuckDB can read any file the process can read — ``read_parquet('<lake>/warehouse/**')`` would
return a table's raw rows past every policy — through table functions (``read_*``, ``glob``,
``parquet_metadata``, ``query`` …), and reach further with ``ATTACH``, ``COPY``, ``INSTALL``,
``LOAD``, ``PRAGMA``, ``EXPORT`` and engine ``SET``s. For a principal without external access
(anyone but the lake owner, unless granted) this pass allows only the table functions in
``ALLOWED_TABLE_FUNCTIONS`` — pure generators that touch no file — and refuses the rest with
``AccessDenied``. Statements of the other kinds never reach DuckDB from user SQL (Wharf does not
run them; engine ``SET`` is refused in ``wharf.sql.session``).

This is the first of two locks: the governed DuckDB database (``wharf.engine``) itself cannot
open a file outside the lake directory, whatever SQL reaches it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import duckdb
from sqlglot import exp

from wharf.errors import AccessDenied
from wharf.principal import Principal
from wharf.sql.references import DUCKDB_SCHEMAS
from wharf.sql.system_tables import system_table_name

# Table functions that only generate values: no file, no network, no other database.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})

_HINT = (
    "only the lake owner (or a principal granted external access) may use DuckDB's file, network and "
    "engine functions; read data through the lake's tables"
)


def function_name(node: exp.Expr) -> str:
    """The SQL name of a table function node (``read_parquet``, ``range``, …), lower case."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.GenerateSeries):
        return "range" if node.args.get("is_end_exclusive") else "generate_series"
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return type(node).__name__.lower()


@functools.cache
def duckdb_table_functions() -> frozenset[str]:
    """Names of DuckDB's table functions and table macros that are not also scalar functions."""
    with duckdb.connect(":memory:") as con:
        rows = con.execute(
            "SELECT function_name, bool_or(function_type IN ('table', 'table_macro')), "
            "bool_or(function_type IN ('scalar', 'aggregate', 'macro')) FROM duckdb_functions() GROUP BY 1"
        ).fetchall()
    return frozenset(name.lower() for name, tabular, scalar in rows if tabular and not scalar)


def check(
    expression: exp.Expression, principal: Principal, is_lake_table: Callable[[str, str], bool] = lambda ns, name: False
) -> None:
    """Refuse table functions and DuckDB-owned schemas for a principal without external access.

    ``is_lake_table(namespace, name)`` says whether a name in one of those schemas is a lake table
    (``system.maintenance_log``): that one resolves to the lake's table, and governance decides.
    """
    if principal.external_access:
        return
    tabular = duckdb_table_functions()
    # A table function wherever it appears (FROM, LATERAL, a subquery …).
    for call in expression.find_all(exp.Anonymous, exp.Func):
        name = function_name(call)
        if name in tabular and name not in ALLOWED_TABLE_FUNCTIONS:
            raise AccessDenied(f"{principal.name} may not use the DuckDB table function {name}()", hint=_HINT)
    for node in expression.find_all(exp.Table):
        source = node.this
        if not isinstance(source, (exp.Identifier, exp.Dot)):  # a Dot is a dotted name, not a function
            name = function_name(source) if isinstance(source, exp.Expression) else str(source)
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise AccessDenied(f"{principal.name} may not use the DuckDB table function {name}()", hint=_HINT)
        elif (
            node.args.get("db") is not None
            and node.db.lower() in DUCKDB_SCHEMAS
            and system_table_name(node) is None  # system.audit_log …: Wharf's, its reader decides
            and not (node.args.get("catalog") is None and is_lake_table(node.db, node.name))
        ):
            raise AccessDenied(f"{principal.name} may not read DuckDB's own schema {node.db}", hint=_HINT)
