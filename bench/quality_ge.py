"""The Great Expectations side of ``python -m bench quality``, run in its own venv (``bench/.venv-bench-ge``).

Usage: ``<ge python> bench/quality_ge.py sql|pandas DUCKDB_FILE PARQUET_FILE CHECKS_JSON`` — validates
the expectations of CHECKS_JSON (per check, a list of ``[expectation class, kwargs]`` for each
backend) against the orders table: with ``sql``, GE's SQL backend (SQLAlchemy + duckdb-engine) on
the table ``orders`` of the DuckDB file; with ``pandas``, GE's pandas backend on a DataFrame read
from the same DuckDB table. Prints one JSON line: ``{"seconds": validation time, "success": [one bool
per check, in order], "errors": [...]}`` (a check passes when all its expectations do).

Timed: ``batch.validate(suite)`` only (context, datasource, suite and DataFrame are built untimed).

GE returns cursor results after closing their connection; DuckDB (1.5) empties a result whose
connection is closed, so every GE metric query comes back with no rows. ``execute_query`` is
patched to buffer the rows before the connection closes — the queries GE sends are unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TQDM_DISABLE", "1")


def main(backend: str, database: str, parquet: str, checks_path: str) -> None:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine

    def execute_query(self, query):  # type: ignore[no-untyped-def]
        with self.get_connection() as connection:
            return self._execute_query_with_recovery(connection, query).freeze()()

    SqlAlchemyExecutionEngine.execute_query = execute_query  # type: ignore[method-assign]
    logging.disable(logging.WARNING)

    with open(checks_path, encoding="utf-8") as f:
        checks = json.load(f)
    context = gx.get_context(mode="ephemeral")
    if backend == "sql":
        source = context.data_sources.add_sql(name="bench", connection_string=f"duckdb:///{database}")
        asset = source.add_table_asset(name="orders", table_name="orders")
        batch = asset.add_batch_definition_whole_table("all").get_batch()
    else:
        import duckdb

        with duckdb.connect(database, read_only=True) as con:
            frame = con.sql("SELECT * FROM orders").df()
        asset = context.data_sources.add_pandas(name="bench").add_dataframe_asset(name="orders")
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
    suite = context.suites.add(gx.ExpectationSuite(name="bench"))
    for index, check in enumerate(checks):
        for name, kwargs in check[backend]:
            suite.add_expectation(getattr(gxe, name)(**kwargs, meta={"index": index}))
    started = time.perf_counter()
    result = batch.validate(suite)
    seconds = time.perf_counter() - started
    success = [True] * len(checks)
    errors = []
    for item in result.results:
        index = item.expectation_config.meta["index"]
        success[index] = success[index] and bool(item.success)
        # exception_info is either one {raised_exception, exception_message} or one such per metric.
        infos = item.exception_info or {}
        for info in [infos, *[v for v in infos.values() if isinstance(v, dict)]]:
            if info.get("raised_exception"):
                errors.append(f"{item.expectation_config.type}: {info.get('exception_message')}")
    print(json.dumps({"seconds": seconds, "success": success, "errors": errors, "version": gx.__version__}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
