"""``/api/v1``'s asynchronous queries, result cache and pre-cache, over real HTTP against a served lake."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pyarrow as pa
import pytest
from starlette.requests import Request
from typer.testing import CliRunner

import wharf
from tests.server.conftest import RunningServer
from wharf.errors import InvalidArgument
from wharf.principal import Principal
from wharf.server.api.result_cache import (
    ENTRY_OVERHEAD_BYTES,
    CachedResult,
    ResultCache,
    cache_key,
    compact,
    held_bytes,
    remember,
)
from wharf.server.api.sql_routes import limited
from wharf.server.background import BackgroundServer, serve_in_background
from wharf.server.config import load_config
from wharf.server.context import NotAuthenticated

ARROW = "application/vnd.apache.arrow.stream"


class ByName:
    """Tests' authenticator: ``Authorization: Bearer <name>`` is the principal ``name`` (``owner`` owns the lake)."""

    def authenticate(self, request: Request) -> Principal:
        name = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not name:
            raise NotAuthenticated("no token")
        return Principal.owner(name) if name == "owner" else Principal(name)


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 60) -> Any:
    """Poll ``condition`` until it returns something truthy (a guard against hanging, not a timing assert)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def finished(http: httpx.Client, query_id: str, **kwargs: Any) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = http.get(f"/api/v1/queries/{query_id}", **kwargs).json()
        return status if status["status"] in ("succeeded", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(done, f"query {query_id} to finish")
    return result


def submit(http: httpx.Client, sql: str, **kwargs: Any) -> str:
    response = http.post("/api/v1/queries", json={"sql": sql}, **kwargs)
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("queued", "running", "succeeded")
    query_id: str = response.json()["id"]
    assert response.headers["location"] == f"/api/v1/queries/{query_id}"
    return query_id


def sql(http: httpx.Client, text: str, **body: Any) -> httpx.Response:
    response = http.post("/api/v1/sql", json={"sql": text, **body})
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
def served(tmp_path: Any) -> Iterator[Callable[..., tuple[BackgroundServer, wharf.Lakehouse]]]:
    """Start a server of its own (own lake, own settings) for a test; all are stopped at the end."""
    started: list[tuple[BackgroundServer, wharf.Lakehouse]] = []

    def start(**settings: Any) -> tuple[BackgroundServer, wharf.Lakehouse]:
        lake = wharf.connect(tmp_path / f"lake{len(started)}", user="owner")
        lake.sql("CREATE TABLE t (i BIGINT)")
        lake.sql("INSERT INTO t SELECT range FROM range(500)")
        if "authenticator" in settings:
            settings.setdefault("no_auth", False)
        started.append((serve_in_background(lake, **settings), lake))
        return started[-1]

    yield start
    for background, lake in started:
        background.stop()
        lake.close()


def as_user(url: str, name: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {name}"})


# --- asynchronous queries -------------------------------------------------------------------------


def test_async_lifecycle_and_paging_in_every_format(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.p (i BIGINT, label VARCHAR, price DECIMAL(8, 2))")
    server.lake.sql(f"INSERT INTO {namespace}.p SELECT range, 'row ' || range, range / 4 FROM range(25)")
    current = server.lake.sql(f"SELECT snapshot_id FROM {namespace}.p.snapshots").scalar()
    query_id = submit(http, f"SELECT i, label, price FROM {namespace}.p ORDER BY i")
    status = finished(http, query_id)
    assert status["status"] == "succeeded" and status["row_count"] == 25 and status["error"] is None
    assert status["snapshots_read"] == [{"table": f"{namespace}.p", "snapshot_id": current, "ref": None}]
    assert status["started_at"] is not None and status["elapsed_ms"] >= 0 and status["queued_ms"] >= 0
    assert [c["name"] for c in status["columns"]] == ["i", "label", "price"]

    # JSON: follow next_page_token until it runs out.
    rows: list[list[Any]] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"page_size": 10, "format": "json"}
        if token:
            params["page_token"] = token
        page = http.get(f"/api/v1/queries/{query_id}/results", params=params).json()
        assert [c["type"] for c in page["columns"]] == ["int64", "string", "decimal128(8, 2)"]
        assert page["total_rows"] == 25 and page["offset"] == pages * 10
        rows.extend(page["rows"])
        pages += 1
        token = page["next_page_token"]
        if token is None:
            break
    assert pages == 3 and [r[0] for r in rows] == list(range(25)) and rows[5] == [5, "row 5", "1.25"]

    # CSV: the token travels in a header; each page has its own header line.
    csv_rows: list[dict[str, str]] = []
    params = {"page_size": 10, "format": "csv"}
    while True:
        response = http.get(f"/api/v1/queries/{query_id}/results", params=params)
        assert response.headers["content-type"].startswith("text/csv")
        csv_rows.extend(csv.DictReader(io.StringIO(response.text)))
        token = response.headers.get("x-wharf-next-page-token")
        if token is None:
            break
        params = {"page_size": 10, "format": "csv", "page_token": token}
    assert [int(r["i"]) for r in csv_rows] == list(range(25)) and csv_rows[24]["label"] == "row 24"

    # Arrow IPC stream, chosen by the Accept header.
    tables: list[pa.Table] = []
    params = {"page_size": 7}
    while True:
        response = http.get(f"/api/v1/queries/{query_id}/results", params=params, headers={"Accept": ARROW})
        assert response.headers["content-type"] == ARROW
        tables.append(pa.ipc.open_stream(io.BytesIO(response.content)).read_all())
        token = response.headers.get("x-wharf-next-page-token")
        if token is None:
            break
        params = {"page_size": 7, "page_token": token}
    assert [t.num_rows for t in tables] == [7, 7, 7, 4]
    whole = pa.concat_tables(tables)
    assert whole.column("i").to_pylist() == list(range(25))
    assert whole.schema.field("price").type == pa.decimal128(8, 2)

    assert http.get(f"/api/v1/queries/{query_id}/results", params={"page_token": "bogus!"}).status_code == 400
    assert http.get(f"/api/v1/queries/{query_id}/results", params={"format": "xml"}).status_code == 400
    assert query_id in [q["id"] for q in http.get("/api/v1/queries").json()["queries"]]


def test_a_failed_query_carries_the_error_body(http: httpx.Client, namespace: str) -> None:
    query_id = submit(http, f"SELECT * FROM {namespace}.missing")
    status = finished(http, query_id)
    assert status["status"] == "failed" and status["row_count"] is None
    assert status["error"]["type"] == "NotFoundException" and status["error"]["code"] == 404
    assert f"{namespace}.missing" in status["error"]["message"]
    results = http.get(f"/api/v1/queries/{query_id}/results")
    assert results.status_code == 404 and results.json()["error"]["type"] == "NotFoundException"
    assert http.get("/api/v1/queries/no-such-id").status_code == 404


def test_writes_run_asynchronously_too(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.w (i BIGINT)")
    status = finished(http, submit(http, f"INSERT INTO {namespace}.w VALUES (1), (2)"))
    assert status["status"] == "succeeded" and status["snapshot_id"] is not None and status["cache"] == "bypass"
    assert server.lake.sql(f"SELECT count(*) FROM {namespace}.w").scalar() == 2


LONG_QUERY = "SELECT count(*) FROM range(100000000000) AS a WHERE a.range % 7 = 3"


def test_cancel_interrupts_duckdb(served: Callable[..., tuple[BackgroundServer, wharf.Lakehouse]]) -> None:
    # One worker: the next query can only run once DuckDB really stopped the long one.
    background, _ = served(query_workers=1)
    with httpx.Client(base_url=background.url, timeout=60) as http:
        long_id = submit(http, LONG_QUERY)
        wait_for(lambda: http.get(f"/api/v1/queries/{long_id}").json()["status"] == "running", "the long query to start")
        queued_id = submit(http, "SELECT 42 AS answer")
        assert http.get(f"/api/v1/queries/{queued_id}").json()["status"] == "queued"  # behind the long one
        cancelled = http.delete(f"/api/v1/queries/{long_id}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
        assert cancelled.json()["error"] is None
        answer = finished(http, queued_id)
        assert answer["status"] == "succeeded"
        assert http.get(f"/api/v1/queries/{queued_id}/results").json()["rows"] == [[42]]
        gone = http.get(f"/api/v1/queries/{long_id}/results")
        assert gone.status_code == 409 and "cancelled" in gone.json()["error"]["message"]
        # Cancelling a queued query: it never runs.
        blocker = submit(http, LONG_QUERY)
        wait_for(lambda: http.get(f"/api/v1/queries/{blocker}").json()["status"] == "running", "the blocker to start")
        waiting = submit(http, "SELECT 1")
        assert http.delete(f"/api/v1/queries/{waiting}").json()["status"] == "cancelled"
        assert http.delete(f"/api/v1/queries/{blocker}").json()["status"] == "cancelled"
        assert http.get(f"/api/v1/queries/{waiting}").json()["started_at"] is None


def test_queries_belong_to_their_principal(served: Callable[..., tuple[BackgroundServer, wharf.Lakehouse]]) -> None:
    background, lake = served(authenticator=ByName())
    lake.sql("GRANT SELECT ON TABLE t TO USER alice")
    with as_user(background.url, "alice") as alice, as_user(background.url, "bob") as bob:
        query_id = submit(alice, "SELECT count(*) AS n FROM t")
        assert finished(alice, query_id)["status"] == "succeeded"
        for request in (
            lambda: bob.get(f"/api/v1/queries/{query_id}"),
            lambda: bob.get(f"/api/v1/queries/{query_id}/results"),
            lambda: bob.delete(f"/api/v1/queries/{query_id}"),
        ):
            response = request()
            assert response.status_code == 404 and response.json()["error"]["type"] == "NotFoundException"
        assert bob.get("/api/v1/queries").json()["queries"] == []
        assert alice.get(f"/api/v1/queries/{query_id}/results").json()["rows"] == [[500]]
        assert httpx.get(f"{background.url}/api/v1/queries/{query_id}").status_code == 401


def test_results_expire_by_size_then_by_time(served: Callable[..., tuple[BackgroundServer, wharf.Lakehouse]]) -> None:
    # 500 BIGINTs are a little over 4,000 bytes: two such results do not fit in 6,000.
    background, _ = served(query_results_max_bytes=6000, query_result_ttl_s=3, result_cache_max_bytes=0)
    with httpx.Client(base_url=background.url, timeout=60) as http:
        first = submit(http, "SELECT i FROM t")
        assert 4000 <= finished(http, first)["bytes"] <= 6000 / 2 * 1.5
        second = submit(http, "SELECT i + 1 AS j FROM t")
        assert finished(http, second)["status"] == "succeeded"
        evicted = http.get(f"/api/v1/queries/{first}/results")
        assert evicted.status_code == 410 and "evicted" in evicted.json()["error"]["message"]
        assert http.get(f"/api/v1/queries/{second}/results").json()["total_rows"] == 500
        time.sleep(3.2)
        expired = http.get(f"/api/v1/queries/{second}")
        assert expired.status_code == 410 and "expired" in expired.json()["error"]["message"]
        assert http.get("/api/v1/queries/never-was").status_code == 404


def test_too_large_for_the_result_store_fails_clearly(
    served: Callable[..., tuple[BackgroundServer, wharf.Lakehouse]],
) -> None:
    background, _ = served(query_results_max_bytes=1000)
    with httpx.Client(base_url=background.url, timeout=60) as http:
        status = finished(http, submit(http, "SELECT i FROM t"))
        assert status["status"] == "failed" and "1000 bytes" in status["error"]["message"]


# --- the result cache -----------------------------------------------------------------------------


def test_cache_hits_and_a_commit_through_sql_makes_it_miss(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.c (city VARCHAR, amount BIGINT)")
    server.lake.sql(f"INSERT INTO {namespace}.c VALUES ('Oslo', 10), ('Lima', 20)")
    query = f"SELECT city, CAST(sum(amount) AS BIGINT) AS total FROM {namespace}.c GROUP BY city ORDER BY city"
    first = sql(http, query)
    assert first.headers["x-wharf-cache"] == "miss"
    again = sql(http, query)
    assert again.headers["x-wharf-cache"] == "hit" and again.json()["rows"] == first.json()["rows"]
    assert again.json()["rows"] == [["Lima", 20], ["Oslo", 10]]
    # Another spelling of the statement compiles once (a miss), then shares the one entry (normalized key).
    entries = http.get("/api/v1/cache").json()["entries"]
    spelled = "  " + query.replace(" FROM", "\n  FROM").replace("GROUP BY", "group by") + " ;"
    assert sql(http, spelled).headers["x-wharf-cache"] == "miss"
    assert http.get("/api/v1/cache").json()["entries"] == entries
    assert sql(http, spelled).headers["x-wharf-cache"] == "hit"

    written = sql(http, f"INSERT INTO {namespace}.c VALUES ('Oslo', 5)")
    assert written.headers["x-wharf-cache"] == "bypass"
    after = sql(http, query)
    assert after.headers["x-wharf-cache"] == "miss" and after.json()["rows"] == [["Lima", 20], ["Oslo", 15]]
    assert sql(http, query).headers["x-wharf-cache"] == "hit"

    # An asynchronous query shares the cache, and says so.
    status = finished(http, submit(http, query))
    assert status["cache"] == "hit"
    assert status["snapshots_read"][0]["snapshot_id"] == server.lake.table(f"{namespace}.c").current_snapshot_id()


def test_cache_with_parameters_formats_and_row_limits(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.r (i BIGINT)")
    server.lake.sql(f"INSERT INTO {namespace}.r SELECT range FROM range(50)")
    query = f"SELECT i FROM {namespace}.r WHERE i >= ? ORDER BY i"
    assert sql(http, query, params=[10], max_rows=3).headers["x-wharf-cache"] == "miss"
    fewer = sql(http, query, params=[10], max_rows=2)  # from the 3 rows kept
    assert fewer.headers["x-wharf-cache"] == "hit" and fewer.json()["rows"] == [[10], [11]] and fewer.json()["truncated"]
    more = sql(http, query, params=[10], max_rows=100)  # 3 rows cannot answer 100
    assert more.headers["x-wharf-cache"] == "miss" and more.json()["row_count"] == 40 and not more.json()["truncated"]
    csv_page = sql(http, query, params=[10], max_rows=5, format="csv")
    assert csv_page.headers["x-wharf-cache"] == "hit" and csv_page.headers["wharf-truncated"] == "true"
    assert [int(r["i"]) for r in csv.DictReader(io.StringIO(csv_page.text))] == [10, 11, 12, 13, 14]
    other = sql(http, query, params=[45], max_rows=100)  # other parameters: another entry
    assert other.headers["x-wharf-cache"] == "miss" and other.json()["rows"] == [[45], [46], [47], [48], [49]]
    plain = f"SELECT count(*) AS n FROM {namespace}.r"
    assert sql(http, plain).headers["x-wharf-cache"] == "miss"
    assert sql(http, plain, dialect="spark").headers["x-wharf-cache"] == "miss"  # the dialect is part of the key
    assert sql(http, plain, dialect="spark").headers["x-wharf-cache"] == "hit"
    assert sql(http, "SELECT random() AS r").headers["x-wharf-cache"] == "bypass"
    assert sql(http, f"SELECT now() AS at, count(*) FROM {namespace}.r").headers["x-wharf-cache"] == "bypass"


def test_a_commit_through_the_rest_catalog_makes_it_miss(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.e (id BIGINT, city VARCHAR)")
    server.lake.sql(f"INSERT INTO {namespace}.e VALUES (1, 'Oslo')")
    query = f"SELECT count(*) AS n FROM {namespace}.e"
    assert sql(http, query).headers["x-wharf-cache"] == "miss"
    assert sql(http, query).headers["x-wharf-cache"] == "hit"
    table = server.catalog().load_table(f"{namespace}.e")
    table.append(pa.table({"id": pa.array([2, 3], pa.int64()), "city": ["Lima", "Pune"]}))
    after = sql(http, query)
    assert after.headers["x-wharf-cache"] == "miss" and after.json()["rows"] == [[3]]


def test_two_principals_never_share_an_entry(served: Callable[..., tuple[BackgroundServer, wharf.Lakehouse]]) -> None:
    background, lake = served(authenticator=ByName())
    lake.sql("GRANT SELECT ON TABLE t TO USER alice")
    lake.sql("GRANT SELECT ON TABLE t TO USER bob")
    query = {"sql": "SELECT count(*) AS n FROM t"}
    with as_user(background.url, "alice") as alice, as_user(background.url, "bob") as bob:
        assert alice.post("/api/v1/sql", json=query).headers["x-wharf-cache"] == "miss"
        assert alice.post("/api/v1/sql", json=query).headers["x-wharf-cache"] == "hit"
        assert bob.post("/api/v1/sql", json=query).headers["x-wharf-cache"] == "miss"
        assert bob.post("/api/v1/sql", json=query).headers["x-wharf-cache"] == "hit"
        stats = alice.get("/api/v1/cache").json()
        assert stats["entries"] == 1 + 1 and stats["hits"] == 2 and stats["misses"] == 2


def test_grants_and_row_filters_take_effect_on_cached_results(
    served: Callable[..., tuple[BackgroundServer, wharf.Lakehouse]],
) -> None:
    background, lake = served(authenticator=ByName())
    lake.sql("GRANT SELECT ON TABLE t TO USER alice")
    query = {"sql": "SELECT count(*) AS n FROM t"}
    with as_user(background.url, "alice") as alice:
        assert alice.post("/api/v1/sql", json=query).headers["x-wharf-cache"] == "miss"
        hit = alice.post("/api/v1/sql", json=query)
        assert hit.headers["x-wharf-cache"] == "hit" and hit.json()["rows"] == [[500]]
        # A row filter for alice: her next answer is computed again, filtered, never the cached 500.
        lake.sql("CREATE FUNCTION small(i BIGINT) RETURNS BOOLEAN RETURN i < 10")
        lake.sql("ALTER TABLE t SET ROW FILTER small ON (i)")
        filtered = alice.post("/api/v1/sql", json=query)
        assert filtered.headers["x-wharf-cache"] == "miss" and filtered.json()["rows"] == [[10]]
        assert alice.post("/api/v1/sql", json=query).json()["rows"] == [[10]]
        # A revoked grant refuses the next request instead of answering from the cache.
        lake.sql("REVOKE SELECT ON TABLE t FROM USER alice")
        refused = alice.post("/api/v1/sql", json=query)
        assert refused.status_code == 403, refused.text
        assert "x-wharf-cache" not in refused.headers or refused.headers["x-wharf-cache"] != "hit"


class Versioned:
    """A policy that restricts nothing but declares a version (as governance's policies will)."""

    def __init__(self, version: int | None) -> None:
        self.cache_version = version

    def __call__(self, principal: Principal, reference: Any) -> None:
        return None


def test_policy_version_is_part_of_the_key(served: Callable[..., tuple[BackgroundServer, wharf.Lakehouse]]) -> None:
    background, lake = served()
    policy = Versioned(1)
    lake.add_policy(policy)
    with httpx.Client(base_url=background.url, timeout=60) as http:
        query = "SELECT max(i) AS top FROM t"
        assert sql(http, query).headers["x-wharf-cache"] == "miss"
        assert sql(http, query).headers["x-wharf-cache"] == "hit"
        policy.cache_version = 2  # its decisions changed
        assert sql(http, query).headers["x-wharf-cache"] == "miss"
        assert sql(http, query).headers["x-wharf-cache"] == "hit"
        lake.add_policy(Versioned(None))  # a policy that cannot say when its decisions change
        assert sql(http, query).headers["x-wharf-cache"] == "bypass"
        assert sql(http, query).headers["x-wharf-cache"] == "bypass"


def test_lru_eviction_by_bytes_over_http(served: Callable[..., tuple[BackgroundServer, wharf.Lakehouse]]) -> None:
    # Each result below is 200 BIGINTs (1,600 bytes) plus an entry's overhead; the cache holds two of them.
    size = 1600 + ENTRY_OVERHEAD_BYTES
    background, lake = served(result_cache_max_bytes=2 * size + 500)
    queries = [f"SELECT i + {k} AS v FROM t WHERE i < 200" for k in range(3)]
    assert held_bytes(compact(lake.sql(queries[0]).to_arrow())) == 1600
    with httpx.Client(base_url=background.url, timeout=60) as http:
        assert sql(http, queries[0]).headers["x-wharf-cache"] == "miss"
        assert sql(http, queries[1]).headers["x-wharf-cache"] == "miss"
        assert sql(http, queries[0]).headers["x-wharf-cache"] == "hit"  # now the most recently used
        assert sql(http, queries[2]).headers["x-wharf-cache"] == "miss"  # evicts queries[1], the least recent
        stats = http.get("/api/v1/cache").json()
        assert stats["entries"] == 2 and stats["bytes"] == 2 * size and stats["evictions"] == 1
        assert sql(http, queries[0]).headers["x-wharf-cache"] == "hit"
        assert sql(http, queries[2]).headers["x-wharf-cache"] == "hit"
        assert sql(http, queries[1]).headers["x-wharf-cache"] == "miss"
        too_big = "SELECT i, i AS j, i AS k FROM t"  # 12,000 bytes of rows: larger than the whole cache, never kept
        assert sql(http, too_big).headers["x-wharf-cache"] == "miss"
        assert sql(http, too_big).headers["x-wharf-cache"] == "miss"
        assert http.get("/api/v1/cache").json()["bytes"] == 2 * size


def test_result_cache_unit_lru_by_bytes() -> None:
    size = 800 + ENTRY_OVERHEAD_BYTES  # 100 BIGINTs and the entry's overhead
    cache = ResultCache(max_bytes=3 * size + 200)

    def entry(rows: int, complete: bool = True) -> CachedResult:
        return CachedResult(pa.table({"v": pa.array(range(rows), pa.int64())}), complete, (), 0.0)

    assert entry(100).nbytes == size
    assert cache.put("a", entry(100)) and cache.put("b", entry(100)) and cache.put("c", entry(100))
    assert cache.bytes == 3 * size and len(cache) == 3
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", entry(100))  # four would exceed the bound: b goes
    assert cache.get("b") is None and cache.get("a") is not None and cache.bytes == 3 * size and cache.evictions == 1
    assert not cache.put("huge", entry(3000))  # 24,000 bytes alone exceed the bound: not kept
    assert cache.get("huge") is None
    partial = entry(10, complete=False)
    assert partial.rows(5) is not None and partial.rows(11) is None and partial.rows(None) is None
    cache.put("p", partial)
    cache.put("p", entry(5, complete=False))  # fewer rows never replace more
    found = cache.get("p")
    assert found is not None and found.table.num_rows == 10
    assert ResultCache(0).put("x", entry(1)) is False


def test_result_cache_holds_copies_of_the_rows_and_counts_each_entry(tmp_path: Any) -> None:
    # Regression (server memory grew ~1 MiB/s under ad-hoc queries): entries kept DuckDB's own Arrow
    # batches (~100 KB of DuckDB memory for a five-row answer whose nbytes is 90; a row-limited
    # answer kept its whole batch), and a small entry counted only its rows' bytes.
    def spans(table: pa.Table) -> list[tuple[int, int]]:
        return [
            (b.address, b.address + b.size)
            for column in table.columns
            for chunk in column.chunks
            for b in chunk.buffers()
            if b is not None and b.size
        ]

    with wharf.connect(tmp_path / "lake", user="owner") as lake:
        lake.sql("CREATE TABLE t AS SELECT range AS i FROM range(5000)")
        cache = ResultCache(max_bytes=16 * ENTRY_OVERHEAD_BYTES)
        text = "SELECT i, i * 2 AS j FROM t WHERE i % 7 = 0"
        result = lake.sql(text)
        rows, truncated = limited(result, 10)
        assert truncated and held_bytes(rows) > 1000  # a slice: it keeps the whole batch alive
        assert remember(cache, lake, text, None, None, result, rows, False) == "miss"
        key = cache_key(lake, text, None, None)
        entry = cache.get(key) if key is not None else None
        assert entry is not None and entry.table.equals(rows)
        assert held_bytes(entry.table) == 10 * 2 * 8  # its ten rows, nothing of the batch they were cut from
        assert not any(a < d and c < b for a, b in spans(entry.table) for c, d in spans(rows))  # no DuckDB buffer

        for n in range(40):  # forty one-row answers: each counts its overhead, so at most 16 fit
            text = f"SELECT count(*) AS n FROM t WHERE i > {n}"
            result = lake.sql(text)
            rows, _ = limited(result, 100)
            remember(cache, lake, text, None, None, result, rows, True)
        assert len(cache) < 16 and cache.bytes <= cache.max_bytes and cache.evictions > 24


# --- pre-cache --------------------------------------------------------------------------------------


def precache_state(http: httpx.Client, query_id: str) -> dict[str, Any]:
    found: dict[str, Any] = http.get(f"/api/v1/precache/{query_id}").json()
    return found


def refreshed_after(http: httpx.Client, query_id: str, count: int) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        state = precache_state(http, query_id)
        return state if state["refreshes"] > count and not state["refreshing"] else None

    found: dict[str, Any] = wait_for(ready, f"pre-cached query {query_id} to refresh")
    return found


def test_precache_is_refreshed_after_commits_through_sql_and_rest(
    http: httpx.Client, server: RunningServer, namespace: str
) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.d (id BIGINT, city VARCHAR)")
    server.lake.sql(f"INSERT INTO {namespace}.d VALUES (1, 'Oslo')")
    server.lake.sql(f"CREATE TABLE {namespace}.other (id BIGINT)")
    query = f"SELECT city, count(*) AS n FROM {namespace}.d GROUP BY city ORDER BY city"
    registered = http.post("/api/v1/precache", json={"sql": query})
    assert registered.status_code == 201, registered.text
    query_id = registered.json()["id"]
    state = refreshed_after(http, query_id, 0)
    assert state["tables"] == [f"{namespace}.d"] and state["last_error"] is None
    dashboard = sql(http, query)
    assert dashboard.headers["x-wharf-cache"] == "hit" and dashboard.json()["rows"] == [["Oslo", 1]]

    # A commit through SQL: refreshed in the background, the dashboard's next request is a hit with the new rows.
    sql(http, f"INSERT INTO {namespace}.d VALUES (2, 'Lima')")
    state = refreshed_after(http, query_id, state["refreshes"])
    assert state["last_outcome"] == "miss" and state["row_count"] == 2
    dashboard = sql(http, query)
    assert dashboard.headers["x-wharf-cache"] == "hit" and dashboard.json()["rows"] == [["Lima", 1], ["Oslo", 1]]

    # A commit through the REST catalog (PyIceberg): the same.
    table = server.catalog().load_table(f"{namespace}.d")
    table.append(pa.table({"id": pa.array([3], pa.int64()), "city": ["Lima"]}))
    state = refreshed_after(http, query_id, state["refreshes"])
    assert state["snapshots"][0]["snapshot_id"] == server.lake.table(f"{namespace}.d").current_snapshot_id()
    dashboard = sql(http, query)
    assert dashboard.headers["x-wharf-cache"] == "hit" and dashboard.json()["rows"] == [["Lima", 2], ["Oslo", 1]]

    # A commit to a table it does not read leaves it alone (the commit event schedules synchronously,
    # so a refresh it caused would show as refreshing, or counted, as soon as the commit returns).
    refreshes = state["refreshes"]
    server.lake.sql(f"INSERT INTO {namespace}.other VALUES (1)")
    state = precache_state(http, query_id)
    assert state["refreshes"] == refreshes and not state["refreshing"]
    assert sql(http, query).headers["x-wharf-cache"] == "hit"

    assert query_id in [q["id"] for q in http.get("/api/v1/precache").json()["queries"]]
    assert http.delete(f"/api/v1/precache/{query_id}").status_code == 204
    assert http.get(f"/api/v1/precache/{query_id}").status_code == 404
    for wrong in ("SELECT FROM (", f"INSERT INTO {namespace}.other VALUES (2)", "SELECT 1; SELECT 2"):
        refused = http.post("/api/v1/precache", json={"sql": wrong})
        assert refused.status_code == 400 and refused.json()["error"]["type"] == "BadRequestException", wrong


def test_precache_from_the_configuration(served: Callable[..., tuple[BackgroundServer, wharf.Lakehouse]]) -> None:
    config = load_config(environ={"WHARF_PRECACHE": "SELECT count(*) AS n FROM t; SELECT max(i), min(i) FROM t"})
    assert config.precache == ("SELECT count(*) AS n FROM t", "SELECT max(i), min(i) FROM t")
    background, lake = served(precache=config.precache)
    with httpx.Client(base_url=background.url, timeout=60) as http:
        queries = http.get("/api/v1/precache").json()["queries"]
        assert [q["sql"] for q in queries] == list(config.precache)
        for query in queries:
            refreshed_after(http, query["id"], 0)
        assert sql(http, "SELECT max(i), min(i) FROM t").headers["x-wharf-cache"] == "hit"
        lake.sql("INSERT INTO t VALUES (1000)")
        refreshed_after(http, queries[1]["id"], 1)
        answer = sql(http, "SELECT max(i), min(i) FROM t")
        assert answer.headers["x-wharf-cache"] == "hit" and answer.json()["rows"] == [[1000, 0]]


def test_query_and_cache_settings_from_file_environment_and_flags(tmp_path: Any) -> None:
    file = tmp_path / "wharf.toml"
    file.write_text(
        "[server]\nquery_workers = 2\nresult_cache_max_bytes = 1000\nquery_result_ttl_s = 60\n"
        'precache = ["SELECT a, b FROM t", "SELECT 1"]\n'
    )
    config = load_config(file, environ={"WHARF_QUERY_RESULTS_MAX_BYTES": "5000"}, query_workers=6)
    assert (config.query_workers, config.result_cache_max_bytes, config.query_results_max_bytes) == (6, 1000, 5000)
    assert config.precache == ("SELECT a, b FROM t", "SELECT 1") and config.query_result_ttl_s == 60
    assert type(config).from_json(config.to_json()) == config  # what --workers N hands its processes
    with pytest.raises(InvalidArgument, match="query_workers"):
        load_config(None, environ={}, query_workers=0)
    with pytest.raises(InvalidArgument, match="result_cache_max_bytes"):
        load_config(None, environ={"WHARF_RESULT_CACHE_MAX_BYTES": "-1"})
    from wharf.cli import app

    result = CliRunner().invoke(app, ["serve", "--no-auth", "--query-workers", "0"])
    assert result.exit_code == 1 and "query_workers" in result.output


# --- browsing and OpenAPI -------------------------------------------------------------------------------


def test_browse_endpoints(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.b (id BIGINT, city VARCHAR)")
    server.lake.sql(f"INSERT INTO {namespace}.b VALUES (1, 'Oslo')")
    server.lake.sql(f"ALTER TABLE {namespace}.b CREATE BRANCH dev")
    catalogs = http.get("/api/v1/catalogs").json()["catalogs"]
    assert catalogs == [{"name": server.config.warehouse, "location": str(server.lake.location)}]
    columns = http.get(f"/api/v1/tables/{namespace}.b/columns").json()
    assert [(c["name"], c["type"]) for c in columns["columns"]] == [("id", "long"), ("city", "string")]
    snapshots = http.get(f"/api/v1/tables/{namespace}.b/snapshots").json()
    current = server.lake.table(f"{namespace}.b").current_snapshot_id()
    assert snapshots["current_snapshot_id"] == current and snapshots["snapshots"][0]["operation"] == "append"
    refs = http.get(f"/api/v1/tables/{namespace}.b/refs").json()["refs"]
    assert refs["dev"]["snapshot_id"] == current and set(refs) == {"main", "dev"}
    preview = http.get(f"/api/v1/tables/{namespace}.b/preview", params={"format": "arrow"})
    assert pa.ipc.open_stream(io.BytesIO(preview.content)).read_all().to_pylist() == [{"id": 1, "city": "Oslo"}]
    assert http.get(f"/api/v1/tables/{namespace}.nope/columns").status_code == 404


def test_openapi_documents_every_endpoint(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    expected = {
        "/api/v1/sql": {"post"},
        "/api/v1/queries": {"post", "get"},
        "/api/v1/queries/{query_id}": {"get", "delete"},
        "/api/v1/queries/{query_id}/results": {"get"},
        "/api/v1/precache": {"post", "get"},
        "/api/v1/precache/{query_id}": {"get", "delete"},
        "/api/v1/cache": {"get"},
        "/api/v1/catalogs": {"get"},
        "/api/v1/namespaces": {"get"},
        "/api/v1/namespaces/{namespace}/tables": {"get"},
        "/api/v1/tables/{name}": {"get"},
        "/api/v1/tables/{name}/columns": {"get"},
        "/api/v1/tables/{name}/snapshots": {"get"},
        "/api/v1/tables/{name}/refs": {"get"},
        "/api/v1/tables/{name}/preview": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))

    def schema_of(path: str, method: str, code: str = "200") -> str:
        content = paths[path][method]["responses"][code]["content"]
        ref: str = content["application/json"]["schema"]["$ref"]
        return ref.rsplit("/", 1)[-1]

    assert schema_of("/api/v1/queries", "post", "202") == "QueryAccepted"
    assert schema_of("/api/v1/queries/{query_id}", "get") == "QueryStatus"
    assert schema_of("/api/v1/queries/{query_id}/results", "get") == "ResultsPage"
    assert schema_of("/api/v1/sql", "post") == "RowsResponse"
    assert schema_of("/api/v1/tables/{name}/snapshots", "get") == "SnapshotList"
    results = paths["/api/v1/queries/{query_id}/results"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv", ARROW} <= set(results)
    assert "QueryStatus" in spec["components"]["schemas"] and "ErrorBody" in spec["components"]["schemas"]
