"""Access requests: ask for a privilege on a table, approvers decide, an approval is a grant that expires by itself.

- ``request_access``: a principal asks for a privilege on a table for a duration, with a reason.
  A self-service rule (``CREATE ACCESS RULE … WITHOUT APPROVAL``) that covers the principal, the
  privilege, the table (by tag, table or namespace) and the duration approves it at once;
  otherwise it waits for the table's approvers (its owner, the owners above it, holders of
  ``MANAGE`` on it, and the users, groups or roles set with ``SET APPROVERS`` on it or on a
  namespace holding it).
- ``approve`` (optionally for a shorter duration, never a longer one) turns a request into a
  grant with ``expires_at_ms``; ``deny`` records why not. Nobody decides their own request.
- An expired grant is never deleted by a job: ``GovernanceState.live`` ignores it where grants are
  checked, and the policy cache epoch (``GovernanceStore.cache_version``) moves at its expiry.
- Every decision goes through ``record_decision`` — the one call point where the audit log (and
  the webhook notifier, ``wharf.governance.webhooks``) subscribe with ``on_decision``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wharf.errors import AccessDenied, InvalidArgument, NotFound
from wharf.governance import tables as t
from wharf.governance.durations import format_duration
from wharf.governance.privileges import (
    ALTER,
    DELETE,
    GRANTEE_KINDS,
    INSERT,
    MAINTAIN,
    NAMESPACE,
    SELECT,
    TABLE,
    UPDATE,
    check_privilege,
)
from wharf.governance.state import AccessRule, GovernanceState, Identity
from wharf.governance.store import GovernanceStore

log = logging.getLogger(__name__)

PENDING, APPROVED, DENIED = "pending", "approved", "denied"
# What can be requested on a table: reading and writing its rows, altering and maintaining it.
# MANAGE (which decides requests), CREATE and DROP are granted by an owner, never requested.
REQUESTABLE = (SELECT, INSERT, UPDATE, DELETE, ALTER, MAINTAIN)
HIDDEN_TAG = ("discoverable", "false")  # a table (or namespace) tagged so is left out of discovery


@dataclass(frozen=True)
class AccessRequest:
    """One request, as ``system.access_requests`` shows it."""

    id: int
    requester: str
    privilege: str
    table: str
    duration_ms: int
    reason: str
    status: str
    created_at_ms: int
    decided_by: str | None = None
    decided_at_ms: int | None = None
    comment: str | None = None
    granted_ms: int | None = None
    expires_at_ms: int | None = None
    rule: str | None = None

    @property
    def duration(self) -> str:
        return format_duration(self.duration_ms)


@dataclass(frozen=True)
class AccessDecision:
    """What happened to a request: ``event`` is ``requested``, ``approved`` or ``denied``.

    ``by`` is who acted (the requester for ``requested``; ``rule <name>`` for a self-service
    approval); ``approvers`` are who decides requests on the table (``user u``, ``group g``).
    """

    event: str
    request: AccessRequest
    by: str
    approvers: tuple[str, ...]
    lake: str = ""
    store: GovernanceStore | None = field(default=None, compare=False, repr=False)  # where subscribers look things up

    def payload(self) -> dict[str, Any]:
        """The JSON body of a webhook notification (and of an audit record)."""
        return {
            "event": f"access_request.{self.event}",
            "lake": self.lake,
            "by": self.by,
            "request": asdict(self.request),
            "notify": {"requester": self.request.requester, "approvers": list(self.approvers)},
        }


Listener = Callable[[AccessDecision], None]
_listeners: list[Listener] = []
_listeners_lock = threading.Lock()


def on_decision(fn: Listener) -> Callable[[], None]:
    """Subscribe ``fn`` to every access decision (the audit log's hook); returns an unsubscribe function."""
    with _listeners_lock:
        _listeners.append(fn)

    def unsubscribe() -> None:
        with _listeners_lock:
            if fn in _listeners:
                _listeners.remove(fn)

    return unsubscribe


def record_decision(decision: AccessDecision) -> None:
    """The one call point of every access decision: tell each subscriber (a failing one is logged, never raised)."""
    with _listeners_lock:
        listeners = list(_listeners)
    for fn in listeners:
        try:
            fn(decision)
        except Exception:  # a subscriber must not undo a decision already committed
            log.exception("access decision subscriber %r failed", fn)


# --- requests -------------------------------------------------------------------------------------


def _row(r: Any) -> AccessRequest:
    return AccessRequest(
        id=r.id,
        requester=r.requester,
        privilege=r.privilege,
        table=r.object_name,
        duration_ms=r.duration_ms,
        reason=r.reason,
        status=r.status,
        created_at_ms=r.created_at_ms,
        decided_by=r.decided_by,
        decided_at_ms=r.decided_at_ms,
        comment=r.comment,
        granted_ms=r.granted_ms,
        expires_at_ms=r.expires_at_ms,
        rule=r.rule,
    )


def requestable(privilege: str) -> str:
    name = check_privilege(privilege)
    if name not in REQUESTABLE:
        raise InvalidArgument(
            f"{name} cannot be requested", hint=f"request one of {', '.join(REQUESTABLE)}; ask an owner to GRANT {name}"
        )
    return name


def covers(state: GovernanceState, rule: AccessRule, identity: Identity, privilege: str, table: str) -> bool:
    """Whether ``rule`` covers ``identity`` asking for ``privilege`` on ``table`` (any duration)."""
    if (rule.grantee_kind, rule.grantee) not in identity.grantees or privilege not in rule.privileges:
        return False
    key = table.lower()
    if rule.object_kind == "tag":
        return state.table_tags(key).get(rule.object_name) == rule.tag_value
    if rule.object_kind == TABLE:
        return rule.object_name == key
    return key.startswith(rule.object_name + ".")


def _grant_timed(conn: Connection, request: AccessRequest, by: str, now: int, idle_ms: int | None) -> None:
    """The grant an approval gives: a standing grant stays as it is, a timed one is extended."""
    key = {
        "privilege": request.privilege,
        "object_kind": TABLE,
        "object_name": request.table,
        "column_name": "",
        "grantee_kind": "user",
        "grantee": request.requester,
    }
    where = [t.grants.c[k] == v for k, v in key.items()]
    existing = conn.execute(sa.select(t.grants).where(*where)).first()
    expires = request.expires_at_ms
    if existing is None:
        conn.execute(
            t.grants.insert().values(
                **key,
                granted_by=by,
                created_at_ms=now,
                expires_at_ms=expires,
                request_id=request.id,
                idle_ms=idle_ms,
                last_used_ms=None,
            )
        )
    elif existing.expires_at_ms is not None:
        conn.execute(
            t.grants.update()
            .where(*where)
            .values(
                expires_at_ms=max(existing.expires_at_ms, expires or 0),
                request_id=request.id,
                granted_by=by,
                idle_ms=idle_ms,
                created_at_ms=now,
            )
        )


def request_access(
    store: GovernanceStore, identity: Identity, table: str, privilege: str, duration_ms: int, reason: str, lake: str = ""
) -> tuple[AccessRequest, str]:
    """File a request (``table`` as the catalog spells it); returns it and what happened, in words."""
    state = store.state()
    key = table.lower()
    name = requestable(privilege)
    if not reason or not reason.strip():
        raise InvalidArgument("An access request needs a reason", hint="REQUEST ACCESS ON TABLE t FOR '8 hours' REASON '…'")
    if state.has(identity, name, TABLE, key) and not _only_timed(state, identity, name, key):
        raise InvalidArgument(f"{identity.name} already holds {name} on table {key}", hint="nothing to request")
    now = store.clock()
    scoped = [r for r in state.access_rules if r.without_approval and covers(state, r, identity, name, key)]
    fitting = next((r for r in scoped if duration_ms <= r.max_duration_ms), None)
    values: dict[str, Any] = {
        "requester": identity.name,
        "privilege": name,
        "object_kind": TABLE,
        "object_name": key,
        "duration_ms": duration_ms,
        "reason": reason.strip(),
        "status": PENDING,
        "created_at_ms": now,
    }
    if fitting is not None:
        values.update(
            status=APPROVED,
            decided_by=f"rule {fitting.name}",
            decided_at_ms=now,
            granted_ms=duration_ms,
            expires_at_ms=now + duration_ms,
            rule=fitting.name,
            comment=f"approved by access rule {fitting.name}",
        )

    def run(conn: Connection) -> AccessRequest:
        inserted = conn.execute(t.access_requests.insert().values(**values)).inserted_primary_key
        assert inserted is not None  # an autoincrement key
        request = AccessRequest(id=int(inserted[0]), **_request_fields(values))
        if fitting is not None:
            _grant_timed(conn, request, f"rule {fitting.name}", now, fitting.idle_ms)
        return request

    # Only an approval changes grants: a pending request leaves the policy version where it was.
    request = store.run(run) if fitting is not None else _insert_only(store, run)
    approvers = tuple(state.approvers_of(key))
    record_decision(AccessDecision("requested", request, identity.name, approvers, lake, store))
    if fitting is not None:
        record_decision(AccessDecision(APPROVED, request, f"rule {fitting.name}", approvers, lake, store))
        return request, f"Access request {request.id} approved by access rule {fitting.name} until expiry"
    note = ""
    if scoped:
        longest = max(r.max_duration_ms for r in scoped)
        note = f" (access rules allow at most {format_duration(longest)} without approval)"
    return request, f"Access request {request.id} sent to the approvers of {key}: {', '.join(approvers)}{note}"


def _only_timed(state: GovernanceState, identity: Identity, privilege: str, key: str) -> bool:
    """Whether every grant giving ``privilege`` on the table to ``identity`` is time-bound (renewing is allowed)."""
    holding = [
        g
        for g in state.live_grants()
        if (g.grantee_kind, g.grantee) in identity.grantees
        and g.privilege == privilege
        and not g.column
        and (g.object_kind, g.object_name) in {(TABLE, key)} | {(NAMESPACE, ns) for ns in _namespaces(key)} | {("catalog", "*")}
    ]
    return bool(holding) and all(g.timed for g in holding) and not state.owns(identity, TABLE, key)


def _namespaces(key: str) -> list[str]:
    parts = key.rsplit(".", 1)[0].split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _request_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "requester": values["requester"],
        "privilege": values["privilege"],
        "table": values["object_name"],
        "duration_ms": values["duration_ms"],
        "reason": values["reason"],
        "status": values["status"],
        "created_at_ms": values["created_at_ms"],
        "decided_by": values.get("decided_by"),
        "decided_at_ms": values.get("decided_at_ms"),
        "comment": values.get("comment"),
        "granted_ms": values.get("granted_ms"),
        "expires_at_ms": values.get("expires_at_ms"),
        "rule": values.get("rule"),
    }


