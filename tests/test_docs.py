"""Docs cannot drift: run every example in docs/ against a fresh lake.

- ``docs/sql.md``: every ```` ```sql ```` block, statement by statement, in order. A statement
  whose lines carry ``-- error: ClassName`` must raise that ``wharf.errors`` class; every other
  statement must succeed. A fence like ```` ```sql dialect=spark ```` runs in that dialect.
- the other pages and the README: every ```` ```python ```` block and every ``$ wharf …`` line of
  ```` ```console ```` blocks, in document order, in one namespace per page, in an empty working
  directory. Console lines run the real CLI (typer's runner), ``< file`` feeds a file to stdin,
  and `` # error`` after a command expects exit code 1.

All failures of a page are collected before the test fails, so one run reports all of them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import wharf
from wharf import errors
from wharf.cli import app
from wharf.sql.parser import split

DOCS = Path(__file__).resolve().parent.parent / "docs"
README = DOCS.parent / "README.md"
FENCE = re.compile(r"^```([\w-]*)([^\n]*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
ERROR_MARK = re.compile(r"--\s*error:\s*(\w+)")
RESULT_MARK = re.compile(r"--\s*result:\s*(\S+)")
# ``-- set: name`` keeps the statement's first value; later statements write it as ``<name>``
# (snapshot ids are random, so a page cannot spell them out).
SET_MARK = re.compile(r"--\s*set:\s*(\w+)")
PLACEHOLDER = re.compile(r"<(\w+)>")


@dataclass(frozen=True)
class Block:
    lang: str
    info: str
    code: str
    line: int  # line of the opening fence in the page

    def option(self, name: str) -> str | None:
        found = re.search(rf"\b{name}=(\w+)", self.info)
        return found.group(1) if found else None


@dataclass(frozen=True)
class SqlExample:
    sql: str
    line: int  # line in the page
    error: str | None
    dialect: str | None
    result: str | None = None  # expected first value of the first row, as text
    variable: str | None = None  # name under which to keep the first value


def blocks(path: Path, *langs: str) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match.group(1) in langs:
            found.append(Block(match.group(1), match.group(2), match.group(3), text.count("\n", 0, match.start()) + 1))
    return found


def sql_examples(path: Path) -> Iterator[SqlExample]:
    """Statements of every sql block; an error marker belongs to the statement whose lines hold it."""
    for block in blocks(path, "sql"):
        lines = block.code.splitlines()
        previous_end = 0
        for text, start in split(block.code):
            end = start + text.count("\n")
            # From the line after the previous statement to this statement's last line (the
            # marker usually follows the ';' on that line, or sits on a comment line above).
            region = "\n".join(lines[previous_end:end])
            previous_end = end
            mark = ERROR_MARK.search(region)
            value = RESULT_MARK.search(region)
            keep = SET_MARK.search(region)
            yield SqlExample(
                text,
                block.line + start,
                mark.group(1) if mark else None,
                block.option("dialect"),
                value.group(1) if value else None,
                keep.group(1) if keep else None,
            )


def run_sql_page(path: Path, lake: wharf.Lakehouse) -> list[str]:
    failures = []
    variables: dict[str, str] = {}
    for example in sql_examples(path):
        where = f"{path.name}:{example.line}"
        unknown = [n for n in PLACEHOLDER.findall(example.sql) if n not in variables]
        if unknown:
            failures.append(f"{where}: <{unknown[0]}> is used before a '-- set: {unknown[0]}' statement")
            continue
        sql = PLACEHOLDER.sub(lambda m: variables[m.group(1)], example.sql)
        short = " ".join(example.sql.split())[:100]
        expected = getattr(errors, example.error) if example.error else None
        if example.error and not (isinstance(expected, type) and issubclass(expected, errors.WharfError)):
            failures.append(f"{where}: unknown error class {example.error!r} in marker")
            continue
        try:
            result = lake.sql(sql, dialect=example.dialect)
            value = str(result.scalar())
            if example.variable:
                variables[example.variable] = value
        except errors.WharfError as exc:
            if expected is None or not isinstance(exc, expected):
                first = str(exc).splitlines()[0]
                failures.append(f"{where}: {short}\n    -> {type(exc).__name__}: {first}")
            continue
        except Exception as exc:  # a raw library error is a bug in itself
            failures.append(f"{where}: {short}\n    -> raw {type(exc).__name__}: {exc}")
            continue
        if expected is not None:
            failures.append(f"{where}: {short}\n    -> succeeded, expected {example.error}")
        elif example.result is not None and value != example.result:
            failures.append(f"{where}: {short}\n    -> returned {value}, the page says {example.result}")
    return failures


def run_page(path: Path) -> list[str]:
    """Run the page's python blocks and ``$ wharf …`` console lines in document order, sharing one namespace."""
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    runner = CliRunner()
    failures = []
    for block in blocks(path, "python", "console"):
        if block.lang == "python":
            try:
                exec(compile(block.code, f"{path.name}:{block.line}", "exec"), namespace)  # noqa: S102
            except Exception as exc:
                failures.append(f"{path.name}:{block.line}: python block -> {type(exc).__name__}: {exc}")
            continue
        for offset, line in enumerate(block.code.splitlines(), 1):
            if not line.startswith("$ wharf"):
                continue
            command, _, comment = line[len("$ wharf") :].partition(" # ")
            expect_error = comment.strip().startswith("error")
            command, _, stdin_file = command.partition(" < ")
            stdin = Path(stdin_file.strip()).read_text() if stdin_file else None
            result = runner.invoke(app, shlex.split(command), input=stdin, catch_exceptions=True)
            where = f"{path.name}:{block.line + offset}"
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                failures.append(f"{where}: wharf{command} -> raised {type(result.exception).__name__}: {result.exception}")
            elif expect_error and result.exit_code != 1:
                failures.append(f"{where}: wharf{command} -> exit {result.exit_code}, expected an error (1)")
            elif not expect_error and result.exit_code != 0:
                detail = " ".join(result.output.split())[:300]
                failures.append(f"{where}: wharf{command} -> exit {result.exit_code}: {detail}")
    for value in namespace.values():
        if isinstance(value, wharf.Lakehouse):
            value.close()
    return failures


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Docs use relative lake paths: run them in an empty directory, with no $WHARF_HOME."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WHARF_HOME", raising=False)
    monkeypatch.setenv("WHARF_DEMO_ROWS", "2000")
    return tmp_path


