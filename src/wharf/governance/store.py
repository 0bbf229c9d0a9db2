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
from wharf.governance.state import AccessRule, GovernanceState, Grant, Mask, RowFilter, TagPolicy

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


USE_WRITE_INTERVAL_MS = 60_000  # a timed grant's last use is written at most once a minute


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
        # The clock time-bound grants are judged by: injectable, so tests and the demo can move time
        # forward honestly instead of sleeping (``store.clock = lambda: now_ms() + 3_600_000``).
        self.clock: Callable[[], int] = now_ms
        self._used: dict[tuple[str, ...], int] = {}  # grant key → last use seen by this process
        self._used_written: dict[tuple[str, ...], int] = {}  # grant key → last use written to the database
        self._epoch = 0  # moves each time a timed grant lapses (cache_version)
        self._epoch_state: GovernanceState | None = None
        self._deadline: int | None = None

    # --- reading ---------------------------------------------------------------------------

    def version(self) -> int:
        """The policy version: it changes with every grant, role, membership, attribute or policy change."""
        return self.state().version

    def cache_version(self) -> tuple[int, int]:
        """What caches of compiled statements and results key on: the policy version, and an epoch
        that moves when a time-bound grant lapses (no version changes then, yet decisions do)."""
        state = self.state()
        now = self.clock()
        with self._lock:
            if state is not self._epoch_state:
                self._epoch_state, self._epoch = state, 0
                self._deadline = state.next_deadline(now)
            elif self._deadline is not None and now >= self._deadline:
                self._epoch += 1
                self._deadline = state.next_deadline(now)
            return state.version, self._epoch

    # --- last use of time-bound grants -------------------------------------------------------

    def last_used(self, grant: Grant) -> int:
        """When ``grant`` was last used (its creation if never), as far as any process wrote it down.

        The snapshot's value may be old (writing a use does not move the policy version), so a grant
        that looks idle past its limit is re-read once from the database before it is judged.
        """
        seen = max(self._used.get(grant.key, 0), grant.last_used_ms or 0, grant.created_at_ms)
        if grant.idle_ms is not None and self.clock() >= seen + grant.idle_ms:
            with self.engine.connect() as conn:
                stored = conn.execute(
                    sa.select(t.grants.c.last_used_ms).where(*(c == v for c, v in zip(_grant_pk(), grant.key, strict=True)))
                ).scalar()
            if stored is not None and stored > seen:
                seen = stored
                with self._lock:
                    self._used[grant.key] = max(self._used.get(grant.key, 0), stored)
        return seen

    def seen_use(self, grant: Grant) -> int | None:
        """The last use of ``grant`` this process knows of (None: never used)."""
        found = max(self._used.get(grant.key, 0), grant.last_used_ms or 0)
        return found or None

    def record_use(self, grant: Grant) -> None:
        """Note that ``grant`` was used now; written to the database at most once a minute per grant."""
        now = self.clock()
        key = grant.key
        with self._lock:
            self._used[key] = max(self._used.get(key, 0), now)
            if now - self._used_written.get(key, grant.last_used_ms or 0) < USE_WRITE_INTERVAL_MS:
                return
            self._used_written[key] = now
        try:  # best effort: a failed write only means an idle grant may lapse a minute early elsewhere
            with self.engine.begin() as conn:
                conn.execute(
                    t.grants.update()
                    .where(*(c == v for c, v in zip(_grant_pk(), key, strict=True)))
                    .values(
                        last_used_ms=sa.case(
                            (sa.func.coalesce(t.grants.c.last_used_ms, 0) < now, now), else_=t.grants.c.last_used_ms
                        )
                    )
                )
        except sa.exc.SQLAlchemyError:  # pragma: no cover - a locked database; the next use writes it
            with self._lock:
                self._used_written.pop(key, None)

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
        object_tags: dict[tuple[str, str], dict[str, str]] = {}
        for row in conn.execute(sa.select(t.object_tags)):
            object_tags.setdefault((row.object_kind, row.object_name), {})[row.tag] = row.value
        approvers: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for row in conn.execute(sa.select(t.approvers)):
            approvers.setdefault((row.object_kind, row.object_name), set()).add((row.grantee_kind, row.grantee))
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
                Grant(
                    r.privilege,
                    r.object_kind,
                    r.object_name,
                    r.column_name,
                    r.grantee_kind,
                    r.grantee,
                    r.granted_by,
                    expires_at_ms=r.expires_at_ms,
                    request_id=r.request_id,
                    idle_ms=r.idle_ms,
                    last_used_ms=r.last_used_ms,
                    created_at_ms=r.created_at_ms,
                )
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
            object_tags=object_tags,
            approvers={k: frozenset(v) for k, v in approvers.items()},
            access_rules=tuple(
                AccessRule(
                    r.name,
                    r.grantee_kind,
                    r.grantee,
                    tuple(json.loads(r.privileges)),
                    r.object_kind,
                    r.object_name,
                    r.tag_value,
                    r.max_duration_ms,
                    bool(r.without_approval),
                    r.idle_ms,
                    r.created_by,
                )
                for r in conn.execute(sa.select(t.access_rules).order_by(t.access_rules.c.name))
            ),
            clock=lambda: self.clock(),
            last_used=self.last_used,
            used=self.record_use,
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


def _grant_pk() -> tuple[sa.Column[object], ...]:
    c = t.grants.c
    return (c.privilege, c.object_kind, c.object_name, c.column_name, c.grantee_kind, c.grantee)
