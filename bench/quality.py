"""``quality``: 50 data-quality checks of mixed types on a 10M-row orders table.

Systems:

* **wharf**: ``wharf.quality.evaluate(lake, "bench.orders", ruleset)`` — the 50 checks written
  as one DQDL ruleset, parsed and evaluated (dataset-level metrics batched into two scans, plus
  one query for the CustomSql rule) on an Iceberg table of the lake;
* **great_expectations** (peer): Great Expectations 1.x, the same 50 checks as an expectation
  suite, validated with its SQL backend (SQLAlchemy + duckdb-engine) on a DuckDB database holding
  the same rows — the strongest GE setup here: DuckDB does the work;
* **ge_pandas** (peer): the same suite on GE's pandas backend, on a DataFrame of the same rows
  (read untimed) — the backend most GE users run.

GE runs in its own virtualenv, ``bench/.venv-bench-ge``, in a child process
(``bench/quality_ge.py``; see its docstring for the one patch its SQL backend needs on DuckDB
1.5): it is not a Wharf dependency. ``python -m bench quality`` creates that venv from PyPI when
it is missing; ``--quick`` only uses it if it exists. GE has no regex support for DuckDB, so the
SQL suite writes the three regex checks (and CustomSql) as unexpected-rows queries; the pandas
suite uses GE's regex and value-range expectations for them (``PANDAS_EQUIVALENTS``).

Each check is an equivalent pair (``CHECKS``); every check passes on the data, and the answers
(one pass/fail per check) must agree. Timed: Wharf's whole ``evaluate`` call; GE's
``batch.validate(suite)`` (context and suite built untimed). Wharf's extra columns count the
queries that read the table (``scans``): the target is at most 2 for the dataset-level rules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import wharf
import wharf.quality as quality
from bench.data import duckdb_connection, run_dir
from bench.harness import BENCH_DIR, Case, Options, Peer, Report, Runner, Target, Timed, log, measure

PEERS = [
    Peer("wharf", "system", "Wharf"),
    Peer("great_expectations", "peer", "Great Expectations 1.x, SQL backend on DuckDB"),
    Peer("ge_pandas", "peer", "Great Expectations 1.x, pandas backend"),
]
GE_VENV = BENCH_DIR / ".venv-bench-ge"
GE_REQUIREMENTS = ["great-expectations==1.24.1", "duckdb-engine==0.17.0", "sqlalchemy>=2,<2.1"]
SPEEDUP_TARGET = 10.0
SCAN_TARGET = 2
COUNTRIES = [
    "US",
    "FR",
    "DE",
    "GB",
    "IT",
    "ES",
    "NL",
    "BE",
    "SE",
    "NO",
    "DK",
    "FI",
    "PL",
    "PT",
    "IE",
    "AT",
    "CH",
    "CZ",
    "JP",
    "CA",
]
STATUSES = ["open", "shipped", "closed", "returned"]


def orders_sql(rows: int) -> str:
    """The orders table: hash-based values, so every column's distribution is the same at any size."""
    countries = ", ".join(f"'{c}'" for c in COUNTRIES)
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    return f"""
        SELECT
            i AS id,
            CASE WHEN hash(i * 3) % 100 = 0 THEN NULL ELSE CAST(hash(i * 5) % 100000 AS INTEGER) + 1 END AS customer_id,
            CASE WHEN hash(i * 7) % 200 = 0 THEN NULL
                 ELSE ([{statuses}])[1 + CAST(hash(i * 11) % 4 AS INTEGER)] END AS status,
            CAST(hash(i * 13) % 100000 AS DOUBLE) / 100.0 AS price,
            CAST(1 + hash(i * 17) % 20 AS INTEGER) AS quantity,
            CASE WHEN hash(i * 19) % 50 = 0 THEN NULL
                 ELSE 'user' || CAST(hash(i * 23) % 100000 AS VARCHAR) || '@example.org' END AS email,
            ([{countries}])[1 + CAST(hash(i * 29) % 20 AS INTEGER)] AS country,
            TIMESTAMP '2026-01-01' + to_seconds(CAST(i % 864000 AS BIGINT)) AS created,
            CAST(hash(i * 31) % 51 AS DOUBLE) / 100.0 AS discount,
            lpad(CAST(hash(i * 37) % 100000 AS VARCHAR), 5, '0') AS zip
        FROM range({rows}) AS r(i)
    """


