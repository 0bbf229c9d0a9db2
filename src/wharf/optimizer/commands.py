"""CLI commands: ``wharf optimize TABLE`` and ``wharf optimizer run | serve | policy``.

``register`` adds them to the ``wharf`` app; the app passes in how it opens the lake, reports
errors and prints, so this module needs nothing from ``wharf.cli`` (which sits above it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable
from rich.text import Text

from wharf.errors import InvalidArgument
from wharf.optimizer.decide import COMPACT, EXPIRE, ORPHANS, Action, Decision, TableState, format_bytes, measure
from wharf.optimizer.log import FAILED, OK, SKIPPED, LogEntry
from wharf.optimizer.runner import Compaction, Optimizer, PassReport
from wharf.tables.loader import split_name
from wharf.tables.optimizer_policy import PREFIX, SETTINGS

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse


@dataclass(frozen=True)
class Cli:
    """What the commands need from the ``wharf`` app."""

    lake: Callable[[typer.Context], Lakehouse]
    reporting: Callable[[typer.Context], AbstractContextManager[None]]
    out: Callable[[], Console]
    err: Callable[[], Console]


_STYLE = {OK: "green", SKIPPED: "yellow", FAILED: "bold red"}


def entry_details(entry: LogEntry) -> str:
    """One line saying what an action did."""
    if entry.action == COMPACT:
        text = (
            f"rewrote {entry.rewritten_files or 0} data files ({format_bytes(entry.rewritten_bytes or 0)}) "
            f"into {entry.added_files or 0}"
        )
        if entry.removed_delete_files:
            text += f", removed {entry.removed_delete_files} delete files"
    elif entry.action == EXPIRE:
        text = f"expired {entry.expired_snapshots or 0} snapshots, deleted {entry.deleted_files or 0} files"
    elif entry.action == ORPHANS:
        text = f"deleted {entry.deleted_files or 0} orphan files"
    else:
        text = ""
    if entry.outcome != OK:
        text = entry.message or ""
    elif entry.message:
        text += f" ({entry.message})"
    return text


def summary_table(entries: list[LogEntry], *, with_table: bool = False, title: str | None = None) -> RichTable:
    out = RichTable(title=title, title_justify="left", header_style="bold cyan")
    if with_table:
        out.add_column("table")
    for column in ("action", "outcome", "data files", "result", "time"):
        out.add_column(column)
    for e in entries:
        files = f"{e.data_files_before} → {e.data_files_after}" if e.data_files_after is not None else ""
        cells: list[str | Text] = [
            e.action,
            Text(e.outcome, style=_STYLE.get(e.outcome, "")),
            files,
            entry_details(e),
            f"{e.duration_ms / 1000:.2f}s",
        ]
        out.add_row(*([e.table_name] if with_table else []), *cells)
    return out


def decisions_table(decisions: list[Decision], report: PassReport | None = None) -> RichTable:
    """Per table: what the pass decided and why (and, after a run, how each action ended)."""
    outcomes: dict[tuple[str, str], LogEntry] = {(e.table_name, e.action): e for e in (report.entries if report else [])}
    out = RichTable("table", "action", "why", *(["outcome", "result"] if report else []), header_style="bold cyan")
    for d in decisions:
        if not d.actions:
            out.add_row(d.table, Text("—", style="dim"), Text(d.skipped or "", style="dim"), *(["", ""] if report else []))
            continue
        for action in d.actions:
            row: list[str | Text] = [d.table, action.kind, action.reason]
            if report:
                entry = outcomes.get((d.table, action.kind))
                row += [Text(entry.outcome, style=_STYLE.get(entry.outcome, "")), entry_details(entry)] if entry else ["", ""]
            out.add_row(*row)
    return out


def parse_options(items: list[str]) -> dict[str, str]:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"--option {item!r} is not key=value", hint="--option min-input-files=2")
        options[key.strip()] = value.strip()
    return options


@contextmanager
def _progress(err: Console, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A byte progress bar on stderr while compaction rewrites groups (only when someone watches)."""
    if not err.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def register(app: typer.Typer, cli: Cli) -> None:
    """Add ``optimize`` and the ``optimizer`` group to ``app``."""
    group = typer.Typer(
        name="optimizer",
        help="The automatic optimizer: maintain tables by their wharf.optimizer.* policy.",
        no_args_is_help=True,
    )
    app.add_typer(group)

    @app.command()
    def optimize(
        ctx: typer.Context,
        table: Annotated[str, typer.Argument(help="namespace.table")],
        strategy: Annotated[
            str, typer.Option("--strategy", help="binpack, or sort (by --sort-order or the table's order).")
        ] = "binpack",
        sort_order: Annotated[
            str | None, typer.Option("--sort-order", help="For --strategy sort: 'c1 DESC, c2' or 'zorder(c1, c2)'.")
        ] = None,
        where: Annotated[
            str | None, typer.Option("--where", help="Only files that may hold rows matching this predicate.")
        ] = None,
        option: Annotated[
            list[str] | None, typer.Option("--option", help="rewrite_data_files option key=value (repeatable).")
        ] = None,
        expire: Annotated[
            bool, typer.Option("--expire/--no-expire", help="Then expire snapshots by the table's policy.")
        ] = False,
        orphans: Annotated[
            bool, typer.Option("--orphans/--no-orphans", help="Then delete orphan files by the table's policy.")
        ] = False,
    ) -> None:
        """Compact one table now (then optionally expire snapshots and delete orphan files); log it and summarise."""
        with cli.reporting(ctx):
            lake = cli.lake(ctx)
            name = lake.table(table).full_name  # NotFound with a hint, the catalog's spelling
            optimizer = Optimizer(lake)
            policy = optimizer.policy(name)
            stats = measure(lake.iceberg_table(*split_name(name)), policy, time.time(), lake.planner)
            actions = [Action(COMPACT, "requested (wharf optimize)")]
            if expire:
                actions.append(Action(EXPIRE, f"requested: snapshots older than {policy.retention_days:g} day(s)"))
            if orphans:
                actions.append(
                    Action(ORPHANS, f"requested: unreferenced files older than {policy.orphan_retention_days:g} day(s)")
                )
            spec = Compaction(strategy, sort_order, parse_options(option or []) or None, where)
            with _progress(cli.err(), f"Compacting {name}") as progress:
                entries = optimizer.maintain(name, actions, policy, compaction=spec, progress=progress, stats=stats)
            cli.out().print(
                summary_table(entries, title=f"{name}: {stats.data_files} data files, {stats.delete_files} delete files before")
            )
            if any(e.outcome == FAILED for e in entries):
                raise typer.Exit(1)

    @group.command("run")
    def run(
        ctx: typer.Context,
        tables: Annotated[list[str] | None, typer.Option("--table", "-t", help="Only this table (repeatable).")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be done, and why; do nothing.")] = False,
    ) -> None:
        """One pass over every table (for cron): decide by policy, act, log to system.maintenance_log."""
        with cli.reporting(ctx):
            optimizer = Optimizer(cli.lake(ctx), tables=tables)
            if dry_run:
                cli.out().print(decisions_table(optimizer.plan()))
                return
            report = optimizer.run_once()
            cli.out().print(decisions_table(report.decisions, report))
            cli.out().print(
                Text(
                    f"{len(report.acted)} of {len(report.decisions)} table(s) maintained, {len(report.entries)} action(s), "
                    f"{len(report.failed)} failed, in {report.finished - report.started:.1f}s",
                    style="red" if report.failed else "green",
                )
            )
            if report.failed:
                raise typer.Exit(1)

    @group.command("serve")
    def serve(
        ctx: typer.Context,
        interval: Annotated[float, typer.Option("--interval", help="Seconds between passes.")] = 60.0,
        tables: Annotated[list[str] | None, typer.Option("--table", "-t", help="Only this table (repeatable).")] = None,
        passes: Annotated[int | None, typer.Option("--passes", help="Stop after this many passes.")] = None,
    ) -> None:
        """Run passes every --interval seconds until interrupted (Ctrl-C / SIGTERM finish the current table)."""
        with cli.reporting(ctx):
            optimizer = Optimizer(cli.lake(ctx), tables=tables)
            out = cli.out()

            def show(report: PassReport) -> None:
                if report.entries:
                    out.print(summary_table(report.entries, with_table=True, title=f"pass {report.run_id}"))

            cli.err().print(Text(f"Optimizer serving every {interval:g}s; Ctrl-C to stop.", style="dim"))
            count = optimizer.serve(interval, max_passes=passes, on_pass=show)
            cli.err().print(Text(f"Optimizer stopped after {count} pass(es).", style="dim"))

    @group.command("policy")
    def policy(ctx: typer.Context, table: Annotated[str, typer.Argument(help="namespace.table")]) -> None:
        """The table's effective wharf.optimizer.* settings and where each comes from."""
        with cli.reporting(ctx):
            lake = cli.lake(ctx)
            name = lake.table(table).full_name
            effective = Optimizer(lake).policy(name)
            values = effective.as_properties()
            out = RichTable("property", "value", "from", "meaning", header_style="bold cyan", title=name, title_justify="left")
            for setting in SETTINGS:
                key = PREFIX + setting.key
                out.add_row(key, values[key], effective.origins.get(key, "default"), setting.doc)
            cli.out().print(out)
            state = Optimizer(lake).log.states().get(name, TableState())
            if state.consecutive_failures:
                cli.out().print(Text(f"{state.consecutive_failures} consecutive failed run(s)", style="red"))


__all__ = ["Cli", "decisions_table", "entry_details", "parse_options", "register", "summary_table"]
