"""Users (with attributes) and groups (with members).

Users are the rows of the authentication table ``wharf_principals`` (``wharf.auth``): a user
created here can later get a password or tokens, and a user of ``wharf users add`` is governed
here. A principal need not be stored to be governed: ``wharf.connect(path, user="alice")`` acts
as alice, with whatever alice, her groups and roles were granted (nothing, by default).
Groups named by an identity provider (a principal's ``groups``) count without being created.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wharf.auth.service import USER, check_name
from wharf.auth.tables import principals
from wharf.errors import AlreadyExists, InvalidArgument, NotFound
from wharf.governance import tables as t
from wharf.governance.store import GovernanceStore, now_ms


def _attributes(attributes: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, value in (attributes or {}).items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidArgument(f"User attributes are text: got {key!r} = {value!r}", hint="('region' = 'US')")
        checked[key] = value
    return checked


def create_user(
    store: GovernanceStore, name: str, attributes: Mapping[str, str] | None = None, *, if_not_exists: bool = False
) -> bool:
    """Create a user with ``attributes``; False if it existed and ``if_not_exists``."""
    check_name(name)
    attrs = _attributes(attributes)

    def run(conn: Connection) -> bool:
        if conn.execute(sa.select(principals.c.name).where(principals.c.name == name)).first() is not None:
            if if_not_exists:
                return False
            raise AlreadyExists(f"A user or service principal named {name!r} already exists", hint="ALTER USER to change it")
        insert_user(conn, name, attrs)
        return True

    return store.run(run)


def insert_user(conn: Connection, name: str, attributes: Mapping[str, str] | None = None) -> str:
    """Insert a user row with no credentials (``CREATE USER``, a first sign-in); returns its id."""
    from wharf.auth.hashing import new_id

    principal_id = new_id()
    now = now_ms()
    conn.execute(
        principals.insert().values(
            id=principal_id,
            name=name,
            kind=USER,
            password_hash=None,
            client_id=None,
            secret_hash=None,
            disabled=False,
            version=1,
            groups="[]",
            attributes=json.dumps(dict(attributes or {}), sort_keys=True),
            created_at_ms=now,
            updated_at_ms=now,
        )
    )
    return principal_id


def set_attributes(store: GovernanceStore, name: str, attributes: Mapping[str, str], *, replace: bool = False) -> dict[str, str]:
    """Set (merge, or ``replace`` all of) a user's attributes; a value of ``None`` removes the key."""

    def run(conn: Connection) -> dict[str, str]:
        row = conn.execute(sa.select(principals.c.attributes).where(principals.c.name == name)).first()
        if row is None:
            raise NotFound(f"No user named {name!r}", hint=f"CREATE USER {name}")
        current: dict[str, str] = {} if replace else json.loads(row.attributes)
        for key, value in attributes.items():
            if value is None:
                current.pop(key, None)
            else:
                current.update(_attributes({key: value}))
        conn.execute(
            principals.update()
            .where(principals.c.name == name)
            .values(attributes=json.dumps(current, sort_keys=True), updated_at_ms=now_ms())
        )
        return current

    return store.run(run)


def drop_user(store: GovernanceStore, name: str) -> None:
    """Remove a user created without credentials, with its memberships and grants."""
    from wharf.auth.tables import tokens

    def run(conn: Connection) -> None:
        row = conn.execute(sa.select(principals.c.id).where(principals.c.name == name, principals.c.kind == USER)).first()
        if row is None:
            raise NotFound(f"No user named {name!r}")
        conn.execute(tokens.delete().where(tokens.c.principal_id == row.id))
        conn.execute(t.federated_identities.delete().where(t.federated_identities.c.principal_id == row.id))
        conn.execute(principals.delete().where(principals.c.id == row.id))
        conn.execute(t.members.delete().where(t.members.c.member == name))
        conn.execute(t.grants.delete().where(t.grants.c.grantee_kind == USER, t.grants.c.grantee == name))
        conn.execute(t.role_grants.delete().where(t.role_grants.c.grantee_kind == USER, t.role_grants.c.grantee == name))

    store.run(run)


def create_group(store: GovernanceStore, name: str, by: str, *, if_not_exists: bool = False) -> bool:
    check_name(name, "group name")

    def run(conn: Connection) -> bool:
        if conn.execute(sa.select(t.groups.c.name).where(t.groups.c.name == name)).first() is not None:
            if if_not_exists:
                return False
            raise AlreadyExists(f"Group {name!r} already exists")
        conn.execute(t.groups.insert().values(name=name, created_by=by, created_at_ms=now_ms()))
        return True

    return store.run(run)


def drop_group(store: GovernanceStore, name: str, *, if_exists: bool = False) -> None:
    def run(conn: Connection) -> None:
        if conn.execute(t.groups.delete().where(t.groups.c.name == name)).rowcount == 0 and not if_exists:
            raise NotFound(f"No group named {name!r}", hint="SHOW GROUPS lists them")
        conn.execute(t.members.delete().where(t.members.c.group_name == name))
        conn.execute(t.grants.delete().where(t.grants.c.grantee_kind == "group", t.grants.c.grantee == name))
        conn.execute(t.role_grants.delete().where(t.role_grants.c.grantee_kind == "group", t.role_grants.c.grantee == name))

    store.run(run)


def _group_exists(conn: Connection, name: str) -> None:
    if conn.execute(sa.select(t.groups.c.name).where(t.groups.c.name == name)).first() is None:
        raise NotFound(f"No group named {name!r}", hint=f"CREATE GROUP {name}")


def add_member(store: GovernanceStore, group: str, member: str) -> None:
    check_name(member)

    def run(conn: Connection) -> None:
        _group_exists(conn, group)
        exists = conn.execute(sa.select(t.members).where(t.members.c.group_name == group, t.members.c.member == member)).first()
        if exists is None:
            conn.execute(t.members.insert().values(group_name=group, member=member))

    store.run(run)


def remove_member(store: GovernanceStore, group: str, member: str) -> None:
    def run(conn: Connection) -> None:
        _group_exists(conn, group)
        conn.execute(t.members.delete().where(t.members.c.group_name == group, t.members.c.member == member))

    store.run(run)
