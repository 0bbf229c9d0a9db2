"""The REST protocol itself, over raw HTTP: config, tokens, errors, paging, commits, transactions, views, idempotency."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.server.conftest import RunningServer

pytestmark = pytest.mark.metadata_backends

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}


def assert_error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == status and body["error"]["type"] == kind, body
    assert "Traceback" not in body["error"]["message"]
    return body["error"]


def create(http: httpx.Client, namespace: str, name: str) -> dict[str, Any]:
    response = http.post(f"/v1/namespaces/{namespace}/tables", json={"name": name, "schema": SCHEMA})
    assert response.status_code == 200, response.text
    return response.json()


def test_config_announces_prefix_endpoints_and_key_lifetime(http: httpx.Client) -> None:
    config = http.get("/v1/config", params={"warehouse": "wharf"}).json()
    assert config["overrides"]["prefix"] == "wharf"
    assert config["idempotency-key-lifetime"] == "PT30M"
    assert "POST /v1/{prefix}/transactions/commit" in config["endpoints"]
    assert "GET /v1/{prefix}/namespaces/{namespace}/views/{view}" in config["endpoints"]
    assert_error(http.get("/v1/config", params={"warehouse": "elsewhere"}), 404, "NoSuchWarehouseException")
    # The prefix is optional: both spellings reach the same route.
    assert http.get("/v1/wharf/namespaces").json() == http.get("/v1/namespaces").json()


def test_token_endpoint_in_no_auth_mode(http: httpx.Client) -> None:
    form = {"grant_type": "client_credentials", "client_id": "spark", "client_secret": "x", "scope": "PRINCIPAL_ROLE:ALL"}
    token = http.post("/v1/oauth/tokens", data=form).json()
    assert token["token_type"] == "bearer" and token["access_token"] and token["scope"] == "PRINCIPAL_ROLE:ALL"
    bad = http.post("/v1/oauth/tokens", data={"grant_type": "password"})
    assert bad.status_code == 400 and bad.json()["error"] == "unsupported_grant_type"


def test_not_found_errors_name_what_is_missing(http: httpx.Client, namespace: str) -> None:
    assert_error(http.get("/v1/namespaces/nope_ns"), 404, "NoSuchNamespaceException")
    assert_error(http.get("/v1/namespaces/nope_ns/tables"), 404, "NoSuchNamespaceException")
    assert_error(http.get(f"/v1/namespaces/{namespace}/tables/nope"), 404, "NoSuchTableException")
    assert_error(http.get(f"/v1/namespaces/{namespace}/views/nope"), 404, "NoSuchViewException")
    assert_error(
        http.post(f"/v1/namespaces/{namespace}/tables/nope", json={"requirements": [], "updates": []}),
        404,
        "NoSuchTableException",
    )
    assert http.head(f"/v1/namespaces/{namespace}/tables/nope").status_code == 404
    assert http.head(f"/v1/namespaces/{namespace}").status_code == 204
    assert_error(http.get("/v1/no/such/route"), 404, "NotFoundException")


def test_commit_requirements_updates_and_malformed_bodies(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    loaded = create(http, namespace, "t")
    uuid_ = loaded["metadata"]["table-uuid"]
    url = f"/v1/namespaces/{namespace}/tables/t"
    ok = http.post(
        url,
        json={
            "requirements": [
                {"type": "assert-table-uuid", "uuid": uuid_},
                {"type": "assert-current-schema-id", "current-schema-id": 0},
            ],
            "updates": [{"action": "set-properties", "updates": {"owner": "ana"}}],
        },
    )
    assert ok.status_code == 200 and ok.json()["metadata"]["properties"]["owner"] == "ana"
    failed = http.post(url, json={"requirements": [{"type": "assert-current-schema-id", "current-schema-id": 7}], "updates": []})
    assert_error(failed, 409, "CommitFailedException")
    stale = http.post(
        url, json={"requirements": [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 42}], "updates": []}
    )
    assert_error(stale, 409, "CommitFailedException")
    assert_error(http.post(url, json={"requirements": [], "updates": [{"action": "make-it-fast"}]}), 400, "BadRequestException")
    assert_error(http.post(url, json={"requirements": [{"type": "assert-vibes"}], "updates": []}), 400, "BadRequestException")
    unsupported = http.post(url, json={"requirements": [], "updates": [{"action": "add-encryption-key", "encryption-key": {}}]})
    assert "encryption" in assert_error(unsupported, 400, "BadRequestException")["message"]
    assert_error(
        http.post(url, json={"requirements": [], "updates": [{"action": "set-current-schema", "schema-id": 9}]}),
        400,
        "BadRequestException",
    )
    assert_error(http.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400, "BadRequestException")
    assert_error(http.post(url, json=["a list"]), 400, "BadRequestException")
    # Every spec update type parses; these change the table and are visible in Wharf.
    updates = [
        {
            "action": "add-schema",
            "schema": {
                **SCHEMA,
                "schema-id": 1,
                "fields": [*SCHEMA["fields"], {"id": 2, "name": "v", "type": "string", "required": False}],
            },
        },
        {"action": "set-current-schema", "schema-id": -1},
        {
            "action": "add-sort-order",
            "sort-order": {
                "order-id": 1,
                "fields": [{"source-id": 1, "transform": "identity", "direction": "asc", "null-order": "nulls-first"}],
            },
        },
        {"action": "set-default-sort-order", "sort-order-id": -1},
        {
            "action": "add-spec",
            "spec": {"spec-id": 1, "fields": [{"source-id": 1, "field-id": 1000, "transform": "bucket[4]", "name": "id_b"}]},
        },
        {"action": "set-default-spec", "spec-id": -1},
        {"action": "remove-properties", "removals": ["owner"]},
        {"action": "upgrade-format-version", "format-version": 2},
    ]
    changed = http.post(
        url, json={"requirements": [{"type": "assert-last-assigned-field-id", "last-assigned-field-id": 1}], "updates": updates}
    )
    assert changed.status_code == 200, changed.text
    table = server.lake.catalog.load_table((namespace, "t"))
    assert [f.name for f in table.schema().fields] == ["id", "v"] and table.format_version == 2
    assert table.spec().fields[0].name == "id_b" and table.sort_order().order_id == 1
    assert "owner" not in table.properties
    server.lake.sql(f"INSERT INTO {namespace}.t VALUES (1, 'a')")
    snapshot = server.lake.sql(f"SELECT snapshot_id FROM {namespace}.t.snapshots").scalar()
    refs = [
        {"action": "set-snapshot-ref", "ref-name": "audit", "type": "tag", "snapshot-id": snapshot},
        {"action": "remove-partition-specs", "spec-ids": [0]},
        {"action": "remove-schemas", "schema-ids": [0]},
        {"action": "set-location", "location": table.location()},
    ]
    assert (
        http.post(
            url, json={"requirements": [{"type": "assert-default-spec-id", "default-spec-id": 1}], "updates": refs}
        ).status_code
        == 200
    )
    assert server.lake.sql(f"SELECT name, type FROM {namespace}.t.refs ORDER BY name").fetchall() == [
        ("audit", "TAG"),
        ("main", "BRANCH"),
    ]
    elsewhere = http.post(url, json={"requirements": [], "updates": [{"action": "set-location", "location": "/tmp/elsewhere"}]})
    assert_error(elsewhere, 403, "ForbiddenException")  # outside the warehouse
    dropped = {"action": "remove-snapshot-ref", "ref-name": "audit"}
    assert (
        http.post(
            url,
            json={"requirements": [{"type": "assert-default-sort-order-id", "default-sort-order-id": 1}], "updates": [dropped]},
        ).status_code
        == 200
    )


def test_bad_identifiers_are_400(http: httpx.Client, namespace: str) -> None:
    for name in ["..", "a\x00b", "x" * 300, "tab\tname", "a/b"]:
        response = http.post(f"/v1/namespaces/{namespace}/tables", json={"name": name, "schema": SCHEMA})
        assert_error(response, 400, "BadRequestException")
    assert_error(http.post("/v1/namespaces", json={"namespace": [".."]}), 400, "BadRequestException")
    assert_error(http.post("/v1/namespaces", json={"namespace": ["ok", "\x01"]}), 400, "BadRequestException")
    assert_error(http.get(f"/v1/namespaces/{namespace}/tables/a%00b"), 400, "BadRequestException")
    rename = {"source": {"namespace": [namespace], "name": "x"}, "destination": {"namespace": [namespace], "name": "/etc"}}
    assert_error(http.post("/v1/tables/rename", json=rename), 400, "BadRequestException")


def test_request_size_limit(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    big = b"{" + b" " * (server.config.max_body_bytes + 10) + b"}"
    assert_error(http.post(f"/v1/namespaces/{namespace}/tables", content=big), 413, "RequestTooLargeException")

    def chunks() -> Any:  # no Content-Length: the limit applies while the body streams in
        yield b"{"
        for _ in range(server.config.max_body_bytes // (1 << 20) + 1):
            yield b" " * (1 << 20)
        yield b"}"

    streamed = http.post(f"/v1/namespaces/{namespace}/tables", content=chunks(), headers={"content-type": "application/json"})
    assert_error(streamed, 413, "RequestTooLargeException")


def test_a_gate_refuses_a_rest_commit_as_it_refuses_sql(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    from wharf.errors import CommitRejected

    create(http, namespace, "guarded")

    def no_properties(change: Any) -> None:
        if change.table == f"{namespace}.guarded" and change.kind == "update":
            raise CommitRejected("guarded tables keep their properties", gate="freeze")

    unsubscribe = server.lake.events.subscribe("before_commit", no_properties)
    try:
        body = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"x": "1"}}]}
        refused = http.post(f"/v1/namespaces/{namespace}/tables/guarded", json=body)
        assert "keep their properties" in assert_error(refused, 422, "CommitRejectedException")["message"]
        with pytest.raises(CommitRejected):
            server.lake.sql(f"ALTER TABLE {namespace}.guarded SET TBLPROPERTIES ('x' = '1')")
    finally:
        unsubscribe()
    assert "x" not in server.lake.catalog.load_table((namespace, "guarded")).properties


def test_list_paging(http: httpx.Client, namespace: str) -> None:
    for i in range(5):
        create(http, namespace, f"t{i}")
    everything = http.get(f"/v1/namespaces/{namespace}/tables").json()
    assert [i["name"] for i in everything["identifiers"]] == [f"t{i}" for i in range(5)] and everything["next-page-token"] is None
    names, token = [], ""
    while token is not None:
        page = http.get(f"/v1/namespaces/{namespace}/tables", params={"pageToken": token, "pageSize": 2}).json()
        assert len(page["identifiers"]) <= 2
        names += [i["name"] for i in page["identifiers"]]
        token = page["next-page-token"]
    assert names == [f"t{i}" for i in range(5)]
    assert_error(http.get(f"/v1/namespaces/{namespace}/tables", params={"pageToken": "%%%"}), 400, "BadRequestException")


def test_load_table_snapshots_refs_and_etag(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.s (id BIGINT)")
    for i in range(3):
        server.lake.sql(f"INSERT INTO {namespace}.s VALUES ({i})")
    url = f"/v1/namespaces/{namespace}/tables/s"
    everything = http.get(url)
    assert len(everything.json()["metadata"]["snapshots"]) == 3
    referenced = http.get(url, params={"snapshots": "refs"}).json()["metadata"]
    assert [s["snapshot-id"] for s in referenced["snapshots"]] == [referenced["current-snapshot-id"]]
    again = http.get(url, headers={"If-None-Match": everything.headers["etag"]})
    assert again.status_code == 304
    server.lake.sql(f"INSERT INTO {namespace}.s VALUES (9)")
    assert http.get(url, headers={"If-None-Match": everything.headers["etag"]}).status_code == 200


def test_transaction_is_all_or_nothing(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    a, b = create(http, namespace, "a"), create(http, namespace, "b")

    def change(name: str, table: dict[str, Any], value: str, uuid_: str | None = None) -> dict[str, Any]:
        return {
            "identifier": {"namespace": [namespace], "name": name},
            "requirements": [{"type": "assert-table-uuid", "uuid": uuid_ or table["metadata"]["table-uuid"]}],
            "updates": [{"action": "set-properties", "updates": {"batch": value}}],
        }

    bad = http.post(
        "/v1/transactions/commit", json={"table-changes": [change("a", a, "1"), change("b", b, "1", str(uuid.uuid4()))]}
    )
    assert_error(bad, 409, "CommitFailedException")
    for name in "ab":
        assert "batch" not in server.lake.catalog.load_table((namespace, name)).properties  # neither landed
    good = http.post("/v1/transactions/commit", json={"table-changes": [change("a", a, "2"), change("b", b, "2")]})
    assert good.status_code == 204, good.text
    assert {server.lake.catalog.load_table((namespace, n)).properties["batch"] for n in "ab"} == {"2"}
    twice = http.post("/v1/transactions/commit", json={"table-changes": [change("a", a, "3"), change("a", a, "4")]})
    assert_error(twice, 400, "BadRequestException")


def test_idempotency_key_replays_the_first_response(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    key = str(uuid.uuid4())
    body = {"name": "once", "schema": SCHEMA}
    first = http.post(f"/v1/namespaces/{namespace}/tables", json=body, headers={"Idempotency-Key": key})
    second = http.post(f"/v1/namespaces/{namespace}/tables", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"
    # Without the key the same request is a new one: the table exists now.
    assert_error(http.post(f"/v1/namespaces/{namespace}/tables", json=body), 409, "AlreadyExistsException")
    # A final 4xx is replayed too; a key reused for another request is refused.
    gone = str(uuid.uuid4())
    for _ in range(2):
        assert_error(
            http.delete(f"/v1/namespaces/{namespace}/tables/never", headers={"Idempotency-Key": gone}),
            404,
            "NoSuchTableException",
        )
    reused = http.delete(f"/v1/namespaces/{namespace}/tables/once", headers={"Idempotency-Key": key})
    assert_error(reused, 422, "UnprocessableEntityException")
    assert_error(
        http.delete(f"/v1/namespaces/{namespace}/tables/once", headers={"Idempotency-Key": "not-a-uuid"}),
        400,
        "BadRequestException",
    )


def test_views_round_trip_with_wharf_sql(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.base (id BIGINT)")
    server.lake.sql(f"INSERT INTO {namespace}.base VALUES (1), (2), (3)")
    version = {
        "version-id": 1,
        "schema-id": 0,
        "timestamp-ms": 1,
        "summary": {"engine-name": "test"},
        "representations": [{"type": "sql", "sql": f"SELECT id FROM {namespace}.base WHERE id > 1", "dialect": "spark"}],
        "default-namespace": [namespace],
    }
    created = http.post(
        f"/v1/namespaces/{namespace}/views", json={"name": "big", "schema": SCHEMA, "view-version": version, "properties": {}}
    )
    assert created.status_code == 200, created.text
    assert server.lake.sql(f"SELECT count(*) FROM {namespace}.big").fetchone() == (2,)
    metadata = http.get(f"/v1/namespaces/{namespace}/views/big").json()["metadata"]
    replaced_sql = f"SELECT id FROM {namespace}.base WHERE id > 2"
    replace = {
        "requirements": [{"type": "assert-view-uuid", "uuid": metadata["view-uuid"]}],
        "updates": [
            {"action": "add-schema", "schema": SCHEMA},
            {
                "action": "add-view-version",
                "view-version": {**version, "representations": [{"type": "sql", "sql": replaced_sql, "dialect": "spark"}]},
            },
            {"action": "set-current-view-version", "view-version-id": -1},
            {"action": "set-properties", "updates": {"comment": "big ids"}},
        ],
    }
    assert http.post(f"/v1/namespaces/{namespace}/views/big", json=replace).status_code == 200
    assert server.lake.sql(f"SELECT count(*) FROM {namespace}.big").fetchone() == (1,)
    server.lake.sql(f"CREATE VIEW {namespace}.from_sql AS SELECT 1 AS one")
    listed = http.get(f"/v1/namespaces/{namespace}/views").json()["identifiers"]
    assert sorted(i["name"] for i in listed) == ["big", "from_sql"]
    rename = {"source": {"namespace": [namespace], "name": "big"}, "destination": {"namespace": [namespace], "name": "bigger"}}
    assert http.post("/v1/views/rename", json=rename).status_code == 204
    assert http.head(f"/v1/namespaces/{namespace}/views/bigger").status_code == 204
    assert http.delete(f"/v1/namespaces/{namespace}/views/bigger").status_code == 204
    assert_error(http.delete(f"/v1/namespaces/{namespace}/views/bigger"), 404, "NoSuchViewException")


def test_register_drop_and_metrics(http: httpx.Client, server: RunningServer, namespace: str) -> None:
    server.lake.sql(f"CREATE TABLE {namespace}.src (id BIGINT)")
    server.lake.sql(f"INSERT INTO {namespace}.src VALUES (1)")
    location = server.lake.catalog.metadata_location((namespace, "src"))
    dropped = http.delete(f"/v1/namespaces/{namespace}/tables/src")  # no purge: the files stay
    assert dropped.status_code == 204
    registered = http.post(f"/v1/namespaces/{namespace}/register", json={"name": "again", "metadata-location": location})
    assert registered.status_code == 200 and registered.json()["metadata-location"] == location
    assert server.lake.sql(f"SELECT * FROM {namespace}.again").fetchall() == [(1,)]
    report = {
        "report-type": "commit-report",
        "table-name": "again",
        "snapshot-id": 1,
        "sequence-number": 1,
        "operation": "append",
        "metrics": {},
    }
    assert http.post(f"/v1/namespaces/{namespace}/tables/again/metrics", json=report).status_code == 204
    assert_error(
        http.post(f"/v1/namespaces/{namespace}/tables/again/metrics", json={"report-type": "?"}), 400, "BadRequestException"
    )
    outside = http.post(
        f"/v1/namespaces/{namespace}/register", json={"name": "etc", "metadata-location": "/etc/passwd.metadata.json"}
    )
    assert_error(outside, 403, "ForbiddenException")
    missing = http.post(f"/v1/namespaces/{namespace}/register", json={"name": "m", "metadata-location": location + ".gone"})
    assert_error(missing, 400, "BadRequestException")


def test_every_spec_update_and_requirement_type_parses() -> None:
    from wharf.server.rest.commits import SPEC_REQUIREMENTS, SPEC_UPDATES, UNSUPPORTED_UPDATES, parse_requirements, parse_updates

    samples = {
        "assign-uuid": {"uuid": str(uuid.uuid4())},
        "upgrade-format-version": {"format-version": 2},
        "add-schema": {"schema": SCHEMA},
        "set-current-schema": {"schema-id": 0},
        "add-spec": {"spec": {"spec-id": 0, "fields": []}},
        "set-default-spec": {"spec-id": 0},
        "add-sort-order": {"sort-order": {"order-id": 0, "fields": []}},
        "set-default-sort-order": {"sort-order-id": 0},
        "add-snapshot": {
            "snapshot": {"snapshot-id": 1, "timestamp-ms": 1, "manifest-list": "/x", "summary": {"operation": "append"}}
        },
        "set-snapshot-ref": {"ref-name": "b", "type": "branch", "snapshot-id": 1},
        "remove-snapshots": {"snapshot-ids": [1]},
        "remove-snapshot-ref": {"ref-name": "b"},
        "set-location": {"location": "/x"},
        "set-properties": {"updates": {"a": "b"}},
        "remove-properties": {"removals": ["a"]},
        "set-statistics": {
            "snapshot-id": 1,
            "statistics": {
                "snapshot-id": 1,
                "statistics-path": "/s",
                "file-size-in-bytes": 1,
                "file-footer-size-in-bytes": 1,
                "blob-metadata": [],
            },
        },
        "remove-statistics": {"snapshot-id": 1},
        "set-partition-statistics": {
            "partition-statistics": {"snapshot-id": 1, "statistics-path": "/p", "file-size-in-bytes": 1}
        },
        "remove-partition-statistics": {"snapshot-id": 1},
        "remove-partition-specs": {"spec-ids": [1]},
        "remove-schemas": {"schema-ids": [1]},
    }
    assert set(samples) | set(UNSUPPORTED_UPDATES) == SPEC_UPDATES
    parsed = parse_updates([{"action": action, **fields} for action, fields in samples.items()])
    assert [u.action for u in parsed] == list(samples)
    requirement_samples = {
        "assert-create": {},
        "assert-table-uuid": {"uuid": str(uuid.uuid4())},
        "assert-ref-snapshot-id": {"ref": "main", "snapshot-id": None},
        "assert-last-assigned-field-id": {"last-assigned-field-id": 1},
        "assert-current-schema-id": {"current-schema-id": 0},
        "assert-last-assigned-partition-id": {"last-assigned-partition-id": 999},
        "assert-default-spec-id": {"default-spec-id": 0},
        "assert-default-sort-order-id": {"default-sort-order-id": 0},
    }
    assert set(requirement_samples) == SPEC_REQUIREMENTS
    assert [r.type for r in parse_requirements([{"type": t, **f} for t, f in requirement_samples.items()])] == list(
        requirement_samples
    )