def _insert_only(store: GovernanceStore, fn: Callable[[Connection], AccessRequest]) -> AccessRequest:
    with store.engine.begin() as conn:
        return fn(conn)


def get_request(store: GovernanceStore, request_id: int) -> AccessRequest:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.access_requests).where(t.access_requests.c.id == request_id)).first()
    if row is None:
        raise NotFound(f"No access request {request_id}", hint="SHOW ACCESS REQUESTS lists the ones you can see")
    return _row(row)


def visible_requests(
    store: GovernanceStore, identity: Identity, is_owner: bool, status: str | None = None
) -> list[AccessRequest]:
    """The requests ``identity`` may see: its own, and those it decides (the lake owner: all)."""
    state = store.state()
    query = sa.select(t.access_requests).order_by(t.access_requests.c.id)
    if status is not None:
        query = query.where(t.access_requests.c.status == status)
    with store.engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(query)]
    if is_owner:
        return rows
    return [r for r in rows if r.requester == identity.name or state.may_approve(identity, r.table)]


def decide(
    store: GovernanceStore,
    identity: Identity,
    request_id: int,
    approve: bool,
    *,
    duration_ms: int | None = None,
    comment: str | None = None,
    lake: str = "",
) -> AccessRequest:
    """Approve (for at most the requested duration) or deny a pending request, as one of its approvers."""
    state = store.state()
    request = get_request(store, request_id)
    verb = "approve" if approve else "deny"
    if request.requester == identity.name:
        raise AccessDenied(
            f"{identity.name} may not {verb} access request {request_id}: nobody decides their own request",
            hint=f"an approver of {request.table} decides it: {', '.join(state.approvers_of(request.table))}",
        )
    if not state.may_approve(identity, request.table):
        # Says nothing of the request (its table, requester): who may not decide it may not see it either.
        raise AccessDenied(
            f"{identity.name} may not {verb} access request {request_id}: only the approvers of its table may",
            hint="approvers are the table's owner, holders of MANAGE on it, and those set with ALTER TABLE … SET APPROVERS",
        )
    if request.status != PENDING:
        raise InvalidArgument(f"Access request {request_id} is already {request.status}", hint="file a new request to ask again")
    now = store.clock()
    values: dict[str, Any] = {"decided_by": identity.name, "decided_at_ms": now, "comment": comment}
    if approve:
        granted = request.duration_ms if duration_ms is None else duration_ms
        if granted > request.duration_ms:
            raise InvalidArgument(
                f"Access request {request_id} asked for {request.duration}; an approval may shorten it, not lengthen it",
                hint=f"APPROVE ACCESS REQUEST {request_id} FOR '{request.duration}' (or less)",
            )
        values.update(status=APPROVED, granted_ms=granted, expires_at_ms=now + granted)
    else:
        values.update(status=DENIED)
    decided = AccessRequest(**{**asdict(request), **values})

    def run(conn: Connection) -> None:
        updated = conn.execute(
            t.access_requests.update()
            .where(t.access_requests.c.id == request_id, t.access_requests.c.status == PENDING)
            .values(**values)
        ).rowcount
        if not updated:
            raise InvalidArgument(f"Access request {request_id} was decided meanwhile", hint="SHOW ACCESS REQUESTS")
        if approve:
            _grant_timed(conn, decided, identity.name, now, None)

    if approve:
        store.run(run)
    else:
        with store.engine.begin() as conn:
            run(conn)
    approvers = tuple(state.approvers_of(request.table))
    record_decision(AccessDecision(APPROVED if approve else DENIED, decided, identity.name, approvers, lake, store))
    return decided


