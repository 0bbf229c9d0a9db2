"""``/api/v1/access``: discover, request, approve, deny over HTTP; an expired grant is not served from the result cache."""

from __future__ import annotations

import httpx

import wharf
from tests.governance.test_rest import Bearer, _as
from wharf.governance.store import now_ms
from wharf.server.background import serve_in_background


def test_access_requests_over_http(owner: wharf.Lakehouse) -> None:
    store = owner.governance.store
    start = now_ms()
    offset = [0]
    store.clock = lambda: start + offset[0]
    query = {"sql": "SELECT count(*) AS n FROM sales.customers"}
    try:
        with serve_in_background(owner, no_auth=False, authenticator=Bearer()) as background:
            with httpx.Client(base_url=background.url, timeout=60) as http:
                found = http.get("/api/v1/access/tables", params={"like": "sales.cust*"}, headers=_as("bob"))
                assert found.status_code == 200
                assert found.json() == {
                    "tables": [
                        {
                            "table": "sales.customers",
                            "description": "",
                            "owner": "tester",
                            "tags": {},
                            "approvers": ["user tester"],
                            "privileges": [],
                        }
                    ]
                }
                assert http.post("/api/v1/sql", json=query, headers=_as("bob")).status_code == 403
                body = {"table": "sales.customers", "duration": "8h", "reason": "churn report"}
                made = http.post("/api/v1/access/requests", json=body, headers=_as("bob"))
                assert made.status_code == 201, made.text
                request = made.json()["request"]
                assert (request["id"], request["status"], request["duration"], request["requester"]) == (
                    1,
                    "pending",
                    "8 hours",
                    "bob",
                )
                own = http.post("/api/v1/access/requests/1/approve", json={}, headers=_as("bob"))
                assert own.status_code == 403 and "their own" in own.json()["error"]["message"]
                listed = http.get("/api/v1/access/requests", params={"status": "pending"}, headers=_as("tester")).json()
                assert [(r["id"], r["reason"]) for r in listed["requests"]] == [(1, "churn report")]
                longer = http.post("/api/v1/access/requests/1/approve", json={"duration": "9h"}, headers=_as("tester"))
                assert longer.status_code == 400
                approved = http.post("/api/v1/access/requests/1/approve", json={"duration": "1h"}, headers=_as("tester"))
                assert approved.status_code == 200 and approved.json()["request"]["granted_ms"] == 3_600_000
                first = http.post("/api/v1/sql", json=query, headers=_as("bob"))
                second = http.post("/api/v1/sql", json=query, headers=_as("bob"))
                assert first.json()["rows"] == second.json()["rows"] == [[4]]
                assert second.headers["X-Wharf-Cache"] == "hit"
                offset[0] = 3_600_000
                expired = http.post("/api/v1/sql", json=query, headers=_as("bob"))
                assert expired.status_code == 403 and "expired" in expired.json()["error"]["message"]
                again = http.post("/api/v1/access/requests", json=body, headers=_as("bob")).json()["request"]
                denied = http.post(
                    f"/api/v1/access/requests/{again['id']}/deny", json={"reason": "enough"}, headers=_as("tester")
                )
                assert denied.status_code == 200 and denied.json()["request"]["status"] == "denied"
                assert http.post("/api/v1/sql", json=query, headers=_as("bob")).status_code == 403
    finally:
        store.clock = now_ms
