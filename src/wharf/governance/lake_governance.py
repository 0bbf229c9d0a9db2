"""``lake.governance``: users, groups, roles, grants, policy functions, row filters and masks, from Python.

The same operations as the SQL statements (``CREATE ROLE``, ``GRANT``, ``ALTER TABLE … SET ROW
FILTER`` …) and the CLI (``wharf roles``, ``wharf grants``), run as the handle's principal:
managing principals and roles needs ``MANAGE`` on the catalog (the lake owner has it); granting
on an object needs ``MANAGE`` on it (its owner has it); binding a row filter or mask to a table
needs ``MANAGE`` on the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wharf.errors import AccessDenied, InvalidArgument, NotFound
from wharf.governance import grants as grant_store
from wharf.governance import policies, principals, roles
from wharf.governance.enforce import denied
from wharf.governance.functions import PolicyFunction
from wharf.governance.privileges import CATALOG, CREATE, GROUP, MANAGE, NAMESPACE, ROLE, TABLE, USER
from wharf.governance.state import GovernanceState, Grant, Identity
from wharf.governance.store import GovernanceStore, store_for
from wharf.sql.system_tables import SYSTEM_NAMESPACE, SYSTEM_TABLES

if TYPE_CHECKING:
    from wharf.governance.lake_access import Access
    from wharf.lakehouse import Lakehouse
    from wharf.principal import Principal


def store_of(lake: Lakehouse) -> GovernanceStore:
    return store_for(lake.catalog, lake.owner)


@dataclass(frozen=True)
class RoleInfo:
    name: str
    granted_to: tuple[str, ...]  # "user alice", "group analysts", "role admin"


class Governance:
    """Governance of one lake, as one principal (``lake.governance``)."""

    def __init__(self, lake: Lakehouse) -> None:
        self.lake = lake
        self.store = store_of(lake)

    @property
    def principal(self) -> Principal:
        return self.lake.principal

    # --- who is asking ---------------------------------------------------------------------

    def policy_version(self) -> int:
        """The lake's policy version: any change to grants, roles, memberships, attributes or policies moves it.

        What a cache of results computed for a principal keys on (with the principal): an answer
        cached at one version is never served at another.
        """
        return self.store.version()

    def _state(self) -> tuple[GovernanceState, Identity]:
        state = self.store.state()
        return state, state.identity(self.principal)

    def _require(self, privilege: str, kind: str, name: str = "*") -> None:
        if self.principal.is_owner:
            return
        state, identity = self._state()
        if not state.has(identity, privilege, kind, name):
            raise denied(state, identity.name, privilege, kind, name)

    def _admin(self) -> None:
        self._require(MANAGE, CATALOG)

    def whoami(self) -> dict[str, object]:
        """The invoking principal's name, groups, roles and attributes as governance resolves them."""
        _, identity = self._state()
        return {
            "user": identity.name,
            "groups": sorted(identity.groups),
            "roles": sorted(identity.roles),
            "attributes": dict(identity.attributes),
            "owner": self.principal.is_owner,
        }

    # --- users and groups ------------------------------------------------------------------

    def create_user(self, name: str, attributes: Mapping[str, str] | None = None, *, if_not_exists: bool = False) -> bool:
        self._admin()
        return principals.create_user(self.store, name, attributes, if_not_exists=if_not_exists)

    def set_user_attributes(self, name: str, attributes: Mapping[str, str | None], *, replace: bool = False) -> dict[str, str]:
        self._admin()
        return principals.set_attributes(self.store, name, attributes, replace=replace)  # type: ignore[arg-type]  # None removes a key

    def drop_user(self, name: str) -> None:
        self._admin()
        principals.drop_user(self.store, name)

    def create_group(self, name: str, *, if_not_exists: bool = False) -> bool:
        self._admin()
        return principals.create_group(self.store, name, self.principal.name, if_not_exists=if_not_exists)

    def drop_group(self, name: str, *, if_exists: bool = False) -> None:
        self._admin()
        principals.drop_group(self.store, name, if_exists=if_exists)

    def add_to_group(self, group: str, user: str) -> None:
        self._admin()
        principals.add_member(self.store, group, user)

    def remove_from_group(self, group: str, user: str) -> None:
        self._admin()
        principals.remove_member(self.store, group, user)

    def groups(self) -> dict[str, list[str]]:
        """Each stored group and its members."""
        state = self.store.state()
        found: dict[str, list[str]] = {g: [] for g in sorted(state.groups)}
        for member, groups in state.memberships.items():
            for g in groups:
                found.setdefault(g, []).append(member)
        return {g: sorted(m) for g, m in sorted(found.items())}

    # --- roles -----------------------------------------------------------------------------

    def create_role(self, name: str, *, if_not_exists: bool = False) -> bool:
        self._admin()
        return roles.create_role(self.store, name, self.principal.name, if_not_exists=if_not_exists)

    def drop_role(self, name: str, *, if_exists: bool = False) -> None:
        self._admin()
        roles.drop_role(self.store, name, if_exists=if_exists)

    def grant_role(self, role: str, *, user: str | None = None, group: str | None = None, to_role: str | None = None) -> None:
        self._admin()
        kind, name = _grantee(user, group, to_role)
        roles.grant_role(self.store, role, kind, name, self.principal.name)

    def revoke_role(self, role: str, *, user: str | None = None, group: str | None = None, to_role: str | None = None) -> bool:
        self._admin()
        kind, name = _grantee(user, group, to_role)
        return roles.revoke_role(self.store, role, kind, name)

    def map_group(self, group: str, role: str) -> bool:
        """Give ``role`` to every member of an identity provider's ``group`` (``MAP GROUP 'g' TO ROLE r``).

        ``group`` is spelled as the provider's groups claim holds it (``"Sales Analysts"``); the
        members are whoever signs in with a token naming the group. False if it was mapped already.
        """
        self._admin()
        return roles.map_group(self.store, group, role, self.principal.name)

    def unmap_group(self, group: str, role: str) -> bool:
        """Remove a mapping (``UNMAP GROUP 'g' FROM ROLE r``): its members lose the role on their next statement."""
        self._admin()
        return roles.unmap_group(self.store, group, role)

    def group_mappings(self) -> list[tuple[str, str]]:
        """(group, role) for each role granted to a group, by group: the groups of SQL and of the identity provider alike."""
        state = self.store.state()
        return sorted((grantee, role) for role, kind, grantee in state.role_grants if kind == GROUP)

    def roles(self) -> list[RoleInfo]:
        state = self.store.state()
        return [
            RoleInfo(r, tuple(sorted(f"{k} {g}" for role, k, g in state.role_grants if role == r))) for r in sorted(state.roles)
        ]

    # --- privileges ------------------------------------------------------------------------

    def _object(self, table: str | None, namespace: str | None, catalog: bool) -> tuple[str, str]:
        if sum(x is not None and x is not False for x in (table, namespace, catalog or None)) != 1:
            raise InvalidArgument("Name one object: table=…, namespace=… or catalog=True")
        if table is not None:
            return TABLE, self.table_label(table)
        if namespace is not None:
            if not self.lake.catalog.namespace_exists(namespace):
                raise NotFound(f"Namespace '{namespace}' does not exist", hint="SHOW NAMESPACES")
            return NAMESPACE, namespace.lower()
        return CATALOG, "*"

    def table_label(self, name: str) -> str:
        """``db.t`` (or ``t``) as the catalog spells it; a view's name works too."""
        from wharf.tables.loader import split_name

        ns, tbl = split_name(name)
        if ns.lower() == SYSTEM_NAMESPACE and tbl.lower() in SYSTEM_TABLES:
            return f"{SYSTEM_NAMESPACE}.{tbl.lower()}"  # system.audit_log …: granted like a table
        table = self.lake.loader.find(ns, tbl)
        if table is not None:
            return ".".join(table.name())
        if self.lake.catalog.view_exists((ns, tbl)):
            return f"{ns}.{tbl}"
        raise NotFound(f"Table {ns}.{tbl} does not exist", hint="SHOW TABLES")

    def grant(
        self,
        privileges: str | Sequence[str],
        *,
        table: str | None = None,
        namespace: str | None = None,
        catalog: bool = False,
        columns: Sequence[str] = (),
        user: str | None = None,
        group: str | None = None,
        role: str | None = None,
    ) -> None:
        """Grant privileges on one object to one grantee: ``grant("SELECT", table="db.t", role="analyst")``."""
        kind, name = self._object(table, namespace, catalog)
        self._require(MANAGE, kind, name)
        grantee_kind, grantee = _grantee(user, group, role)
        names = [privileges] if isinstance(privileges, str) else list(privileges)
        grant_store.grant(self.store, names, kind, name, grantee_kind, grantee, self.principal.name, columns)

    def revoke(
        self,
        privileges: str | Sequence[str],
        *,
        table: str | None = None,
        namespace: str | None = None,
        catalog: bool = False,
        columns: Sequence[str] = (),
        user: str | None = None,
        group: str | None = None,
        role: str | None = None,
    ) -> int:
        """Revoke what ``grant`` gave (same arguments); returns how many grants were removed."""
        kind, name = self._object(table, namespace, catalog)
        self._require(MANAGE, kind, name)
        grantee_kind, grantee = _grantee(user, group, role)
        names = [privileges] if isinstance(privileges, str) else list(privileges)
        return grant_store.revoke(self.store, names, kind, name, grantee_kind, grantee, columns)

    def grants_on(self, *, table: str | None = None, namespace: str | None = None, catalog: bool = False) -> list[Grant]:
        """The grants stored on one object (not those inherited from above)."""
        kind, name = self._object(table, namespace, catalog)
        if not self.principal.is_owner:
            state, identity = self._state()
            if not (state.has(identity, MANAGE, kind, name) or (kind == TABLE and state.any_privilege(identity, name))):
                raise denied(state, identity.name, MANAGE, kind, name)
        return sorted(self.store.state().grants_on(kind, name), key=_order)

    def grants_to(self, *, user: str | None = None, group: str | None = None, role: str | None = None) -> list[Grant]:
        """The grants made to one grantee directly (a user sees their own; MANAGE on the catalog sees all)."""
        kind, name = _grantee(user, group, role)
        state, identity = self._state()
        if not self.principal.is_owner and not state.has(identity, MANAGE, CATALOG) and (kind, name) not in identity.grantees:
            raise denied(state, identity.name, MANAGE, CATALOG, "*")
        return sorted(state.grants_to([(kind, name)]), key=_order)

    # --- policies --------------------------------------------------------------------------

    def create_function(
        self, name: str, parameters: Sequence[tuple[str, str]], returns: str, body: str, *, replace: bool = False
    ) -> None:
        """Store a policy function: ``create_function("us_only", [("region", "VARCHAR")], "BOOLEAN", "region = 'US'")``."""
        if not self.principal.is_owner:
            state, identity = self._state()
            if not (state.has(identity, MANAGE, CATALOG) or state.has(identity, CREATE, CATALOG)):
                raise denied(state, identity.name, CREATE, CATALOG, "*")
        function = PolicyFunction(name, tuple((p, t) for p, t in parameters), returns, body)
        policies.create_function(self.store, function, self.principal.name, replace=replace)

    def drop_function(self, name: str, *, if_exists: bool = False) -> None:
        self._admin()
        policies.drop_function(self.store, name, if_exists=if_exists)

    def functions(self) -> list[PolicyFunction]:
        return sorted(self.store.state().functions.values(), key=lambda f: f.name)

    def _table_columns(self, label: str) -> list[str]:
        ns, name = label.rsplit(".", 1)
        table = self.lake.loader.find(ns, name)
        if table is None:
            raise InvalidArgument(f"{label} is a view: row filters and masks apply to tables", hint="set them on its tables")
        return [f.name for f in table.schema().fields]

    def set_row_filter(self, table: str, function: str, columns: Sequence[str]) -> None:
        """Rows of ``table`` are visible where ``function(columns…)`` is TRUE (for everyone but the lake owner)."""
        label = self.table_label(table)
        self._require(MANAGE, TABLE, label)
        policies.set_row_filter(self.store, label, function, columns, self._table_columns(label))

    def drop_row_filter(self, table: str) -> bool:
        label = self.table_label(table)
        self._require(MANAGE, TABLE, label)
        return policies.drop_row_filter(self.store, label)

    def set_mask(self, table: str, column: str, function: str, using: Sequence[str] = ()) -> None:
        """``column`` of ``table`` reads as ``function(column, using…)`` (for everyone but the lake owner)."""
        label = self.table_label(table)
        self._require(MANAGE, TABLE, label)
        policies.set_mask(self.store, label, column, function, using, self._table_columns(label))

    def drop_mask(self, table: str, column: str) -> bool:
        label = self.table_label(table)
        self._require(MANAGE, TABLE, label)
        return policies.drop_mask(self.store, label, column)

    def set_tags(self, table: str, column: str, tags: Mapping[str, str | None]) -> None:
        """Classification tags on a column (``{"pii": "email"}``; a None value removes the tag); MANAGE on the table."""
        label = self.table_label(table)
        self._require(MANAGE, TABLE, label)
        policies.set_tags(self.store, label, column, dict(tags), self._table_columns(label))

    def create_masking_policy(
        self, name: str, *, tag: str, value: str, function: str, exempt: Sequence[tuple[str, str]] = (), replace: bool = False
    ) -> None:
        """Mask every column tagged ``tag = value`` with ``function``, except for the ``exempt`` (kind, name) grantees."""
        self._admin()
        policies.create_tag_policy(self.store, name, tag, value, function, exempt, replace=replace)

    def drop_masking_policy(self, name: str, *, if_exists: bool = False) -> None:
        self._admin()
        policies.drop_tag_policy(self.store, name, if_exists=if_exists)

    def policies_on(self, table: str) -> dict[str, object]:
        """The row filter and masks bound to ``table``."""
        label = self.table_label(table).lower()
        state = self.store.state()
        found = state.row_filters.get(label)
        return {
            "row_filter": None if found is None else f"{found.function}({', '.join(found.columns)})",
            "masks": {c: f"{m.function}({', '.join((c, *m.columns))})" for c, m in sorted(state.masks.get(label, {}).items())},
        }

    # --- access requests (wharf.governance.lake_access) -------------------------------------

    @property
    def access(self) -> Access:
        """Discovery, access requests, approvers, table tags, self-service rules and webhooks."""
        from wharf.governance.lake_access import Access

        return Access(self)

    # --- ownership -------------------------------------------------------------------------

    def owner_of(self, table: str) -> str:
        return self.store.state().owner_of(TABLE, self.table_label(table))

    def check(self, privilege: str, kind: str, name: str = "*") -> None:
        """Raise ``AccessDenied`` unless the principal holds ``privilege`` on the object (``kind``: catalog, namespace, table)."""
        self._require(privilege, kind, name.lower() if kind != CATALOG else "*")

    def namespace_created(self, name: str) -> None:
        """Record the principal as the owner of a namespace it created (the lake owner owns everything already)."""
        if not self.principal.is_owner:
            grant_store.set_owner(self.store, NAMESPACE, name, self.principal.name)

    def create_namespace_check(self, name: str) -> None:
        """Refuse ``CREATE SCHEMA name`` unless the principal may create it (used by the SQL statement)."""
        from wharf.governance.enforce import authorize_action

        authorize_action(self.store.state(), self.principal, CREATE, NAMESPACE, name)


def _grantee(user: str | None, group: str | None, role: str | None) -> tuple[str, str]:
    given = [(k, v) for k, v in ((USER, user), (GROUP, group), (ROLE, role)) if v is not None]
    if len(given) != 1:
        raise InvalidArgument("Name one grantee: user=…, group=… or role=…")
    return given[0]


def _order(g: Grant) -> tuple[str, ...]:
    return (g.object_kind, g.object_name, g.column, g.grantee_kind, g.grantee, g.privilege)


__all__ = ["AccessDenied", "Governance", "RoleInfo", "store_of"]