def test_sql_reference_examples_run(workdir: Path) -> None:
    with wharf.connect(workdir / "lake", user="docs") as lake:
        failures = run_sql_page(DOCS / "sql.md", lake)
    assert not failures, f"{len(failures)} example(s) in docs/sql.md fail:\n" + "\n".join(failures)


PAGES = [
    "quickstart.md",
    "python.md",
    "cli.md",
    "errors.md",
    "index.md",
    "architecture.md",
    "interop.md",
    "adoption.md",
    "maintenance.md",
    "optimizer.md",
    "quality.md",
    "history.md",
    "cdc.md",
    "auth.md",
    "server.md",
    "../README.md",
    "governance.md",
]
# docs/storage.md runs in tests/test_object_storage.py: it needs the session's S3 and PostgreSQL servers.


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(workdir: Path, page: str) -> None:
    failures = run_page(DOCS / page)
    assert not failures, f"{len(failures)} example(s) in {page} fail:\n" + "\n".join(failures)


def test_readme_tour_runs(workdir: Path) -> None:
    with wharf.connect(workdir / "lake", user="docs") as lake:
        failures = run_sql_page(README, lake)
    assert not failures, "\n".join(failures)


def test_sql_reference_covers_every_statement() -> None:
    """Every statement kind the issue lists appears in an example of docs/sql.md."""
    text = "\n".join(" ".join(e.sql.split()).upper() for e in sql_examples(DOCS / "sql.md"))
    required = [
        "CREATE SCHEMA",
        "CREATE NAMESPACE",
        "CREATE VIEW",
        "CREATE OR REPLACE VIEW",
        "CREATE VIEW IF NOT EXISTS",
        "ALTER VIEW",
        "DROP VIEW",
        "SHOW VIEWS",
        "TRUNCATE TABLE",
        " LIKE SHOP.",
        "REPLACE TABLE",
        "ADD PARTITION FIELD",
        "DROP PARTITION FIELD",
        "REPLACE PARTITION FIELD",
        "WRITE ORDERED BY",
        "WRITE LOCALLY ORDERED BY",
        "WRITE DISTRIBUTED BY PARTITION",
        "WRITE UNORDERED",
        "FOR SYSTEM_VERSION AS OF",
        "FOR SYSTEM_TIME AS OF",
        "DROP NOT NULL",
        " FIRST",
        " AFTER ",
        "USING ICEBERG",
        "DESCRIBE EXTENDED",
        "DROP SCHEMA",
        "CASCADE",
        "SHOW SCHEMAS",
        "SHOW TABLES",
        "SHOW TABLES IN",
        "DESCRIBE",
        "DESCRIBE TABLE",
        "SHOW CREATE TABLE",
        "PARTITIONED BY",
        "TBLPROPERTIES",
        "YEARS(",
        "MONTHS(",
        "DAYS(",
        "HOURS(",
        "BUCKET(",
        "TRUNCATE(",
        "CREATE TABLE IF NOT EXISTS",
        "AS SELECT",
        "CREATE OR REPLACE TABLE",
        "DROP TABLE IF EXISTS",
        " PURGE",
        "RENAME TO",
        "ADD COLUMN ",
        "ADD COLUMNS",
        "DROP COLUMN",
        "RENAME COLUMN",
        "ALTER COLUMN",
        "SET TBLPROPERTIES",
        "UNSET TBLPROPERTIES",
        "SET IDENTIFIER FIELDS",
        "INSERT INTO",
        "INSERT OVERWRITE",
        "UPDATE ",
        "DELETE FROM",
        "MERGE INTO",
        "WHEN MATCHED AND",
        "WHEN NOT MATCHED THEN INSERT *",
        "WHEN NOT MATCHED BY SOURCE",
        "UPDATE SET *",
        "FOR VERSION AS OF",
        "FOR TIMESTAMP AS OF",
        " VERSION AS OF",
        " TIMESTAMP AS OF",
        ".BRANCH_",
        ".TAG_",
        "SET WHARF.BRANCH",
        "RESET WHARF.BRANCH",
        "SET WHARF.WAP_ID",
        "CREATE BRANCH",
        "CREATE OR REPLACE BRANCH",
        "CREATE BRANCH IF NOT EXISTS",
        "AS OF VERSION",
        "RETAIN",
        "WITH SNAPSHOT RETENTION",
        "CREATE TAG",
        "REPLACE BRANCH",
        "REPLACE TAG",
        "DROP BRANCH",
        "DROP TAG",
        "DROP BRANCH IF EXISTS",
        *(
            f"CALL SYSTEM.{p.upper()}("
            for p in (
                "rollback_to_snapshot",
                "rollback_to_timestamp",
                "set_current_snapshot",
                "fast_forward",
                "cherrypick_snapshot",
                "publish_changes",
                "expire_snapshots",
            )
        ),
        "TABLE =>",
        *(
            f".{m.upper()}"
            for m in (
                "snapshots",
                "history",
                "refs",
                "files",
                "data_files",
                "delete_files",
                "manifests",
                "partitions",
                "metadata_log_entries",
                "entries",
                "position_deletes",
                "all_files",
                "all_data_files",
                "all_delete_files",
                "all_manifests",
                "all_entries",
            )
        ),
    ]
    missing = [r for r in required if r not in text]
    assert not missing, f"docs/sql.md has no example of: {missing}"
    dialects = {e.dialect for e in sql_examples(DOCS / "sql.md")}
    assert {"spark", "trino"} <= dialects