# --- approvers, tags, rules -------------------------------------------------------------------------


def set_approvers(store: GovernanceStore, kind: str, name: str, grantees: Sequence[tuple[str, str]]) -> None:
    """Replace who decides requests on a table or namespace (an empty list: only owners and MANAGE holders)."""
    for grantee_kind, _ in grantees:
        if grantee_kind not in GRANTEE_KINDS:
            raise InvalidArgument(f"Approvers are USER, GROUP or ROLE, not {grantee_kind!r}")
    key = name.lower()

    def run(conn: Connection) -> None:
        conn.execute(t.approvers.delete().where(t.approvers.c.object_kind == kind, t.approvers.c.object_name == key))
        for grantee_kind, grantee in dict.fromkeys(grantees):
            conn.execute(
                t.approvers.insert().values(object_kind=kind, object_name=key, grantee_kind=grantee_kind, grantee=grantee)
            )

    store.run(run)


def set_object_tags(store: GovernanceStore, kind: str, name: str, tags: Mapping[str, str | None]) -> None:
    """Tags on a table or namespace (a None value removes the tag)."""
    key = name.lower()

    def run(conn: Connection) -> None:
        for tag, value in tags.items():
            where = (t.object_tags.c.object_kind == kind, t.object_tags.c.object_name == key, t.object_tags.c.tag == tag)
            conn.execute(t.object_tags.delete().where(*where))
            if value is not None:
                conn.execute(t.object_tags.insert().values(object_kind=kind, object_name=key, tag=tag, value=value))

    store.run(run)


