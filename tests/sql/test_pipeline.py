"""The reference pipeline: golden output of every pass, and the policy pass on every kind of reference.

Golden files live in ``tests/fixtures/pipeline/``: each holds a query and what each pass made of
it (snapshot ids and file names normalised). Regenerate them after an intended change with
``WHARF_UPDATE_GOLDEN=1 pytest tests/sql/test_pipeline.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot

import wharf
from wharf.errors import AccessDenied
from wharf.principal import Principal
from wharf.sql.policy import ReferencePolicy
from wharf.sql.references import Reference

GOLDEN = Path(__file__).parent.parent / "fixtures" / "pipeline"

QUERIES = {
    "partition_pruning": "SELECT id, amount FROM sales WHERE region = 'eu' AND amount > 10",
    "join_unqualified_predicate": (
        "SELECT name, sum(amount) FROM sales s JOIN customers c ON s.customer = c.id "
        "WHERE region = 'us' AND country = 'DE' GROUP BY name"
    ),
    "left_join_keeps_null_side": (
        "SELECT c.name, s.amount FROM customers c LEFT JOIN sales s ON s.customer = c.id AND s.region = 'eu' "
        "WHERE c.country = 'FR'"
    ),
    "asof_join_is_not_pruned": (
        "SELECT * FROM customers c ASOF JOIN sales s ON s.customer = c.id AND s.id >= c.id WHERE s.region = 'eu'"
    ),
    "time_travel_and_tag": "SELECT count(*) FROM sales FOR VERSION AS OF 'first' UNION ALL SELECT count(*) FROM sales.tag_first",
    "branch": "SELECT region, count(*) FROM sales.branch_dev GROUP BY region",
    "cte_and_subquery": (
        "WITH big AS (SELECT customer, amount FROM sales WHERE amount >= 20) "
        "SELECT name FROM customers WHERE id IN (SELECT customer FROM big) ORDER BY name"
    ),
    "metadata_table": "SELECT operation, summary['wharf.user'] FROM sales.snapshots ORDER BY committed_at",
    "registered_dataframe": "SELECT c.name FROM customers c JOIN targets t ON c.country = t.country WHERE goal > 1",
    "pattern_columns": "SELECT COLUMNS('am.*') FROM sales WHERE region = 'eu'",
}


@pytest.fixture
def shop(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    import pyarrow as pa

    lake.sql("CREATE TABLE sales (id BIGINT, customer BIGINT, region VARCHAR, amount DOUBLE) PARTITIONED BY (region)")
    lake.sql("CREATE TABLE customers (id BIGINT, name VARCHAR, country VARCHAR)")
    lake.sql("INSERT INTO sales VALUES (1, 10, 'eu', 5.0), (2, 11, 'us', 25.0), (3, 10, 'eu', 30.0)")
    lake.sql("ALTER TABLE sales CREATE TAG first")
    lake.sql("ALTER TABLE sales CREATE BRANCH dev")
    lake.sql("INSERT INTO sales VALUES (4, 12, 'ap', 50.0)")
    lake.sql("INSERT INTO customers VALUES (10, 'Ann', 'FR'), (11, 'Bob', 'DE'), (12, 'Cy', 'JP')")
    lake.register("targets", pa.table({"country": ["FR", "DE"], "goal": [1, 2]}))
    return lake


def normalise(text: str, lake: wharf.Lakehouse) -> str:
    """Replace what changes from run to run (snapshot ids, paths, file names) by stable tokens."""
    text = text.replace(str((lake.path / "warehouse").resolve()), "<warehouse>")
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}[^/'\"]*\.parquet", "<file>.parquet", text)
    text = re.sub(r"__wharf_meta_\d+", "__wharf_meta_N", text)
    ids: dict[str, str] = {}
    for sid in re.findall(r"(?<![\w-])\d{15,20}(?![\w-])", text):
        ids.setdefault(sid, f"<snapshot {len(ids) + 1}>")
    return re.sub(r"(?<![\w-])\d{15,20}(?![\w-])", lambda m: ids[m.group(0)], text)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_each_pass_matches_its_golden_file(shop: wharf.Lakehouse, name: str) -> None:
    query = QUERIES[name]
    actual = f"-- query\n{query}\n{normalise(shop.explain(query), shop)}\n"
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("WHARF_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"no golden file {path}; run with WHARF_UPDATE_GOLDEN=1 to write it"
    assert actual == path.read_text()
    # The compiled query answers like the plain query would (the golden SQL is what runs).
    shop.sql(query).fetchall()


def test_pushdown_through_a_join_prunes_files(shop: wharf.Lakehouse) -> None:
    text = shop.explain(QUERIES["join_unqualified_predicate"])
    assert "default.sales: filter EqualTo(term=Reference(name='region'), literal=literal('us')); 1 of 3 data file(s)" in text


# --- the policy pass sees every reference --------------------------------------------------------


class RowsAndMasks:
    """For principal 'analyst': rows with id <= 11 only, ``name`` masked; no metadata tables, no procedures."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str | None]] = []

    def __call__(self, principal: Principal, ref: Reference) -> ReferencePolicy | None:
        self.seen.append((principal.name, ref.label, ref.role, ref.metadata))
        if principal.name != "analyst":
            return None
        if ref.metadata is not None:
            raise AccessDenied(f"analysts may not read {ref.label}.{ref.metadata}")
        if ref.role == "maintain":
            raise AccessDenied(f"analysts may not maintain {ref.label}")
        if ref.label != "default.customers":
            return None
        return ReferencePolicy(row_filter=sqlglot.parse_one("id <= 11"), masks={"name": sqlglot.parse_one("'***'")})


