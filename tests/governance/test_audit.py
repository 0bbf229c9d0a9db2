"""The audit log, red-teamed: refusals recorded with their reason, no secret in it, a failed audit fails the
statement, only the owner and grantees read it, served requests carry the authenticated principal."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import wharf
from wharf.errors import AccessDenied, AuditUnavailable, NotFound
from wharf.governance.audit import AuditRecord, audit_path, record_decision
from wharf.server.background import serve_in_background


def records(lake: wharf.Lakehouse, **where: object) -> list[AuditRecord]:
    """The owner's view of the log, filtered on record fields."""
    return [r for r in lake.audit.records() if all(getattr(r, k) == v for k, v in where.items())]


def test_reads_writes_policies_and_refusals_are_recorded(
    owner: wharf.Lakehouse, alice: wharf.Lakehouse, bob: wharf.Lakehouse
) -> None:
    assert alice.sql("SELECT id, email FROM sales.orders ORDER BY id").fetchall() == [(1, "***@x.com"), (3, "***@z.com")]
    with pytest.raises(AccessDenied):
        bob.sql("SELECT name FROM sales.customers")
    owner.sql("INSERT INTO sales.customers VALUES (5, 'Ed', '555')")

    (read,) = records(owner, principal="alice", statement="SELECT id, email FROM sales.orders ORDER BY id")
    assert (read.kind, read.operation, read.decision, read.reason, read.rows) == ("statement", "select", "allowed", None, 2)
    assert read.tables_read == ("sales.orders",)
    assert set(read.columns_read) == {"sales.orders.id", "sales.orders.email"}
    assert read.policies == ("sales.orders: row filter by_region", "sales.orders: mask email: mask_email")

    (refused,) = records(owner, principal="bob")
    assert refused.decision == "refused"
    assert refused.reason is not None and "bob has no USAGE privilege on namespace sales" in refused.reason

    (insert,) = records(owner, operation="insert", statement="INSERT INTO sales.customers VALUES (5, 'Ed', '555')")
    assert (insert.principal, insert.decision, insert.rows, insert.tables_written) == (
        "tester",
        "allowed",
        1,
        ("sales.customers",),
    )

    # The same, in SQL, as the owner: every decision of bob's.
    assert owner.sql(
        "SELECT decision, reason LIKE '%no USAGE privilege%' FROM system.audit_log WHERE principal = 'bob'"
    ).fetchall() == [("refused", True)]


def test_secrets_never_reach_the_log(owner: wharf.Lakehouse) -> None:
    owner.sql("CREATE USER sam WITH ATTRIBUTES ('password' = 'pw-hunter2', 'team' = 'red')")
    owner.sql("SELECT 'Authorization: Bearer tok-abc123' AS header, 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln' AS jwt")
    with pytest.raises(NotFound):
        owner.sql("SELECT * FROM vault WHERE client_secret = 'cs-999' AND token = 'wharf_pat_zzz'")
    record_decision(
        owner.catalog, principal="sam", kind="authentication", operation="oidc", decision="refused",
        reason="refused: client_secret=cs-777 Authorization: Basic dXNlcjpwdw==",
    )  # fmt: skip
    out = io.StringIO()
    owner.audit.export(out)
    text = out.getvalue()
    for secret in ("pw-hunter2", "tok-abc123", "eyJhbGciOiJIUzI1NiJ9", "cs-999", "wharf_pat_zzz", "cs-777", "dXNlcjpwdw"):
        assert secret not in text, secret
    lines = [json.loads(line) for line in text.splitlines()]
    user = next(r for r in lines if r["statement"].startswith("CREATE USER sam"))
    assert user["statement"] == "CREATE USER sam WITH ATTRIBUTES ('password' = '[REDACTED]', 'team' = 'red')"
    refused = next(r for r in lines if r["kind"] == "authentication")
    assert (refused["principal"], refused["decision"]) == ("sam", "refused") and "[REDACTED]" in refused["reason"]


@contextmanager
def broken_audit_store(lake: wharf.Lakehouse) -> Iterator[None]:
    """Make the audit log unwritable (its table renamed away under the lake), and repair it after."""
    path = audit_path(str(lake.path / "wharf.db"))
    with sqlite3.connect(path) as con:
        con.execute("ALTER TABLE wharf_audit_log RENAME TO wharf_audit_log_moved")
    try:
        yield
    finally:
        with sqlite3.connect(path) as con:
            con.execute("ALTER TABLE wharf_audit_log_moved RENAME TO wharf_audit_log")


