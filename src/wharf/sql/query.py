"""Read statements: SELECT / set operations / VALUES over Wharf tables, streamed from DuckDB."""

from __future__ import annotations

from sqlglot import exp

from wharf.events import QueryEvent
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.references import rewrite_query

BATCH_ROWS = 122_880  # DuckDB's row-group size: batches line up with its vectors


@handles(exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values)
def run_query(ctx: Context, node: exp.Expression) -> Result:
    """Plan every table reference, run the rewritten query in DuckDB, stream Arrow batches."""
    rewritten = rewrite_query(ctx, node)
    cursor = run_duckdb(ctx.con, rewritten.sql)
    ctx.events.emit(
        "on_query",
        QueryEvent(
            user=ctx.session.user,
            statement=ctx.statement,
            tables=tuple(r.label for r in rewritten.references),
            files_scanned=sum(len(p.files) for p in rewritten.plans),
        ),
    )
    if rewritten.registered:
        # Metadata tables are registered Arrow views on this cursor: materialise, then drop them.
        table = cursor.to_arrow_table()
        for name in rewritten.registered:
            ctx.con.unregister(name)
        return Result(table)
    reader = cursor.to_arrow_reader(BATCH_ROWS)
    result = Result(reader)
    result._keepalive = ctx.con  # the stream reads from this cursor
    return result