Expectation = tuple[str, dict[str, Any]]


def checks(rows: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(DQDL rule, GE expectation class, its kwargs): 50 equivalent pairs (GE's SQL backend)."""
    between = "ExpectColumnValuesToBeBetween"
    not_null = "ExpectColumnValuesToNotBeNull"
    in_set = "ExpectColumnValuesToBeInSet"
    unexpected = "UnexpectedRowsExpectation"
    pairs: list[tuple[str, str, dict[str, Any]]] = [
        (f"RowCount = {rows}", "ExpectTableRowCountToEqual", {"value": rows}),
        ("ColumnCount = 10", "ExpectTableColumnCountToEqual", {"value": 10}),
        ('ColumnExists "id"', "ExpectColumnToExist", {"column": "id"}),
        ('ColumnExists "created"', "ExpectColumnToExist", {"column": "created"}),
    ]
    for column in ("id", "price", "quantity", "country", "created", "zip", "discount"):
        pairs.append((f'IsComplete "{column}"', not_null, {"column": column}))
    for column in ("customer_id", "status", "email"):
        pairs.append((f'Completeness "{column}" > 0.95', not_null, {"column": column, "mostly": 0.95}))
    pairs += [
        ('IsUnique "id"', "ExpectColumnValuesToBeUnique", {"column": "id"}),
        (
            'Uniqueness "id" = 1.0',
            "ExpectColumnProportionOfUniqueValuesToBeBetween",
            {"column": "id", "min_value": 1, "max_value": 1},
        ),
        ('IsPrimaryKey "id" "zip"', "ExpectCompoundColumnsToBeUnique", {"column_list": ["id", "zip"]}),
        (
            'DistinctValuesCount "status" = 4',
            "ExpectColumnUniqueValueCountToBeBetween",
            {"column": "status", "min_value": 4, "max_value": 4},
        ),
        (
            'DistinctValuesCount "country" = 20',
            "ExpectColumnUniqueValueCountToBeBetween",
            {"column": "country", "min_value": 20, "max_value": 20},
        ),
        (
            'DistinctValuesCount "quantity" = 20',
            "ExpectColumnUniqueValueCountToBeBetween",
            {"column": "quantity", "min_value": 20, "max_value": 20},
        ),
        (
            'DistinctValuesCount "discount" = 51',
            "ExpectColumnUniqueValueCountToBeBetween",
            {"column": "discount", "min_value": 51, "max_value": 51},
        ),
        (
            'Mean "price" between 450 and 550',
            "ExpectColumnMeanToBeBetween",
            {"column": "price", "min_value": 450, "max_value": 550},
        ),
        (
            'Mean "quantity" between 9 and 12',
            "ExpectColumnMeanToBeBetween",
            {"column": "quantity", "min_value": 9, "max_value": 12},
        ),
        (
            'Mean "discount" between 0.2 and 0.3',
            "ExpectColumnMeanToBeBetween",
            {"column": "discount", "min_value": 0.2, "max_value": 0.3},
        ),
        (
            'Mean "customer_id" between 40000 and 60000',
            "ExpectColumnMeanToBeBetween",
            {"column": "customer_id", "min_value": 40000, "max_value": 60000},
        ),
        ('Sum "quantity" > 0', "ExpectColumnSumToBeBetween", {"column": "quantity", "min_value": 0, "strict_min": True}),
        ('Sum "discount" >= 0', "ExpectColumnSumToBeBetween", {"column": "discount", "min_value": 0}),
        (
            'StandardDeviation "price" between 250 and 330',
            "ExpectColumnStdevToBeBetween",
            {"column": "price", "min_value": 250, "max_value": 330},
        ),
        (
            'StandardDeviation "quantity" between 5 and 6.5',
            "ExpectColumnStdevToBeBetween",
            {"column": "quantity", "min_value": 5, "max_value": 6.5},
        ),
        (
            'StandardDeviation "discount" between 0.1 and 0.2',
            "ExpectColumnStdevToBeBetween",
            {"column": "discount", "min_value": 0.1, "max_value": 0.2},
        ),
        ('ColumnLength "zip" = 5', "ExpectColumnValueLengthsToEqual", {"column": "zip", "value": 5}),
        ('ColumnLength "country" = 2', "ExpectColumnValueLengthsToEqual", {"column": "country", "value": 2}),
        ('ColumnLength "email" <= 21', "ExpectColumnValueLengthsToBeBetween", {"column": "email", "max_value": 21}),
        (
            f'ColumnValues "status" in [{", ".join(chr(34) + s + chr(34) for s in STATUSES)}] with threshold >= 0.99',
            in_set,
            {"column": "status", "value_set": STATUSES, "mostly": 0.99},
        ),
        (
            f'ColumnValues "country" in [{", ".join(chr(34) + c + chr(34) for c in COUNTRIES)}]',
            in_set,
            {"column": "country", "value_set": COUNTRIES},
        ),
        (
            f'ColumnValues "quantity" in [{", ".join(str(q) for q in range(1, 21))}]',
            in_set,
            {"column": "quantity", "value_set": list(range(1, 21))},
        ),
        (
            'ColumnValues "status" not in ["lost", "stolen"]',
            "ExpectColumnValuesToNotBeInSet",
            {"column": "status", "value_set": ["lost", "stolen"]},
        ),
        ('ColumnValues "zip" != EMPTY', "ExpectColumnValuesToNotBeInSet", {"column": "zip", "value_set": [""]}),
        (
            'ColumnValues "price" between -0.01 and 1000',
            between,
            {"column": "price", "min_value": -0.01, "max_value": 1000, "strict_min": True, "strict_max": True},
        ),
        (
            'ColumnValues "quantity" between 0 and 21',
            between,
            {"column": "quantity", "min_value": 0, "max_value": 21, "strict_min": True, "strict_max": True},
        ),
        ('ColumnValues "quantity" > 0', between, {"column": "quantity", "min_value": 0, "strict_min": True}),
        ('ColumnValues "discount" >= 0', between, {"column": "discount", "min_value": 0}),
        ('ColumnValues "discount" <= 0.5', between, {"column": "discount", "max_value": 0.5}),
        (
            'ColumnValues "customer_id" > 0 with threshold >= 0.98',
            between,
            {"column": "customer_id", "min_value": 0, "strict_min": True, "mostly": 0.98},
        ),
        ('ColumnValues "id" >= 0', between, {"column": "id", "min_value": 0}),
        (
            'ColumnValues "created" between "2025-12-31" and "2026-02-01"',
            between,
            {
                "column": "created",
                "min_value": "2025-12-31 00:00:00",
                "max_value": "2026-02-01 00:00:00",
                "strict_min": True,
                "strict_max": True,
            },
        ),
        # GE has no regex support for DuckDB ("Regex is not supported for dialect duckdb"): its
        # unexpected-rows expectation with DuckDB's full-match function is the equivalent check.
        (
            'ColumnValues "zip" matches "[0-9]{5}"',
            unexpected,
            {"unexpected_rows_query": "SELECT * FROM {batch} WHERE zip IS NULL OR NOT regexp_full_match(zip, '[0-9]{{5}}')"},
        ),
        (
            'ColumnValues "email" matches "user[0-9]+@example\\\\.org" with threshold >= 0.97',
            unexpected,
            {"unexpected_rows_query": "SELECT * FROM {batch} WHERE NOT regexp_full_match(email, 'user[0-9]+@example\\.org')"},
        ),
        (
            'ColumnValues "country" matches "[A-Z]{2}"',
            unexpected,
            {"unexpected_rows_query": "SELECT * FROM {batch} WHERE NOT regexp_full_match(country, '[A-Z]{{2}}')"},
        ),
        (
            'CustomSql "select count(*) from primary where price < 0 or quantity < 1" = 0',
            unexpected,
            {"unexpected_rows_query": "SELECT * FROM {batch} WHERE price < 0 OR quantity < 1"},
        ),
    ]
    assert len(pairs) == 50, len(pairs)
    return pairs


# GE's pandas backend has no SQL: the checks the SQL suite writes as unexpected-rows queries use
# the expectations that say the same thing there.
PANDAS_EQUIVALENTS: dict[str, list[Expectation]] = {
    'ColumnValues "zip" matches "[0-9]{5}"': [("ExpectColumnValuesToMatchRegex", {"column": "zip", "regex": "^[0-9]{5}$"})],
    'ColumnValues "email" matches "user[0-9]+@example\\\\.org" with threshold >= 0.97': [
        ("ExpectColumnValuesToMatchRegex", {"column": "email", "regex": "^user[0-9]+@example\\.org$", "mostly": 0.97})
    ],
    'ColumnValues "country" matches "[A-Z]{2}"': [
        ("ExpectColumnValuesToMatchRegex", {"column": "country", "regex": "^[A-Z]{2}$"})
    ],
    'CustomSql "select count(*) from primary where price < 0 or quantity < 1" = 0': [
        ("ExpectColumnValuesToBeBetween", {"column": "price", "min_value": 0}),
        ("ExpectColumnValuesToBeBetween", {"column": "quantity", "min_value": 1}),
    ],
}


def ge_checks(pairs: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, list[Expectation]]]:
    """Per check, its expectations for each GE backend."""
    out = []
    for rule, name, kwargs in pairs:
        sql: list[Expectation] = [(name, kwargs)]
        out.append({"sql": sql, "pandas": PANDAS_EQUIVALENTS.get(rule, sql)})
    return out


def ruleset_text(pairs: list[tuple[str, str, dict[str, Any]]]) -> str:
    return "Rules = [\n    " + ",\n    ".join(rule for rule, _, _ in pairs) + "\n]\n"


# --- the Great Expectations environment ------------------------------------------------------------


def ge_python(opts: Options) -> Path | None:
    """The GE venv's interpreter; created from PyPI when missing (not in --quick mode)."""
    python = GE_VENV / "bin" / "python"
    if _imports_ge(python):
        return python
    if opts.quick:
        return None
    log(f"creating {GE_VENV} with {', '.join(GE_REQUIREMENTS)}")
    import duckdb

    subprocess.run([sys.executable, "-m", "venv", str(GE_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *GE_REQUIREMENTS, f"duckdb=={duckdb.__version__}"], check=True)
    return python if _imports_ge(python) else None


def _imports_ge(python: Path) -> bool:
    # Looking for the installed packages, not importing them: importing GE takes seconds.
    site = list(GE_VENV.glob("lib/python*/site-packages"))
    return python.exists() and any((s / "great_expectations").is_dir() and (s / "duckdb_engine").is_dir() for s in site)


def run(opts: Options) -> Report:
    scale = opts.scale if opts.scale is not None else (0.002 if opts.quick else 1.0)
    rows = max(1000, int(10_000_000 * scale))
    warmup = opts.warmup if opts.warmup is not None else 1
    reps = opts.reps or (1 if opts.quick else 3)
    budget = opts.budget_s or (30.0 if opts.quick else 600.0)
    work = run_dir(opts.data_dir, "quality")
    pairs = checks(rows)
    rules = ruleset_text(pairs)
    report = Report(
        "quality",
        f"quality: 50 checks of mixed types on {rows:,} rows — Wharf DQDL vs Great Expectations",
        opts,
        PEERS,
        params={"rows": rows, "checks": len(pairs), "warmup": warmup, "reps": reps},
    )
    report.extra_columns = [("wharf scans", "wharf", "scans"), ("wharf queries", "wharf", "queries")]

    log(f"quality: generating {rows:,} orders")
    database = work / "orders.duckdb"
    con = duckdb_connection()
    try:
        con.execute(f"ATTACH '{database}' AS ge")
        con.execute(f"CREATE TABLE ge.orders AS {orders_sql(rows)}")
        con.execute("DETACH ge")
    finally:
        con.close()
    lake = wharf.connect(work / "lake", user="bench")
    lake.sql("CREATE NAMESPACE bench")
    parquet = _export(database, work)
    lake.sql(f"CREATE TABLE bench.orders AS SELECT * FROM read_parquet('{parquet}')")

    def wharf_run() -> quality.QualityResult:
        return quality.evaluate(lake, "bench.orders", rules)

    def wharf_extra(result: quality.QualityResult) -> dict[str, Any]:
        return {"scans": result.scans, "queries": len(result.queries), "failed": [r.rule for r in result.rules if not r.passed]}

    runners = [Runner("wharf", wharf_run, extra=wharf_extra)]
    python = ge_python(opts)
    checks_file = work / "ge-checks.json"
    checks_file.write_text(json.dumps(ge_checks(pairs)))

    def ge_runner(backend: str) -> Any:
        def ge_run() -> Timed:
            env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "TQDM_DISABLE": "1"}
            script = str(BENCH_DIR / "quality_ge.py")
            done = subprocess.run(
                [str(python), script, backend, str(database), str(parquet), str(checks_file)],
                capture_output=True,
                text=True,
                env=env,
                timeout=3600,
            )
            if done.returncode != 0:
                last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode
                raise RuntimeError(f"GE ({backend}) failed: {last}")
            answer = json.loads(done.stdout.strip().splitlines()[-1])
            if answer["errors"]:
                raise RuntimeError(f"GE ({backend}) errors: {answer['errors'][:3]}")
            return Timed(answer["success"], answer["seconds"])

        return ge_run

    if python is not None:
        runners.append(Runner("great_expectations", ge_runner("sql"), max_reps=reps))
        runners.append(Runner("ge_pandas", ge_runner("pandas"), max_reps=reps))
    else:
        report.notes.append(f"Great Expectations not run: no venv at {GE_VENV} (run without --quick to create it)")

    def compare(ref: Any, other: Any) -> bool:
        mine = [r.passed for r in ref.rules] if isinstance(ref, quality.QualityResult) else ref
        theirs = [r.passed for r in other.rules] if isinstance(other, quality.QualityResult) else other
        return bool(mine == theirs)

    case = Case("50 checks", runners, params={"rows": rows}, compare=compare)
    log(f"quality: 50 checks on {rows:,} rows")
    result = measure(case, opts, warmup=warmup, reps=reps, budget_s=budget)
    report.add(result)
    answer = result.answers.get("wharf")
    if isinstance(answer, quality.QualityResult):
        custom = sum(1 for r in answer.rules if r.rule.startswith("CustomSql"))
        passes = answer.scans - custom
        report.notes.append(
            f"Wharf read the table {answer.scans} times: {passes} batched pass(es) for the dataset-level rules "
            f"+ {custom} CustomSql query; all 50 rules passed: {answer.passed}"
        )
        report.targets.append(
            Target(
                "quality scans", f"≤ {SCAN_TARGET} scans for the dataset-level rules", f"{passes} scan(s)", passes <= SCAN_TARGET
            )
        )
    for peer, label in (("great_expectations", "GE, SQL backend"), ("ge_pandas", "GE, pandas backend")):
        ratio = result.ratio(peer)
        report.targets.append(
            Target(
                f"quality 50 checks vs {label}",
                f"≥ {SPEEDUP_TARGET:g}× faster than Great Expectations",
                f"{1 / ratio:.1f}× faster" if ratio else "n/a (not measured)",
                None if ratio is None else 1 / ratio >= SPEEDUP_TARGET,
            )
        )
    lake.close()
    return report


def _export(database: Path, work: Path) -> Path:
    """The same rows as Parquet, for the Wharf table (loaded untimed)."""
    path = work / "orders.parquet"
    started = time.perf_counter()
    con = duckdb_connection()
    try:
        con.execute(f"ATTACH '{database}' AS ge (READ_ONLY)")
        con.execute(f"COPY ge.orders TO '{path}' (FORMAT parquet)")
    finally:
        con.close()
    log(f"quality: exported Parquet in {time.perf_counter() - started:.1f} s")
    return path
