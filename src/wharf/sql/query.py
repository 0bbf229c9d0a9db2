"""Read statements: SELECT / set operations / VALUES over Wharf tables, streamed from DuckDB."""

from __future__ import annotations

from sqlglot import exp

from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.pipeline import compile_query

BATCH_ROWS = 122_880  # DuckDB's row-group size: batches line up with its vectors


@handles(exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values, kind="select")
def run_query(ctx: Context, node: exp.Expression) -> Result:
    """Compile every table reference through the pipeline, run the query in DuckDB, stream Arrow batches."""
    compiled = compile_query(ctx, node, copy=False)  # the parser gave this statement its own tree
    ctx.lineage = compiled.lineage()
    cursor = run_duckdb(ctx.con, compiled.sql)
    if compiled.registered:
        # Metadata tables are registered Arrow views on this cursor: materialise, then drop them.
        table = cursor.to_arrow_table()
        for name in compiled.registered:
            ctx.con.unregister(name)
        return Result(table)
    reader = cursor.to_arrow_reader(BATCH_ROWS)
    result = Result(reader)
    result._keepalive = ctx.con  # the stream reads from this cursor
    return result
