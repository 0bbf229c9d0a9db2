"""Read statements: SELECT / set operations / VALUES over Wharf tables, streamed from DuckDB."""

from __future__ import annotations

from sqlglot import exp

from wharf.result import Result
from wharf.sql import statement_cache
from wharf.sql.context import Context
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.pipeline import compile_query
from wharf.sql.statement_cache import Params

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


def run_cached_query(ctx: Context, text: str, position: int, shared: exp.Expression, params: Params) -> Result:
    """Run a query from the statement cache: compiled once per text (and principal, session …), reused
    while the tables and views it resolved are unchanged; ``shared`` is the parser's tree (never changed)."""
    key = statement_cache.cache_key(ctx, text, position, params)
    compiled = statement_cache.lookup(ctx, key) if key is not None else None
    if compiled is None:
        token = ctx.catalog.freshness.current()  # before resolution: a commit during it invalidates the entry
        made = statement_cache.compile_statement(ctx, shared, params)
        if made is None:
            node = shared.copy() if params is None else statement_cache.bind(shared, params)
            return run_query(ctx, node)
        compiled, cacheable = made
        compiled.token = token
        if key is not None and cacheable:
            statement_cache.store(key, compiled)
    sql, reads = statement_cache.render(ctx, compiled, params)
    for read in reads:
        ctx.statement.record_read(read)
    ctx.lineage = statement_cache.lineage(compiled)
    cursor = run_duckdb(ctx.con, sql)
    reader = cursor.to_arrow_reader(BATCH_ROWS)
    result = Result(reader)
    result._keepalive = ctx.con  # the stream reads from this cursor
    return result