def test_a_statement_fails_when_its_audit_record_cannot_be_written(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    before = owner.sql("SELECT count(*) FROM sales.customers").scalar()
    with broken_audit_store(owner):
        with pytest.raises(AuditUnavailable, match="audit log could not record statement select by alice"):
            alice.sql("SELECT id FROM sales.orders")
        with pytest.raises(AuditUnavailable):
            owner.sql("SELECT 1")
        # A write is refused before it commits: the pending record is written by a commit gate.
        with pytest.raises(AuditUnavailable):
            owner.sql("INSERT INTO sales.customers VALUES (9, 'Zed', '999')")
    assert owner.sql("SELECT count(*) FROM sales.customers").scalar() == before
    assert alice.sql("SELECT id FROM sales.orders ORDER BY id").fetchall() == [(1,), (3,)]
    assert [r.decision for r in records(owner, principal="alice")] == ["allowed"]  # only the statement after the repair


def test_reading_the_audit_log_needs_a_grant(owner: wharf.Lakehouse, alice: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    for reader in (alice, bob):
        with pytest.raises(AccessDenied, match="may not read system.audit_log"):
            reader.sql("SELECT * FROM system.audit_log")
    with pytest.raises(AccessDenied):
        alice.sql("SELECT count(*) FROM sales.orders o JOIN system.audit_log a ON a.principal = o.email")
    with pytest.raises(AccessDenied):
        alice.audit.records()
    # A catalog-wide SELECT is not a grant on the audit log, and a view over it does not lend its owner's rights.
    owner.sql("GRANT SELECT ON CATALOG TO USER bob")
    owner.sql("CREATE VIEW sales.everything_audited AS SELECT principal, statement FROM system.audit_log")
    for attempt in ("SELECT count(*) FROM system.audit_log", "SELECT count(*) FROM sales.everything_audited"):
        with pytest.raises(AccessDenied, match="may not read system.audit_log"):
            bob.sql(attempt)

    owner.sql("GRANT SELECT ON TABLE system.audit_log TO ROLE analyst")  # alice is an analyst (through her group)
    refusals = alice.sql(
        "SELECT count(*) FROM system.audit_log WHERE principal = 'alice' AND decision = 'refused' AND reason LIKE '%audit_log%'"
    ).scalar()
    assert refusals == 2
    assert len(alice.audit.records(principal="bob")) == 3
    owner.sql("REVOKE SELECT ON TABLE system.audit_log FROM ROLE analyst")
    with pytest.raises(AccessDenied):
        alice.sql("SELECT count(*) FROM system.audit_log")


def test_served_requests_are_audited_with_the_authenticated_principal(owner: wharf.Lakehouse, tmp_path: Path) -> None:
    owner.auth.add_user("ann")
    token = owner.auth.create_token("ann", expires="1h").token
    owner.sql("GRANT SELECT ON TABLE sales.customers TO USER ann")
    with serve_in_background(owner, no_auth=False) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        ok = http.post(
            "/api/v1/sql", json={"sql": "SELECT count(*) FROM sales.customers"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert ok.status_code == 200
        forbidden = http.get("/v1/namespaces/sales/tables/orders", headers={"Authorization": f"Bearer {token}"})
        assert forbidden.status_code == 403
        bad = http.get("/v1/namespaces", headers={"Authorization": "Bearer wharf_pat_not-a-token"})
        assert bad.status_code == 401

    served = records(owner, kind="http")
    (sql,) = [r for r in served if r.operation == "run_sql"]
    assert (sql.principal, sql.decision, sql.status) == ("ann", "allowed", 200)
    assert sql.statement == "POST /api/v1/sql SELECT count(*) FROM sales.customers"
    (statement,) = records(owner, kind="statement", principal="ann")
    assert (statement.tables_read, statement.request_id) == (("sales.customers",), sql.request_id)

    (load,) = [r for r in served if r.statement == "GET /v1/namespaces/sales/tables/orders"]
    assert (load.principal, load.decision, load.status) == ("ann", "refused", 403)
    assert load.reason is not None and "ann has no SELECT privilege on table sales.orders" in load.reason

    (unauthenticated,) = [r for r in served if r.status == 401]
    assert (unauthenticated.principal, unauthenticated.decision) == ("(unauthenticated)", "refused")
    assert unauthenticated.reason is not None and "not-a-token" not in unauthenticated.reason
    out = io.StringIO()
    owner.audit.export(out)
    assert token not in out.getvalue() and "not-a-token" not in out.getvalue()


@pytest.mark.metadata_backends("postgresql")
def test_with_postgresql_metadata_the_log_is_a_table_of_the_metadata_database(metadata_backend: str, tmp_path: Path) -> None:
    from wharf.governance.audit import audit_log_for

    with wharf.connect(tmp_path / "lake", user="tester") as lake:
        lake.sql("CREATE TABLE t (id INT)")
        lake.sql("INSERT INTO t VALUES (1), (2)")
        with pytest.raises(AccessDenied):
            lake.session(user="mallory").sql("SELECT * FROM t")
        assert audit_log_for(lake.catalog).engine is lake.catalog.engine  # migration 0009's table, no side file
        assert not (tmp_path / "lake" / "wharf-audit.db").exists()
        decisions = lake.sql("SELECT principal, operation, decision, rows FROM system.audit_log ORDER BY time").fetchall()
        assert decisions == [
            ("tester", "create_table", "allowed", 0),
            ("tester", "insert", "allowed", 2),
            ("mallory", "select", "refused", None),
        ]
