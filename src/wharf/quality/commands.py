"""CLI commands: ``wharf quality check | history | rulesets`` and ``wharf wap``.

``wharf quality check`` exits with status 1 when a rule fails, so it gates a CI pipeline;
``wharf wap`` exits with 1 when the batch is rejected (a quarantined batch published its valid
rows: status 0). ``register`` adds the commands to the ``wharf`` app, which passes in how it
opens the lake, reports errors and prints (this module needs nothing from ``wharf.cli``).
"""

from __future__ import annotations

import enum
import io
import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from wharf.errors import InvalidArgument

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.quality.lake_quality import QualityRun


@dataclass(frozen=True)
class Cli:
    """What the commands need from the ``wharf`` app."""

    lake: Callable[[typer.Context], Lakehouse]
    reporting: Callable[[typer.Context], AbstractContextManager[None]]
    out: Callable[[], Console]
    err: Callable[[], Console]


class Output(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class Rows(enum.StrEnum):
    failed = "failed"
    passed = "passed"
    all = "all"


class OnFailure(enum.StrEnum):
    reject = "reject"
    quarantine = "quarantine"


_STYLE = {"Passed": "green", "Failed": "bold red", "Error": "bold yellow"}


def ruleset_argument(value: str) -> str:
    """``--ruleset``: a file holding DQDL, else a stored ruleset name (or DQDL text as it is)."""
    path = Path(value).expanduser()
    if len(value) < 4096 and path.is_file():
        return path.read_text(encoding="utf-8")
    return value


def read_data(lake: Lakehouse, value: str) -> Any:
    """``--from``: a Parquet, CSV or JSON-lines file, a ``.sql`` file holding a query, or a query."""
    path = Path(value).expanduser()
    if len(value) < 4096 and path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if suffix == ".csv":
            import pyarrow.csv as pcsv

            return pcsv.read_csv(path)
        if suffix in (".json", ".jsonl", ".ndjson"):
            import pyarrow.json as pjson

            return pjson.read_json(path)
        if suffix == ".sql":
            return path.read_text(encoding="utf-8")
        raise InvalidArgument(
            f"Cannot read {path}: expected a .parquet, .csv, .json/.jsonl or .sql file", hint="or pass a SELECT query"
        )
    return value


def _json_default(value: Any) -> Any:
    return str(value)


def _emit(table: pa.Table, fmt: Output, out: Console) -> None:
    if fmt == Output.json:
        for row in table.to_pylist():
            sys.stdout.write(json.dumps(row, default=_json_default) + "\n")
        return
    if fmt == Output.csv:
        import pyarrow.csv as pcsv

        plain = table.select([c for c in table.column_names if not _nested(table.schema.field(c).type)])
        nested = [c for c in table.column_names if _nested(table.schema.field(c).type)]
        for name in nested:  # lists and maps as JSON text in one cell
            cells = [json.dumps(v, default=_json_default) for v in table.column(name).to_pylist()]
            plain = plain.append_column(name, pa.array(cells, pa.string()))
        buffer = io.BytesIO()
        pcsv.write_csv(plain, buffer)
        sys.stdout.write(buffer.getvalue().decode())
        return
    grid = RichTable(header_style="bold cyan")
    for name in table.column_names:
        grid.add_column(name)
    for row in table.to_pylist()[:200]:
        grid.add_row(*(_cell(row[name]) for name in table.column_names))
    out.print(grid)
    if table.num_rows > 200:
        out.print(Text(f"… {table.num_rows - 200} more row(s); use --format csv or json for all", style="dim"))


def _nested(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_map(kind) or pa.types.is_struct(kind) or pa.types.is_large_list(kind)


def _cell(value: Any) -> str | Text:
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, str) and value in _STYLE:
        return Text(value, style=_STYLE[value])
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in value)
    return str(value)


def _summary(run: QualityRun) -> Text:
    passed = sum(r.outcome == "Passed" for r in run.rules)
    where = run.source.table or "query"
    if run.source.snapshot_id is not None:
        where += f" @ snapshot {run.source.snapshot_id}"
    status = "PASSED" if run.passed else "FAILED"
    return Text(
        f"{status}: {passed}/{len(run.rules)} rules passed on {where} (ruleset {run.ruleset.name}, run {run.run_id})",
        style="bold green" if run.passed else "bold red",
    )


