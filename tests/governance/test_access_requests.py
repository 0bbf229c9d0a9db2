"""Access requests end to end: discovery, request, approval (shortened), expiry at query time, rules, webhooks, CLI.

Time is moved with the governance store's injectable clock (``store.clock``), never slept on:
an approval for one hour is followed by a statement one hour and one second later.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

import wharf
from wharf.cli import app
from wharf.errors import AccessDenied, InvalidArgument
from wharf.governance import webhooks
from wharf.governance.store import now_ms

HOUR = 3_600_000


class Clock:
    """The governance clock of one lake, moved by hand."""

    def __init__(self, lake: wharf.Lakehouse) -> None:
        self.store = lake.governance.store
        self.start = now_ms()
        self.offset = 0
        self.store.clock = lambda: self.start + self.offset

    def advance(self, ms: int) -> None:
        self.offset += ms


@pytest.fixture
def clock(owner: wharf.Lakehouse) -> Iterator[Clock]:
    found = Clock(owner)
    yield found
    found.store.clock = now_ms


def test_request_approve_expire(owner: wharf.Lakehouse, bob: wharf.Lakehouse, clock: Clock) -> None:
    query = "SELECT name FROM sales.customers ORDER BY id"
    with pytest.raises(AccessDenied):
        bob.sql(query)
    filed = bob.sql("REQUEST ACCESS ON TABLE sales.customers PRIVILEGE SELECT FOR '8 hours' REASON 'churn report'").fetchall()
    assert filed == [(1, "pending", "Access request 1 sent to the approvers of sales.customers: user tester")]
    assert bob.sql(
        "SELECT id, requester, privilege, table_name, duration, reason, status FROM system.access_requests"
    ).fetchall() == [(1, "bob", "SELECT", "sales.customers", "8 hours", "churn report", "pending")]
    with pytest.raises(AccessDenied):  # pending grants nothing
        bob.sql(query)
    with pytest.raises(InvalidArgument, match="may shorten it, not lengthen it"):
        owner.sql("APPROVE ACCESS REQUEST 1 FOR '9 hours'")
    owner.sql("APPROVE ACCESS REQUEST 1 FOR '1 hour' COMMENT 'one hour is enough'")
    rows = [("Ann",), ("Bea",), ("Cy",), ("Di",)]
    assert bob.sql(query).fetchall() == rows
    assert bob.sql(query).fetchall() == rows  # from the statement cache
    assert bob.sql(
        "SELECT privilege, object_name, grantee, request_id, active, expires_at = granted_at + INTERVAL 1 HOUR FROM system.grants"
    ).fetchall() == [("SELECT", "sales.customers", "bob", 1, True, True)]
    assert owner.sql("SELECT status, decided_by, comment, granted_duration FROM system.access_requests").fetchall() == [
        ("approved", "tester", "one hour is enough", "1 hour")
    ]
    clock.advance(HOUR - 1000)
    assert bob.sql(query).fetchall() == rows  # one second before expiry
    clock.advance(2000)
    with pytest.raises(AccessDenied, match="access request 1 on table sales.customers has expired") as refused:
        bob.sql(query)  # the same text: the cached compiled statement must not be reused past the expiry
    assert "REQUEST ACCESS ON TABLE sales.customers" in (refused.value.hint or "")
    assert bob.sql("SELECT active FROM system.grants").fetchall() == [(False,)]
    with pytest.raises(InvalidArgument, match="already approved"):
        owner.sql("APPROVE ACCESS REQUEST 1")


def test_approvers_deny_and_python_api(owner: wharf.Lakehouse, bob: wharf.Lakehouse, clock: Clock) -> None:
    owner.sql("CREATE USER stella; CREATE GROUP stewards; ALTER GROUP stewards ADD USER stella")
    owner.sql("ALTER NAMESPACE sales SET APPROVERS GROUP stewards")
    assert owner.sql("SHOW APPROVERS ON sales.customers").fetchall() == [("user tester",), ("group stewards",)]
    stella = owner.session(user="stella")
    request = bob.governance.access.request("sales.customers", duration="2h", reason="audit")
    assert [r.id for r in stella.governance.access.requests("pending")] == [request.id]
    denied = stella.governance.access.deny(request.id, reason="use the aggregated view")
    assert (denied.status, denied.decided_by, denied.comment) == ("denied", "stella", "use the aggregated view")
    with pytest.raises(AccessDenied):
        bob.sql("SELECT count(*) FROM sales.customers")
    assert bob.sql("SELECT * FROM system.grants").fetchall() == []
    again = bob.governance.access.request("sales.customers", duration="2h", reason="audit, again")
    approved = stella.governance.access.approve(again.id)
    assert (approved.status, approved.granted_ms) == ("approved", 2 * HOUR)
    assert bob.sql("SELECT count(*) FROM sales.customers").scalar() == 4
    # Every decision made through the Python API is in the audit log, as the one who made it.
    decisions = [  # oldest first
        (r.principal, r.operation, r.reason, r.tables_read, r.detail["status"])
        for r in owner.audit.records()
        if r.kind == "access"
    ]
    assert decisions == [
        ("bob", "access_request.requested", "audit", ("sales.customers",), "pending"),
        ("stella", "access_request.denied", "use the aggregated view", ("sales.customers",), "denied"),
        ("bob", "access_request.requested", "audit, again", ("sales.customers",), "pending"),
        ("stella", "access_request.approved", "audit, again", ("sales.customers",), "approved"),
    ]
    # Unsetting the approvers leaves the owner (and MANAGE holders).
    owner.sql("ALTER NAMESPACE sales UNSET APPROVERS")
    third = owner.session(user="carl").governance.access.request("sales.customers", duration="1h", reason="x")
    with pytest.raises(AccessDenied, match="only the approvers of its table may"):
        stella.sql(f"APPROVE ACCESS REQUEST {third.id}")


def test_self_service_rule(owner: wharf.Lakehouse, clock: Clock) -> None:
    owner.sql("""
        CREATE TABLE sales.leads (id INT, name VARCHAR);
        INSERT INTO sales.leads VALUES (1, 'Acme'), (2, 'Globex');
        CREATE TABLE sales.payroll (id INT, salary INT);
        ALTER TABLE sales.leads SET TAGS ('domain' = 'sales');
        CREATE USER dan;
        CREATE GROUP sellers;
        ALTER GROUP sellers ADD USER dan;
        CREATE ACCESS RULE sellers_leads AS ALLOW GROUP sellers SELECT ON TAG domain = 'sales'
            FOR AT MOST '7 days' WITHOUT APPROVAL REVOKE UNUSED AFTER '1 hour';
    """)
    assert owner.sql("SHOW ACCESS RULES").fetchall() == [
        ("sellers_leads", "group sellers", "SELECT", "TAG domain = 'sales'", "1 week", True, "1 hour")
    ]
    dan = owner.session(user="dan")
    bob = owner.session(user="bob")
    outcomes = [
        dan.sql("REQUEST ACCESS ON TABLE sales.leads FOR '2 days' REASON 'pipeline'").fetchall()[0][:2],
        dan.sql("REQUEST ACCESS ON TABLE sales.leads FOR '8 days' REASON 'longer than the rule'").fetchall()[0][:2],
        dan.sql("REQUEST ACCESS ON TABLE sales.leads PRIVILEGE INSERT FOR '1 hour' REASON 'other privilege'").fetchall()[0][:2],
        dan.sql("REQUEST ACCESS ON TABLE sales.payroll FOR '1 hour' REASON 'untagged table'").fetchall()[0][:2],
        bob.sql("REQUEST ACCESS ON TABLE sales.leads FOR '1 hour' REASON 'not a member'").fetchall()[0][:2],
    ]
    assert outcomes == [(1, "approved"), (2, "pending"), (3, "pending"), (4, "pending"), (5, "pending")]
    assert owner.sql("SELECT id, decided_by, rule FROM system.access_requests WHERE status = 'approved'").fetchall() == [
        (1, "rule sellers_leads", "sellers_leads")
    ]
    assert dan.sql("SELECT name FROM sales.leads ORDER BY id").fetchall() == [("Acme",), ("Globex",)]
    for refused in ("INSERT INTO sales.leads VALUES (3, 'x')", "SELECT * FROM sales.payroll"):
        with pytest.raises(AccessDenied):
            dan.sql(refused)
    with pytest.raises(AccessDenied):
        bob.sql("SELECT * FROM sales.leads")
    # Used 50 minutes later, the grant lives on; unused for more than an hour after that, it lapses.
    clock.advance(50 * 60_000)
    assert dan.sql("SELECT count(*) FROM sales.leads").scalar() == 2
    clock.advance(50 * 60_000)
    assert dan.sql("SELECT count(*) FROM sales.leads").scalar() == 2
    clock.advance(61 * 60_000)
    with pytest.raises(AccessDenied, match="has expired"):
        dan.sql("SELECT count(*) FROM sales.leads")
    assert dan.sql("SELECT revoke_unused_after, active FROM system.grants").fetchall() == [("1 hour", False)]


class Receiver:
    """A webhook receiver on loopback: answers 500 to the first delivery, 200 after; keeps what it got."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.done = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if not receiver.received else 200
                with receiver.done:
                    receiver.received.append((dict(self.headers.items()), body, status))
                    receiver.done.notify_all()
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        with self.done:
            assert self.done.wait_for(lambda: len(self.received) >= count, timeout), self.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhooks_are_signed_and_retried(owner: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    receiver = Receiver()
    saved = webhooks.notifier.base_delay_s
    webhooks.notifier.base_delay_s = 0.05
    secret = "s3cret-s3cret-s3cret"
    try:
        owner.sql(f"CREATE WEBHOOK approvals URL '{receiver.url}' SECRET '{secret}'")
        assert owner.sql("SHOW WEBHOOKS").fetchall() == [("approvals", receiver.url)]  # never the secret
        with pytest.raises(AccessDenied):
            bob.sql("SHOW WEBHOOKS")
        bob.sql("REQUEST ACCESS ON TABLE sales.customers FOR '1 hour' REASON 'webhook test'")
        receiver.wait_for(2)  # the first attempt got a 500, the retry a 200
        owner.sql("DENY ACCESS REQUEST 1 REASON 'not now'")
        receiver.wait_for(3)
    finally:
        webhooks.notifier.base_delay_s = saved
        receiver.close()
    (h1, b1, s1), (h2, b2, s2), (h3, b3, s3) = receiver.received[:3]
    assert (s1, s2, s3) == (500, 200, 200)
    assert (
        b1 == b2
        and h1["X-Wharf-Delivery"] == h2["X-Wharf-Delivery"]
        and (h1["X-Wharf-Attempt"], h2["X-Wharf-Attempt"]) == ("1", "2")
    )
    for headers, body, _ in receiver.received[:3]:
        assert webhooks.verify_signature(secret, headers["X-Wharf-Timestamp"], body, headers["X-Wharf-Signature"])
        assert not webhooks.verify_signature(
            "another-secret-value", headers["X-Wharf-Timestamp"], body, headers["X-Wharf-Signature"]
        )
    first, last = json.loads(b1), json.loads(b3)
    assert (first["event"], first["by"], first["notify"]) == (
        "access_request.requested",
        "bob",
        {"requester": "bob", "approvers": ["user tester"]},
    )
    assert (first["request"]["table"], first["request"]["reason"], first["request"]["status"]) == (
        "sales.customers",
        "webhook test",
        "pending",
    )
    assert (last["event"], last["by"], last["request"]["status"], last["request"]["comment"]) == (
        "access_request.denied",
        "tester",
        "denied",
        "not now",
    )


def test_access_from_the_cli(owner: wharf.Lakehouse) -> None:
    runner = CliRunner()

    def run(user: str, *args: str) -> str:
        result = runner.invoke(
            app, ["--lake", str(owner.path), *args, "--as", user], env={"WHARF_USER": "tester", "COLUMNS": "250"}
        )
        assert result.exit_code == 0, result.output
        return result.output

    found = run("bob", "access", "find", "sales.*")
    assert "sales.customers" in found and "sales.orders" in found and "Ann" not in found
    assert "request 1: pending" in run("bob", "access", "request", "sales.customers", "--for", "8h", "--reason", "churn")
    listing = run("tester", "access", "list", "--status", "pending")
    assert "churn" in listing and "8 hours" in listing
    assert "for 30 minutes" in run("tester", "access", "approve", "1", "--for", "30m")
    assert owner.session(user="bob").sql("SELECT count(*) FROM sales.customers").scalar() == 4
    refused = runner.invoke(
        app, ["--lake", str(owner.path), "access", "approve", "1", "--as", "bob"], env={"WHARF_USER": "tester", "COLUMNS": "250"}
    )
    assert refused.exit_code != 0 and "nobody decides their own request" in refused.output
