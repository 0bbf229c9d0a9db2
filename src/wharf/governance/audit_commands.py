"""CLI commands: ``wharf audit export`` (JSON lines on stdout or a file) and ``wharf audit show``.

Both read the audit log as the principal the ``wharf`` app opens the lake as (the owner, or a
principal granted ``SELECT ON TABLE system.audit_log``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable
from rich.text import Text

from wharf.governance.commands import Cli

SinceOpt = Annotated[
    str | None, typer.Option("--since", help="From this time (inclusive): 2026-12-01, 2026-12-01T10:00:00Z, or 24h / 7d ago.")
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Up to this time (exclusive), same forms as --since.")]
PrincipalOpt = Annotated[str | None, typer.Option("--principal", "-p", help="Only this principal's records.")]


def register(app: typer.Typer, cli: Cli) -> None:
    """Add the ``audit`` group to ``app``."""
    audit = typer.Typer(name="audit", help="The audit log: every statement and API call (docs/governance.md#audit).")
    app.add_typer(audit)

    @audit.command("export")
    def export(
        ctx: typer.Context,
        since: SinceOpt = None,
        until: UntilOpt = None,
        principal: PrincipalOpt = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.", show_default=False)
        ] = None,
    ) -> None:
        """Export the audit log as JSON lines: ``wharf audit export --since 24h > audit.jsonl``."""
        with cli.reporting(ctx):
            lake = cli.lake(ctx)
            if output is None:
                count = lake.audit.export(sys.stdout, since=since, until=until, principal=principal)
            else:
                with output.open("w", encoding="utf-8") as out:
                    count = lake.audit.export(out, since=since, until=until, principal=principal)
            cli.err().print(Text(f"Exported {count} audit record{'s' if count != 1 else ''}", style="green"))

    @audit.command("show")
    def show(
        ctx: typer.Context,
        since: SinceOpt = "24h",
        until: UntilOpt = None,
        principal: PrincipalOpt = None,
        limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many (the newest).")] = 50,
    ) -> None:
        """The newest audit records as a table."""
        with cli.reporting(ctx):
            found = cli.lake(ctx).audit.records(since=since, until=until, principal=principal)[-limit:]
            table = RichTable("time", "principal", "operation", "decision", "statement", "reason")
            for r in found:
                time_text = r.to_json()["time"]
                table.add_row(time_text, r.principal, r.operation, r.decision, r.statement[:80], (r.reason or "")[:80])
            cli.out().print(table)
