"""DELETE FROM t [WHERE …]: drop fully deleted files, then rewrite (copy-on-write) or mark (merge-on-read) the rest.

Only rows for which the condition is TRUE are deleted (a NULL comparison keeps the row), as in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyiceberg import expressions as ie
from pyiceberg.manifest import DataFile
from pyiceberg.table.snapshots import Snapshot
from sqlglot import exp

from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles
from wharf.sql.update import TargetScan, statement_result, temp_name
from wharf.tables.rewrite import DELETE, OP_COLUMN, Rewrite
from wharf.tables.scan import FILE_COLUMN, POS_COLUMN


@handles(exp.Delete, kind="delete")
def run_delete(ctx: Context, node: exp.Delete) -> Result:
    scan = TargetScan.of(ctx, node.this)
    where = node.args.get("where")
    condition = scan.normalize(where.this) if where is not None else None
    using = node.args.get("using")
    if isinstance(using, exp.Expression) and using.expressions:
        from wharf.errors import UnsupportedStatement

        raise UnsupportedStatement(
            "DELETE ... USING is not supported", hint="use DELETE FROM t WHERE key IN (SELECT ...) or MERGE ... THEN DELETE"
        )
    rewrite, snapshot = delete_where(scan, condition)
    return statement_result({"num_affected_rows": rewrite.deleted}, rewrite.deleted, snapshot)


def delete_where(
    scan: TargetScan, condition: exp.Expression | None, *, added: Sequence[DataFile] = ()
) -> tuple[Rewrite, Snapshot | None]:
    """Delete the target rows for which ``condition`` is TRUE (all rows if None), adding ``added`` files
    in the same snapshot (INSERT OVERWRITE). Returns what was rewritten and the snapshot (None: no change)."""
    if condition is None and scan.target.reference.policy is not None:
        condition = exp.true()  # a policy hides rows: delete only the visible ones, never whole files unread
    row_filter = scan.iceberg_filter(condition) if condition is not None else ie.AlwaysTrue()
    plan = scan.plan(row_filter)
    if not plan.files:
        return Rewrite(), scan.finish(Rewrite(), row_filter, added=added) if added else None
    if condition is None:
        # Every row goes: remove every file without reading any.
        exact = not plan.position_deletes and not plan.equality_deletes
        count = plan.record_count if exact else int(scan.run(f"SELECT count(*) FROM {plan.relation_sql()}").fetchone()[0])  # type: ignore[index]  # one row
        rewrite = Rewrite(removed=list(plan.files), deleted=count)
        return rewrite, scan.finish(rewrite, row_filter, added=added)
    query = (
        exp.select(
            exp.column(FILE_COLUMN, table=scan.alias, quoted=True),
            exp.column(POS_COLUMN, table=scan.alias, quoted=True),
            exp.alias_(exp.Literal.string(DELETE), OP_COLUMN),
        )
        .from_(scan.relation())
        .where(condition)
    )
    with scan.temp_tables() as temps:
        changes = temp_name("changes")
        temps.append(changes)
        scan.run(f"CREATE TEMP TABLE {changes} AS {scan.sql(query, plan)}")
        rewrite = scan.rewrite(plan, changes, with_values=False)
        snapshot = scan.finish(rewrite, row_filter, changes, with_values=False, added=added)
    return rewrite, snapshot
