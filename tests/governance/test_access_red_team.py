"""Red team, access requests: expired grants, self-granting beyond a rule, deciding one's own request,
denied requests, revoked roles mid-session, and requests that would reveal hidden tables.

bob holds nothing; alice reads sales through role analyst (row filter US, masked emails). Time is
moved with the governance store's clock. Every attempt asserts the exact rows or the refusal.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import wharf
from wharf.errors import AccessDenied, InvalidArgument, NotFound
from wharf.governance.store import now_ms

HOUR = 3_600_000


@pytest.fixture
def advance(owner: wharf.Lakehouse) -> Iterator[list[int]]:
    """Append milliseconds to the list to move the governance clock forward."""
    store = owner.governance.store
    start = now_ms()
    moves: list[int] = []
    store.clock = lambda: start + sum(moves)
    yield moves
    store.clock = now_ms


def _approved(owner: wharf.Lakehouse, user: wharf.Lakehouse, sql: str, duration: str = "1 hour") -> int:
    request_id = int(user.sql(sql).fetchall()[0][0])
    owner.sql(f"APPROVE ACCESS REQUEST {request_id} FOR '{duration}'")
    return request_id


def test_an_expired_grant_opens_nothing(owner: wharf.Lakehouse, bob: wharf.Lakehouse, advance: list[int]) -> None:
    _approved(owner, bob, "REQUEST ACCESS ON TABLE sales.customers FOR '8 hours' REASON 'r'")
    _approved(owner, bob, "REQUEST ACCESS ON TABLE sales.customers PRIVILEGE INSERT FOR '8 hours' REASON 'r'")
    assert bob.sql("SELECT count(*) FROM sales.customers").scalar() == 4
    advance.append(HOUR)  # exactly at the expiry: gone
    attempts = [
        "SELECT count(*) FROM sales.customers",
        "SELECT * FROM sales.customers.snapshots",
        "SELECT count(*) FROM sales.customers FOR VERSION AS OF 'main'",
        "WITH c AS (SELECT * FROM sales.customers) SELECT count(*) FROM c",
        "DESCRIBE sales.customers",
        "INSERT INTO sales.customers VALUES (5, 'Eve', '555')",
        "CREATE VIEW sales.mine AS SELECT * FROM sales.customers",
    ]
    for sql in attempts:
        with pytest.raises(AccessDenied):
            bob.sql(sql)
    assert bob.sql("SHOW GRANTS TO USER bob").fetchall() == []
    assert bob.sql("SELECT privilege, active FROM system.grants ORDER BY privilege").fetchall() == [
        ("INSERT", False),
        ("SELECT", False),
    ]
    assert owner.sql("SELECT count(*) FROM sales.customers").scalar() == 4  # the INSERT never landed


def test_self_granting_beyond_a_rule_is_refused_or_waits(
    owner: wharf.Lakehouse, alice: wharf.Lakehouse, bob: wharf.Lakehouse
) -> None:
    owner.sql("""
        CREATE SCHEMA hr;
        CREATE TABLE hr.salaries (id INT, salary INT);
        INSERT INTO hr.salaries VALUES (1, 100);
        ALTER TABLE sales.customers SET TAGS ('domain' = 'sales');
        CREATE ACCESS RULE analysts_sales AS ALLOW GROUP analysts SELECT ON TAG domain = 'sales'
            FOR AT MOST '1 day' WITHOUT APPROVAL;
    """)
    # Widening the rule's scope by tagging another table needs MANAGE on that table; creating rules, MANAGE on the catalog.
    for sql in (
        "ALTER TABLE hr.salaries SET TAGS ('domain' = 'sales')",
        "ALTER NAMESPACE hr SET TAGS ('domain' = 'sales')",
        "CREATE ACCESS RULE mine AS ALLOW USER alice SELECT ON NAMESPACE hr FOR AT MOST '1 day' WITHOUT APPROVAL",
        "DROP ACCESS RULE analysts_sales",
        "ALTER TABLE hr.salaries SET APPROVERS USER alice",
        "CREATE WEBHOOK w URL 'http://127.0.0.1:9/x' SECRET 'sixteen-chars-long'",
    ):
        with pytest.raises(AccessDenied):
            alice.sql(sql)
    statuses = [
        alice.sql(f"REQUEST ACCESS ON TABLE {sql}").fetchall()[0][1]
        for sql in (
            "hr.salaries FOR '1 hour' REASON 'untagged'",
            "sales.customers PRIVILEGE UPDATE FOR '1 hour' REASON 'another privilege'",
            "sales.customers PRIVILEGE DELETE FOR '2 days' REASON 'too long and another privilege'",
        )
    ]
    assert statuses == ["pending", "pending", "pending"]
    assert bob.sql("REQUEST ACCESS ON TABLE sales.customers FOR '1 hour' REASON 'not a member'").fetchall()[0][1] == "pending"
    with pytest.raises(AccessDenied):
        alice.sql("SELECT * FROM hr.salaries")
    with pytest.raises(AccessDenied):
        alice.sql("UPDATE sales.customers SET name = 'x'")
    with pytest.raises(AccessDenied):
        bob.sql("SELECT * FROM sales.customers")
    for privilege in ("MANAGE", "ALL", "CREATE"):  # the power to decide requests is never requested
        with pytest.raises(InvalidArgument, match="cannot be requested"):
            alice.sql(f"REQUEST ACCESS ON TABLE hr.salaries PRIVILEGE {privilege} FOR '1 hour' REASON 'r'")
    assert owner.sql("SELECT requester, status FROM system.access_requests ORDER BY id").fetchall() == [
        ("alice", "pending"),
        ("alice", "pending"),
        ("alice", "pending"),
        ("bob", "pending"),
    ]
    assert owner.sql("SELECT * FROM system.grants WHERE expires_at IS NOT NULL").fetchall() == []


def test_nobody_approves_their_own_request(owner: wharf.Lakehouse, alice: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    request_id = bob.sql("REQUEST ACCESS ON TABLE sales.customers FOR '1 hour' REASON 'r'").fetchall()[0][0]
    with pytest.raises(AccessDenied, match="nobody decides their own request"):
        bob.sql(f"APPROVE ACCESS REQUEST {request_id}")
    with pytest.raises(AccessDenied, match="only the approvers of its table may"):
        alice.sql(f"APPROVE ACCESS REQUEST {request_id}")  # reads the table, decides nothing
    with pytest.raises(AccessDenied, match="only the approvers of its table may") as refused:
        alice.sql(f"DENY ACCESS REQUEST {request_id}")
    assert "bob" not in refused.value.message and "customers" not in refused.value.message  # nothing of the request
    # An approver's own request is no exception.
    owner.sql("ALTER TABLE sales.orders SET APPROVERS USER bob")
    own = bob.sql("REQUEST ACCESS ON TABLE sales.orders FOR '1 hour' REASON 'r'").fetchall()[0][0]
    with pytest.raises(AccessDenied, match="nobody decides their own request"):
        bob.sql(f"APPROVE ACCESS REQUEST {own}")
    with pytest.raises(NotFound):
        bob.sql("APPROVE ACCESS REQUEST 999")
    assert bob.sql("SELECT id, status FROM system.access_requests ORDER BY id").fetchall() == [(1, "pending"), (2, "pending")]
    # alice sees none of bob's requests.
    assert alice.sql("SELECT count(*) FROM system.access_requests").scalar() == 0
    with pytest.raises(AccessDenied):
        bob.sql("SELECT count(*) FROM sales.customers")


def test_a_denied_request_grants_nothing(owner: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    request_id = bob.sql("REQUEST ACCESS ON TABLE sales.customers FOR '1 hour' REASON 'r'").fetchall()[0][0]
    owner.sql(f"DENY ACCESS REQUEST {request_id} REASON 'no'")
    with pytest.raises(AccessDenied):
        bob.sql("SELECT count(*) FROM sales.customers")
    with pytest.raises(InvalidArgument, match="already denied"):
        owner.sql(f"APPROVE ACCESS REQUEST {request_id}")
    assert bob.sql("SELECT * FROM system.grants").fetchall() == []
    assert bob.sql("SELECT status, comment, expires_at FROM system.access_requests").fetchall() == [("denied", "no", None)]


def test_a_role_revoked_mid_session_stops_the_next_statement(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    query = "SELECT id, email FROM sales.orders ORDER BY id"
    assert alice.sql(query).fetchall() == [(1, "***@x.com"), (3, "***@z.com")]
    assert alice.sql(query).fetchall() == [(1, "***@x.com"), (3, "***@z.com")]  # cached
    owner.sql("REVOKE ROLE analyst FROM GROUP analysts")
    with pytest.raises(AccessDenied):
        alice.sql(query)
    # Access requested back, approved for an hour: the filter and mask still apply to what it opens.
    _approved(owner, alice, "REQUEST ACCESS ON TABLE sales.orders FOR '2 hours' REASON 'back'")
    assert alice.sql(query).fetchall() == [(1, "***@x.com"), (3, "***@z.com")]


def test_requests_reveal_no_more_than_discovery(owner: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    owner.sql("""
        CREATE SCHEMA secret;
        CREATE TABLE secret.plans (id INT, plan VARCHAR);
        INSERT INTO secret.plans VALUES (1, 'merger');
        ALTER NAMESPACE secret SET TAGS ('discoverable' = 'false');
        ALTER TABLE sales.customers SET TBLPROPERTIES ('comment' = 'One row per customer');
        ALTER TABLE sales.customers SET TAGS ('domain' = 'sales');
    """)
    found = bob.sql("FIND TABLES").to_arrow()
    assert found.column_names == ["table_name", "description", "owner", "tags", "approvers", "your_privileges"]
    assert found.to_pylist() == [
        {
            "table_name": "sales.customers",
            "description": "One row per customer",
            "owner": "tester",
            "tags": "domain=sales",
            "approvers": "user tester",
            "your_privileges": "",
        },
        {
            "table_name": "sales.orders",
            "description": "",
            "owner": "tester",
            "tags": "",
            "approvers": "user tester",
            "your_privileges": "",
        },
    ]
    assert bob.sql("FIND TABLES WITH TAG domain = 'sales'").fetchall()[0][0] == "sales.customers"
    assert [r[0] for r in owner.sql("FIND TABLES LIKE 'secret.*'").fetchall()] == ["secret.plans"]
    messages = []
    for name in ("secret.plans", "secret.nothing", "nowhere.nothing"):
        with pytest.raises(NotFound) as missing:
            bob.sql(f"REQUEST ACCESS ON TABLE {name} FOR '1 hour' REASON 'r'")
        messages.append((missing.value.message.replace(name, "<t>"), missing.value.hint))
    assert messages[0] == messages[1] == messages[2]
    with pytest.raises(NotFound):
        bob.sql("SHOW APPROVERS ON secret.plans")
    assert owner.sql("SELECT count(*) FROM system.access_requests").scalar() == 0


def test_a_table_recreated_under_a_dropped_name_starts_clean(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    owner.sql("""
        CREATE SCHEMA ops;
        CREATE TABLE ops.notes (id INT);
        ALTER TABLE ops.notes SET TAGS ('domain' = 'ops');
        ALTER TABLE ops.notes SET APPROVERS USER alice;
        CREATE ACCESS RULE ops_readers AS ALLOW GROUP analysts SELECT ON TAG domain = 'ops' FOR AT MOST '1 day' WITHOUT APPROVAL;
        DROP TABLE ops.notes;
        CREATE TABLE ops.notes (id INT, secret VARCHAR);
    """)
    assert owner.sql("SHOW APPROVERS ON ops.notes").fetchall() == [("user tester",)]
    assert alice.sql("REQUEST ACCESS ON TABLE ops.notes FOR '1 hour' REASON 'r'").fetchall()[0][1] == "pending"
    with pytest.raises(AccessDenied):
        alice.sql("SELECT * FROM ops.notes")