def register(app: typer.Typer, cli: Cli) -> None:
    """Add ``wharf quality …`` and ``wharf wap`` to ``app``."""
    group = typer.Typer(help="Data quality: check tables against DQDL rulesets, see their history.", no_args_is_help=True)

    @group.command("check")
    def check(
        ctx: typer.Context,
        table: Annotated[str, typer.Argument(help="db.t, db.t.branch_x, 'db.t FOR VERSION AS OF <id>' or a SELECT query.")],
        ruleset: Annotated[str, typer.Option("--ruleset", "-r", help="A stored ruleset name, or a file of DQDL.")],
        rows: Annotated[Rows | None, typer.Option("--rows", help="Also print the rows that failed (or passed, all).")] = None,
        fmt: Annotated[Output, typer.Option("--format", "-f", help="table, json or csv.")] = Output.table,
    ) -> None:
        """Evaluate a ruleset on a table; exit status 1 if any rule fails (recorded in system.quality_results)."""
        with cli.reporting(ctx):
            lake = cli.lake(ctx)
            run = lake.quality.evaluate(table, ruleset_argument(ruleset), row_level=rows is not None)
            out = cli.out()
            if fmt == Output.table:
                out.print(_summary(run))
            _emit(run.to_arrow(), fmt, out)
            if rows is not None:
                if fmt == Output.table:
                    out.print(Text(f"\nRows ({rows.value}):", style="bold"))
                _emit(run.rows(rows.value), fmt, out)
            if run.alert is not None and not run.alert.delivered:
                cli.err().print(Text(f"Alert to {run.alert.url} not delivered: {run.alert.error}", style="yellow"))
        if not run.passed:
            raise typer.Exit(1)

    @group.command("history")
    def history(
        ctx: typer.Context,
        table: Annotated[str, typer.Argument(help="db.t")],
        limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many rows.")] = 50,
        fmt: Annotated[Output, typer.Option("--format", "-f", help="table, json or csv.")] = Output.table,
    ) -> None:
        """Recorded runs on a table, newest first: one row per rule, plus each run's and batch's summary."""
        with cli.reporting(ctx):
            lake = cli.lake(ctx)
            found = lake.quality.history(table, limit=limit)
            columns = [
                "evaluated_at",
                "kind",
                "step",
                "ruleset",
                "ref",
                "snapshot_id",
                "rule",
                "outcome",
                "failure_reason",
                "message",
            ]
            out = cli.out()
            if fmt == Output.table:
                score = lake.quality.score(table)
                shown = f"{score:.0%}" if score is not None else "never evaluated"
                out.print(Text(f"Quality score of {table}: {shown} (rules passed in the latest run)", style="bold"))
            _emit(found.select(columns) if fmt == Output.table else found, fmt, out)

    @group.command("rulesets")
    def rulesets(
        ctx: typer.Context,
        table: Annotated[str | None, typer.Argument(help="Only the rulesets of this table.")] = None,
    ) -> None:
        """Stored rulesets: name, table, rules, webhook."""
        with cli.reporting(ctx):
            lake = cli.lake(ctx)
            found = lake.quality.rulesets(table)
            grid = RichTable(header_style="bold cyan")
            for name in ("name", "table", "rules", "webhook", "created by"):
                grid.add_column(name)
            for r in found:
                grid.add_row(r.name, r.table, r.text, r.webhook or "", r.created_by)
            cli.out().print(grid if found else Text("No data quality rulesets yet.", style="dim"))

    app.add_typer(group, name="quality")

    @app.command("wap")
    def wap(
        ctx: typer.Context,
        table: Annotated[str, typer.Argument(help="db.t to write to.")],
        source: Annotated[str, typer.Option("--from", help="A .parquet/.csv/.jsonl/.sql file, a SELECT query or a table name.")],
        ruleset: Annotated[str, typer.Option("--ruleset", "-r", help="A stored ruleset name, or a file of DQDL.")],
        on_failure: Annotated[
            OnFailure, typer.Option("--on-failure", help="reject the batch, or quarantine failing rows.")
        ] = OnFailure.reject,
        branch: Annotated[str | None, typer.Option("--branch", help="Staging branch (default: one per batch).")] = None,
    ) -> None:
        """Write-audit-publish: stage rows on a branch, check them, publish to main only if they pass."""
        with cli.reporting(ctx):
            lake = cli.lake(ctx)
            result = lake.quality.write_audit_publish(
                table, read_data(lake, source), ruleset_argument(ruleset), on_failure=on_failure.value, staging_branch=branch
            )
            out = cli.out()
            style = {"published": "bold green", "quarantined": "bold yellow"}.get(result.outcome, "bold red")
            out.print(Text(f"{result.outcome.upper()}: {result.message}", style=style))
            out.print(
                f"batch {result.batch_id}; main {result.main_before} -> {result.main_after}; "
                f"staged snapshot {result.staged_snapshot_id} on branch {result.staging_branch}"
            )
            if result.report is not None:
                _emit(result.report.to_arrow(), Output.table, out)
        if not result.published:
            raise typer.Exit(1)


__all__ = ["Cli", "ruleset_argument", "read_data", "register"]