def create_rule(store: GovernanceStore, rule: AccessRule, by: str, *, replace: bool = False) -> None:
    if rule.grantee_kind not in GRANTEE_KINDS:
        raise InvalidArgument(f"An access rule allows a USER, GROUP or ROLE, not {rule.grantee_kind!r}")
    privileges = [requestable(p) for p in rule.privileges]
    if rule.max_duration_ms <= 0:
        raise InvalidArgument("An access rule needs a positive FOR AT MOST duration")

    def run(conn: Connection) -> None:
        exists = conn.execute(sa.select(t.access_rules.c.name).where(t.access_rules.c.name == rule.name)).first()
        if exists is not None:
            if not replace:
                raise InvalidArgument(f"Access rule {rule.name} already exists", hint="CREATE OR REPLACE ACCESS RULE …")
            conn.execute(t.access_rules.delete().where(t.access_rules.c.name == rule.name))
        conn.execute(
            t.access_rules.insert().values(
                name=rule.name,
                grantee_kind=rule.grantee_kind,
                grantee=rule.grantee,
                privileges=json.dumps(privileges),
                object_kind=rule.object_kind,
                object_name=rule.object_name.lower() if rule.object_kind != "tag" else rule.object_name,
                tag_value=rule.tag_value,
                max_duration_ms=rule.max_duration_ms,
                without_approval=rule.without_approval,
                idle_ms=rule.idle_ms,
                created_by=by,
                created_at_ms=store.clock(),
            )
        )

    store.run(run)


def drop_rule(store: GovernanceStore, name: str, *, if_exists: bool = False) -> None:
    def run(conn: Connection) -> None:
        if not conn.execute(t.access_rules.delete().where(t.access_rules.c.name == name)).rowcount and not if_exists:
            raise NotFound(f"No access rule named {name!r}", hint="SHOW ACCESS RULES")

    store.run(run)


def hidden(state: GovernanceState, table: str) -> bool:
    """Whether the table (or a namespace holding it) is tagged ``discoverable = 'false'``."""
    return state.table_tags(table).get(HIDDEN_TAG[0], "").lower() == HIDDEN_TAG[1]
