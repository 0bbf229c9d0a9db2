"""CLI commands: ``wharf access …`` (discover tables, request access, approve or deny; the same as SQL and Python).

::

    wharf access find [PATTERN] [--tag domain=sales]
    wharf access request sales.orders --privilege SELECT --for 8h --reason "quarterly report"
    wharf access list [--status pending]
    wharf access approve 12 [--for 1h] [--comment "…"]
    wharf access deny 12 [--reason "…"]
    wharf access rules

The CLI opens the lake as its owner; ``--as USER`` acts as another principal (embedded mode: whoever
can open the lake directory can act as anyone — docs/governance.md says so). ``register`` adds the
group to the ``wharf`` app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table as RichTable
from rich.text import Text

from wharf.governance.commands import Cli
from wharf.governance.durations import format_duration

if TYPE_CHECKING:
    from wharf.governance.lake_access import Access


AsUser = Annotated[str | None, typer.Option("--as", help="Act as this user (default: the lake owner).")]


def register(app: typer.Typer, cli: Cli) -> None:
    """Add the ``access`` group to ``app``."""
    group = typer.Typer(name="access", help="Find tables, request access, approve or deny requests.", no_args_is_help=True)
    app.add_typer(group)

    def access(ctx: typer.Context, user: str | None) -> Access:
        lake = cli.lake(ctx)
        return (lake.session(user=user) if user else lake).governance.access

    def done(message: str) -> None:
        cli.err().print(Text(message, style="green"))

    @group.command("find")
    def find(
        ctx: typer.Context,
        pattern: Annotated[str | None, typer.Argument(help="Table names to match (* any text, | alternatives).")] = None,
        tag: Annotated[str | None, typer.Option("--tag", help="Only tables with this tag (name or name=value).")] = None,
        as_user: AsUser = None,
    ) -> None:
        """Tables you can find — name, description, owner, tags, approvers — even ones you cannot read yet."""
        with cli.reporting(ctx):
            name, _, value = (tag or "").partition("=")
            found = access(ctx, as_user).find(pattern, tag=name or None, value=value or None)
            table = RichTable("table", "description", "owner", "tags", "approvers", "your privileges")
            for info in found:
                tags = ", ".join(f"{k}={v}" for k, v in info.tags.items())
                table.add_row(
                    info.table, info.description, info.owner, tags, ", ".join(info.approvers), ", ".join(info.privileges)
                )
            cli.out().print(table)

    @group.command("request")
    def request(
        ctx: typer.Context,
        table: Annotated[str, typer.Argument(help="The table (db.t).")],
        reason: Annotated[str, typer.Option("--reason", "-m", help="Why you need it (approvers read this).")],
        privilege: Annotated[
            str, typer.Option("--privilege", "-p", help="SELECT, INSERT, UPDATE, DELETE, ALTER or MAINTAIN.")
        ] = "SELECT",
        duration: Annotated[str, typer.Option("--for", help="How long: 8h, 2d, '1 hour 30 minutes'.")] = "8h",
        as_user: AsUser = None,
    ) -> None:
        """Request a privilege on a table for a while; a self-service rule may approve it at once."""
        with cli.reporting(ctx):
            made, message = access(ctx, as_user).request_with_message(
                table, privilege=privilege, duration=duration, reason=reason
            )
            cli.out().print(f"request {made.id}: {made.status}")
            done(message)

    @group.command("list")
    def list_requests(
        ctx: typer.Context,
        status: Annotated[str | None, typer.Option("--status", help="pending, approved or denied.")] = None,
        as_user: AsUser = None,
    ) -> None:
        """Your requests, and those you decide."""
        with cli.reporting(ctx):
            table = RichTable("id", "requester", "privilege", "table", "for", "reason", "status", "decided by", "comment")
            for r in access(ctx, as_user).requests(status):
                table.add_row(
                    str(r.id),
                    r.requester,
                    r.privilege,
                    r.table,
                    r.duration,
                    r.reason,
                    r.status,
                    r.decided_by or "",
                    r.comment or "",
                )
            cli.out().print(table)

    @group.command("approve")
    def approve(
        ctx: typer.Context,
        request_id: Annotated[int, typer.Argument(help="The request's id (wharf access list).")],
        duration: Annotated[str | None, typer.Option("--for", help="Grant for less than was asked (never more).")] = None,
        comment: Annotated[str | None, typer.Option("--comment", "-m", help="A note for the requester.")] = None,
        as_user: AsUser = None,
    ) -> None:
        """Approve a pending request: the requester holds the privilege until it expires by itself."""
        with cli.reporting(ctx):
            decided = access(ctx, as_user).approve(request_id, duration=duration, comment=comment)
            granted = format_duration(decided.granted_ms or 0)
            done(f"Approved request {decided.id}: {decided.privilege} on {decided.table} for {granted}")

    @group.command("deny")
    def deny(
        ctx: typer.Context,
        request_id: Annotated[int, typer.Argument(help="The request's id (wharf access list).")],
        reason: Annotated[str | None, typer.Option("--reason", "-m", help="Why not.")] = None,
        as_user: AsUser = None,
    ) -> None:
        """Deny a pending request."""
        with cli.reporting(ctx):
            decided = access(ctx, as_user).deny(request_id, reason=reason)
            done(f"Denied request {decided.id}")

    @group.command("rules")
    def rules(ctx: typer.Context, as_user: AsUser = None) -> None:
        """The self-service rules (CREATE ACCESS RULE)."""
        with cli.reporting(ctx):
            table = RichTable("rule", "allows", "privileges", "scope", "at most", "without approval", "revoke unused after")
            for r in access(ctx, as_user).rules():
                idle = "" if r.idle_ms is None else format_duration(r.idle_ms)
                table.add_row(
                    r.name,
                    f"{r.grantee_kind} {r.grantee}",
                    ", ".join(r.privileges),
                    r.scope,
                    format_duration(r.max_duration_ms),
                    "yes" if r.without_approval else "no",
                    idle,
                )
            cli.out().print(table)