@pytest.fixture
def policy(shop: wharf.Lakehouse) -> Iterator[RowsAndMasks]:
    p = RowsAndMasks()
    shop.add_policy(p)
    yield p


@pytest.fixture
def analyst(shop: wharf.Lakehouse, policy: RowsAndMasks) -> wharf.Lakehouse:
    shop.sql("GRANT ALL PRIVILEGES ON CATALOG TO USER analyst")  # governance allows; the test policy restricts
    return shop.session(user="analyst")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT id, name FROM customers ORDER BY id", [(10, "***"), (11, "***")]),
        ("SELECT count(*) FROM customers c JOIN sales s ON s.customer = c.id", [(3,)]),
        ("WITH c AS (SELECT * FROM customers) SELECT max(id) FROM c", [(11,)]),
        ("SELECT count(*) FROM sales WHERE customer IN (SELECT id FROM customers)", [(3,)]),
        ("SELECT id FROM customers UNION ALL SELECT id FROM customers.branch_main ORDER BY 1", [(10,), (10,), (11,), (11,)]),
        ("SELECT count(*) FROM customers WHERE name = 'Cy'", [(0,)]),
        ("SELECT count(*) FROM customers WHERE name = '***'", [(2,)]),
    ],
)
def test_every_query_shape_sees_the_policy(analyst: wharf.Lakehouse, query: str, expected: list[tuple[object, ...]]) -> None:
    assert analyst.sql(query).fetchall() == expected


def test_the_owner_is_not_restricted(shop: wharf.Lakehouse, policy: RowsAndMasks) -> None:
    assert shop.sql("SELECT count(*) FROM customers WHERE name = 'Cy'").scalar() == 1


def test_write_sources_and_targets_see_the_policy(analyst: wharf.Lakehouse, shop: wharf.Lakehouse) -> None:
    analyst.sql("CREATE TABLE copy AS SELECT * FROM customers")
    assert shop.sql("SELECT id, name FROM copy ORDER BY id").fetchall() == [(10, "***"), (11, "***")]
    analyst.sql("INSERT INTO copy SELECT id + 100, name, country FROM customers")
    assert shop.sql("SELECT count(*) FROM copy").scalar() == 4
    analyst.sql("MERGE INTO copy t USING customers s ON t.id = s.id WHEN MATCHED THEN DELETE")
    assert shop.sql("SELECT count(*) FROM copy").scalar() == 2
    # A DML target under a row filter: only visible rows change, hidden ones are kept as they are.
    analyst.sql("UPDATE customers SET country = 'XX'")
    assert shop.sql("SELECT id, country FROM customers ORDER BY id").fetchall() == [(10, "XX"), (11, "XX"), (12, "JP")]
    analyst.sql("DELETE FROM customers")
    assert shop.sql("SELECT id, name FROM customers").fetchall() == [(12, "Cy")]


