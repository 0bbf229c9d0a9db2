"""The ``t.changes`` and ``t.scd2`` metadata tables: change history as relations DuckDB runs directly.

Unlike the other metadata tables (Arrow tables computed in Python), these are SQL over the
table's Parquet files (``wharf.tables.changelog``), planned like any read: the plan pass puts the
relation on the reference (``ref.extra["relation"]``) and the generate pass inlines it, so a
filter such as ``WHERE id = '00001'`` runs inside DuckDB with the rest of the query.

Options: ``t.changes`` is the full history of the table's main branch (or of the branch or
snapshot named by ``FOR VERSION AS OF``), with updates computed when the table has identifier
fields; ``t.scd2`` versions rows by the table's identifier fields. Views made by
``system.create_changelog_view`` / ``system.create_scd2_view`` carry other options in their
properties (``wharf.history.changes`` / ``wharf.history.scd2``); view expansion hands them to the
metadata table node of the view's query (``annotate``).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pyarrow as pa
from pyiceberg.table import Table
from sqlglot import exp

from wharf.sql.context import Context
from wharf.sql.metadata_tables import METADATA_TABLES
from wharf.sql.references import Reference
from wharf.tables.changelog import (
    CHANGE_COLUMNS,
    ChangelogOptions,
    Scd2Options,
    changelog_sql,
    identifier_columns,
    scd2_columns,
    scd2_sql,
)
from wharf.tables.scan import ScanPlanner

OPTIONS_META = "wharf.history"  # key in a metadata table node's meta: the options' JSON
VIEW_PROPERTIES = {"changes": "wharf.history.changes", "scd2": "wharf.history.scd2"}


def changes_options(table: Table, snapshot_id: int | None, given: str | None) -> ChangelogOptions:
    """The options of a ``changes`` reference: the view's, or the full history up to ``snapshot_id``."""
    if given is not None:
        return ChangelogOptions.from_json(given)
    return ChangelogOptions(end_snapshot_id=snapshot_id, compute_updates=bool(identifier_columns(table, ())))


def scd2_options(snapshot_id: int | None, given: str | None) -> Scd2Options:
    if given is not None:
        return Scd2Options.from_json(given)
    return Scd2Options(end_snapshot_id=snapshot_id)


def _snapshot_of(ref: Reference) -> int | None:
    return ref.snapshot_id if not ref.version.is_default else None


def _changes(ctx: Context, ref: Reference) -> tuple[str, list[str]]:
    options = changes_options(ref.table, _snapshot_of(ref), ref.node.meta.get(OPTIONS_META))
    columns = [f.name for f in ref.table.schema().fields] + list(CHANGE_COLUMNS)
    return changelog_sql(ref.table, ctx.planner, options), columns


def _scd2(ctx: Context, ref: Reference) -> tuple[str, list[str]]:
    options = scd2_options(_snapshot_of(ref), ref.node.meta.get(OPTIONS_META))
    sql, _keys = scd2_sql(ref.table, ctx.planner, options)
    return sql, scd2_columns(ref.table.schema(), options.delete_markers)


# Metadata tables that are SQL relations: name → (SQL, output column names).
HISTORY_TABLES: dict[str, Callable[[Context, Reference], tuple[str, list[str]]]] = {"changes": _changes, "scd2": _scd2}


def plan_history(ctx: Context, ref: Reference) -> None:
    """The plan pass for ``t.changes`` / ``t.scd2``: the relation's SQL and columns on the reference."""
    assert ref.metadata is not None
    sql, columns = HISTORY_TABLES[ref.metadata](ctx, ref)
    ref.extra["relation"] = sql
    ref.extra["columns"] = columns


def annotate(query: exp.Expr, properties: dict[str, str]) -> None:
    """Give the ``changes`` / ``scd2`` metadata table nodes of a history view's query the view's options."""
    for name, key in VIEW_PROPERTIES.items():
        options = properties.get(key)
        if options is None:
            continue
        for node in query.find_all(exp.Table):
            if node.name.lower() == name and len(node.parts) >= 3:
                node.meta[OPTIONS_META] = options


# Outside a query (``METADATA_TABLES`` callers that want Arrow), the same SQL runs on its own DuckDB.
def _as_arrow(name: str) -> Callable[[Table, int | None], pa.Table]:
    def run(table: Table, snapshot_id: int | None) -> pa.Table:
        planner = ScanPlanner()
        if name == "changes":
            sql = changelog_sql(table, planner, changes_options(table, snapshot_id, None))
        else:
            sql = scd2_sql(table, planner, scd2_options(snapshot_id, None))[0]
        with duckdb.connect() as con:
            return con.execute(sql).to_arrow_table()

    return run


METADATA_TABLES.update({name: _as_arrow(name) for name in HISTORY_TABLES})
