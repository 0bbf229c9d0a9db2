"""One snapshot of a lake's governance, and what it answers: who is in which group and role, who may do what.

Resolution is pure (no database): ``GovernanceStore.state()`` loads a snapshot per policy
version, and everything a statement asks — effective roles, a privilege on an object, the row
filter and masks of a table — is computed from it and memoised per principal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from wharf.governance.functions import Invoker, PolicyFunction
from wharf.governance.privileges import ALL, CATALOG, GROUP, MANAGE, NAMESPACE, ROLE, TABLE, USAGE, USER
from wharf.principal import Principal


@dataclass(frozen=True)
class Grant:
    """A privilege on an object (a column of it when ``column`` is not empty) granted to a grantee."""

    privilege: str
    object_kind: str
    object_name: str
    column: str
    grantee_kind: str
    grantee: str
    granted_by: str = ""
    # Just-in-time access (docs/governance.md, "Access requests"): a grant past ``expires_at_ms``,
    # or ``idle_ms`` after its last use, is ignored where it is checked — no cleanup job needed.
    expires_at_ms: int | None = None
    request_id: int | None = None
    idle_ms: int | None = None
    last_used_ms: int | None = None
    created_at_ms: int = 0

    @property
    def key(self) -> tuple[str, str, str, str, str, str]:
        """The grant's primary key in ``wharf_gov_grants``."""
        return (self.privilege, self.object_kind, self.object_name, self.column, self.grantee_kind, self.grantee)

    @property
    def timed(self) -> bool:
        """Whether the grant can lapse by itself (an expiry, or a rule's revoke-when-unused)."""
        return self.expires_at_ms is not None or self.idle_ms is not None

    @property
    def object_label(self) -> str:
        if self.object_kind == CATALOG:
            return "CATALOG"
        label = f"{self.object_kind.upper()} {self.object_name}"
        return f"{label} ({self.column})" if self.column else label


@dataclass(frozen=True)
class RowFilter:
    function: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Mask:
    function: str
    columns: tuple[str, ...]  # further columns passed after the masked one


@dataclass(frozen=True)
class TagPolicy:
    """A masking policy bound to a tag value: every column tagged ``tag = value`` is masked with ``function``."""

    name: str
    tag: str
    value: str
    function: str
    exempt: tuple[tuple[str, str], ...]  # (kind, name): grantees who see the real value


@dataclass(frozen=True)
class AccessRule:
    """A self-service rule: ``grantee`` may take ``privileges`` on the tables it covers for at most ``max_duration_ms``.

    ``object_kind`` is ``tag`` (tables tagged ``object_name = tag_value``, on the table or its
    namespace), ``table`` or ``namespace``. ``idle_ms``: grants it gives lapse when unused that long.
    """

    name: str
    grantee_kind: str
    grantee: str
    privileges: tuple[str, ...]
    object_kind: str
    object_name: str
    tag_value: str | None
    max_duration_ms: int
    without_approval: bool
    idle_ms: int | None = None
    created_by: str = ""

    @property
    def scope(self) -> str:
        if self.object_kind == "tag":
            return f"TAG {self.object_name} = '{self.tag_value}'"
        return f"{self.object_kind.upper()} {self.object_name}"


@dataclass(frozen=True)
class Identity:
    """What a principal is, resolved: its groups, its roles (transitively), the grantees it acts as."""

    name: str
    groups: frozenset[str]
    roles: frozenset[str]
    attributes: Mapping[str, str]

    @property
    def grantees(self) -> frozenset[tuple[str, str]]:
        return frozenset({(USER, self.name)} | {(GROUP, g) for g in self.groups} | {(ROLE, r) for r in self.roles})

    def is_member(self, name: str) -> bool:
        return name in self.groups or name in self.roles

    def invoker(self) -> Invoker:
        return Invoker(self.name, self.is_member, self.attributes.get)


