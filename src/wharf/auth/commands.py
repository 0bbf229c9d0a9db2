"""CLI commands: ``wharf users``, ``wharf tokens``, ``wharf principals`` and ``wharf auth``.

``register`` adds them to the ``wharf`` app; the app passes in how it opens the lake, reports
errors and prints, so this module needs nothing from ``wharf.cli`` (which sits above it).
Secrets (a new token, a client secret) are printed once, alone on stdout, so a script can
capture them; everything else a person should read goes to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from wharf.auth.lake_auth import DEFAULT_TOKEN_EXPIRY, LakeAuth
from wharf.auth.service import Account
from wharf.errors import InvalidArgument

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse


@dataclass(frozen=True)
class Cli:
    """What the commands need from the ``wharf`` app."""

    lake: Callable[[typer.Context], Lakehouse]
    reporting: Callable[[typer.Context], AbstractContextManager[None]]
    out: Callable[[], Console]
    err: Callable[[], Console]


def parse_attributes(items: list[str] | None) -> dict[str, str]:
    """``k=v`` items into a dict (a clear error for anything else)."""
    attributes = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"--attribute {item!r} is not key=value", hint="--attribute department=finance")
        attributes[key.strip()] = value
    return attributes


def read_password(from_stdin: bool) -> str | None:
    """The password from the first line of stdin, or asked for on a terminal; None when neither."""
    if from_stdin:
        line = typer.get_text_stream("stdin").readline().rstrip("\r\n")
        if not line:
            raise InvalidArgument(
                "--password-stdin read an empty password", hint="echo 'the password' | wharf users add NAME --password-stdin"
            )
        return line
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    return None


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def accounts_table(accounts: list[Account], *, service: bool) -> RichTable:
    columns = ["name", "status", *(["client id"] if service else ["password"]), "groups", "attributes", "created"]
    table = RichTable(*columns, header_style="bold cyan")
    for a in accounts:
        status = Text("disabled", style="red") if a.disabled else Text("enabled", style="green")
        extra = [a.client_id or ""] if service else ["yes" if a.has_password else "no"]
        attributes = ", ".join(f"{k}={v}" for k, v in sorted(a.attributes.items()))
        table.add_row(a.name, status, *extra, ", ".join(a.groups), attributes, _when(a.created_at))
    return table


def register(app: typer.Typer, cli: Cli) -> None:
    """Add the ``users``, ``tokens``, ``principals`` and ``auth`` groups to ``app``."""
    users = typer.Typer(name="users", help="Users of a served lake: passwords, disable/enable.", no_args_is_help=True)
    tokens = typer.Typer(name="tokens", help="Personal access tokens (bearer tokens for users).", no_args_is_help=True)
    principals = typer.Typer(
        name="principals", help="Service principals: client id + secret for OAuth client credentials.", no_args_is_help=True
    )
    auth = typer.Typer(name="auth", help="Token signing keys.", no_args_is_help=True)
    for group in (users, tokens, principals, auth):
        app.add_typer(group)

    def lake_auth(ctx: typer.Context) -> LakeAuth:
        return cli.lake(ctx).auth

    def done(message: str) -> None:
        cli.err().print(Text(message, style="green"))

    # --- wharf users ----------------------------------------------------------------------

    @users.command("add")
    def users_add(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="User name.")],
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
        ] = False,
        attribute: Annotated[list[str] | None, typer.Option("--attribute", help="key=value (repeatable).")] = None,
        group: Annotated[list[str] | None, typer.Option("--group", help="A group the user belongs to (repeatable).")] = None,
    ) -> None:
        """Add a user (asks for a password on a terminal; without one the user works with tokens only)."""
        with cli.reporting(ctx):
            attributes = parse_attributes(attribute)
            password = read_password(password_stdin)
            account = lake_auth(ctx).add_user(name, password, groups=group or (), attributes=attributes)
            how = "with a password" if account.has_password else "without a password (use wharf tokens create)"
            done(f"Added user {account.name} {how}")

    @users.command("list")
    def users_list(ctx: typer.Context) -> None:
        """List users."""
        with cli.reporting(ctx):
            cli.out().print(accounts_table(lake_auth(ctx).users(), service=False))

    @users.command("disable")
    def users_disable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")]) -> None:
        """Disable a user: every token of theirs stops working at once."""
        with cli.reporting(ctx):
            lake_auth(ctx).disable_user(name)
            done(f"Disabled user {name}")

    @users.command("enable")
    def users_enable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")]) -> None:
        """Enable a disabled user (their unrevoked personal access tokens work again)."""
        with cli.reporting(ctx):
            lake_auth(ctx).enable_user(name)
            done(f"Enabled user {name}")

    @users.command("set-password")
    def users_set_password(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="User name.")],
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
        ] = False,
    ) -> None:
        """Set a user's password (their signed access tokens stop working)."""
        with cli.reporting(ctx):
            password = read_password(password_stdin)
            if password is None:
                raise InvalidArgument(
                    "No password given", hint=f"echo 'the password' | wharf users set-password {name} --password-stdin"
                )
            lake_auth(ctx).set_password(name, password)
            done(f"Set the password of {name}")

    # --- wharf tokens ---------------------------------------------------------------------

    @tokens.command("create")
    def tokens_create(
        ctx: typer.Context,
        user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
        expires: Annotated[str, typer.Option("--expires", help="Lifetime: 30d, 12h, 90m, 1w, or never.")] = DEFAULT_TOKEN_EXPIRY,
        label: Annotated[str | None, typer.Option("--label", help="What the token is for.")] = None,
    ) -> None:
        """Create a personal access token: printed once, on stdout; store it now."""
        with cli.reporting(ctx):
            new = lake_auth(ctx).create_token(user, expires=expires, label=label)
            typer.echo(new.token)
            until = f"expires {_when(new.expires_at)}" if new.expires_at else "never expires"
            cli.err().print(Text(f"Token {new.id} for {user} ({until}). It is shown only this once.", style="yellow"))

    @tokens.command("list")
    def tokens_list(
        ctx: typer.Context, user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None
    ) -> None:
        """List personal access tokens (never their secrets)."""
        with cli.reporting(ctx):
            table = RichTable("id", "user", "label", "status", "created", "expires", "last used", header_style="bold cyan")
            style = {"active": "green", "expired": "yellow", "revoked": "red"}
            for t in lake_auth(ctx).tokens(user):
                table.add_row(
                    t.id,
                    t.user,
                    t.label or "",
                    Text(t.status, style=style[t.status]),
                    _when(t.created_at),
                    _when(t.expires_at) or "never",
                    _when(t.last_used_at),
                )
            cli.out().print(table)

    @tokens.command("revoke")
    def tokens_revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id.")]) -> None:
        """Revoke a personal access token: it stops working at once."""
        with cli.reporting(ctx):
            info = lake_auth(ctx).revoke_token(token_id)
            done(f"Revoked token {info.id} of {info.user}")

    # --- wharf principals ------------------------------------------------------------------

    def print_credentials(client_id: str, client_secret: str) -> None:
        typer.echo(f"client_id: {client_id}")
        typer.echo(f"client_secret: {client_secret}")
        cli.err().print(
            Text(
                "The secret is shown only this once. PyIceberg: RestCatalog(…, credential='<client_id>:<client_secret>')",
                style="yellow",
            )
        )

    @principals.command("create")
    def principals_create(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="Service principal name.")],
        attribute: Annotated[list[str] | None, typer.Option("--attribute", help="key=value (repeatable).")] = None,
        group: Annotated[list[str] | None, typer.Option("--group", help="A group it belongs to (repeatable).")] = None,
    ) -> None:
        """Create a service principal: its client id and secret are printed once."""
        with cli.reporting(ctx):
            creds = lake_auth(ctx).create_principal(name, groups=group or (), attributes=parse_attributes(attribute))
            print_credentials(creds.client_id, creds.client_secret)

    @principals.command("list")
    def principals_list(ctx: typer.Context) -> None:
        """List service principals."""
        with cli.reporting(ctx):
            cli.out().print(accounts_table(lake_auth(ctx).principals(), service=True))

    @principals.command("disable")
    def principals_disable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Service principal.")]) -> None:
        """Disable a service principal: its tokens stop working at once."""
        with cli.reporting(ctx):
            lake_auth(ctx).disable_principal(name)
            done(f"Disabled service principal {name}")

    @principals.command("enable")
    def principals_enable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Service principal.")]) -> None:
        """Enable a disabled service principal."""
        with cli.reporting(ctx):
            lake_auth(ctx).enable_principal(name)
            done(f"Enabled service principal {name}")

    @principals.command("rotate-secret")
    def principals_rotate_secret(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Service principal.")]) -> None:
        """A new client secret (printed once); the old secret and the tokens it got stop working at once."""
        with cli.reporting(ctx):
            creds = lake_auth(ctx).rotate_secret(name)
            print_credentials(creds.client_id, creds.client_secret)

    # --- wharf auth -----------------------------------------------------------------------

    @auth.command("rotate-key")
    def auth_rotate_key(
        ctx: typer.Context,
        invalidate_previous: Annotated[
            bool,
            typer.Option("--invalidate-previous", help="Also end every token signed with older keys now (for a leaked key)."),
        ] = False,
    ) -> None:
        """New token signing key; tokens signed with the previous one stay valid until they expire."""
        with cli.reporting(ctx):
            kid = lake_auth(ctx).rotate_key(invalidate_previous=invalidate_previous)
            note = "; tokens signed with older keys no longer work" if invalidate_previous else ""
            done(f"New signing key {kid}{note}")

    @auth.command("keys")
    def auth_keys(ctx: typer.Context) -> None:
        """List token signing keys (ids and dates, never the secrets)."""
        with cli.reporting(ctx):
            table = RichTable("kid", "algorithm", "status", "created", "retired", header_style="bold cyan")
            for k in lake_auth(ctx).signing_keys():
                status = Text("signing", style="green") if k.active else Text("verifying until expiry", style="yellow")
                table.add_row(k.kid, k.algorithm, status, _when(k.created_at), _when(k.retired_at))
            cli.out().print(table)
