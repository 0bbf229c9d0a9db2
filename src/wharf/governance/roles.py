"""Roles, and roles granted to users, groups and other roles (a hierarchy without cycles)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wharf.auth.service import check_name
from wharf.errors import AlreadyExists, InvalidArgument, NotFound
from wharf.governance import tables as t
from wharf.governance.privileges import GRANTEE_KINDS, GROUP, ROLE
from wharf.governance.store import GovernanceStore, now_ms


def create_role(store: GovernanceStore, name: str, by: str, *, if_not_exists: bool = False) -> bool:
    check_name(name, "role name")

    def run(conn: Connection) -> bool:
        if conn.execute(sa.select(t.roles.c.name).where(t.roles.c.name == name)).first() is not None:
            if if_not_exists:
                return False
            raise AlreadyExists(f"Role {name!r} already exists")
        conn.execute(t.roles.insert().values(name=name, created_by=by, created_at_ms=now_ms()))
        return True

    return store.run(run)


def drop_role(store: GovernanceStore, name: str, *, if_exists: bool = False) -> None:
    """Drop a role: every grant to it and of it goes too."""

    def run(conn: Connection) -> None:
        if conn.execute(t.roles.delete().where(t.roles.c.name == name)).rowcount == 0 and not if_exists:
            raise NotFound(f"No role named {name!r}", hint="SHOW ROLES lists them")
        conn.execute(t.role_grants.delete().where(t.role_grants.c.role == name))
        conn.execute(t.role_grants.delete().where(t.role_grants.c.grantee_kind == ROLE, t.role_grants.c.grantee == name))
        conn.execute(t.grants.delete().where(t.grants.c.grantee_kind == ROLE, t.grants.c.grantee == name))

    store.run(run)


def _role_exists(conn: Connection, name: str) -> None:
    if conn.execute(sa.select(t.roles.c.name).where(t.roles.c.name == name)).first() is None:
        raise NotFound(f"No role named {name!r}", hint=f"CREATE ROLE {name}")


def _holds(conn: Connection, role: str) -> set[str]:
    """Roles granted to ``role``, directly or through others."""
    edges = [(r.role, r.grantee) for r in conn.execute(sa.select(t.role_grants).where(t.role_grants.c.grantee_kind == ROLE))]
    found: set[str] = set()
    todo = [role]
    while todo:
        current = todo.pop()
        for granted, grantee in edges:
            if grantee == current and granted not in found:
                found.add(granted)
                todo.append(granted)
    return found


def grant_role(store: GovernanceStore, role: str, kind: str, grantee: str, by: str) -> None:
    """Grant ``role`` to a user, group or role; a grant that would make a cycle is refused."""
    if kind not in GRANTEE_KINDS:
        raise InvalidArgument(f"Roles are granted to USER, GROUP or ROLE, not {kind!r}")
    check_name(grantee)

    def run(conn: Connection) -> None:
        _role_exists(conn, role)
        if kind == ROLE:
            _role_exists(conn, grantee)
            if grantee == role or grantee in _holds(conn, role):
                chain = "itself" if grantee == role else f"{role}, which already holds {grantee}"
                raise InvalidArgument(
                    f"Granting role {role} to role {grantee} would make a cycle: {grantee} would hold {chain}",
                    hint="a role hierarchy has no cycles; revoke the other grant first",
                )
        key = (t.role_grants.c.role == role, t.role_grants.c.grantee_kind == kind, t.role_grants.c.grantee == grantee)
        if conn.execute(sa.select(t.role_grants).where(*key)).first() is None:
            conn.execute(
                t.role_grants.insert().values(
                    role=role, grantee_kind=kind, grantee=grantee, granted_by=by, created_at_ms=now_ms()
                )
            )

    store.run(run)


def revoke_role(store: GovernanceStore, role: str, kind: str, grantee: str) -> bool:
    def run(conn: Connection) -> bool:
        result = conn.execute(
            t.role_grants.delete().where(
                t.role_grants.c.role == role, t.role_grants.c.grantee_kind == kind, t.role_grants.c.grantee == grantee
            )
        )
        return bool(result.rowcount)

    return store.run(run)


def check_provider_group(name: str) -> str:
    """A group name as an identity provider spells it ("Sales Analysts", a GUID, ``/org/team``): printable text."""
    if not isinstance(name, str) or not name or len(name) > 255 or not name.isprintable() or name != name.strip():
        raise InvalidArgument(
            f"Invalid identity-provider group name {name!r}",
            hint="1-255 printable characters, no leading or trailing spaces, as the provider's groups claim holds it",
        )
    return name


def map_group(store: GovernanceStore, group: str, role: str, by: str) -> bool:
    """Map an identity provider's group to a role: members of ``group`` (from their token) hold ``role``.

    A mapping is a grant of the role to the group, so it is the same thing as ``GRANT ROLE r TO
    GROUP g`` for a group whose name SQL identifiers cannot spell; False if it was there already.
    """
    check_provider_group(group)

    def run(conn: Connection) -> bool:
        _role_exists(conn, role)
        key = (t.role_grants.c.role == role, t.role_grants.c.grantee_kind == GROUP, t.role_grants.c.grantee == group)
        if conn.execute(sa.select(t.role_grants).where(*key)).first() is not None:
            return False
        conn.execute(
            t.role_grants.insert().values(role=role, grantee_kind=GROUP, grantee=group, granted_by=by, created_at_ms=now_ms())
        )
        return True

    return store.run(run)


def unmap_group(store: GovernanceStore, group: str, role: str) -> bool:
    """Remove a group-to-role mapping; False if there was none."""
    return revoke_role(store, role, GROUP, group)
