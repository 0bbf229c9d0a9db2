"""CLI commands: ``wharf roles …`` and ``wharf grants …`` (the same operations as ``lake.governance`` and SQL).

``register`` adds them to the ``wharf`` app, which passes in how it opens the lake (as ``--user``
or the owner), reports errors and prints.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from wharf.errors import InvalidArgument

if TYPE_CHECKING:
    from wharf.governance.lake_governance import Governance
    from wharf.governance.state import Grant
    from wharf.lakehouse import Lakehouse


@dataclass(frozen=True)
class Cli:
    """What the commands need from the ``wharf`` app."""

    lake: Callable[[typer.Context], Lakehouse]
    reporting: Callable[[typer.Context], AbstractContextManager[None]]
    out: Callable[[], Console]
    err: Callable[[], Console]


UserOpt = Annotated[str | None, typer.Option("--user", "-u", help="Grantee: a user.")]
GroupOpt = Annotated[str | None, typer.Option("--group", "-g", help="Grantee: a group.")]
RoleOpt = Annotated[str | None, typer.Option("--role", "-r", help="Grantee: a role.")]
TableOpt = Annotated[str | None, typer.Option("--table", "-t", help="Object: a table or view (db.t).")]
NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n", help="Object: a namespace.")]
CatalogOpt = Annotated[bool, typer.Option("--catalog", help="Object: the whole lake.")]


def _grant_table(grants: list[Grant]) -> RichTable:
    table = RichTable("privilege", "object", "grantee", "granted by")
    for g in grants:
        table.add_row(g.privilege, g.object_label, f"{g.grantee_kind} {g.grantee}", g.granted_by)
    return table


def register(app: typer.Typer, cli: Cli) -> None:
    """Add the ``roles`` and ``grants`` groups to ``app``."""
    roles = typer.Typer(name="roles", help="Roles: create, drop, grant to users, groups and roles.", no_args_is_help=True)
    grants = typer.Typer(name="grants", help="Privileges on the catalog, namespaces, tables and columns.", no_args_is_help=True)
    app.add_typer(roles)
    app.add_typer(grants)

    def governance(ctx: typer.Context) -> Governance:
        return cli.lake(ctx).governance

    def done(message: str) -> None:
        cli.err().print(Text(message, style="green"))

    @roles.command("list")
    def roles_list(ctx: typer.Context) -> None:
        """The roles and whom each is granted to."""
        with cli.reporting(ctx):
            table = RichTable("role", "granted to")
            for info in governance(ctx).roles():
                table.add_row(info.name, ", ".join(info.granted_to))
            cli.out().print(table)

    @roles.command("create")
    def roles_create(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Role name.")]) -> None:
        """Create a role."""
        with cli.reporting(ctx):
            governance(ctx).create_role(name)
            done(f"Created role {name}")

    @roles.command("drop")
    def roles_drop(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Role name.")]) -> None:
        """Drop a role (its grants go with it)."""
        with cli.reporting(ctx):
            governance(ctx).drop_role(name)
            done(f"Dropped role {name}")

    @roles.command("grant")
    def roles_grant(
        ctx: typer.Context,
        role: Annotated[str, typer.Argument(help="The role to grant.")],
        user: UserOpt = None,
        group: GroupOpt = None,
        to_role: RoleOpt = None,
    ) -> None:
        """Grant a role to a user, a group or another role."""
        with cli.reporting(ctx):
            governance(ctx).grant_role(role, user=user, group=group, to_role=to_role)
            done(f"Granted role {role}")

    @roles.command("revoke")
    def roles_revoke(
        ctx: typer.Context,
        role: Annotated[str, typer.Argument(help="The role to revoke.")],
        user: UserOpt = None,
        group: GroupOpt = None,
        to_role: RoleOpt = None,
    ) -> None:
        """Revoke a role from a user, a group or another role."""
        with cli.reporting(ctx):
            governance(ctx).revoke_role(role, user=user, group=group, to_role=to_role)
            done(f"Revoked role {role}")

    @roles.command("map-group")
    def roles_map_group(
        ctx: typer.Context,
        group: Annotated[str, typer.Argument(help="The identity provider's group, as its groups claim spells it.")],
        role: Annotated[str, typer.Argument(help="The role its members get.")],
    ) -> None:
        """Map an identity provider's group to a role (its members hold the role while their token names the group)."""
        with cli.reporting(ctx):
            added = governance(ctx).map_group(group, role)
            done(f"Mapped group {group!r} to role {role}" if added else f"Group {group!r} was already mapped to role {role}")

    @roles.command("unmap-group")
    def roles_unmap_group(
        ctx: typer.Context,
        group: Annotated[str, typer.Argument(help="The identity provider's group.")],
        role: Annotated[str, typer.Argument(help="The role to take back.")],
    ) -> None:
        """Remove a group-to-role mapping."""
        with cli.reporting(ctx):
            if not governance(ctx).unmap_group(group, role):
                raise InvalidArgument(f"Group {group!r} is not mapped to role {role}", hint="wharf roles mappings")
            done(f"Unmapped group {group!r} from role {role}")

    @roles.command("mappings")
    def roles_mappings(ctx: typer.Context) -> None:
        """Which groups (from SQL or the identity provider) hold which roles."""
        with cli.reporting(ctx):
            table = RichTable("group", "role")
            for group, role in governance(ctx).group_mappings():
                table.add_row(group, role)
            cli.out().print(table)

    @grants.command("list")
    def grants_list(
        ctx: typer.Context,
        table: TableOpt = None,
        namespace: NamespaceOpt = None,
        catalog: CatalogOpt = False,
        user: UserOpt = None,
        group: GroupOpt = None,
        role: RoleOpt = None,
    ) -> None:
        """The grants on one object (--table/--namespace/--catalog) or to one grantee (--user/--group/--role)."""
        with cli.reporting(ctx):
            g = governance(ctx)
            if table or namespace or catalog:
                found = g.grants_on(table=table, namespace=namespace, catalog=catalog)
            elif user or group or role:
                found = g.grants_to(user=user, group=group, role=role)
            else:
                raise InvalidArgument("Name an object or a grantee", hint="wharf grants list --table db.t | --role analyst")
            cli.out().print(_grant_table(found))

    @grants.command("grant")
    def grants_grant(
        ctx: typer.Context,
        privileges: Annotated[list[str], typer.Argument(help="SELECT, INSERT, … or ALL.")],
        table: TableOpt = None,
        namespace: NamespaceOpt = None,
        catalog: CatalogOpt = False,
        column: Annotated[list[str] | None, typer.Option("--column", "-c", help="Only this column (repeatable).")] = None,
        user: UserOpt = None,
        group: GroupOpt = None,
        role: RoleOpt = None,
    ) -> None:
        """Grant privileges on an object to a user, group or role."""
        with cli.reporting(ctx):
            governance(ctx).grant(
                privileges,
                table=table,
                namespace=namespace,
                catalog=catalog,
                columns=column or (),
                user=user,
                group=group,
                role=role,
            )
            done(f"Granted {', '.join(p.upper() for p in privileges)}")

    @grants.command("revoke")
    def grants_revoke(
        ctx: typer.Context,
        privileges: Annotated[list[str], typer.Argument(help="SELECT, INSERT, … or ALL.")],
        table: TableOpt = None,
        namespace: NamespaceOpt = None,
        catalog: CatalogOpt = False,
        column: Annotated[list[str] | None, typer.Option("--column", "-c", help="Only this column (repeatable).")] = None,
        user: UserOpt = None,
        group: GroupOpt = None,
        role: RoleOpt = None,
    ) -> None:
        """Revoke privileges on an object from a user, group or role."""
        with cli.reporting(ctx):
            count = governance(ctx).revoke(
                privileges,
                table=table,
                namespace=namespace,
                catalog=catalog,
                columns=column or (),
                user=user,
                group=group,
                role=role,
            )
            done(f"Revoked {count} grant(s)")