def table_key(namespace: str, name: str) -> str:
    return f"{namespace}.{name}".lower()


def _ancestors(namespace: str) -> list[str]:
    """``a.b`` → ``['a', 'a.b']``: a nested namespace is inside its parents."""
    parts = namespace.lower().split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass
class GovernanceState:
    version: int
    owner: str
    attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    stored_groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    memberships: Mapping[str, frozenset[str]] = field(default_factory=dict)  # member → groups
    roles: frozenset[str] = frozenset()
    role_grants: tuple[tuple[str, str, str], ...] = ()  # (role, grantee kind, grantee)
    grants: tuple[Grant, ...] = ()
    owners: Mapping[tuple[str, str], str] = field(default_factory=dict)
    functions: Mapping[str, PolicyFunction] = field(default_factory=dict)
    row_filters: Mapping[str, RowFilter] = field(default_factory=dict)
    masks: Mapping[str, Mapping[str, Mask]] = field(default_factory=dict)
    tags: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)  # table → column → tag → value
    tag_policies: tuple[TagPolicy, ...] = ()
    # Access requests (wharf.governance.access): tags on tables and namespaces, approvers, rules.
    object_tags: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)  # (kind, name) → tag → value
    approvers: Mapping[tuple[str, str], frozenset[tuple[str, str]]] = field(default_factory=dict)  # (kind, name) → grantees
    access_rules: tuple[AccessRule, ...] = ()
    # The store's clock (injectable in tests) and its view of when a timed grant was last used.
    clock: Callable[[], int] = field(default=lambda: 0, repr=False)
    last_used: Callable[[Grant], int] = field(default=lambda g: g.last_used_ms or g.created_at_ms, repr=False)
    used: Callable[[Grant], None] = field(default=lambda g: None, repr=False)
    _identities: dict[tuple[str, frozenset[str]], Identity] = field(default_factory=dict, repr=False)
    _timed: bool | None = field(default=None, repr=False)  # whether any grant is time-bound (computed once)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tag_masks(self, identity: Identity, table: str) -> dict[str, str]:
        """Column (lower case) → the function of the tag policy masking it for ``identity``."""
        found: dict[str, str] = {}
        grantees = identity.grantees
        for column, tags in self.tags.get(table.lower(), {}).items():
            for policy in self.tag_policies:
                if tags.get(policy.tag) == policy.value and not any(e in grantees for e in policy.exempt):
                    found.setdefault(column, policy.function)
        return found

    # --- principals ------------------------------------------------------------------------

    def identity(self, principal: Principal) -> Identity:
        key = (principal.name, principal.groups)
        found = self._identities.get(key)
        if found is None:
            found = self._resolve(principal)
            with self._lock:
                self._identities[key] = found
        return found

    def _resolve(self, principal: Principal) -> Identity:
        name = principal.name
        groups = set(principal.groups) | set(self.stored_groups.get(name, ())) | set(self.memberships.get(name, ()))
        grantees = {(USER, name)} | {(GROUP, g) for g in groups}
        roles: set[str] = set()
        changed = True
        while changed:  # the closure over role grants (roles granted to roles)
            changed = False
            for role, kind, grantee in self.role_grants:
                if role not in roles and (kind, grantee) in grantees:
                    roles.add(role)
                    grantees.add((ROLE, role))
                    changed = True
        return Identity(name, frozenset(groups), frozenset(roles), dict(self.attributes.get(name, {})))

    def role_closure(self, role: str) -> set[str]:
        """The roles ``role`` holds, directly or through others (for refusing cycles)."""
        found: set[str] = set()
        todo = [role]
        while todo:
            current = todo.pop()
            for granted, kind, grantee in self.role_grants:
                if kind == ROLE and grantee == current and granted not in found:
                    found.add(granted)
                    todo.append(granted)
        return found

    # --- time-bound grants ------------------------------------------------------------------

    def live(self, grant: Grant, now: int | None = None) -> bool:
        """Whether ``grant`` holds now: not past its expiry, not idle past its rule's limit."""
        if not grant.timed:
            return True
        now = self.clock() if now is None else now
        if grant.expires_at_ms is not None and now >= grant.expires_at_ms:
            return False
        return grant.idle_ms is None or now < self.last_used(grant) + grant.idle_ms

    def live_grants(self) -> tuple[Grant, ...] | list[Grant]:
        """The grants that hold now (all of them, at no cost, when none is time-bound)."""
        timed = self._timed
        if timed is None:
            timed = self._timed = any(g.timed for g in self.grants)
        if not timed:
            return self.grants
        now = self.clock()
        return [g for g in self.grants if self.live(g, now)]

    def next_deadline(self, now: int) -> int | None:
        """The earliest moment after ``now`` at which a timed grant lapses (None: none will)."""
        found: int | None = None
        for g in self.grants:
            if not g.timed:
                continue
            for deadline in (g.expires_at_ms, None if g.idle_ms is None else self.last_used(g) + g.idle_ms):
                if deadline is not None and deadline > now and (found is None or deadline < found):
                    found = deadline
        return found

    def lapsed(self, user: str, kind: str, name: str) -> Grant | None:
        """A time-bound grant to ``user`` on the object (or inside a namespace) that has lapsed, if any."""
        key = name.lower()
        now = self.clock()
        for g in self.grants:
            if g.request_id is None or g.grantee_kind != USER or g.grantee != user or self.live(g, now):
                continue
            if g.object_name == key or (kind == NAMESPACE and g.object_name.startswith(key + ".")):
                return g
        return None

    def table_tags(self, table: str) -> dict[str, str]:
        """A table's tags, its namespaces' included (the table's own value wins)."""
        key = table.lower()
        namespace = key.rsplit(".", 1)[0]
        tags: dict[str, str] = {}
        for ns in _ancestors(namespace):
            tags.update(self.object_tags.get((NAMESPACE, ns), {}))
        tags.update(self.object_tags.get((TABLE, key), {}))
        return tags

    def approvers_of(self, table: str) -> list[str]:
        """Who decides requests on ``table``: its owner, then approvers set on it and on its namespaces."""
        key = table.lower()
        found = [f"user {self.owner_of(TABLE, key)}"]
        holders = [(TABLE, key), *((NAMESPACE, ns) for ns in reversed(_ancestors(key.rsplit(".", 1)[0])))]
        for holder in holders:
            found.extend(f"{kind} {name}" for kind, name in sorted(self.approvers.get(holder, ())))
        return list(dict.fromkeys(found))

    def may_approve(self, identity: Identity, table: str) -> bool:
        """Whether ``identity`` decides requests on ``table``: its owner (or a holder's), MANAGE on it, or an approver."""
        key = table.lower()
        if self.owns(identity, TABLE, key) or self.has(identity, MANAGE, TABLE, key):
            return True
        holders = [(TABLE, key), *((NAMESPACE, ns) for ns in _ancestors(key.rsplit(".", 1)[0]))]
        grantees = identity.grantees
        return any(g in grantees for holder in holders for g in self.approvers.get(holder, ()))

    # --- ownership and privileges ----------------------------------------------------------

    def owner_of(self, kind: str, name: str) -> str:
        return self.owners.get((kind, name.lower()), self.owner)

    def owns(self, identity: Identity, kind: str, name: str) -> bool:
        """Whether ``identity`` owns the object or a namespace holding it (the lake owner owns everything)."""
        if identity.name == self.owner:
            return True
        if kind == CATALOG:
            return False
        namespace = name.lower().rsplit(".", 1)[0] if kind == TABLE else name.lower()
        holders = [(NAMESPACE, ns) for ns in _ancestors(namespace)]
        if kind == TABLE:
            holders.append((TABLE, name.lower()))
        return any(self.owners.get(h) == identity.name for h in holders)

    def _scopes(self, kind: str, name: str) -> set[tuple[str, str]]:
        """The object and every object holding it."""
        scopes = {(CATALOG, "*")}
        if kind == CATALOG:
            return scopes
        namespace = name.lower().rsplit(".", 1)[0] if kind == TABLE else name.lower()
        scopes |= {(NAMESPACE, ns) for ns in _ancestors(namespace)}
        if kind == TABLE:
            scopes.add((TABLE, name.lower()))
        return scopes

    def has(self, identity: Identity, privilege: str, kind: str, name: str = "*", column: str | None = None) -> bool:
        """Whether ``identity`` holds ``privilege`` on the object (on ``column`` of it if given), by grant or ownership."""
        if self.owns(identity, kind, name):
            return True
        scopes = self._scopes(kind, name)
        grantees = identity.grantees
        for g in self.grants:
            if (g.grantee_kind, g.grantee) not in grantees or g.privilege not in (privilege, ALL):
                continue
            if (g.object_kind, g.object_name) not in scopes:
                continue
            if not g.column or (column is not None and g.column.lower() == column.lower()):
                if g.timed:
                    if not self.live(g):
                        continue
                    self.used(g)  # last-use tracking (a rule's revoke-when-unused); cheap, throttled by the store
                return True
        return False

    def column_grants(self, identity: Identity, privilege: str, table: str) -> set[str]:
        """The columns of ``table`` on which ``identity`` holds ``privilege`` through a column-level grant."""
        grantees = identity.grantees
        return {
            g.column.lower()
            for g in self.live_grants()
            if g.column
            and g.object_kind == TABLE
            and g.object_name == table.lower()
            and g.privilege in (privilege, ALL)
            and (g.grantee_kind, g.grantee) in grantees
        }

    def any_privilege(self, identity: Identity, table: str) -> bool:
        """Whether ``identity`` holds anything at all on ``table`` (what DESCRIBE needs)."""
        if self.owns(identity, TABLE, table):
            return True
        scopes = self._scopes(TABLE, table)
        grantees = identity.grantees
        return any(
            (g.grantee_kind, g.grantee) in grantees and (g.object_kind, g.object_name) in scopes and g.privilege != USAGE
            for g in self.live_grants()
        )

    def uses_namespace(self, identity: Identity, namespace: str) -> bool:
        """USAGE on the namespace: granted, implied by any grant on it (or the catalog), or owned."""
        if self.owns(identity, NAMESPACE, namespace):
            return True
        scopes = self._scopes(NAMESPACE, namespace)
        inside = namespace.lower() + "."
        grantees = identity.grantees
        # A grant on the namespace, a parent or the catalog, or on something inside it, lets its name be used.
        return any(
            (g.grantee_kind, g.grantee) in grantees
            and ((g.object_kind, g.object_name) in scopes or (g.object_kind == TABLE and g.object_name.startswith(inside)))
            for g in self.live_grants()
        )

    def managers(self, kind: str, name: str) -> list[str]:
        """Who may grant on the object: its owner, and the grantees holding MANAGE on it (for hints)."""
        scopes = self._scopes(kind, name)
        found = [self.owner_of(kind, name) if kind != CATALOG else self.owner]
        for g in self.live_grants():
            if g.privilege in (MANAGE, ALL) and (g.object_kind, g.object_name) in scopes and not g.column:
                found.append(f"{g.grantee_kind} {g.grantee}")
        return list(dict.fromkeys(found))

    def grants_on(self, kind: str, name: str) -> list[Grant]:
        key = name.lower() if kind != CATALOG else "*"
        return [g for g in self.live_grants() if g.object_kind == kind and g.object_name == key]

    def grants_to(self, grantees: Iterable[tuple[str, str]]) -> list[Grant]:
        wanted = set(grantees)
        return [g for g in self.live_grants() if (g.grantee_kind, g.grantee) in wanted]