def test_metadata_tables_describe_procedures_and_python_see_the_policy(analyst: wharf.Lakehouse, policy: RowsAndMasks) -> None:
    with pytest.raises(AccessDenied, match="snapshots"):
        analyst.sql("SELECT * FROM customers.snapshots")
    with pytest.raises(AccessDenied, match="maintain"):
        analyst.sql("CALL system.expire_snapshots('customers')")
    analyst.sql("DESCRIBE customers")
    analyst.sql("SHOW CREATE TABLE customers")
    assert analyst.table("customers").to_arrow().num_rows == 2
    assert analyst.table("customers").schema.find_field("name") is not None
    roles = {(label, role) for who, label, role, _ in policy.seen if who == "analyst"}
    assert {("default.customers", "read"), ("default.customers", "describe"), ("default.customers", "maintain")} <= roles


def test_a_broken_policy_fails_closed(shop: wharf.Lakehouse) -> None:
    def broken(principal: Principal, ref: Reference) -> ReferencePolicy | None:
        raise KeyError("policy store")

    shop.add_policy(broken)
    with pytest.raises(AccessDenied, match="policy store"):
        shop.session(user="analyst").sql("SELECT * FROM customers")


def test_pushdown_never_uses_a_masked_column(analyst: wharf.Lakehouse) -> None:
    text = analyst.explain("SELECT id FROM customers WHERE name = '***' AND id = 10")
    assert "default.customers: rows where id <= 11; name masked as '***'" in text
    assert "EqualTo(term=Reference(name='name')" not in text


def test_column_aliases_of_a_table_map_to_its_real_columns(shop: wharf.Lakehouse) -> None:
    """``FROM sales AS x(amount)`` names the *first* column (id) amount: pruning must use id."""
    assert shop.sql("SELECT count(*) FROM sales AS x(amount) WHERE amount = 3").scalar() == 1
    text = shop.explain("SELECT count(*) FROM sales AS x(amount) WHERE amount = 3")
    assert "filter EqualTo(term=Reference(name='id'), literal=LongLiteral(3))" in text
    assert "default.sales AS x: columns id;" in text


def test_pattern_columns_count_as_reading_everything(shop: wharf.Lakehouse) -> None:
    text = shop.explain("SELECT COLUMNS('am.*') FROM sales WHERE region = 'eu'")
    assert "default.sales AS sales: columns *;" in text


def test_without_qualification_planning_falls_back_to_the_syntactic_rule(shop: wharf.Lakehouse) -> None:
    """sqlglot cannot qualify every DuckDB statement; then explicitly qualified columns (or a lone source) still prune."""
    from wharf.sql import pipeline
    from wharf.statement import Statement, running

    passes = tuple(p for p in pipeline.PASSES if p is not pipeline.qualify_pass)
    statement = Statement("test", shop.principal)
    ctx = shop._context(statement)
    with running(statement):
        lone = pipeline.compile_query(ctx, sqlglot.parse_one("SELECT * FROM sales WHERE region = 'eu'"), passes=passes)
        joined = pipeline.compile_query(
            ctx,
            sqlglot.parse_one("SELECT * FROM sales s JOIN customers c ON s.customer = c.id WHERE region = 'eu' AND c.id = 10"),
            passes=passes,
        )
    assert [len(r.plan.files) for r in lone.references if r.plan] == [1]
    # Unqualified region over two sources is not attributed without qualification; c.id is.
    sales, customers = joined.references
    assert sales.plan is not None and len(sales.plan.files) == 3
    assert customers.row_filter is not None and "id" in str(customers.row_filter)
    assert shop.sql("SELECT count(*) FROM sales WHERE region = 'eu'").scalar() == 2
