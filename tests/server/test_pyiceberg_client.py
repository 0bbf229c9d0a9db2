"""PyIceberg's ``RestCatalog`` against ``wharf serve``: every change it makes is a Wharf commit."""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.exceptions import NamespaceNotEmptyError, NoSuchNamespaceError, NoSuchTableError
from pyiceberg.expressions import EqualTo, GreaterThanOrEqual
from pyiceberg.transforms import DayTransform
from pyiceberg.types import StringType

from tests.server.conftest import RunningServer

pytestmark = pytest.mark.metadata_backends

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "city": ["Oslo", "Lima", "Pune"]})


def test_namespaces_nested_properties_and_drop(server: RunningServer, namespace: str) -> None:
    catalog = server.catalog()
    catalog.create_namespace((namespace, "inner"), {"owner": "ana"})
    assert (namespace,) in catalog.list_namespaces()
    assert catalog.list_namespaces(namespace) == [(namespace, "inner")]
    assert catalog.load_namespace_properties((namespace, "inner"))["owner"] == "ana"
    summary = catalog.update_namespace_properties(namespace, removals={"absent"}, updates={"team": "data"})
    assert summary.updated == ["team"] and summary.missing == ["absent"]
    assert catalog.namespace_exists(namespace)
    with pytest.raises(NamespaceNotEmptyError):
        catalog.drop_namespace(namespace)  # it holds a namespace
    catalog.drop_namespace((namespace, "inner"))
    catalog.drop_namespace(namespace)
    assert not catalog.namespace_exists(namespace)
    with pytest.raises(NoSuchNamespaceError):
        catalog.load_namespace_properties(namespace)
    # And Wharf SQL agrees.
    assert namespace not in server.lake.namespaces()


def test_writes_are_wharf_commits(server: RunningServer, namespace: str) -> None:
    catalog = server.catalog()
    seen: list[Any] = []
    unsubscribe = server.lake.events.subscribe("on_commit", seen.append)
    try:
        table = catalog.create_table(f"{namespace}.sales", ROWS.schema)
        table.append(ROWS)
        table.overwrite(pa.table({"id": pa.array([9], pa.int64()), "city": ["Rome"]}), overwrite_filter=EqualTo("id", 1))
        table.delete(EqualTo("city", "Lima"))
    finally:
        unsubscribe()
    rows = server.lake.sql(f"SELECT id, city FROM {namespace}.sales ORDER BY id").fetchall()
    assert rows == [(3, "Pune"), (9, "Rome")]
    # The same summaries and events as a SQL commit: the principal, a statement id, the operation.
    summaries = server.lake.sql(
        f"SELECT summary['wharf.user'], summary['wharf.statement'] FROM {namespace}.sales.snapshots ORDER BY committed_at"
    ).fetchall()
    assert {user for user, _ in summaries} == {"owner"}
    assert all(text.startswith(f"REST updateTable {namespace}.sales") for _, text in summaries)
    events = [e for e in seen if e.table == f"{namespace}.sales"]
    assert [e.kind for e in events][0] == "create" and len(events) >= 4
    assert all(e.principal == "owner" and e.statement_id for e in events)
    # And Wharf's writes are visible to the client.
    server.lake.sql(f"INSERT INTO {namespace}.sales VALUES (4, 'Kyiv')")
    assert sorted(catalog.load_table(f"{namespace}.sales").scan().to_arrow().column("id").to_pylist()) == [3, 4, 9]


def test_schema_and_partition_evolution_and_filtered_scans(server: RunningServer, namespace: str) -> None:
    catalog = server.catalog()
    table = catalog.create_table(f"{namespace}.events", pa.schema([("id", pa.int64()), ("at", pa.timestamp("us"))]))
    table.append(pa.table({"id": pa.array([1, 2], pa.int64()), "at": pa.array([0, 86_400_000_000], pa.timestamp("us"))}))
    with table.update_schema() as update:
        update.add_column("note", StringType())
        update.rename_column("id", "event_id")
    with table.update_spec() as spec:
        spec.add_field("at", DayTransform(), "at_day")
    table.append(
        pa.table(
            {
                "event_id": pa.array([3], pa.int64()),
                "at": pa.array([2 * 86_400_000_000], pa.timestamp("us")),
                "note": ["late"],
            }
        )
    )
    table = catalog.load_table(f"{namespace}.events")
    assert [f.name for f in table.schema().fields] == ["event_id", "at", "note"]
    assert table.spec().fields[0].name == "at_day"
    scanned = table.scan(row_filter=GreaterThanOrEqual("event_id", 2)).to_arrow()
    assert sorted(scanned.column("event_id").to_pylist()) == [2, 3]
    assert server.lake.sql(f"SELECT event_id, note FROM {namespace}.events WHERE note IS NOT NULL").fetchall() == [(3, "late")]


