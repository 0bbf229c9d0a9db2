"""Statement events: one per statement of every kind, with inputs, outputs, columns, lineage and outcome."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pyarrow as pa
import pytest

import wharf
from wharf.errors import NotFound
from wharf.events import StatementEvent
from wharf.statement import TableRead, TableWrite


@pytest.fixture
def events(lake: wharf.Lakehouse) -> Iterator[list[StatementEvent]]:
    seen: list[StatementEvent] = []
    stop = lake.events.subscribe("on_statement", seen.append)
    yield seen
    stop()


@pytest.fixture
def shop(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE TABLE orders (id BIGINT, customer BIGINT, amount DOUBLE, note VARCHAR)")
    lake.sql("CREATE TABLE customers (id BIGINT, name VARCHAR, country VARCHAR)")
    lake.sql("INSERT INTO orders VALUES (1, 10, 5.0, 'a'), (2, 11, 7.5, 'b')")
    lake.sql("INSERT INTO customers VALUES (10, 'Ann', 'FR'), (11, 'Bob', 'DE')")
    return lake


def _head(lake: wharf.Lakehouse, table: str) -> int | None:
    return lake.table(table).current_snapshot_id()


def test_a_query_names_its_inputs_columns_and_lineage(shop: wharf.Lakehouse, events: list[StatementEvent]) -> None:
    shop.sql(
        "SELECT c.name, sum(amount) AS total FROM orders o JOIN customers c ON o.customer = c.id "
        "WHERE country = 'FR' GROUP BY c.name"
    ).fetchall()
    [event] = events
    assert event.kind == "select" and event.outcome == "ok" and event.principal == "tester"
    assert set(event.inputs) == {
        TableRead("default.orders", _head(shop, "orders"), None, ("customer", "amount"), 1),
        TableRead("default.customers", _head(shop, "customers"), None, ("id", "name", "country"), 1),
    }
    assert event.outputs == ()
    assert event.rows is None  # streamed: not read yet when the statement ended
    assert event.duration_ms > 0
    assert event.column_lineage() == {"name": ("default.customers.name",), "total": ("default.orders.amount",)}


def test_select_star_reads_every_column(shop: wharf.Lakehouse, events: list[StatementEvent]) -> None:
    shop.sql("SELECT * FROM orders").fetchall()
    assert events[-1].inputs[0].columns is None
    # Lineage spells the star out, column by column (EXCLUDE too).
    assert list(events[-1].column_lineage()) == ["id", "customer", "amount", "note"]
    shop.sql("SELECT * EXCLUDE (note), 1 AS one FROM orders o").fetchall()
    assert events[-1].column_lineage() == {
        "id": ("default.orders.id",),
        "customer": ("default.orders.customer",),
        "amount": ("default.orders.amount",),
        "one": (),
    }


def test_insert_select_names_sources_and_the_snapshot_it_wrote(shop: wharf.Lakehouse, events: list[StatementEvent]) -> None:
    source = _head(shop, "customers")
    shop.sql("INSERT INTO orders (id, customer, note) SELECT id + 100, id, upper(name) FROM customers")
    [event] = events
    assert event.kind == "insert" and event.rows == 2
    assert event.inputs == (TableRead("default.customers", source, None, ("id", "name"), 1),)
    assert event.outputs == (TableWrite("default.orders", "update", _head(shop, "orders"), "main", "append"),)
    assert event.column_lineage() == {
        "id": ("default.customers.id",),
        "customer": ("default.customers.id",),
        "note": ("default.customers.name",),
    }
    summary = dict(shop.sql("SELECT summary FROM orders.snapshots ORDER BY committed_at DESC LIMIT 1").scalar())
    assert summary["wharf.statement-id"] == event.statement_id
    assert summary["wharf.inputs"] == f"default.customers@{source}"


def test_ctas_emits_its_inputs_outputs_and_lineage(shop: wharf.Lakehouse, events: list[StatementEvent]) -> None:
    shop.sql("CREATE TABLE big AS SELECT id, amount * 2 AS doubled FROM orders WHERE amount > 6")
    [event] = events
    assert event.kind == "create_table_as" and event.rows == 1
    assert [r.table for r in event.inputs] == ["default.orders"]
    assert [(w.table, w.kind, w.branch) for w in event.outputs] == [("default.big", "create", "main")]
    assert event.column_lineage() == {"id": ("default.orders.id",), "doubled": ("default.orders.amount",)}


def test_dml_reads_and_writes_its_target(shop: wharf.Lakehouse, events: list[StatementEvent]) -> None:
    before = _head(shop, "orders")
    shop.sql(
        "MERGE INTO orders o USING customers c ON o.customer = c.id "
        "WHEN MATCHED AND c.country = 'DE' THEN UPDATE SET note = c.name"
    )
    [event] = events
    assert event.kind == "merge" and event.rows == 1
    assert {r.table for r in event.inputs} == {"default.orders", "default.customers"}
    assert next(r for r in event.inputs if r.table == "default.orders").snapshot_id == before
    assert [(w.table, w.operation) for w in event.outputs] == [("default.orders", "overwrite")]


def test_every_statement_kind_emits_one_event(shop: wharf.Lakehouse, events: list[StatementEvent]) -> None:
    statements = {
        "CREATE SCHEMA s": "create_namespace",
        "CREATE TABLE s.t (x INT)": "create_table",
        "ALTER TABLE s.t ADD COLUMN y INT": "alter_table",
        "ALTER TABLE s.t SET TBLPROPERTIES ('a' = 'b')": "alter_table",
        "INSERT INTO s.t VALUES (1, 2)": "insert",
        "UPDATE s.t SET y = 3": "update",
        "DELETE FROM s.t WHERE x = 1": "delete",
        "ALTER TABLE s.t CREATE BRANCH b": "create_ref",
        "ALTER TABLE s.t DROP BRANCH b": "drop_ref",
        "CALL system.expire_snapshots('s.t')": "call",
        "SET wharf.branch = 'x'": "set",
        "RESET wharf.branch": "reset",
        "SHOW TABLES IN s": "show",
        "DESCRIBE s.t": "describe",
        "SELECT * FROM s.t.snapshots": "select",
        "DROP TABLE s.t": "drop_table",
        "DROP SCHEMA s": "drop_namespace",
    }
    for statement in statements:
        shop.sql(statement)
    assert [(e.statement, e.kind) for e in events] == list(statements.items())
    assert all(e.outcome == "ok" for e in events)
    assert len({e.statement_id for e in events}) == len(statements)
    alter = events[2]
    assert alter.outputs == (TableWrite("s.t", "update"),)


def test_a_failed_statement_emits_an_error_event(shop: wharf.Lakehouse, events: list[StatementEvent]) -> None:
    with pytest.raises(NotFound):
        shop.sql("SELECT * FROM nope")
    [event] = events
    assert event.outcome == "error" and event.error is not None and event.error.startswith("NotFound: Table nope")
    assert event.rows is None and event.outputs == ()


def test_a_script_emits_one_event_per_statement(shop: wharf.Lakehouse, events: list[StatementEvent]) -> None:
    shop.sql("INSERT INTO orders VALUES (3, 10, 1.0, 'c'); SELECT count(*) FROM orders")
    assert [e.kind for e in events] == ["insert", "select"]


def test_python_api_writes_are_statements_too(shop: wharf.Lakehouse, events: list[StatementEvent]) -> None:
    shop.create_table("made", pa.table({"x": [1, 2, 3]}))
    shop.table("made").append(pa.table({"x": [4]}))
    assert [e.kind for e in events] == ["create_table", "insert"]
    assert [w.table for w in events[0].outputs] == ["default.made"]


def test_a_failing_statement_subscriber_is_logged_not_raised(shop: wharf.Lakehouse, caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: StatementEvent) -> None:
        raise RuntimeError("audit sink full")

    shop.events.subscribe("on_statement", broken)
    with caplog.at_level(logging.ERROR, logger="wharf.events"):
        assert shop.sql("SELECT count(*) FROM orders").scalar() == 2
    assert any(r.exc_info and "audit sink full" in str(r.exc_info[1]) for r in caplog.records)
