"""``CALL system.rewrite_data_files`` and ``system.rewrite_position_delete_files`` (compaction).

Iceberg's Spark parameter names, options and output columns; the work is in
``wharf.tables.compaction``, and docs/maintenance.md describes both and where they differ from
Spark. The table argument takes the reference pipeline (role ``maintain``); every commit goes
through the lake catalog as a ``replace`` snapshot.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import sqlglot
from pyiceberg import expressions as ie
from pyiceberg.table import Table
from sqlglot import exp

import wharf.sql.adoption_procedures  # noqa: F401  (registers the map<string,string> argument kind)
from wharf.errors import SchemaMismatch, SqlParseError
from wharf.sql.context import Context
from wharf.sql.executor import run_duckdb
from wharf.sql.procedures import TABLE, Param, procedure
from wharf.tables import predicates
from wharf.tables.compaction import Progress, RewriteDataFilesResult, rewrite_data_files, rewrite_position_delete_files
from wharf.tables.loader import split_name
from wharf.tables.refs import table_label


def where_filter(table: Table, where: str | None) -> ie.BooleanExpression | None:
    """An inclusive Iceberg filter from a ``where`` argument (SQL over the table's columns).

    Files are selected whole, so an inclusive filter (one that may keep too many files) is exact
    enough; a column the table does not have is an error.
    """
    if where is None or not where.strip():
        return None
    try:
        node = sqlglot.parse_one(where, read="spark")
    except sqlglot.errors.ParseError as exc:
        raise SqlParseError(
            f"Cannot parse where => {where!r}: {exc}", sql=where, hint="a predicate such as id > 10 AND region = 'EU'"
        ) from None
    schema = table.schema()
    names = {f.name.lower(): f.name for f in schema.fields}
    for col in node.find_all(exp.Column):
        if col.name.lower() not in names:
            raise SchemaMismatch(
                f"where => {where!r}: column '{col.name}' does not exist in table {table_label(table)}",
                hint=f"its columns are: {', '.join(names.values())}",
            )
    filters = [predicates.to_iceberg(c, schema, lambda col: names.get(col.name.lower())) for c in predicates.conjuncts(node)]
    return predicates.combine(filters)


_REWRITE_OUTPUT = [
    ("rewritten_data_files_count", pa.int64()),
    ("added_data_files_count", pa.int64()),
    ("rewritten_bytes_count", pa.int64()),
    ("failed_data_files_count", pa.int64()),
    ("removed_delete_files_count", pa.int64()),
]


@procedure(
    "rewrite_data_files",
    [
        TABLE,
        Param("strategy", "string", False),
        Param("sort_order", "string", False),
        Param("options", "map<string,string>", False),
        Param("where", "string", False),
    ],
    _REWRITE_OUTPUT,
)
def _rewrite_data_files(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Compact small files and files with many deletes into files of the target size (``replace`` snapshots)."""
    return compact(
        ctx, a["table"], strategy=a["strategy"], sort_order=a["sort_order"], options=a["options"], where=a["where"]
    ).as_row()


def compact(
    ctx: Context,
    table: Table,
    *,
    strategy: str | None = None,
    sort_order: str | None = None,
    options: dict[str, str] | None = None,
    where: str | None = None,
    progress: Progress | None = None,
) -> RewriteDataFilesResult:
    """``rewrite_data_files`` on the statement's DuckDB connection: the CALL procedure, the Python
    API (``Table.rewrite_data_files``) and the optimizer all compact through here. ``table`` comes
    from the reference pipeline (role ``maintain``); ``progress`` gets (bytes done, bytes to do)."""
    result = rewrite_data_files(
        table,
        lambda sql: run_duckdb(ctx.con, sql),
        strategy=strategy or "binpack",
        sort_order=sort_order,
        options=options,
        where=where_filter(table, where),
        progress=progress,
    )
    ctx.forget_table(*split_name(table.name()))
    return result


@procedure(
    "rewrite_position_delete_files",
    [TABLE, Param("options", "map<string,string>", False)],
    [
        ("rewritten_delete_files_count", pa.int64()),
        ("added_delete_files_count", pa.int64()),
        ("rewritten_bytes_count", pa.int64()),
        ("added_bytes_count", pa.int64()),
    ],
)
def _rewrite_position_delete_files(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Combine positional delete files per data file and drop the ones that no longer apply."""
    table: Table = a["table"]
    result = rewrite_position_delete_files(table, options=a["options"])
    ctx.forget_table(*split_name(table.name()))
    return result.as_row()
