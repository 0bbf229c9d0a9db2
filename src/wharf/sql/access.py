"""Access requests in SQL: discovery, requests, approvals, approvers, table tags, self-service rules, webhooks.

::

    FIND TABLES [LIKE 'pattern'] [WITH TAG domain [= 'sales']]
    REQUEST ACCESS ON [TABLE] db.t [PRIVILEGE SELECT] [FOR '8 hours'] REASON '…'
    SHOW ACCESS REQUESTS [PENDING | APPROVED | DENIED]
    APPROVE ACCESS REQUEST 12 [FOR '1 hour'] [COMMENT '…']
    DENY ACCESS REQUEST 12 [REASON '…']
    ALTER TABLE db.t SET APPROVERS GROUP g [, USER u, ROLE r]        ALTER TABLE db.t UNSET APPROVERS
    ALTER NAMESPACE db SET APPROVERS GROUP g                          ALTER NAMESPACE db UNSET APPROVERS
    SHOW APPROVERS ON [TABLE] db.t
    ALTER TABLE db.t SET TAGS ('domain' = 'sales')                    ALTER TABLE db.t UNSET TAGS ('domain')
    ALTER NAMESPACE db SET TAGS ('domain' = 'sales')                  ALTER NAMESPACE db UNSET TAGS ('domain')
    CREATE [OR REPLACE] ACCESS RULE r AS ALLOW USER|GROUP|ROLE g SELECT[, INSERT …]
        ON TAG domain = 'sales' | ON TABLE db.t | ON NAMESPACE db
        FOR AT MOST '7 days' [WITHOUT APPROVAL] [REVOKE UNUSED AFTER '30 days']
    DROP ACCESS RULE [IF EXISTS] r            SHOW ACCESS RULES
    CREATE [OR REPLACE] WEBHOOK w URL 'https://…' SECRET '…'
    DROP WEBHOOK [IF EXISTS] w                SHOW WEBHOOKS

Each runs through ``lake.governance.access`` (``wharf.governance.lake_access``) as the
statement's principal. ``SELECT * FROM system.access_requests`` and ``system.grants`` are in
``wharf.sql.system_tables``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import TokenType

from wharf.errors import InvalidArgument, SqlParseError
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles
from wharf.sql.governance import GovernanceStatement
from wharf.sql.parser import EXTENSIONS, TokenStream

if TYPE_CHECKING:
    from wharf.governance.lake_access import Access


# An access statement is a governance statement (``action`` and its arguments); each subclass has
# its own handler, and the executor picks the most specific one.
AccessStatement = GovernanceStatement


class AccessRequestStatement(AccessStatement):
    """REQUEST / APPROVE / DENY (kind ``access``)."""


class AccessAdminStatement(AccessStatement):
    """Approvers, tags, rules, webhooks (kind ``grant``: they change who may get what)."""


class ShowAccess(AccessStatement):
    """FIND TABLES, SHOW ACCESS REQUESTS / RULES, SHOW APPROVERS, SHOW WEBHOOKS (kind ``show``)."""


_GRANTEES = {"USER": "user", "GROUP": "group", "ROLE": "role"}
_NS = ("NAMESPACE", "SCHEMA", "DATABASE")


def _alter_target(s: TokenStream) -> bool:
    """``ALTER TABLE t`` / ``ALTER NAMESPACE db`` followed by SET/UNSET APPROVERS or (table level) TAGS."""
    if s.word() != "ALTER" or s.word(1) not in ("TABLE", *_NS):
        return False
    s.i += 2
    try:
        s.dotted_name()
    except SqlParseError:
        return False
    return s.word() in ("SET", "UNSET") and s.word(1) in ("APPROVERS", "TAGS")


def _matches(s: TokenStream) -> bool:
    first = s.word()
    if first == "FIND":
        return s.word(1) == "TABLES"
    if first == "REQUEST":
        return s.word(1) == "ACCESS"
    if first in ("APPROVE", "DENY"):
        return s.word(1) == "ACCESS" and s.word(2) == "REQUEST"
    if first == "SHOW":
        if len(s.tokens) < 2:
            return False
        tail = s.command_tail()  # sqlglot folds what follows SHOW into one token
        words = [tail.word(k) for k in (0, 1)]
        return words[0] in ("WEBHOOKS", "APPROVERS") or (words[0] == "ACCESS" and words[1] in ("REQUESTS", "RULES"))
    if first in ("CREATE", "DROP"):
        s.i += 1
        s.accept("OR", "REPLACE")
        return s.at("ACCESS", "RULE") or s.word() == "WEBHOOK"
    return _alter_target(s)


def _string(s: TokenStream, what: str) -> str:
    tok = s.peek()
    if tok is None or tok.token_type != TokenType.STRING:
        s.fail(f"Expected {what} as a quoted string")
    s.i += 1
    return str(tok.text)


def _grantees(s: TokenStream) -> list[tuple[str, str]]:
    found = []
    while True:
        word = s.word()
        if word not in _GRANTEES:
            s.fail("Expected USER, GROUP or ROLE", hint="… SET APPROVERS GROUP data_owners, USER alice")
        s.i += 1
        found.append((_GRANTEES[word], s.identifier()))
        if not s.accept(","):
            return found


def _tag_list(s: TokenStream, with_values: bool) -> dict[str, str | None]:
    s.expect("(")
    found: dict[str, str | None] = {}
    while True:
        key = _string(s, "a tag name")
        if with_values:
            s.expect("=")
            found[key] = _string(s, "a tag value")
        else:
            found[key] = None
        if not s.accept(","):
            break
    s.expect(")")
    return found


def _request_id(s: TokenStream) -> int:
    value = s.number()
    if value < 1:
        s.fail("Expected a request id")
    return value


def _parse(s: TokenStream) -> AccessStatement:
    if s.accept("FIND", "TABLES"):
        like = _string(s, "a pattern") if s.accept("LIKE") else None
        tag = value = None
        if s.accept("WITH", "TAG"):
            tag = s.identifier()
            value = _string(s, "the tag value") if s.accept("=") else None
        s.expect_end()
        return ShowAccess("find", {"like": like, "tag": tag, "value": value})
    if s.accept("REQUEST", "ACCESS"):
        s.expect("ON")
        s.accept("TABLE")
        table = s.dotted_name()
        args: dict[str, Any] = {"table": table, "privilege": "SELECT", "duration": "8 hours", "reason": ""}
        while not s.done():
            if s.accept("PRIVILEGE"):
                args["privilege"] = s.identifier()
            elif s.accept("FOR"):
                args["duration"] = _string(s, "a duration such as '8 hours'")
            elif s.accept("REASON"):
                args["reason"] = _string(s, "the reason")
            else:
                s.fail(
                    "Expected PRIVILEGE, FOR or REASON",
                    hint="REQUEST ACCESS ON TABLE t PRIVILEGE SELECT FOR '8 hours' REASON '…'",
                )
        return AccessRequestStatement("request", args)
    if s.word() in ("APPROVE", "DENY"):
        approving = s.accept("APPROVE")
        if not approving:
            s.expect("DENY")
        s.expect("ACCESS", "REQUEST")
        args = {"id": _request_id(s), "duration": None, "comment": None}
        while not s.done():
            if approving and s.accept("FOR"):
                args["duration"] = _string(s, "a duration such as '1 hour'")
            elif s.accept("COMMENT") or s.accept("REASON"):
                args["comment"] = _string(s, "a comment")
            else:
                s.fail("Expected FOR or COMMENT" if approving else "Expected REASON")
        return AccessRequestStatement("approve" if approving else "deny", args)
    if s.word() == "SHOW":
        s = s.command_tail()
        if s.accept("WEBHOOKS"):
            s.expect_end()
            return ShowAccess("webhooks")
        if s.accept("APPROVERS"):
            s.expect("ON")
            s.accept("TABLE")
            table = s.dotted_name()
            s.expect_end()
            return ShowAccess("approvers", {"table": table})
        s.expect("ACCESS")
        if s.accept("RULES"):
            s.expect_end()
            return ShowAccess("rules")
        s.expect("REQUESTS")
        status = None
        if not s.done():
            status = s.identifier().lower()
        s.expect_end()
        return ShowAccess("requests", {"status": status})
    if s.accept("DROP"):
        is_rule = s.accept("ACCESS", "RULE")
        if not is_rule:
            s.expect("WEBHOOK")
        if_exists = s.accept("IF", "EXISTS")
        name = s.identifier()
        s.expect_end()
        return AccessAdminStatement("drop_rule" if is_rule else "drop_webhook", {"name": name, "if_exists": if_exists})
    if s.accept("CREATE"):
        replace = s.accept("OR", "REPLACE")
        if s.accept("WEBHOOK"):
            name = s.identifier()
            s.expect("URL")
            url = _string(s, "the webhook's URL")
            s.expect("SECRET")
            secret = _string(s, "the signing secret")
            s.expect_end()
            return AccessAdminStatement("create_webhook", {"name": name, "url": url, "secret": secret, "replace": replace})
        s.expect("ACCESS", "RULE")
        return _parse_rule(s, replace)
    s.expect("ALTER")
    kind = "table" if s.accept("TABLE") else "namespace"
    if kind == "namespace":
        s.i += 1  # NAMESPACE | SCHEMA | DATABASE
    name = s.dotted_name()
    setting = s.accept("SET")
    if not setting:
        s.expect("UNSET")
    if s.accept("APPROVERS"):
        grantees = _grantees(s) if setting else []
        s.expect_end()
        return AccessAdminStatement("set_approvers", {"kind": kind, "name": name, "grantees": grantees})
    s.expect("TAGS")
    tags = _tag_list(s, with_values=setting)
    s.expect_end()
    return AccessAdminStatement("set_tags", {"kind": kind, "name": name, "tags": tags})


def _parse_rule(s: TokenStream, replace: bool) -> AccessAdminStatement:
    name = s.identifier()
    s.expect("AS", "ALLOW")
    word = s.word()
    if word not in _GRANTEES:
        s.fail(
            "Expected USER, GROUP or ROLE", hint="CREATE ACCESS RULE r AS ALLOW GROUP analysts SELECT ON TAG domain = 'sales' …"
        )
    s.i += 1
    grantee = (_GRANTEES[word], s.identifier())
    privileges = [s.identifier()]
    while s.accept(","):
        privileges.append(s.identifier())
    s.expect("ON")
    args: dict[str, Any] = {"name": name, "grantee": grantee, "privileges": privileges, "replace": replace}
    if s.accept("TAG"):
        tag = s.identifier()
        s.expect("=")
        args["tag"] = (tag, _string(s, "the tag value"))
    elif s.word() in _NS:
        s.i += 1
        args["namespace"] = s.dotted_name()
    else:
        s.accept("TABLE")
        args["table"] = s.dotted_name()
    s.expect("FOR", "AT", "MOST")
    args["max_duration"] = _string(s, "a duration such as '7 days'")
    args["without_approval"] = False
    args["revoke_unused_after"] = None
    while not s.done():
        if s.accept("WITHOUT", "APPROVAL"):
            args["without_approval"] = True
        elif s.accept("REVOKE", "UNUSED", "AFTER"):
            args["revoke_unused_after"] = _string(s, "a duration such as '30 days'")
        else:
            s.fail("Expected WITHOUT APPROVAL or REVOKE UNUSED AFTER '<duration>'")
    return AccessAdminStatement("create_rule", args)


# Before the governance and DDL grammars: ALTER TABLE t SET TAGS (table level) and ALTER NAMESPACE
# … SET APPROVERS must not reach the column-tag or namespace-property grammars. The governance
# grammar inserts itself first too: import it before inserting this one ahead of it.
import wharf.sql.governance  # noqa: E402, F401

EXTENSIONS.insert(0, (_matches, _parse))


def _access(ctx: Context) -> Access:
    if ctx.lake is None:  # pragma: no cover - every statement Lakehouse runs has its handle
        raise InvalidArgument("Access statements need a lake handle (run them with lake.sql)")
    return ctx.lake.governance.access


def _ok(message: str) -> Result:
    return Result(pa.table({"status": [message]}), rowcount=0, message=message)


@handles(AccessRequestStatement, kind="access")
def run_request(ctx: Context, stmt: AccessRequestStatement) -> Result:
    a = stmt.args
    access = _access(ctx)
    if stmt.action == "request":
        request, message = access.request_with_message(
            a["table"], privilege=a["privilege"], duration=a["duration"], reason=a["reason"]
        )
        return Result(
            pa.table({"request_id": [request.id], "status": [request.status], "message": [message]}), rowcount=0, message=message
        )
    if stmt.action == "approve":
        request = access.approve(a["id"], duration=a["duration"], comment=a["comment"])
        return _ok(
            f"Approved access request {request.id}: {request.privilege} on {request.table} for {request.requester}, "
            f"for {access_duration(request.granted_ms)}"
        )
    request = access.deny(a["id"], reason=a["comment"])
    return _ok(f"Denied access request {request.id}")


def access_duration(ms: int | None) -> str:
    from wharf.governance.durations import format_duration

    return format_duration(ms or 0)


@handles(AccessAdminStatement, kind="grant")
def run_admin(ctx: Context, stmt: AccessAdminStatement) -> Result:
    a = stmt.args
    access = _access(ctx)
    table = a.get("name") if a.get("kind") == "table" else None
    namespace = a.get("name") if a.get("kind") == "namespace" else None
    if stmt.action == "set_approvers":
        by_kind: dict[str, list[str]] = {"user": [], "group": [], "role": []}
        for kind, name in a["grantees"]:
            by_kind[kind].append(name)
        access.set_approvers(
            table=table, namespace=namespace, users=by_kind["user"], groups=by_kind["group"], roles=by_kind["role"]
        )
        return _ok(f"Set the approvers of {a['kind']} {a['name']}")
    if stmt.action == "set_tags":
        access.set_tags(a["tags"], table=table, namespace=namespace)
        return _ok(f"Set the tags of {a['kind']} {a['name']}")
    if stmt.action == "create_rule":
        kind, grantee = a["grantee"]
        scope = {k: a[k] for k in ("tag", "table", "namespace") if k in a}
        access.create_rule(
            a["name"],
            privileges=a["privileges"],
            max_duration=a["max_duration"],
            without_approval=a["without_approval"],
            revoke_unused_after=a["revoke_unused_after"],
            replace=a["replace"],
            **{kind: grantee},
            **scope,
        )
        return _ok(f"Created access rule {a['name']}")
    if stmt.action == "drop_rule":
        access.drop_rule(a["name"], if_exists=a["if_exists"])
        return _ok(f"Dropped access rule {a['name']}")
    if stmt.action == "create_webhook":
        access.create_webhook(a["name"], a["url"], secret=a["secret"], replace=a["replace"])
        return _ok(f"Created webhook {a['name']}")
    access.drop_webhook(a["name"], if_exists=a["if_exists"])
    return _ok(f"Dropped webhook {a['name']}")


@handles(ShowAccess, kind="show")
def run_show(ctx: Context, stmt: ShowAccess) -> Result:
    a = stmt.args
    access = _access(ctx)
    if stmt.action == "find":
        found = access.find(a["like"], tag=a["tag"], value=a["value"])
        return Result(
            pa.table(
                {
                    "table_name": pa.array([f.table for f in found], pa.string()),
                    "description": pa.array([f.description for f in found], pa.string()),
                    "owner": pa.array([f.owner for f in found], pa.string()),
                    "tags": pa.array([", ".join(f"{k}={v}" for k, v in f.tags.items()) for f in found], pa.string()),
                    "approvers": pa.array([", ".join(f.approvers) for f in found], pa.string()),
                    "your_privileges": pa.array([", ".join(f.privileges) for f in found], pa.string()),
                }
            )
        )
    if stmt.action == "requests":
        table = access.requests_table()
        if a["status"] is not None:
            access.requests(a["status"])  # checks the status word
            table = table.filter(pc.equal(table["status"], a["status"]))
        return Result(table)
    if stmt.action == "rules":
        rules = access.rules()
        return Result(
            pa.table(
                {
                    "rule": pa.array([r.name for r in rules], pa.string()),
                    "allows": pa.array([f"{r.grantee_kind} {r.grantee}" for r in rules], pa.string()),
                    "privileges": pa.array([", ".join(r.privileges) for r in rules], pa.string()),
                    "scope": pa.array([r.scope for r in rules], pa.string()),
                    "at_most": pa.array([access_duration(r.max_duration_ms) for r in rules], pa.string()),
                    "without_approval": pa.array([r.without_approval for r in rules], pa.bool_()),
                    "revoke_unused_after": pa.array(
                        [None if r.idle_ms is None else access_duration(r.idle_ms) for r in rules], pa.string()
                    ),
                }
            )
        )
    if stmt.action == "approvers":
        names = access.approvers(a["table"])
        return Result(pa.table({"approver": pa.array(names, pa.string())}))
    hooks = access.webhooks()
    return Result(
        pa.table({"webhook": pa.array([n for n, _ in hooks], pa.string()), "url": pa.array([u for _, u in hooks], pa.string())})
    )
