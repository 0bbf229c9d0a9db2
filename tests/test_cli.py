"""The ``wharf`` CLI: every command through typer's runner, and the real console script in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

import wharf
from wharf import demo
from wharf.cli import app, report_error, statement_complete

WHARF = Path(sys.executable).parent / "wharf"


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def cli(lake_dir: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:  # noqa: A002
        # pytest-xdist workers export COLUMNS=80; the CLI's default width for piped output is what we test.
        return runner.invoke(app, ["--lake", str(lake_dir), *args], input=input, env={"COLUMNS": None, **(env or {})})

    return invoke


@pytest.fixture
def cities(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "sql",
        "CREATE TABLE cities (name VARCHAR, country VARCHAR, population BIGINT, founded DATE, tags VARCHAR[]);"
        "INSERT INTO cities VALUES ('Lagos', 'NG', 15400000, DATE '1472-01-01', ['port', 'big']),"
        " ('Lima', 'PE', 10900000, DATE '1535-01-18', ['capital']), ('Oslo', 'NO', 710000, NULL, NULL)",
    )
    assert result.exit_code == 0, result.output


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output


# --- wharf sql ----------------------------------------------------------------------------------


def test_sql_table_format(cli, cities) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "SELECT name, population FROM cities ORDER BY population DESC")
    assert result.exit_code == 0, result.output
    assert result.stdout.index("Lagos") < result.stdout.index("Lima") < result.stdout.index("Oslo")
    assert "3 rows" in result.stdout


def test_sql_table_format_caps_rows_but_counts_all(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "SELECT i FROM range(1000) r(i)", "--max-rows", "5")
    assert result.exit_code == 0, result.output
    assert "1000 rows (showing first 5" in result.stdout
    assert "│ 5 " not in result.stdout and "│ 4 " in result.stdout


def test_sql_csv(cli, cities) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "SELECT name, population, founded, tags FROM cities ORDER BY name", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["name", "population", "founded", "tags"]
    assert rows[1] == ["Lagos", "15400000", "1472-01-01", '["port", "big"]']
    assert rows[3][0] == "Oslo" and rows[3][2:] == ["", ""]
    assert len(rows) == 4


def test_sql_json(cli, cities) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "SELECT name, founded, tags FROM cities ORDER BY name", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"name": "Lagos", "founded": "1472-01-01", "tags": ["port", "big"]},
        {"name": "Lima", "founded": "1535-01-18", "tags": ["capital"]},
        {"name": "Oslo", "founded": None, "tags": None},
    ]


def test_sql_json_empty_result_is_an_empty_array(cli, cities) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "SELECT * FROM cities WHERE false", "--format", "json")
    assert json.loads(result.stdout) == []


def test_sql_parquet_needs_output_file(cli, cities, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "SELECT * FROM cities", "--format", "parquet")
    assert result.exit_code == 1
    assert "-o" in result.output
    no_traceback(result)

    out = tmp_path / "cities.parquet"
    result = cli("sql", "SELECT name, population FROM cities ORDER BY name", "--format", "parquet", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pydict() == {"name": ["Lagos", "Lima", "Oslo"], "population": [15400000, 10900000, 710000]}
    assert "Wrote 3 rows" in result.output


@pytest.mark.parametrize("suffix", ["csv", "json", "parquet"])
def test_sql_output_file_format_follows_suffix(cli, cities, tmp_path: Path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / f"out.{suffix}"
    result = cli("sql", "SELECT name FROM cities ORDER BY name", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    if suffix == "csv":
        assert out.read_text().splitlines() == ['"name"', '"Lagos"', '"Lima"', '"Oslo"']
    elif suffix == "json":
        assert [r["name"] for r in json.loads(out.read_text())] == ["Lagos", "Lima", "Oslo"]
    else:
        assert pq.read_table(out).column("name").to_pylist() == ["Lagos", "Lima", "Oslo"]


def test_sql_table_format_to_file(cli, cities, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out.txt"
    result = cli("sql", "SELECT name FROM cities ORDER BY name", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "Lagos" in out.read_text() and "3 rows" in out.read_text()


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_sql_streams_many_batches_to_a_file(cli, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / f"big.{fmt}"
    result = cli("sql", "SELECT i, i * 2 AS j FROM range(300000) r(i)", "-o", str(out))
    assert result.exit_code == 0, result.output
    if fmt == "csv":
        lines = out.read_text().splitlines()
        assert lines[0] == '"i","j"' and len(lines) == 300001 and lines.count('"i","j"') == 1
    elif fmt == "json":
        rows = json.loads(out.read_text())
        assert len(rows) == 300000 and rows[-1] == {"i": 299999, "j": 599998}
    else:
        table = pq.read_table(out)
        assert table.num_rows == 300000 and sum(table.column("i").to_pylist()) == sum(range(300000))


def test_sql_file_script(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "script.sql"
    script.write_text(
        "CREATE SCHEMA geo;\n"
        "CREATE TABLE geo.c (code VARCHAR, name VARCHAR);\n"
        "INSERT INTO geo.c VALUES ('NO', 'Norway'), ('PE', 'Peru');\n"
        "SELECT name FROM geo.c ORDER BY name;\n"
    )
    result = cli("sql", "-f", str(script), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ['"name"', '"Norway"', '"Peru"']  # only the last result on stdout
    assert "geo" in result.stderr  # earlier statements are summarised on stderr

    table = cli("sql", "-f", str(script))  # table format: every statement's result is shown
    assert table.exit_code == 1 and "AlreadyExists" in table.output


def test_sql_file_parse_error_points_at_script_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "bad.sql"
    script.write_text("SELECT 1;\n\nSELECT * FROM range(3) WHERE;\n")
    result = cli("sql", "-f", str(script))
    assert result.exit_code == 1
    assert "SqlParseError" in result.output and "line 3" in result.output
    no_traceback(result)


def test_sql_from_stdin(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "-f", "-", "--format", "csv", input="SELECT 41 + 1 AS answer;")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ['"answer"', "42"]
    result = cli("sql", "-", "--format", "csv", input="SELECT 'x' AS y")
    assert result.stdout.splitlines() == ['"y"', '"x"']


def test_sql_dialect(cli, cities) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "SELECT nvl(NULL, 'fallback') AS v", "--dialect", "spark", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ['"v"', '"fallback"']
    bad = cli("sql", "SELECT 1", "--dialect", "cobol")
    assert bad.exit_code == 1 and "dialect" in bad.output


def test_sql_needs_exactly_one_source(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("sql").exit_code == 1
    script = tmp_path / "s.sql"
    script.write_text("SELECT 1")
    both = cli("sql", "SELECT 1", "-f", str(script))
    assert both.exit_code == 1 and "either" in both.output
    missing = cli("sql", "-f", str(tmp_path / "nope.sql"))
    assert missing.exit_code == 1 and "NotFound" in missing.output


def test_sql_writes_are_visible_to_python(cli, cities, lake_dir: Path) -> None:  # type: ignore[no-untyped-def]
    with wharf.connect(lake_dir) as lake:
        assert lake.sql("SELECT count(*) FROM cities").scalar() == 3
        statement = lake.sql("SELECT summary['wharf.statement'] FROM cities.snapshots").scalar()
        assert statement.startswith("INSERT INTO cities")


# --- errors -------------------------------------------------------------------------------------


def test_wharf_error_is_one_red_line_with_hint(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "SELECT * FROM nowhere.nothing")
    assert result.exit_code == 1
    assert "NotFound" in result.stderr and "nowhere.nothing" in result.stderr
    assert "Hint:" in result.stderr
    assert result.stdout == ""
    no_traceback(result)


def test_parse_error_shows_caret(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "SELECT FROM WHERE")
    assert result.exit_code == 1
    assert "SqlParseError" in result.output and "^" in result.output
    no_traceback(result)


def test_os_error_is_reported_without_traceback(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "SELECT 1 AS a", "-o", str(tmp_path / "no" / "such" / "dir.csv"))
    assert result.exit_code == 1
    assert "FileNotFoundError" in result.output
    no_traceback(result)


def test_unexpected_errors_suggest_debug(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        {}["missing"]  # noqa: B018
    except KeyError as exc:
        report_error(exc, debug=False)
        quiet = capsys.readouterr().err
        report_error(exc, debug=True)
        loud = capsys.readouterr().err
    assert "Unexpected error (KeyError)" in quiet and "--debug" in quiet and "Traceback" not in quiet
    assert "Traceback" in loud and "KeyError" in loud


def test_console_script_debug_shows_traceback_only_with_debug(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    plain = subprocess.run([str(WHARF), "--lake", lake, "sql", "SELECT * FROM nope"], capture_output=True, text=True)
    assert plain.returncode == 1
    assert "NotFound" in plain.stderr and "Traceback" not in plain.stderr + plain.stdout
    debug = subprocess.run([str(WHARF), "--lake", lake, "--debug", "sql", "SELECT * FROM nope"], capture_output=True, text=True)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "NotFound" in debug.stderr


def test_console_script_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "WHARF_HOME": str(tmp_path / "home-lake")}
    version = subprocess.run([str(WHARF), "--version"], capture_output=True, text=True, env=env)
    assert version.returncode == 0 and version.stdout.strip() == f"wharf {wharf.__version__}"
    created = subprocess.run(
        [str(WHARF), "sql", "CREATE TABLE t AS SELECT range AS id FROM range(5)"], capture_output=True, text=True, env=env
    )
    assert created.returncode == 0, created.stderr
    query = subprocess.run(
        [sys.executable, "-m", "wharf.cli", "sql", "SELECT sum(id) AS s FROM t", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"s": 10}]
    assert (tmp_path / "home-lake" / "wharf.db").exists()  # $WHARF_HOME was the lake


# --- tables / describe / history ------------------------------------------------------------------


def test_tables(cli, cities) -> None:  # type: ignore[no-untyped-def]
    cli("sql", "CREATE SCHEMA geo; CREATE TABLE geo.rivers (name VARCHAR)")
    everything = cli("tables")
    assert everything.exit_code == 0, everything.output
    assert "default.cities" in everything.stdout and "geo.rivers" in everything.stdout
    only_geo = cli("tables", "geo")
    assert "geo.rivers" in only_geo.stdout and "cities" not in only_geo.stdout
    missing = cli("tables", "nowhere")
    assert missing.exit_code == 1 and "NotFound" in missing.output


def test_tables_on_an_empty_lake(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("tables")
    assert result.exit_code == 0 and "No tables" in result.stdout


def test_describe(cli) -> None:  # type: ignore[no-untyped-def]
    cli(
        "sql",
        "CREATE TABLE trips (id BIGINT NOT NULL, city VARCHAR, started TIMESTAMP) "
        "PARTITIONED BY (days(started)) TBLPROPERTIES ('owner' = 'ops');"
        "ALTER TABLE trips SET IDENTIFIER FIELDS id",
    )
    result = cli("describe", "trips")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in ("default.trips", "id (id)", "BIGINT", "city", "VARCHAR", "started_day", "day", "owner", "ops"):
        assert expected in out, expected
    # The same type names as SQL's DESCRIBE.
    described = cli("sql", "DESCRIBE trips", "--format", "json").stdout
    types = [row["data_type"] for row in json.loads(described) if row["col_name"] in ("id", "city", "started")]
    assert types == ["BIGINT NOT NULL", "VARCHAR", "TIMESTAMP"]
    for data_type in types:
        assert data_type.removesuffix(" NOT NULL") in out, data_type
    missing = cli("describe", "nope")
    assert missing.exit_code == 1 and "NotFound" in missing.output
    no_traceback(missing)


def test_history(cli, cities, lake_dir: Path) -> None:  # type: ignore[no-untyped-def]
    cli("sql", "INSERT INTO cities (name) VALUES ('Nuuk')")
    with wharf.connect(lake_dir) as lake:
        first, second = lake.table("cities").snapshots().column("snapshot_id").to_pylist()
    result = cli("history", "cities")
    assert result.exit_code == 0, result.output
    assert str(first) in result.stdout and str(second) in result.stdout
    assert "INSERT INTO cities (name) VALUES" in result.stdout
    assert f"{second}*" not in result.stdout

    rolled = cli("sql", f"CALL system.rollback_to_snapshot('cities', {first})")
    assert rolled.exit_code == 0, rolled.output
    after = cli("history", "cities")
    assert f"{second}*" in after.stdout  # no longer an ancestor of main
    newest = cli("history", "cities", "--limit", "1")
    assert str(second) in newest.stdout and str(first) not in newest.stdout


# --- shell --------------------------------------------------------------------------------------


def test_statement_complete() -> None:
    assert statement_complete("SELECT 1;")
    assert statement_complete("SELECT 1; -- done")
    assert not statement_complete("SELECT 1")
    assert not statement_complete("SELECT ';")
    assert not statement_complete("SELECT ';'")
    assert statement_complete("SELECT ';';")


def test_shell_via_stdin(cli, cities, lake_dir: Path) -> None:  # type: ignore[no-untyped-def]
    script = (
        "SELECT name,\n"
        "       population\n"
        "FROM cities WHERE name = 'Lima';\n"
        "\\d\n"
        "\\d cities\n"
        "\\dn\n"
        "\\h cities\n"
        "\\?\n"
        "INSERT INTO cities (name) VALUES ('Nuuk');\n"
        "SELECT count(*) AS n FROM cities;\n"
    )
    result = cli("shell", input=script)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "10900000" in out  # the multi-line statement ran
    assert "default.cities" in out  # \d
    assert "population" in out and "BIGINT" in out  # \d cities
    assert "default" in out  # \dn
    assert "INSERT INTO cities VALUES" in out  # \h cities
    assert "\\q" in out  # \? help
    assert "│ 4 " in out  # the insert committed, the count sees it
    history = (lake_dir / ".wharf_history").read_text()
    assert "SELECT name, population FROM cities WHERE name = 'Lima';" in history


def test_shell_reports_errors_and_carries_on(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("shell", input="SELECT * FROM nope;\nSELEC 1;\n\\x\nSELECT 'still here' AS s;\n")
    assert "NotFound" in result.output and "SqlParseError" in result.output and "Unknown command" in result.output
    assert "still here" in result.stdout
    assert result.exit_code == 1  # piped input with failures fails, like psql -v ON_ERROR_STOP=0
    no_traceback(result)


def test_shell_quit_and_unterminated_last_statement(cli) -> None:  # type: ignore[no-untyped-def]
    quit_early = cli("shell", input="SELECT 'before' AS a;\n\\q\nSELECT 'after' AS b;\n")
    assert quit_early.exit_code == 0
    assert "before" in quit_early.stdout and "after" not in quit_early.stdout
    last = cli("shell", input="SELECT 'no semicolon' AS c\n")
    assert last.exit_code == 0 and "no semicolon" in last.stdout


# --- demo ---------------------------------------------------------------------------------------


def test_demo_command(cli, lake_dir: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("demo", "--rows", "2000")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for title in ("Query the lake", "Time travel", "A branch", "MERGE", "Rollback", "Serve the lake", "access on request"):
        assert title in out, title
    for statement in (
        "FOR VERSION AS OF",
        "FOR TIMESTAMP AS OF",
        "CREATE BRANCH new_season",
        "system.fast_forward",
        "MERGE INTO tickets.products",
        "system.rollback_to_snapshot",
        'load_catalog("wharf", type="rest"',
        "ATTACH 'wharf' AS lake (TYPE iceberg",
        "REQUEST ACCESS ON TABLE crm.payouts",
        "APPROVE ACCESS REQUEST 1 FOR '1 hour'",
    ):
        assert statement in out, statement
    with wharf.connect(lake_dir) as lake:
        assert lake.tables("tickets") == ["tickets.events", "tickets.products", "tickets.sales", "tickets.venues"]
        sales = lake.table("tickets.sales")
        assert [f.name for f in sales.iceberg.spec().fields] == ["sold_at_month"]
        # After the tour: the late batch is kept, the duplicate load was rolled back.
        assert lake.sql("SELECT count(*), count(DISTINCT sale_id) FROM tickets.sales").fetchone() == (2010, 2010)
        assert lake.sql("SELECT count(*) FROM tickets.products").scalar() == 15
        assert lake.sql("SELECT price FROM tickets.products WHERE product_id = 3").scalar() == 54


def test_demo_rows_from_environment_and_rebuild(cli, lake_dir: Path) -> None:  # type: ignore[no-untyped-def]
    first = cli("demo", "--no-tour", env={"WHARF_DEMO_ROWS": "500"})
    assert first.exit_code == 0, first.output
    assert "tickets.sales (500 rows)" in " ".join(first.stdout.split())
    assert "Time travel" not in first.stdout and "Rebuilding" not in first.stdout
    for rows in ("700", "600"):  # the whole tour again over an existing demo (its branch, its snapshots)
        again = cli("demo", "--rows", rows)
        assert again.exit_code == 0, again.output
        assert "Rollback" in again.stdout
        assert "Rebuilding the demo" in again.stdout  # never silently
    with wharf.connect(lake_dir) as lake:
        assert lake.table("tickets.sales").count() == 610
        assert lake.table("tickets.sales").snapshots().num_rows == 3  # fresh table: create, late sales, bad load


def test_demo_data_is_deterministic(tmp_path: Path) -> None:
    sums = []
    for name in ("a", "b"):
        with wharf.connect(tmp_path / name) as lake:
            counts = demo.build(lake, rows=1000)
            assert counts == {"tickets.venues": 12, "tickets.events": 240, "tickets.sales": 1000, "tickets.products": 12}
            sums.append(
                lake.sql("SELECT sum(price), sum(hash(sale_id, event_id, sold_at, channel)) FROM tickets.sales").fetchone()
            )
    assert sums[0] == sums[1]


def test_demo_from_python(tmp_path: Path) -> None:
    with wharf.connect(tmp_path / "lake") as lake:
        demo.build(lake, rows=1000)
        steps = list(demo.tour(lake))
    assert [s.title for s in steps] == [
        "Query the lake",
        "Time travel",
        "A branch",
        "MERGE",
        "Change history",
        "Rollback",
        "Write-audit-publish",
        "Governance: who sees what, and access on request",
        "Serve the lake",
    ]
    time_travel = steps[1].queries[-1].result.fetchone()
    assert time_travel == (1010, 1000, 1000)  # now, at the first snapshot id, at its commit time
    branch = steps[2].queries[2].result.fetchall()
    assert branch == [("main", 12), ("new_season", 14)]
    changes = [(r[0], r[3]) for r in steps[4].queries[1].result.fetchall()]
    assert changes == [(3, "INSERT"), (3, "UPDATE_BEFORE"), (3, "UPDATE_AFTER"), (15, "INSERT")]
    versions = steps[4].queries[3].result.fetchall()
    assert [v[-1] for v in versions] == [False, True] and versions[0][3] == versions[1][2]
    rollback = steps[5].queries
    assert rollback[1].result.fetchone()[0] > rollback[3].result.fetchone()[0]
    governed = steps[7].queries
    assert governed[1].result.fetchall() == [  # the analyst's region (EU) only, emails masked
        (1, "Anna de Vries", "***@example.nl", "EU"),
        (3, "Chloé Martin", "***@example.fr", "EU"),
        (4, "Dev Patel", "***@example.co.uk", "EU"),
    ]
    assert [(r[0], r[5]) for r in governed[2].result.fetchall()] == [("crm.customers", "SELECT"), ("crm.payouts", "")]
    assert governed[3].result.fetchall()[0][:2] == (1, "pending")
    assert governed[6].result.fetchall() == [
        ("Pier 9 Stadium", 475000),
        ("Anchor Park", 337500),
        ("Harbour Arena", 200000),
    ]
    assert governed[8].result.fetchall() == [
        (
            "analyst has no SELECT privilege on table crm.payouts: "
            "the access granted by access request 1 on table crm.payouts has expired",
        )
    ]


def test_demo_server_step(tmp_path: Path) -> None:
    """PyIceberg and DuckDB use the demo lake through the REST catalog; Wharf sees what the client appended."""
    with wharf.connect(tmp_path / "lake") as lake:
        demo.build(lake, rows=1000)
        step = demo.server_step(lake)
        languages = [q.language for q in step.queries]
        assert languages == ["python", "python", "python", "sql", "sql"], step.explanation
        listed, scanned, appended, duck, seen = (q.result.to_arrow() for q in step.queries)
        assert listed.column("table").to_pylist() == ["events", "products", "sales", "venues"]
        assert scanned.to_pylist() == [
            {"venue_id": 1, "name": "Harbour Arena", "city": "Rotterdam", "capacity": 16000},
            {"venue_id": 3, "name": "Canal Street Theatre", "city": "Amsterdam", "capacity": 1400},
        ]
        snapshot_id = appended.column("snapshot_id")[0].as_py()
        assert snapshot_id == lake.table("tickets.venues").current_snapshot_id()
        assert duck.column("venue_id").to_pylist() == [11, 12, 13]  # DuckDB reads the client's append
        assert duck.column("city").to_pylist()[-1] == "Oslo"
        assert seen.to_pylist() == [
            {"venue_id": 13, "name": "Fjord Hall", "city": "Oslo", "operation": "append", "committed_by": lake.owner}
        ]
        assert lake.sql("SELECT count(*) FROM tickets.venues").scalar() == 13
        url = step.explanation.split("background on ", 1)[1].split(",", 1)[0]
    with pytest.raises(httpx.TransportError):  # the step stopped its server
        httpx.get(f"{url}/healthz", timeout=5)


def test_demo_server_step_without_the_server_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if FastAPI were not installed
    with wharf.connect(tmp_path / "lake") as lake:
        demo.build(lake, rows=100)
        step = demo.server_step(lake)
    assert step.title == "Serve the lake" and step.queries == []
    assert "Skipped: wharf serve needs the server extra" in step.explanation
    assert "pip install 'wharf-lakehouse[server]'" in step.explanation


def test_sql_json_numbers(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "sql",
        "SELECT sum(i) AS total, 1.25::DECIMAL(10, 2) AS d, 12345678901234567.89::DECIMAL(20, 2) AS big, "
        "TIMESTAMP '2025-01-02 03:04:05' AS ts FROM range(5) r(i)",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"total": 10, "d": 1.25, "big": "12345678901234567.89", "ts": "2025-01-02T03:04:05"}]


def test_user_mistakes_are_reported_as_user_errors(tmp_path: Path) -> None:
    """Errors DuckDB raises while a result streams are the user's, not a bug of Wharf's."""
    from typer.testing import CliRunner

    from wharf.cli import app

    result = CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "sql", "SELECT CAST('x' AS INT)"])
    assert result.exit_code == 1
    assert "SchemaMismatch" in result.output and "bug" not in result.output


def test_print_and_the_cli_count_rows_alike(cli, lake_dir: Path) -> None:  # type: ignore[no-untyped-def]
    out = cli("sql", "SELECT * FROM range(30)").stdout
    assert "30 rows (showing first" not in out and "30 rows" in out
    with wharf.connect(lake_dir) as lake:
        printed = repr(lake.sql("SELECT * FROM range(30)"))
        assert "30 rows (showing first 20;" in printed
        assert repr(lake.sql("SELECT 1")).rstrip().endswith("1 row")


@pytest.mark.parametrize(
    "interval",
    [
        "INTERVAL 1 HOUR",
        "INTERVAL 90 MINUTE",
        "INTERVAL 3 DAY",
        "INTERVAL 14 MONTH",
        "INTERVAL '1 year 2 months 3 days 04:05:06.5'",
        "INTERVAL 0 SECOND",
        "INTERVAL '1.25 seconds'",
        "-INTERVAL 2 HOUR",
    ],
)
def test_intervals_print_as_duckdb_prints_them(interval: str) -> None:
    import duckdb

    from wharf.cli import interval_text

    printed = duckdb.sql(f"SELECT CAST({interval} AS VARCHAR)").fetchall()[0][0]
    value = duckdb.sql(f"SELECT {interval} AS i").to_arrow_table().column("i")[0].as_py()  # Arrow's MonthDayNano
    assert interval_text(value) == printed, value
