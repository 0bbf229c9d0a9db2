"""Governance in SQL: users, groups, roles, grants, policy functions, row filters and column masks.

::

    CREATE USER [IF NOT EXISTS] alice [WITH ATTRIBUTES ('region' = 'US', …)]
    ALTER USER alice SET ATTRIBUTES ('region' = 'EU', 'team' = NULL)      -- NULL removes a key
    DROP USER alice
    CREATE GROUP [IF NOT EXISTS] analysts          DROP GROUP [IF EXISTS] analysts
    ALTER GROUP analysts ADD USER alice[, bob]     ALTER GROUP analysts DROP USER alice
    CREATE ROLE [IF NOT EXISTS] analyst            DROP ROLE [IF EXISTS] analyst
    GRANT ROLE analyst TO USER alice | GROUP analysts | ROLE senior
    REVOKE ROLE analyst FROM USER alice | GROUP analysts | ROLE senior
    GRANT SELECT, INSERT | ALL PRIVILEGES ON TABLE db.t | NAMESPACE db | CATALOG TO USER|GROUP|ROLE x
    GRANT SELECT (c1, c2) ON TABLE db.t TO …                              -- column level
    REVOKE … ON … FROM …
    SHOW GRANTS ON [TABLE] db.t | NAMESPACE db | CATALOG      SHOW GRANTS TO USER|GROUP|ROLE x
    SHOW ROLES        SHOW GROUPS
    MAP GROUP 'Sales Analysts' TO ROLE analyst       -- an identity provider's group (docs/auth.md)
    UNMAP GROUP 'Sales Analysts' FROM ROLE analyst   SHOW GROUP MAPPINGS
    CREATE [OR REPLACE] FUNCTION us_only(region VARCHAR) RETURNS BOOLEAN RETURN <expression>
    DROP FUNCTION [IF EXISTS] us_only
    ALTER TABLE db.t SET ROW FILTER us_only ON (region)       ALTER TABLE db.t DROP ROW FILTER
    ALTER TABLE db.t ALTER COLUMN email SET MASK mask_email [USING COLUMNS (c, …)]
    ALTER TABLE db.t ALTER COLUMN email DROP MASK

Each runs through ``lake.governance`` (``wharf.governance.lake_governance``) as the statement's
principal, so the SQL, Python and CLI forms check the same privileges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import TokenType

from wharf.errors import InvalidArgument
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles
from wharf.sql.parser import EXTENSIONS, TokenStream

if TYPE_CHECKING:
    from wharf.governance.lake_governance import Governance


@dataclass(frozen=True)
class GovernanceStatement:
    """One governance statement: ``action`` and its arguments."""

    action: str
    args: dict[str, Any] = field(default_factory=dict)


class AdminStatement(GovernanceStatement):
    """Users, groups, roles, grants (kind ``grant``)."""


class PolicyStatement(GovernanceStatement):
    """Policy functions, row filters, masks (kind ``policy``)."""


class ShowGovernance(GovernanceStatement):
    """SHOW GRANTS / ROLES / GROUPS (kind ``show``)."""


_MAPPINGS = pa.schema([("group", pa.string()), ("role", pa.string())])
_GRANTEE_WORDS = {"USER": "user", "GROUP": "group", "ROLE": "role"}


def _matches(s: TokenStream) -> bool:
    first = s.word()
    if first in ("GRANT", "REVOKE"):
        return True
    if first in ("MAP", "UNMAP"):
        return s.word(1) == "GROUP"
    if first == "SHOW":
        if len(s.tokens) < 2:
            return False
        tail = s.command_tail()
        return tail.word() in ("GRANTS", "ROLES", "GROUPS", "FUNCTIONS") or tail.at("GRANT") or tail.at("GROUP", "MAPPINGS")
    if first == "CREATE":
        s.accept("CREATE")
        s.accept("OR", "REPLACE")
        return s.word() in ("USER", "GROUP", "ROLE", "FUNCTION") or s.at("MASKING", "POLICY")
    if first == "DROP":
        return s.word(1) in ("USER", "GROUP", "ROLE", "FUNCTION") or (s.word(1) == "MASKING" and s.word(2) == "POLICY")
    if first == "ALTER":
        if s.word(1) in ("USER", "GROUP"):
            return True
        if s.word(1) == "TABLE":
            words = [s.word(k) for k in range(len(s.tokens))]
            text = " ".join(words)
            return any(w in text for w in (" ROW FILTER", " SET MASK", " DROP MASK", " SET TAGS", " UNSET TAGS"))
    return False


def _string(s: TokenStream, what: str) -> str:
    tok = s.peek()
    if tok is None or tok.token_type != TokenType.STRING:
        s.fail(f"Expected {what} as a quoted string")
    s.i += 1
    return str(tok.text)


def _attributes(s: TokenStream) -> dict[str, str | None]:
    s.expect("(")
    found: dict[str, str | None] = {}
    while True:
        key = _string(s, "an attribute name")
        s.expect("=")
        if s.accept("NULL"):
            found[key] = None
        else:
            found[key] = _string(s, "an attribute value")
        if not s.accept(","):
            break
    s.expect(")")
    return found


def _names(s: TokenStream) -> list[str]:
    names = [s.identifier()]
    while s.accept(","):
        names.append(s.identifier())
    return names


def _grantee(s: TokenStream) -> tuple[str, str]:
    word = s.word()
    if word not in _GRANTEE_WORDS:
        s.fail("Expected USER, GROUP or ROLE", hint="GRANT … TO USER alice | GROUP analysts | ROLE analyst")
    s.i += 1
    return _GRANTEE_WORDS[word], s.identifier()


def _privileges(s: TokenStream) -> tuple[list[str], list[str]]:
    """``SELECT, INSERT`` | ``ALL [PRIVILEGES]`` | ``SELECT (c1, c2)``; returns (privileges, columns)."""
    if s.accept("ALL"):
        s.accept("PRIVILEGES")
        return ["ALL"], []
    privileges: list[str] = []
    columns: list[str] = []
    while True:
        word = s.word()
        if not word or word in ("ON",):
            s.fail("Expected a privilege", hint="USAGE, SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, MANAGE, MAINTAIN")
        s.i += 1
        privileges.append(word)
        if s.accept("("):
            columns = _names(s)
            s.expect(")")
        if not s.accept(","):
            break
    return privileges, columns


def _object(s: TokenStream) -> tuple[str, str | None]:
    s.expect("ON")
    if s.accept("CATALOG"):
        if not s.done() and s.word() not in ("TO", "FROM"):
            s.identifier()  # the catalog's name: the lake is the only catalog
        return "catalog", None
    if s.accept("NAMESPACE") or s.accept("SCHEMA") or s.accept("DATABASE"):
        return "namespace", s.dotted_name()
    s.accept("TABLE") or s.accept("VIEW")
    return "table", s.dotted_name()


def _type(s: TokenStream) -> str:
    """A SQL type up to the next ``,`` or ``)`` at depth 0 (``DECIMAL(10, 2)``, ``VARCHAR``)."""
    start = s.peek()
    if start is None:
        s.fail("Expected a type")
    depth = 0
    end = start
    while (tok := s.peek()) is not None:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            if depth == 0:
                break
            depth -= 1
        elif tok.token_type == TokenType.COMMA and depth == 0:
            break
        elif depth == 0 and tok is not start and tok.text.upper() in ("RETURN", "RETURNS"):
            break
        end = tok
        s.i += 1
    return s.text[start.start : end.end + 1]


def _parse(s: TokenStream) -> GovernanceStatement:
    word = s.word()
    if word == "SHOW":
        return _parse_show(s.command_tail())
    if s.accept("MAP") or s.accept("UNMAP"):
        mapping = s.tokens[0].text.upper() == "MAP"
        s.expect("GROUP")
        tok = s.peek()
        group = _string(s, "the group name") if tok is not None and tok.token_type == TokenType.STRING else s.identifier()
        s.expect("TO" if mapping else "FROM")
        s.expect("ROLE")
        role = s.identifier()
        s.expect_end()
        return AdminStatement("map_group" if mapping else "unmap_group", {"group": group, "role": role})
    if s.accept("GRANT") or s.accept("REVOKE"):
        granting = s.tokens[0].text.upper() == "GRANT"
        if s.accept("ROLE"):
            role = s.identifier()
            s.expect("TO" if granting else "FROM")
            kind, name = _grantee(s)
            s.expect_end()
            return AdminStatement("grant_role" if granting else "revoke_role", {"role": role, "kind": kind, "name": name})
        privileges, columns = _privileges(s)
        kind, obj = _object(s)
        if not (s.accept("TO") if granting else s.accept("FROM")):
            s.fail(f"Expected {'TO' if granting else 'FROM'} <grantee>")
        grantee_kind, grantee = _grantee(s)
        s.expect_end()
        return AdminStatement(
            "grant" if granting else "revoke",
            {
                "privileges": privileges,
                "columns": columns,
                "kind": kind,
                "object": obj,
                "grantee_kind": grantee_kind,
                "grantee": grantee,
            },
        )
    if s.accept("CREATE"):
        replace = s.accept("OR", "REPLACE")
        if s.accept("FUNCTION"):
            return _parse_function(s, replace)
        if s.accept("MASKING", "POLICY"):
            return _parse_masking_policy(s, replace)
        what = s.word()
        s.i += 1
        if_not_exists = s.accept("IF", "NOT", "EXISTS")
        name = s.identifier()
        attributes: dict[str, str | None] = {}
        if what == "USER" and s.accept("WITH"):
            s.expect("ATTRIBUTES")
            attributes = _attributes(s)
        s.expect_end()
        return AdminStatement(f"create_{what.lower()}", {"name": name, "if_not_exists": if_not_exists, "attributes": attributes})
    if s.accept("DROP", "MASKING", "POLICY"):
        if_exists = s.accept("IF", "EXISTS")
        name = s.identifier()
        s.expect_end()
        return PolicyStatement("drop_masking_policy", {"name": name, "if_exists": if_exists})
    if s.accept("DROP"):
        what = s.word()
        s.i += 1
        if_exists = s.accept("IF", "EXISTS")
        name = s.identifier()
        s.expect_end()
        statement: type[GovernanceStatement] = PolicyStatement if what == "FUNCTION" else AdminStatement
        return statement(f"drop_{what.lower()}", {"name": name, "if_exists": if_exists})
    s.expect("ALTER")
    if s.accept("USER"):
        name = s.identifier()
        s.expect("SET", "ATTRIBUTES")
        attributes = _attributes(s)
        s.expect_end()
        return AdminStatement("alter_user", {"name": name, "attributes": attributes})
    if s.accept("GROUP"):
        group = s.identifier()
        adding = s.accept("ADD")
        if not adding:
            s.expect("DROP")
        s.accept("USER") or s.accept("USERS")
        users = _names(s)
        s.expect_end()
        return AdminStatement("add_members" if adding else "drop_members", {"group": group, "users": users})
    s.expect("TABLE")
    table = s.dotted_name()
    if s.accept("SET", "ROW", "FILTER"):
        function = s.identifier()
        s.expect("ON")
        s.expect("(")
        columns = _names(s)
        s.expect(")")
        s.expect_end()
        return PolicyStatement("set_row_filter", {"table": table, "function": function, "columns": columns})
    if s.accept("DROP", "ROW", "FILTER"):
        s.expect_end()
        return PolicyStatement("drop_row_filter", {"table": table})
    s.expect("ALTER")
    s.accept("COLUMN")
    column = s.identifier()
    if s.accept("SET", "MASK"):
        function = s.identifier()
        if s.accept("("):  # a built-in mask's arguments: partial(show_first, show_last)
            args = []
            while not s.accept(")"):
                if s.done():
                    s.fail("Expected )")
                args.append(str(s.literal()))
                s.accept(",")
            function = f"{function}({', '.join(args)})"
        using: list[str] = []
        if s.accept("USING", "COLUMNS"):
            s.expect("(")
            using = _names(s)
            s.expect(")")
        s.expect_end()
        return PolicyStatement("set_mask", {"table": table, "column": column, "function": function, "using": using})
    if s.accept("SET", "TAGS"):
        tags = _attributes(s)
        s.expect_end()
        return PolicyStatement("set_tags", {"table": table, "column": column, "tags": tags})
    if s.accept("UNSET", "TAGS"):
        s.expect("(")
        names = [_string(s, "a tag name")]
        while s.accept(","):
            names.append(_string(s, "a tag name"))
        s.expect(")")
        s.expect_end()
        return PolicyStatement("set_tags", {"table": table, "column": column, "tags": dict.fromkeys(names)})
    s.expect("DROP", "MASK")
    s.expect_end()
    return PolicyStatement("drop_mask", {"table": table, "column": column})


def _parse_masking_policy(s: TokenStream, replace: bool) -> PolicyStatement:
    """``name FOR TAG pii = 'email' USING mask_email [EXCEPT ROLE r | GROUP g | USER u [, …]]``."""
    name = s.identifier()
    s.expect("FOR", "TAG")
    tag = s.identifier()
    s.expect("=")
    value = _string(s, "the tag value")
    s.expect("USING")
    function = s.identifier()
    if s.accept("("):
        args: list[str] = []
        while not s.accept(")"):
            if s.done():
                s.fail("Expected )")
            args.append(str(s.literal()))
            s.accept(",")
        function = f"{function}({', '.join(args)})"
    exempt: list[tuple[str, str]] = []
    if s.accept("EXCEPT"):
        exempt.append(_grantee(s))
        while s.accept(","):
            exempt.append(_grantee(s))
    s.expect_end()
    spec: dict[str, Any] = {"name": name, "tag": tag, "value": value, "function": function, "exempt": exempt, "replace": replace}
    return PolicyStatement("create_masking_policy", spec)


# First among the grammars: ALTER TABLE … ALTER COLUMN c SET MASK must not reach the column grammar.
EXTENSIONS.insert(0, (_matches, _parse))


def _parse_function(s: TokenStream, replace: bool) -> PolicyStatement:
    name = s.identifier()
    s.expect("(")
    parameters: list[tuple[str, str]] = []
    if not s.accept(")"):
        while True:
            parameter = s.identifier()
            parameters.append((parameter, _type(s)))
            if not s.accept(","):
                break
        s.expect(")")
    s.expect("RETURNS")
    returns = _type(s)
    s.expect("RETURN")
    body = s.rest().strip()
    if not body:
        s.fail("Expected the function's expression after RETURN")
    return PolicyStatement(
        "create_function", {"name": name, "parameters": parameters, "returns": returns, "body": body, "replace": replace}
    )


def _parse_show(t: TokenStream) -> ShowGovernance:
    if t.accept("ROLES"):
        t.expect_end()
        return ShowGovernance("roles")
    if t.accept("GROUPS"):
        t.expect_end()
        return ShowGovernance("groups")
    if t.accept("FUNCTIONS"):
        t.expect_end()
        return ShowGovernance("functions")
    if t.accept("GROUP", "MAPPINGS"):
        t.expect_end()
        return ShowGovernance("group_mappings")
    if not t.accept("GRANTS"):
        t.expect("GRANT")
    if t.accept("TO") or t.accept("FOR"):
        kind, name = _grantee(t)
        t.expect_end()
        return ShowGovernance("grants_to", {"kind": kind, "name": name})
    kind, obj = _object(t)
    t.expect_end()
    return ShowGovernance("grants_on", {"kind": kind, "object": obj})


def _governance(ctx: Context) -> Governance:
    if ctx.lake is None:  # pragma: no cover - every statement Lakehouse runs has its handle
        raise InvalidArgument("Governance statements need a lake handle (run them with lake.sql)")
    return ctx.lake.governance


def _ok(message: str) -> Result:
    return Result(pa.table({"status": [message]}), rowcount=0, message=message)


def _on(kind: str, obj: str | None) -> dict[str, Any]:
    return {"table": obj} if kind == "table" else {"namespace": obj} if kind == "namespace" else {"catalog": True}


@handles(AdminStatement, kind="grant")
def run_admin(ctx: Context, stmt: AdminStatement) -> Result:
    g = _governance(ctx)
    a = stmt.args
    action = stmt.action
    if action == "create_user":
        created = g.create_user(
            a["name"], {k: v for k, v in a["attributes"].items() if v is not None}, if_not_exists=a["if_not_exists"]
        )
        return _ok(f"Created user {a['name']}" if created else f"User {a['name']} already exists")
    if action == "alter_user":
        g.set_user_attributes(a["name"], a["attributes"])
        return _ok(f"Altered user {a['name']}")
    if action == "drop_user":
        g.drop_user(a["name"])
        return _ok(f"Dropped user {a['name']}")
    if action == "create_group":
        created = g.create_group(a["name"], if_not_exists=a["if_not_exists"])
        return _ok(f"Created group {a['name']}" if created else f"Group {a['name']} already exists")
    if action == "drop_group":
        g.drop_group(a["name"], if_exists=a["if_exists"])
        return _ok(f"Dropped group {a['name']}")
    if action in ("add_members", "drop_members"):
        for user in a["users"]:
            (g.add_to_group if action == "add_members" else g.remove_from_group)(a["group"], user)
        return _ok(f"Altered group {a['group']}")
    if action == "create_role":
        created = g.create_role(a["name"], if_not_exists=a["if_not_exists"])
        return _ok(f"Created role {a['name']}" if created else f"Role {a['name']} already exists")
    if action == "drop_role":
        g.drop_role(a["name"], if_exists=a["if_exists"])
        return _ok(f"Dropped role {a['name']}")
    if action == "map_group":
        added = g.map_group(a["group"], a["role"])
        return _ok(f"Mapped group {a['group']} to role {a['role']}" if added else f"Group {a['group']} is mapped already")
    if action == "unmap_group":
        if not g.unmap_group(a["group"], a["role"]):
            raise InvalidArgument(f"Group {a['group']!r} is not mapped to role {a['role']}", hint="SHOW GROUP MAPPINGS")
        return _ok(f"Unmapped group {a['group']} from role {a['role']}")
    if action in ("grant_role", "revoke_role"):
        grantee = (
            {"user": a["name"]}
            if a["kind"] == "user"
            else {"group": a["name"]}
            if a["kind"] == "group"
            else {"to_role": a["name"]}
        )
        if action == "grant_role":
            g.grant_role(a["role"], **grantee)
            return _ok(f"Granted role {a['role']} to {a['kind']} {a['name']}")
        g.revoke_role(a["role"], **grantee)
        return _ok(f"Revoked role {a['role']} from {a['kind']} {a['name']}")
    grantee = {a["grantee_kind"]: a["grantee"]}
    on = _on(a["kind"], a["object"])
    if action == "grant":
        g.grant(a["privileges"], columns=a["columns"], **on, **grantee)
        return _ok(f"Granted {', '.join(a['privileges'])} to {a['grantee_kind']} {a['grantee']}")
    count = g.revoke(a["privileges"], columns=a["columns"], **on, **grantee)
    return _ok(f"Revoked {count} grant(s) from {a['grantee_kind']} {a['grantee']}")


@handles(PolicyStatement, kind="policy")
def run_policy(ctx: Context, stmt: PolicyStatement) -> Result:
    g = _governance(ctx)
    a = stmt.args
    if stmt.action == "create_function":
        g.create_function(a["name"], a["parameters"], a["returns"], a["body"], replace=a["replace"])
        return _ok(f"Created function {a['name']}")
    if stmt.action == "drop_function":
        g.drop_function(a["name"], if_exists=a["if_exists"])
        return _ok(f"Dropped function {a['name']}")
    if stmt.action == "set_tags":
        g.set_tags(a["table"], a["column"], a["tags"])
        return _ok(f"Set the tags of {a['table']}.{a['column']}")
    if stmt.action == "create_masking_policy":
        g.create_masking_policy(
            a["name"], tag=a["tag"], value=a["value"], function=a["function"], exempt=a["exempt"], replace=a["replace"]
        )
        return _ok(f"Created masking policy {a['name']}")
    if stmt.action == "drop_masking_policy":
        g.drop_masking_policy(a["name"], if_exists=a["if_exists"])
        return _ok(f"Dropped masking policy {a['name']}")
    if stmt.action == "set_row_filter":
        g.set_row_filter(a["table"], a["function"], a["columns"])
        return _ok(f"Set the row filter of {a['table']}")
    if stmt.action == "drop_row_filter":
        g.drop_row_filter(a["table"])
        return _ok(f"Dropped the row filter of {a['table']}")
    if stmt.action == "set_mask":
        g.set_mask(a["table"], a["column"], a["function"], a["using"])
        return _ok(f"Set the mask of {a['table']}.{a['column']}")
    g.drop_mask(a["table"], a["column"])
    return _ok(f"Dropped the mask of {a['table']}.{a['column']}")


@handles(ShowGovernance, kind="show")
def run_show(ctx: Context, stmt: ShowGovernance) -> Result:
    g = _governance(ctx)
    a = stmt.args
    if stmt.action == "roles":
        infos = g.roles()
        return Result(pa.table({"role": [r.name for r in infos], "granted_to": [", ".join(r.granted_to) for r in infos]}))
    if stmt.action == "groups":
        found = g.groups()
        return Result(pa.table({"group": list(found), "members": [", ".join(m) for m in found.values()]}))
    if stmt.action == "group_mappings":
        mappings = g.group_mappings()
        return Result(pa.table({"group": [m[0] for m in mappings], "role": [m[1] for m in mappings]}, schema=_MAPPINGS))
    if stmt.action == "functions":
        functions = g.functions()
        return Result(pa.table({"function": [f.signature for f in functions], "body": [f.body for f in functions]}))
    if stmt.action == "grants_on":
        grants = g.grants_on(**_on(a["kind"], a["object"]))
    else:
        grants = g.grants_to(**{"user" if a["kind"] == "user" else a["kind"]: a["name"]})
    return Result(
        pa.table(
            {
                "privilege": [x.privilege for x in grants],
                "object": [x.object_label for x in grants],
                "grantee": [f"{x.grantee_kind} {x.grantee}" for x in grants],
                "granted_by": [x.granted_by for x in grants],
            },
            schema=pa.schema(
                [("privilege", pa.string()), ("object", pa.string()), ("grantee", pa.string()), ("granted_by", pa.string())]
            ),
        )
    )
