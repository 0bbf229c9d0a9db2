"""``lake.governance.access``: discover tables, request access, approve or deny, self-service rules, webhooks.

The same operations as the SQL statements (``REQUEST ACCESS``, ``APPROVE ACCESS REQUEST``,
``CREATE ACCESS RULE`` …), the CLI (``wharf access …``) and the HTTP API (``/api/v1/access/…``),
run as the handle's principal. Anyone may discover tables and file requests; approvers decide
them (``wharf.governance.access``); setting approvers or tags on an object needs ``MANAGE`` on
it; rules and webhooks need ``MANAGE`` on the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import sqlalchemy as sa

from wharf.errors import InvalidArgument, NotFound
from wharf.governance import access
from wharf.governance import tables as t
from wharf.governance.access import AccessRequest
from wharf.governance.durations import parse_duration_ms
from wharf.governance.privileges import CATALOG, GROUP, MANAGE, NAMESPACE, PRIVILEGES, ROLE, TABLE, USER
from wharf.governance.state import AccessRule, GovernanceState, Identity
from wharf.governance.store import GovernanceStore

if TYPE_CHECKING:
    from wharf.governance.lake_governance import Governance

Duration = str | int | timedelta


@dataclass(frozen=True)
class TableInfo:
    """What discovery shows of a table: never a row, a column or a statistic."""

    table: str
    description: str
    owner: str
    tags: Mapping[str, str]
    approvers: tuple[str, ...]
    privileges: tuple[str, ...]  # what the principal holds on it now (empty: nothing, request access)


class Access:
    """Access requests of one lake, as one principal (``lake.governance.access``)."""

    def __init__(self, governance: Governance) -> None:
        self.governance = governance
        self.lake = governance.lake
        self.store: GovernanceStore = governance.store

    def _state(self) -> tuple[GovernanceState, Identity]:
        state = self.store.state()
        return state, state.identity(self.lake.principal)

    @property
    def _lake_id(self) -> str:
        return str(self.lake.path)

    # --- discovery --------------------------------------------------------------------------

    def find(self, pattern: str | None = None, *, tag: str | None = None, value: str | None = None) -> list[TableInfo]:
        """Tables the principal can find (all but those tagged ``discoverable = 'false'`` it holds nothing on).

        ``pattern`` matches ``namespace.table`` case-insensitively (``*`` any text, ``|`` alternatives);
        ``tag`` (and ``value``) keep tables carrying it, on themselves or their namespace.
        """
        from wharf.sql.show import _matches

        state, identity = self._state()
        owner = self.lake.principal.is_owner
        found: list[TableInfo] = []
        for namespace in sorted(".".join(n) for n in self.lake.catalog.list_namespaces()):
            for ident in sorted(self.lake.catalog.list_tables(namespace)):
                label = ".".join(ident)
                key = label.lower()
                if pattern is not None and not (_matches(label, pattern) or _matches(ident[-1], pattern)):
                    continue
                tags = state.table_tags(key)
                if tag is not None and (tag not in tags or (value is not None and tags[tag] != value)):
                    continue
                held = tuple(p for p in PRIVILEGES if owner or state.has(identity, p, TABLE, key))
                if not held and access.hidden(state, key):
                    continue
                table = self.lake.loader.find(ident[0] if len(ident) == 2 else ".".join(ident[:-1]), ident[-1])
                description = "" if table is None else str(table.properties.get("comment", ""))
                found.append(
                    TableInfo(
                        label,
                        description,
                        state.owner_of(TABLE, key),
                        dict(sorted(tags.items())),
                        tuple(state.approvers_of(key)),
                        held,
                    )
                )
        return found

    def _table(self, name: str) -> str:
        """The table's label, or the same NotFound a missing table gives when discovery hides it from the principal."""
        label = self.governance.table_label(name)
        state, identity = self._state()
        if (
            not self.lake.principal.is_owner
            and access.hidden(state, label)
            and not state.any_privilege(identity, label)
            and not state.may_approve(identity, label)
        ):
            ns, _, tbl = label.rpartition(".")
            raise NotFound(f"Table {ns}.{tbl} does not exist", hint="SHOW TABLES")
        return label

    # --- requests ---------------------------------------------------------------------------

    def request(self, table: str, *, privilege: str = "SELECT", duration: Duration = "8 hours", reason: str) -> AccessRequest:
        """Ask for ``privilege`` on ``table`` for ``duration``; a matching self-service rule approves it at once."""
        return self.request_with_message(table, privilege=privilege, duration=duration, reason=reason)[0]

    def request_with_message(
        self, table: str, *, privilege: str = "SELECT", duration: Duration = "8 hours", reason: str
    ) -> tuple[AccessRequest, str]:
        """``request``, and what happened in words (approved by a rule, or sent to whom)."""
        label = self._table(table)
        state, identity = self._state()
        filed, message = access.request_access(
            self.store, identity, label, privilege, parse_duration_ms(duration), reason, self._lake_id
        )
        self._audit("requested", filed)
        if filed.status == access.APPROVED:
            self._audit("approved", filed)  # by a self-service rule, at once
        return filed, message

    def requests(self, status: str | None = None) -> list[AccessRequest]:
        """The requests the principal may see (its own, and those it decides; the lake owner: all)."""
        if status is not None and status not in (access.PENDING, access.APPROVED, access.DENIED):
            raise InvalidArgument(f"Unknown request status {status!r}", hint="pending, approved or denied")
        _, identity = self._state()
        return access.visible_requests(self.store, identity, self.lake.principal.is_owner, status)

    def approve(self, request_id: int, *, duration: Duration | None = None, comment: str | None = None) -> AccessRequest:
        """Approve a pending request, for its duration or a shorter one; it becomes a grant that expires by itself."""
        request = access.get_request(self.store, request_id)
        self.governance.table_label(request.table)  # a table dropped since: nothing to grant
        _, identity = self._state()
        ms = None if duration is None else parse_duration_ms(duration)
        decided = access.decide(self.store, identity, request_id, True, duration_ms=ms, comment=comment, lake=self._lake_id)
        self._audit("approved", decided)
        return decided

    def deny(self, request_id: int, *, reason: str | None = None) -> AccessRequest:
        """Deny a pending request, saying why."""
        _, identity = self._state()
        decided = access.decide(self.store, identity, request_id, False, comment=reason, lake=self._lake_id)
        self._audit("denied", decided)
        return decided

    def _audit(self, event: str, request: AccessRequest) -> None:
        """Record a decision in the audit log, right after it is stored (``AuditUnavailable`` if that fails)."""
        from wharf.governance.audit import record_decision

        record_decision(
            self.lake.catalog,
            principal=self.lake.principal.name,
            kind="access",
            operation=f"access_request.{event}",
            decision="allowed",
            reason=request.comment if event == access.DENIED else request.reason,
            tables=(request.table,),
            detail={
                "request_id": request.id,
                "requester": request.requester,
                "privilege": request.privilege,
                "status": request.status,
                "rule": request.rule,
                "expires_at_ms": request.expires_at_ms,
            },
        )

    # --- approvers and tags -----------------------------------------------------------------

    def _object(self, table: str | None, namespace: str | None) -> tuple[str, str]:
        if (table is None) == (namespace is None):
            raise InvalidArgument("Name one object: table=… or namespace=…")
        if table is not None:
            return TABLE, self.governance.table_label(table).lower()
        assert namespace is not None
        if not self.lake.catalog.namespace_exists(namespace):
            raise NotFound(f"Namespace '{namespace}' does not exist", hint="SHOW NAMESPACES")
        return NAMESPACE, namespace.lower()

    def set_approvers(
        self,
        *,
        table: str | None = None,
        namespace: str | None = None,
        users: Sequence[str] = (),
        groups: Sequence[str] = (),
        roles: Sequence[str] = (),
    ) -> None:
        """Who decides requests on a table or namespace (besides owners and MANAGE holders); replaces the list."""
        kind, name = self._object(table, namespace)
        self.governance.check(MANAGE, kind, name)
        grantees = [(USER, u) for u in users] + [(GROUP, g) for g in groups] + [(ROLE, r) for r in roles]
        access.set_approvers(self.store, kind, name, grantees)

    def approvers(self, table: str) -> list[str]:
        """Who decides requests on ``table`` (``user u``, ``group g``, ``role r``)."""
        return self.store.state().approvers_of(self._table(table))

    def set_tags(self, tags: Mapping[str, str | None], *, table: str | None = None, namespace: str | None = None) -> None:
        """Tags on a table or namespace (``{"domain": "sales"}``; None removes one); MANAGE on the object."""
        kind, name = self._object(table, namespace)
        self.governance.check(MANAGE, kind, name)
        access.set_object_tags(self.store, kind, name, tags)

    def tags(self, table: str) -> dict[str, str]:
        """A table's tags, its namespaces' included."""
        return self.store.state().table_tags(self._table(table))

    # --- rules ------------------------------------------------------------------------------

    def create_rule(
        self,
        name: str,
        *,
        privileges: str | Sequence[str] = "SELECT",
        max_duration: Duration,
        user: str | None = None,
        group: str | None = None,
        role: str | None = None,
        tag: tuple[str, str] | None = None,
        table: str | None = None,
        namespace: str | None = None,
        without_approval: bool = True,
        revoke_unused_after: Duration | None = None,
        replace: bool = False,
    ) -> None:
        """``CREATE ACCESS RULE name AS ALLOW GROUP g SELECT ON TAG k = 'v' FOR AT MOST '7 days' WITHOUT APPROVAL``."""
        self.governance.check(MANAGE, CATALOG)
        grantees = [(k, v) for k, v in ((USER, user), (GROUP, group), (ROLE, role)) if v is not None]
        if len(grantees) != 1:
            raise InvalidArgument("Name one grantee: user=…, group=… or role=…")
        scopes = [x for x in (tag, table, namespace) if x is not None]
        if len(scopes) != 1:
            raise InvalidArgument("Name one scope: tag=(name, value), table=… or namespace=…")
        if tag is not None:
            kind, obj, value = "tag", tag[0], tag[1]
        else:
            kind, obj = self._object(table, namespace)
            value = None
        names = (privileges,) if isinstance(privileges, str) else tuple(privileges)
        idle = None if revoke_unused_after is None else parse_duration_ms(revoke_unused_after)
        rule = AccessRule(
            name, grantees[0][0], grantees[0][1], names, kind, obj, value, parse_duration_ms(max_duration), without_approval, idle
        )
        access.create_rule(self.store, rule, self.lake.principal.name, replace=replace)

    def drop_rule(self, name: str, *, if_exists: bool = False) -> None:
        self.governance.check(MANAGE, CATALOG)
        access.drop_rule(self.store, name, if_exists=if_exists)

    def rules(self) -> list[AccessRule]:
        return list(self.store.state().access_rules)

    # --- webhooks ---------------------------------------------------------------------------

    def create_webhook(self, name: str, url: str, *, secret: str, replace: bool = False) -> None:
        """POST every request and decision to ``url``, signed with ``secret`` (``wharf.governance.webhooks``)."""
        self.governance.check(MANAGE, CATALOG)
        if not url.startswith(("http://", "https://")):
            raise InvalidArgument(f"A webhook URL is http:// or https://, not {url!r}")
        if len(secret) < 16:
            raise InvalidArgument(
                "A webhook secret needs at least 16 characters",
                hint="e.g. python -c 'import secrets; print(secrets.token_hex(16))'",
            )

        def run(conn: sa.Connection) -> None:
            if conn.execute(sa.select(t.webhooks.c.name).where(t.webhooks.c.name == name)).first() is not None:
                if not replace:
                    raise InvalidArgument(f"Webhook {name} already exists", hint="CREATE OR REPLACE WEBHOOK …")
                conn.execute(t.webhooks.delete().where(t.webhooks.c.name == name))
            conn.execute(
                t.webhooks.insert().values(
                    name=name, url=url, secret=secret, created_by=self.lake.principal.name, created_at_ms=self.store.clock()
                )
            )

        with self.store.engine.begin() as conn:
            run(conn)

    def drop_webhook(self, name: str, *, if_exists: bool = False) -> None:
        self.governance.check(MANAGE, CATALOG)
        with self.store.engine.begin() as conn:
            if not conn.execute(t.webhooks.delete().where(t.webhooks.c.name == name)).rowcount and not if_exists:
                raise NotFound(f"No webhook named {name!r}", hint="SHOW WEBHOOKS")

    def webhooks(self) -> list[tuple[str, str]]:
        """(name, url) of each webhook — never its secret."""
        self.governance.check(MANAGE, CATALOG)
        with self.store.engine.connect() as conn:
            return [
                (r.name, r.url) for r in conn.execute(sa.select(t.webhooks.c.name, t.webhooks.c.url).order_by(t.webhooks.c.name))
            ]

    # --- system tables ----------------------------------------------------------------------

    def requests_table(self) -> pa.Table:
        """``system.access_requests``: the requests the principal may see."""
        rows = self.requests()
        return pa.table(
            {
                "id": pa.array([r.id for r in rows], pa.int64()),
                "requester": pa.array([r.requester for r in rows], pa.string()),
                "privilege": pa.array([r.privilege for r in rows], pa.string()),
                "table_name": pa.array([r.table for r in rows], pa.string()),
                "duration": pa.array([r.duration for r in rows], pa.string()),
                "reason": pa.array([r.reason for r in rows], pa.string()),
                "status": pa.array([r.status for r in rows], pa.string()),
                "requested_at": pa.array([r.created_at_ms for r in rows], pa.timestamp("ms")),
                "decided_by": pa.array([r.decided_by for r in rows], pa.string()),
                "decided_at": pa.array([r.decided_at_ms for r in rows], pa.timestamp("ms")),
                "comment": pa.array([r.comment for r in rows], pa.string()),
                "granted_duration": pa.array(
                    [None if r.granted_ms is None else access.format_duration(r.granted_ms) for r in rows], pa.string()
                ),
                "expires_at": pa.array([r.expires_at_ms for r in rows], pa.timestamp("ms")),
                "rule": pa.array([r.rule for r in rows], pa.string()),
            }
        )

    def grants_table(self) -> pa.Table:
        """``system.grants``: the grants the principal may see (its own, on what it manages; the owner: all), lapsed ones too."""
        state, identity = self._state()
        owner = self.lake.principal.is_owner
        now = self.store.clock()
        rows = [
            g
            for g in state.grants
            if owner
            or (g.grantee_kind, g.grantee) in identity.grantees
            or state.has(identity, MANAGE, g.object_kind, g.object_name)
        ]
        rows.sort(key=lambda g: (g.object_kind, g.object_name, g.column, g.grantee_kind, g.grantee, g.privilege))
        return pa.table(
            {
                "privilege": pa.array([g.privilege for g in rows], pa.string()),
                "object_kind": pa.array([g.object_kind for g in rows], pa.string()),
                "object_name": pa.array([g.object_name for g in rows], pa.string()),
                "column_name": pa.array([g.column or None for g in rows], pa.string()),
                "grantee_kind": pa.array([g.grantee_kind for g in rows], pa.string()),
                "grantee": pa.array([g.grantee for g in rows], pa.string()),
                "granted_by": pa.array([g.granted_by for g in rows], pa.string()),
                "granted_at": pa.array([g.created_at_ms for g in rows], pa.timestamp("ms")),
                "expires_at": pa.array([g.expires_at_ms for g in rows], pa.timestamp("ms")),
                "request_id": pa.array([g.request_id for g in rows], pa.int64()),
                "revoke_unused_after": pa.array(
                    [None if g.idle_ms is None else access.format_duration(g.idle_ms) for g in rows], pa.string()
                ),
                "last_used_at": pa.array([self.store.seen_use(g) for g in rows], pa.timestamp("ms")),
                "active": pa.array([state.live(g, now) for g in rows], pa.bool_()),
            }
        )