def test_branches_and_tags_through_manage_snapshots(server: RunningServer, namespace: str) -> None:
    catalog = server.catalog()
    table = catalog.create_table(f"{namespace}.t", ROWS.schema)
    table.append(ROWS)
    first = table.current_snapshot().snapshot_id
    table.manage_snapshots().create_tag(first, "v1").create_branch(first, "dev").commit()
    table.append(pa.table({"id": pa.array([4], pa.int64()), "city": ["Kyiv"]}))
    assert server.lake.sql(f"SELECT count(*) FROM {namespace}.t FOR VERSION AS OF 'v1'").fetchone() == (3,)
    assert server.lake.sql(f"SELECT count(*) FROM {namespace}.t.branch_dev").fetchone() == (3,)
    assert server.lake.sql(f"SELECT count(*) FROM {namespace}.t").fetchone() == (4,)
    server.lake.sql(f"INSERT INTO {namespace}.t.branch_dev VALUES (7, 'Baku')")  # Wharf writes the branch…
    refs = catalog.load_table(f"{namespace}.t").metadata.refs
    assert set(refs) == {"main", "v1", "dev"} and refs["dev"].snapshot_id != first  # …the client sees it moved
    table = catalog.load_table(f"{namespace}.t")
    table.manage_snapshots().remove_tag("v1").commit()
    assert "v1" not in catalog.load_table(f"{namespace}.t").metadata.refs


def test_stage_create_rename_and_drop(server: RunningServer, namespace: str) -> None:
    catalog = server.catalog()
    txn = catalog.create_table_transaction(f"{namespace}.staged", ROWS.schema)
    txn.append(ROWS)
    assert not catalog.table_exists(f"{namespace}.staged")  # staged: nothing committed yet
    txn.commit_transaction()
    catalog.rename_table(f"{namespace}.staged", f"{namespace}.renamed")
    assert server.lake.sql(f"SELECT count(*) FROM {namespace}.renamed").fetchone() == (3,)
    assert catalog.list_tables(namespace) == [(namespace, "renamed")]
    location = catalog.load_table(f"{namespace}.renamed").location()
    catalog.purge_table(f"{namespace}.renamed")
    with pytest.raises(NoSuchTableError):
        catalog.load_table(f"{namespace}.renamed")
    from pathlib import Path

    data = Path(location.removeprefix("file://")) / "data"
    assert not any(data.rglob("*.parquet")) if data.exists() else True


def test_concurrent_clients_lose_nothing(server: RunningServer, namespace: str) -> None:
    """Several clients append at once: some commits get 409 and are retried by PyIceberg; every row lands."""
    schema = pa.schema([("client", pa.int64()), ("n", pa.int64())])
    server.catalog().create_table(f"{namespace}.hits", schema)
    # Deterministically first: a client appending on a stale view of the table gets a 409, and retries.
    stale, fresh = server.catalog().load_table(f"{namespace}.hits"), server.catalog().load_table(f"{namespace}.hits")
    failed: list[Any] = []
    unsubscribe = server.lake.events.subscribe("on_statement", lambda e: failed.append(e) if e.outcome == "error" else None)
    try:
        fresh.append(pa.table({"client": pa.array([-1], pa.int64()), "n": pa.array([0], pa.int64())}))
        stale.append(pa.table({"client": pa.array([-2], pa.int64()), "n": pa.array([0], pa.int64())}))
    finally:
        unsubscribe()
    assert [e.kind for e in failed] == ["rest.updateTable"] and "ConflictError" in (failed[0].error or "")
    server.lake.sql(f"DELETE FROM {namespace}.hits")
    clients, appends = 3, 2
    errors: list[BaseException] = []
    start = threading.Barrier(clients)

    def work(client: int) -> None:
        try:
            table = server.catalog().load_table(f"{namespace}.hits")
            start.wait()
            for n in range(appends):
                table.append(pa.table({"client": pa.array([client], pa.int64()), "n": pa.array([n], pa.int64())}))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    count = server.lake.sql(f"SELECT count(*), count(DISTINCT (client, n)) FROM {namespace}.hits").fetchone()
    assert count == (clients * appends, clients * appends)
    snapshots = server.lake.sql(f"SELECT count(*) FROM {namespace}.hits.snapshots WHERE operation = 'append'").fetchone()
    assert snapshots == (clients * appends + 2,)
