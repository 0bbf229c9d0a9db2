"""Privileges granted on the catalog, namespaces, tables/views and columns; object owners."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wharf.errors import InvalidArgument
from wharf.governance import tables as t
from wharf.governance.privileges import ALL, CATALOG, GRANTEE_KINDS, OBJECT_KINDS, SELECT, TABLE, check_privilege
from wharf.governance.store import GovernanceStore, now_ms


def object_key(kind: str, name: str | None) -> str:
    if kind not in OBJECT_KINDS:
        raise InvalidArgument(f"Privileges are granted on CATALOG, NAMESPACE or TABLE, not {kind!r}")
    if kind == CATALOG:
        return "*"
    if not name:
        raise InvalidArgument(f"GRANT … ON {kind.upper()} needs a name")
    return name.lower()


def grant(
    store: GovernanceStore,
    privileges: Sequence[str],
    kind: str,
    name: str | None,
    grantee_kind: str,
    grantee: str,
    by: str,
    columns: Sequence[str] = (),
) -> None:
    """Grant ``privileges`` on the object (on ``columns`` of a table, if given) to a user, group or role."""
    if grantee_kind not in GRANTEE_KINDS:
        raise InvalidArgument(f"Privileges are granted to USER, GROUP or ROLE, not {grantee_kind!r}")
    names = [check_privilege(p) for p in privileges]
    if columns and (kind != TABLE or any(p not in (SELECT,) for p in names)):
        raise InvalidArgument("Column-level grants are SELECT on a TABLE", hint="GRANT SELECT (c1, c2) ON TABLE t TO …")
    key = object_key(kind, name)
    rows = [
        {
            "privilege": p,
            "object_kind": kind,
            "object_name": key,
            "column_name": column.lower(),
            "grantee_kind": grantee_kind,
            "grantee": grantee,
            "granted_by": by,
            "created_at_ms": now_ms(),
        }
        for p in names
        for column in (columns or [""])
    ]

    def run(conn: Connection) -> None:
        if grantee_kind == "role" and conn.execute(sa.select(t.roles.c.name).where(t.roles.c.name == grantee)).first() is None:
            from wharf.errors import NotFound

            raise NotFound(f"No role named {grantee!r}", hint=f"CREATE ROLE {grantee}")
        for row in rows:
            existing = conn.execute(
                sa.select(t.grants).where(
                    *(t.grants.c[k] == v for k, v in row.items() if k not in ("granted_by", "created_at_ms"))
                )
            ).first()
            if existing is None:
                conn.execute(t.grants.insert().values(**row))
            elif existing.expires_at_ms is not None or existing.idle_ms is not None:
                # A standing GRANT over a time-bound one (from an access request) makes it permanent.
                conn.execute(
                    t.grants.update()
                    .where(*(t.grants.c[k] == v for k, v in row.items() if k not in ("granted_by", "created_at_ms")))
                    .values(expires_at_ms=None, idle_ms=None, request_id=None, granted_by=by)
                )

    store.run(run)


def revoke(
    store: GovernanceStore,
    privileges: Sequence[str],
    kind: str,
    name: str | None,
    grantee_kind: str,
    grantee: str,
    columns: Sequence[str] = (),
) -> int:
    """Revoke ``privileges`` (``ALL`` revokes every privilege, column grants included); returns how many grants went."""
    names = [check_privilege(p) for p in privileges]
    key = object_key(kind, name)

    def run(conn: Connection) -> int:
        query = t.grants.delete().where(
            t.grants.c.object_kind == kind,
            t.grants.c.object_name == key,
            t.grants.c.grantee_kind == grantee_kind,
            t.grants.c.grantee == grantee,
        )
        if ALL not in names:
            query = query.where(t.grants.c.privilege.in_(names))
        if columns:
            query = query.where(t.grants.c.column_name.in_([c.lower() for c in columns]))
        return int(conn.execute(query).rowcount)

    return store.run(run)


def set_owner(store: GovernanceStore, kind: str, name: str, owner: str) -> None:
    key = object_key(kind, name)

    def run(conn: Connection) -> None:
        conn.execute(t.owners.delete().where(t.owners.c.object_kind == kind, t.owners.c.object_name == key))
        conn.execute(t.owners.insert().values(object_kind=kind, object_name=key, owner=owner))

    store.run(run)


def forget_object(store: GovernanceStore, kind: str, name: str) -> None:
    """A dropped table or namespace: its owner, grants and policies go with it (a new object of that name starts clean)."""
    key = name.lower()

    def run(conn: Connection) -> None:
        conn.execute(t.owners.delete().where(t.owners.c.object_kind == kind, t.owners.c.object_name == key))
        conn.execute(t.grants.delete().where(t.grants.c.object_kind == kind, t.grants.c.object_name == key))
        conn.execute(t.approvers.delete().where(t.approvers.c.object_kind == kind, t.approvers.c.object_name == key))
        conn.execute(t.object_tags.delete().where(t.object_tags.c.object_kind == kind, t.object_tags.c.object_name == key))
        if kind == TABLE:
            conn.execute(t.row_filters.delete().where(t.row_filters.c.table_name == key))
            conn.execute(t.masks.delete().where(t.masks.c.table_name == key))

    store.run(run)


def rename_object(store: GovernanceStore, old: str, new: str) -> None:
    """Move a table's owner, grants and policies to its new name."""
    before, after = old.lower(), new.lower()

    def run(conn: Connection) -> None:
        conn.execute(
            t.owners.update().where(t.owners.c.object_kind == TABLE, t.owners.c.object_name == before).values(object_name=after)
        )
        conn.execute(
            t.grants.update().where(t.grants.c.object_kind == TABLE, t.grants.c.object_name == before).values(object_name=after)
        )
        for moved in (t.approvers, t.object_tags):  # access requests: who decides, and the tags rules select by
            conn.execute(
                moved.update().where(moved.c.object_kind == TABLE, moved.c.object_name == before).values(object_name=after)
            )
        conn.execute(t.row_filters.update().where(t.row_filters.c.table_name == before).values(table_name=after))
        conn.execute(t.masks.update().where(t.masks.c.table_name == before).values(table_name=after))

    store.run(run)
