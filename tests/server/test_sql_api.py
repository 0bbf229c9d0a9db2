"""``/api/v1``: SQL over HTTP with a row limit (JSON, CSV, Arrow) and catalog browsing, as the request's principal."""

from __future__ import annotations

import io

import httpx
import pyarrow as pa

from tests.server.conftest import RunningServer


def test_sql_json_csv_arrow_with_a_row_limit(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.n (i BIGINT, d DECIMAL(6, 2), at TIMESTAMP)")
    server.lake.sql(f"INSERT INTO {namespace}.n SELECT range, range / 4, TIMESTAMP '2025-01-01' FROM range(10)")
    query = f"SELECT i, d, at FROM {namespace}.n ORDER BY i"
    page = http.post("/api/v1/sql", json={"sql": query, "max_rows": 3}).json()
    assert [c["name"] for c in page["columns"]] == ["i", "d", "at"]
    assert page["rows"] == [
        [0, "0.00", "2025-01-01T00:00:00"],
        [1, "0.25", "2025-01-01T00:00:00"],
        [2, "0.50", "2025-01-01T00:00:00"],
    ]
    assert page["truncated"] is True and page["row_count"] == 3
    whole = http.post("/api/v1/sql", json={"sql": query, "max_rows": 100}).json()
    assert whole["truncated"] is False and whole["row_count"] == 10
    csv = http.post("/api/v1/sql", json={"sql": query, "max_rows": 2, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.splitlines()[0] == '"i","d","at"'
    arrow = http.post("/api/v1/sql", json={"sql": query, "format": "arrow"})
    table = pa.ipc.open_stream(io.BytesIO(arrow.content)).read_all()
    assert table.num_rows == 10 and table.column("i").to_pylist() == list(range(10))


def test_sql_writes_and_errors(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    http.post("/api/v1/sql", json={"sql": f"CREATE TABLE {namespace}.w (id BIGINT)"}).raise_for_status()
    written = http.post("/api/v1/sql", json={"sql": f"INSERT INTO {namespace}.w VALUES (1), (2)"}).json()
    assert written["snapshot_id"] is not None
    user = server.lake.sql(f"SELECT summary['wharf.user'] FROM {namespace}.w.snapshots").scalar()
    assert user == "owner"
    bad = http.post("/api/v1/sql", json={"sql": "SELEC 1"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "BadRequestException"
    assert "line 1" in bad.json()["error"]["message"]
    missing = http.post("/api/v1/sql", json={"sql": f"SELECT * FROM {namespace}.nope"})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFoundException"
    assert http.post("/api/v1/sql", json={"sql": "SELECT 1", "format": "xml"}).status_code == 400
    assert http.post("/api/v1/sql", json={"sql": "SELECT 1", "max_rows": -1}).status_code == 400


def test_browse_and_preview(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.b (id BIGINT, city VARCHAR) PARTITIONED BY (city)")
    server.lake.sql(f"INSERT INTO {namespace}.b VALUES (1, 'Oslo'), (2, 'Lima'), (3, 'Pune')")
    server.lake.sql(f"ALTER TABLE {namespace}.b CREATE TAG first")
    assert namespace in http.get("/api/v1/namespaces").json()["namespaces"]
    assert http.get(f"/api/v1/namespaces/{namespace}/tables").json()["tables"] == ["b"]
    described = http.get(f"/api/v1/tables/{namespace}.b").json()
    assert [c["name"] for c in described["columns"]] == ["id", "city"]
    assert described["partitioning"][0]["transform"] == "identity"
    assert set(described["refs"]) == {"main", "first"} and len(described["snapshots"]) == 1
    preview = http.get(f"/api/v1/tables/{namespace}.b/preview", params={"limit": 2}).json()
    assert preview["row_count"] == 2 and preview["truncated"] is True
    assert http.get(f"/api/v1/tables/{namespace}.nope").status_code == 404
    assert http.get("/api/v1/namespaces/nope_ns/tables").status_code == 404
