"""Where governance is stored: the metadata database's ``wharf_gov_*`` tables, and one cached snapshot of them.

Every change runs in one transaction that also moves the policy version (``wharf_gov_version``).
Reading is the hot path: a statement of a governed principal needs the current state, so the
store keeps the last snapshot it loaded and reuses it while the catalog database is unchanged
(SQLite's change token, ``wharf.catalog.freshness``) or, failing that, while the version row
reads the same — one indexed query. A change made by another process is seen by the next
statement.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from wharf.auth.tables import principals
from wharf.governance import tables as t
from wharf.governance.functions import PolicyFunction
from wharf.governance.state import GovernanceState, Grant, Mask, RowFilter, TagPolicy

if TYPE_CHECKING:
    from wharf.catalog import LakeCatalog

T = TypeVar("T")

_stores: weakref.WeakKeyDictionary[Any, GovernanceStore] = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def store_for(catalog: LakeCatalog, owner: str) -> GovernanceStore:
    """The lake's store (one per open catalog, shared by every handle)."""
    with _stores_lock:
        found = _stores.get(catalog)
        if found is None:
            found = _stores[catalog] = GovernanceStore(catalog.engine, owner, catalog.freshness.current)
        return found


def now_ms() -> int:
    return int(time.time() * 1000)


class GovernanceStore:
    """Reads and changes one lake's governance tables."""

    def __init__(self, engine: Engine, owner: str, token: Callable[[], int | None] = lambda: None) -> None:
        self.engine = engine
        self.owner = owner
        self._token = token
        self._lock = threading.Lock()
        self._state: GovernanceState | None = None
        self._state_token: int | None = None
        self.subscribed = False  # whether the lake's on_commit subscriber (owners, dropped tables) is registered

    # --- reading ---------------------------------------------------------------------------

    def version(self) -> int:
        """The policy version: it changes with every grant, role, membership, attribute or policy change."""
        return self.state().version

    def state(self) -> GovernanceState:
        """The current governance state (a cached snapshot while nothing changed)."""
        token = self._token()
        cached = self._state
        if cached is not None and token is not None and token == self._state_token:
            return cached
        with self.engine.connect() as conn:
            version = int(conn.execute(sa.select(t.version.c.version).where(t.version.c.id == 1)).scalar_one())
            if cached is not None and cached.version == version:
                state = cached
            else:
                state = self._load(conn, version)
        with self._lock:
            self._state, self._state_token = state, token
        return state

    def _load(self, conn: Connection, version: int) -> GovernanceState:
        users = {
            row.name: (json.loads(row.attributes), frozenset(json.loads(row.groups)))
            for row in conn.execute(sa.select(principals.c.name, principals.c.attributes, principals.c.groups))
        }
        members: dict[str, set[str]] = {}
        for row in conn.execute(sa.select(t.members)):
            members.setdefault(row.member, set()).add(row.group_name)
        functions = {
            row.name: PolicyFunction(row.name, tuple(tuple(p) for p in json.loads(row.parameters)), row.returns, row.body)
            for row in conn.execute(sa.select(t.functions))
        }
        masks: dict[str, dict[str, Mask]] = {}
        for row in conn.execute(sa.select(t.masks)):
            masks.setdefault(row.table_name, {})[row.column_name] = Mask(row.function, tuple(json.loads(row.columns)))
        tags: dict[str, dict[str, dict[str, str]]] = {}
        for row in conn.execute(sa.select(t.column_tags)):
            tags.setdefault(row.table_name, {}).setdefault(row.column_name, {})[row.tag] = row.value
        tag_policies = tuple(
            TagPolicy(r.name, r.tag, r.value, r.function, tuple(tuple(e) for e in json.loads(r.exempt)))
            for r in conn.execute(sa.select(t.tag_policies).order_by(t.tag_policies.c.name))
        )
        return GovernanceState(
            version=version,
            owner=self.owner,
            attributes={name: attrs for name, (attrs, _) in users.items()},
            stored_groups={name: groups for name, (_, groups) in users.items()},
            groups=frozenset(row.name for row in conn.execute(sa.select(t.groups.c.name))),
            memberships={m: frozenset(g) for m, g in members.items()},
            roles=frozenset(row.name for row in conn.execute(sa.select(t.roles.c.name))),
            role_grants=tuple((r.role, r.grantee_kind, r.grantee) for r in conn.execute(sa.select(t.role_grants))),
            grants=tuple(
                Grant(r.privilege, r.object_kind, r.object_name, r.column_name, r.grantee_kind, r.grantee, r.granted_by)
                for r in conn.execute(sa.select(t.grants))
            ),
            owners={(r.object_kind, r.object_name): r.owner for r in conn.execute(sa.select(t.owners))},
            functions=functions,
            row_filters={
                r.table_name: RowFilter(r.function, tuple(json.loads(r.columns))) for r in conn.execute(sa.select(t.row_filters))
            },
            masks=masks,
            tags=tags,
            tag_policies=tag_policies,
        )

    # --- changing --------------------------------------------------------------------------

    @contextmanager
    def change(self) -> Iterator[Connection]:
        """A transaction that moves the policy version with whatever it changes."""
        with self.engine.begin() as conn:
            yield conn
            conn.execute(t.version.update().where(t.version.c.id == 1).values(version=t.version.c.version + 1))
        with self._lock:
            self._state_token = None  # re-read the version on the next statement even if the token missed it

    def run(self, fn: Callable[[Connection], T]) -> T:
        with self.change() as conn:
            return fn(conn)