def test_docs_link_to_pages_that_exist() -> None:
    for page in [README, *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(((?:docs/)?[\w-]+\.md)(?:#[\w-]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_error_markers_are_parsed(tmp_path: Path) -> None:
    """The marker convention itself: markers attach to the right statement."""
    page = tmp_path / "probe.md"
    page.write_text("```sql\nSELECT 1;\nSELECT * FROM nope;  -- error: NotFound\n-- error: SqlParseError\nSELEC 1;\n```\n")
    found = [(e.line, e.error) for e in sql_examples(page)]
    assert found == [(2, None), (3, "NotFound"), (5, "SqlParseError")]


def test_a_page_that_drifted_fails(tmp_path: Path) -> None:
    """The runner reports wrong results, unexpected errors, and missing expected errors."""
    page = tmp_path / "drift.md"
    page.write_text(
        "```sql\n"
        "SELECT 2;  -- result: 3\n"
        "SELECT 1;  -- error: NotFound\n"
        "SELECT * FROM nope;\n"
        "SELECT * FROM nope;  -- error: SqlParseError\n"
        "SELECT 42;  -- result: 42\n"
        "```\n"
    )
    with wharf.connect(tmp_path / "lake") as lake:
        failures = run_sql_page(page, lake)
    assert [f.split(":")[1] for f in failures] == ["2", "3", "4", "5"]
    assert "returned 2, the page says 3" in failures[0]
    assert "expected NotFound" in failures[1]


def test_set_markers_carry_values_into_later_statements(tmp_path: Path) -> None:
    page = tmp_path / "vars.md"
    page.write_text(
        "```sql\nSELECT <n>;\nSELECT 41 + 1;  -- set: n\nSELECT <n> + 1;  -- result: 43\nSELECT <n>;  -- result: 41\n```\n"
    )
    with wharf.connect(tmp_path / "lake") as lake:
        failures = run_sql_page(page, lake)
    assert len(failures) == 2
    assert "<n> is used before" in failures[0]
    assert "returned 42, the page says 41" in failures[1]
