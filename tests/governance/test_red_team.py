"""Red team: attempts to read rows a row filter hides or values a mask hides, or to act without a privilege.

alice (region US, group analysts → role analyst: SELECT on namespace sales) may see orders 1 and
3 with masked emails; bob has no grant at all. Every attempt asserts the exact rows returned or
the refusal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import wharf
from wharf.errors import AccessDenied, WharfError

US_MASKED = [(1, "US", "***@x.com", 10), (3, "US", "***@z.com", 30)]


# --- query shapes see only the filtered, masked rows ---------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT * FROM sales.orders ORDER BY id", US_MASKED),
        ("SELECT count(*) FROM sales.orders", [(2,)]),
        ("SELECT sum(amount) FROM sales.orders", [(40,)]),
        ("SELECT id FROM sales.orders WHERE region = 'EU'", []),
        ("SELECT id FROM sales.orders WHERE region <> 'US' OR region IS NULL", []),
        ("SELECT count(*) FROM sales.orders a JOIN sales.orders b ON a.id <> b.id", [(2,)]),
        ("SELECT count(*) FROM sales.orders o JOIN sales.customers c ON c.id = o.id", [(2,)]),
        (
            "SELECT c.name FROM sales.customers c LEFT JOIN sales.orders o ON c.id = o.id WHERE o.id IS NULL ORDER BY 1",
            [("Bea",), ("Di",)],
        ),
        ("WITH x AS (SELECT * FROM sales.orders) SELECT max(id) FROM x", [(3,)]),
        ("SELECT max(id) FROM (SELECT id FROM sales.orders) s", [(3,)]),
        ("SELECT id FROM sales.customers WHERE id IN (SELECT id FROM sales.orders) ORDER BY 1", [(1,), (3,)]),
        ("SELECT EXISTS (SELECT 1 FROM sales.orders WHERE id = 2)", [(False,)]),
        ("SELECT id FROM sales.orders UNION SELECT id FROM sales.orders ORDER BY 1", [(1,), (3,)]),
        ("SELECT id FROM sales.orders EXCEPT SELECT 1 ORDER BY 1", [(3,)]),
        ("SELECT email FROM sales.orders ORDER BY id", [("***@x.com",), ("***@z.com",)]),
        ("SELECT count(*) FROM sales.orders WHERE email = 'ann@x.com'", [(0,)]),
        ("SELECT count(*) FROM sales.orders WHERE email LIKE 'ann%'", [(0,)]),
        ("SELECT count(*) FROM sales.orders WHERE email = '***@x.com'", [(1,)]),
        ("SELECT length(email) FROM sales.orders ORDER BY id", [(9,), (9,)]),
        ("SELECT count(*) FROM sales.orders o JOIN (VALUES ('ann@x.com')) v(e) ON o.email = v.e", [(0,)]),
        ("SELECT id FROM sales.orders FOR VERSION AS OF 'main' ORDER BY id", [(1,), (3,)]),
        ("SELECT id FROM sales.orders.branch_main ORDER BY id", [(1,), (3,)]),
        ("SELECT count(*) FROM sales.orders GROUP BY region", [(2,)]),
        ("SELECT count(DISTINCT region) FROM sales.orders", [(1,)]),
        ("SELECT id, row_number() OVER (ORDER BY id) FROM sales.orders ORDER BY id", [(1, 1), (3, 2)]),
    ],
)
def test_query_shapes(alice: wharf.Lakehouse, query: str, expected: list[tuple[object, ...]]) -> None:
    assert alice.sql(query).fetchall() == expected


def test_the_owner_sees_everything(owner: wharf.Lakehouse) -> None:
    assert owner.sql("SELECT count(*), min(email) FROM sales.orders").fetchall() == [(4, "ann@x.com")]


def test_attributes_decide_per_user(erin: wharf.Lakehouse) -> None:
    assert erin.sql("SELECT * FROM sales.orders").fetchall() == [(2, "EU", "***@y.com", 20)]


def test_membership_in_the_exempt_groups(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    owner.sql("CREATE GROUP support; ALTER GROUP support ADD USER alice")
    assert alice.sql("SELECT email FROM sales.orders ORDER BY id").fetchall() == [("ann@x.com",), ("cy@z.com",)]
    owner.sql("CREATE ROLE admins; GRANT ROLE admins TO USER alice")
    assert alice.sql("SELECT count(*) FROM sales.orders").scalar() == 4


def test_time_travel_to_an_older_snapshot(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    first = owner.sql("SELECT snapshot_id FROM sales.orders.snapshots ORDER BY committed_at LIMIT 1").scalar()
    owner.sql("DELETE FROM sales.orders")
    assert alice.sql(f"SELECT id, email FROM sales.orders FOR VERSION AS OF {first} ORDER BY id").fetchall() == [
        (1, "***@x.com"),
        (3, "***@z.com"),
    ]


def test_branches_are_filtered(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    owner.sql("ALTER TABLE sales.orders CREATE BRANCH dev")
    owner.sql("INSERT INTO sales.orders.branch_dev VALUES (5, 'EU', 'eve@q.com', 50)")
    assert alice.sql("SELECT id FROM sales.orders.branch_dev ORDER BY id").fetchall() == [(1,), (3,)]


def test_explain_shows_the_policy_not_the_data(alice: wharf.Lakehouse) -> None:
    text = alice.explain("SELECT id FROM sales.orders")
    assert "sales.orders: rows where (FALSE OR \"region\" = 'US')" in text
    assert "ann@x.com" not in text


def test_changelog_is_filtered_and_masked(alice: wharf.Lakehouse) -> None:
    rows = alice.sql("SELECT id, email FROM sales.orders.changes ORDER BY id").fetchall()
    assert rows == [(1, "***@x.com"), (3, "***@z.com")]


# --- views: the owner's grants, the invoker's filters and masks ----------------------------------


def test_a_view_applies_the_invokers_filter_and_masks(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    owner.sql("CREATE VIEW sales.big AS SELECT id, email FROM sales.orders WHERE amount >= 10")
    assert alice.sql("SELECT * FROM sales.big ORDER BY id").fetchall() == [(1, "***@x.com"), (3, "***@z.com")]


def test_a_view_needs_select_on_the_view(owner: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    owner.sql("CREATE VIEW sales.v AS SELECT id FROM sales.customers")
    with pytest.raises(AccessDenied, match="SELECT privilege on table sales.v"):
        bob.sql("SELECT * FROM sales.v")
    owner.sql("GRANT SELECT ON TABLE sales.v TO USER bob")
    assert bob.sql("SELECT count(*) FROM sales.v").scalar() == 4  # the owner's grants read the table
    with pytest.raises(AccessDenied):
        bob.sql("SELECT * FROM sales.customers")  # but not directly


def test_a_view_by_a_principal_without_access_reads_nothing(owner: wharf.Lakehouse) -> None:
    owner.sql(
        "CREATE SCHEMA play; GRANT CREATE ON NAMESPACE play TO USER mallory; GRANT SELECT ON NAMESPACE play TO USER mallory"
    )
    mallory = owner.session(user="mallory")
    with pytest.raises(AccessDenied):
        mallory.sql("CREATE VIEW play.steal AS SELECT * FROM sales.customers")
    assert "play.steal" not in owner.sql("SHOW TABLES IN play").to_arrow().to_pylist().__repr__()


# --- metadata tables -----------------------------------------------------------------------------


@pytest.mark.parametrize("meta", ["files", "data_files", "partitions", "manifests", "entries", "all_files", "all_entries"])
def test_statistics_tables_are_refused_under_a_policy(alice: wharf.Lakehouse, meta: str) -> None:
    with pytest.raises(AccessDenied, match="file statistics"):
        alice.sql(f"SELECT * FROM sales.orders.{meta}")


def test_statistics_tables_without_a_policy(alice: wharf.Lakehouse) -> None:
    assert alice.sql("SELECT sum(record_count) FROM sales.customers.files").scalar() == 4


def test_snapshots_need_select(bob: wharf.Lakehouse) -> None:
    with pytest.raises(AccessDenied, match="bob has no"):
        bob.sql("SELECT * FROM sales.orders.snapshots")


# --- no privilege --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM sales.orders",
        "SELECT 1 FROM sales.customers LIMIT 0",
        "DESCRIBE sales.customers",
        "INSERT INTO sales.customers VALUES (9, 'x', 'y')",
        "DELETE FROM sales.customers",
        "UPDATE sales.customers SET name = 'x'",
        "DROP TABLE sales.customers",
        "ALTER TABLE sales.customers ADD COLUMN z INT",
        "CALL system.expire_snapshots('sales.customers')",
        "CREATE TABLE sales.copy AS SELECT * FROM sales.customers",
        "ALTER TABLE sales.orders DROP ROW FILTER",
        "ALTER TABLE sales.orders ALTER COLUMN email DROP MASK",
        "GRANT SELECT ON NAMESPACE sales TO USER bob",
        "GRANT ROLE analyst TO USER bob",
        "CREATE FUNCTION leak(x VARCHAR) RETURNS BOOLEAN RETURN true",
        "DROP SCHEMA sales CASCADE",
    ],
)
def test_without_a_privilege_everything_is_refused(bob: wharf.Lakehouse, owner: wharf.Lakehouse, statement: str) -> None:
    with pytest.raises(AccessDenied) as info:
        bob.sql(statement)
    assert "bob" in str(info.value)
    assert owner.sql("SELECT count(*) FROM sales.customers").scalar() == 4
    assert owner.governance.policies_on("sales.orders")["row_filter"] == "by_region(region)"


def test_refusals_never_print_values(alice: wharf.Lakehouse) -> None:
    with pytest.raises(WharfError) as info:
        alice.sql("SELECT CAST(email AS INT) FROM sales.orders")
    assert "ann@x.com" not in str(info.value) and "bea@y.com" not in str(info.value)


# --- DuckDB escape hatches -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_parquet('{lake}/warehouse/**/*.parquet')",
        "SELECT * FROM parquet_scan('{lake}/warehouse/**/*.parquet')",
        "SELECT * FROM glob('{lake}/**')",
        "SELECT * FROM read_csv('{lake}/wharf.db')",
        "SELECT * FROM read_text('{lake}/wharf.db')",
        "SELECT * FROM parquet_metadata('{lake}/warehouse/**/*.parquet')",
        "SELECT * FROM (SELECT * FROM read_blob('{lake}/wharf.db'))",
        "SELECT count(*) FROM sales.orders, read_parquet('{lake}/warehouse/**/*.parquet')",
        "SET enable_external_access = true",
        "SELECT * FROM duckdb_settings()",
    ],
)
def test_duckdb_escape_hatches_are_closed(alice: wharf.Lakehouse, statement: str) -> None:
    with pytest.raises(AccessDenied):
        alice.sql(statement.format(lake=alice.path))


@pytest.mark.parametrize(
    "statement",
    [
        "ATTACH '{lake}/x.duckdb' AS x",
        "COPY (SELECT 1) TO '{lake}/x.csv'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "PRAGMA version",
        "EXPORT DATABASE '{lake}/out'",
    ],
)
def test_engine_statements_are_not_run(alice: wharf.Lakehouse, statement: str) -> None:
    with pytest.raises(WharfError):
        alice.sql(statement.format(lake=alice.path))
    assert not (Path(alice.path) / "x.csv").exists() and not (Path(alice.path) / "out").exists()


# --- DML acts on visible rows only; hidden rows cannot be written ---------------------------------


@pytest.fixture
def writer(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> wharf.Lakehouse:
    owner.sql("ALTER TABLE sales.orders ALTER COLUMN email DROP MASK")
    owner.sql("GRANT INSERT, UPDATE, DELETE ON TABLE sales.orders TO USER alice")
    return alice


def test_update_and_delete_touch_only_visible_rows(writer: wharf.Lakehouse, owner: wharf.Lakehouse) -> None:
    writer.sql("UPDATE sales.orders SET amount = amount + 1")
    writer.sql("DELETE FROM sales.orders WHERE amount > 30")
    assert owner.sql("SELECT id, amount FROM sales.orders ORDER BY id").fetchall() == [(1, 11), (2, 20), (4, 40)]
    writer.sql("DELETE FROM sales.orders")
    assert owner.sql("SELECT id FROM sales.orders ORDER BY id").fetchall() == [(2,), (4,)]


def test_insert_of_hidden_rows_is_refused(writer: wharf.Lakehouse, owner: wharf.Lakehouse) -> None:
    writer.sql("INSERT INTO sales.orders VALUES (5, 'US', 'e@x.com', 50)")
    with pytest.raises(AccessDenied, match="row filter hides"):
        writer.sql("INSERT INTO sales.orders VALUES (6, 'EU', 'f@x.com', 60)")
    assert owner.sql("SELECT id FROM sales.orders ORDER BY id").fetchall() == [(1,), (2,), (3,), (4,), (5,)]


def test_update_moving_a_row_out_of_sight_is_refused(writer: wharf.Lakehouse, owner: wharf.Lakehouse) -> None:
    with pytest.raises(AccessDenied, match="row filter hides"):
        writer.sql("UPDATE sales.orders SET region = 'EU' WHERE id = 1")
    assert owner.sql("SELECT region FROM sales.orders WHERE id = 1").scalar() == "US"


def test_merge_inserting_hidden_rows_is_refused(writer: wharf.Lakehouse, owner: wharf.Lakehouse) -> None:
    with pytest.raises(AccessDenied):
        writer.sql(
            "MERGE INTO sales.orders t USING (SELECT 7 AS id, 'EU' AS region) s ON t.id = s.id "
            "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.region, 'g@x.com', 1)"
        )
    assert owner.sql("SELECT count(*) FROM sales.orders").scalar() == 4


def test_writing_a_masked_table_needs_manage(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    owner.sql("GRANT INSERT, UPDATE, DELETE ON TABLE sales.orders TO USER alice")
    with pytest.raises(AccessDenied, match="masked"):
        alice.sql("UPDATE sales.orders SET amount = 0")
    owner.sql("GRANT MANAGE ON TABLE sales.orders TO USER alice")
    alice.sql("UPDATE sales.orders SET amount = 0")
    # The raw values were written back, not the masked ones.
    assert owner.sql("SELECT email, amount FROM sales.orders WHERE id = 1").fetchall() == [("ann@x.com", 0)]


# --- changes take effect on the next statement ----------------------------------------------------


def test_revoking_mid_session_takes_effect_at_once(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    query = "SELECT count(*) FROM sales.customers"
    assert alice.sql(query).scalar() == 4
    assert alice.sql(query).scalar() == 4  # cached compiled statement
    owner.sql("REVOKE ROLE analyst FROM GROUP analysts")
    with pytest.raises(AccessDenied):
        alice.sql(query)
    owner.sql("GRANT ROLE analyst TO GROUP analysts")
    assert alice.sql(query).scalar() == 4


def test_policy_change_reaches_a_long_lived_connection(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    query = "SELECT count(*) FROM sales.orders"
    assert alice.sql(query).scalar() == 2
    owner.sql("ALTER TABLE sales.orders DROP ROW FILTER")
    assert alice.sql(query).scalar() == 4
    owner.sql("ALTER USER alice SET ATTRIBUTES ('region' = 'APAC')")
    owner.sql("ALTER TABLE sales.orders SET ROW FILTER by_region ON (region)")
    assert alice.sql(query).scalar() == 1


def test_another_process_sees_the_grant(owner: wharf.Lakehouse, tmp_path: Path) -> None:
    with wharf.connect(tmp_path / "lake", user="bob") as other:
        with pytest.raises(AccessDenied):
            other.sql("SELECT count(*) FROM sales.customers")
        owner.sql("GRANT SELECT ON TABLE sales.customers TO USER bob")
        assert other.sql("SELECT count(*) FROM sales.customers").scalar() == 4


# --- Python API ----------------------------------------------------------------------------------


def test_to_arrow_is_filtered_and_masked(alice: wharf.Lakehouse) -> None:
    assert alice.table("sales.orders").to_arrow().sort_by("id").to_pylist() == [
        {"id": 1, "region": "US", "email": "***@x.com", "amount": 10},
        {"id": 3, "region": "US", "email": "***@z.com", "amount": 30},
    ]


def test_set_wharf_user_cannot_impersonate(alice: wharf.Lakehouse) -> None:
    with pytest.raises(WharfError):
        alice.sql("SET wharf.user = 'tester'")
    assert alice.sql("SELECT count(*) FROM sales.orders").scalar() == 2


# --- error messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM sales.orders WHERE CAST(region AS INT) = 1",
        "SELECT * FROM sales.orders WHERE CAST(region AS DATE) > DATE '2020-01-01'",
        "SELECT * FROM sales.orders WHERE error(region) IS NULL",
        "SELECT CAST(email AS INT) FROM sales.orders",
        "SELECT * FROM sales.orders o JOIN sales.orders p ON CAST(o.region AS INT) = p.id",
    ],
)
def test_errors_show_only_visible_values(erin: wharf.Lakehouse, query: str) -> None:
    """erin sees order 2 (EU) only; the US rows come first in the files, so an error on them would name 'US'."""
    with pytest.raises(WharfError) as info:
        erin.sql(query)
    message = str(info.value)
    assert "'US'" not in message and '"US"' not in message and "ann@x.com" not in message and "bea@y.com" not in message


# --- built-in masks keep the column's type ---------------------------------------------------------


def test_builtin_masks(owner: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    owner.sql("""
        CREATE TABLE sales.people (id INT, name VARCHAR, ssn VARCHAR, email VARCHAR, born DATE, salary INT, note VARCHAR);
        INSERT INTO sales.people VALUES (1, 'Ann', '123-45-6789', 'ann@x.com', DATE '1990-06-15', 5000, 'vip');
        GRANT SELECT ON TABLE sales.people TO USER bob;
        ALTER TABLE sales.people ALTER COLUMN name SET MASK redact;
        ALTER TABLE sales.people ALTER COLUMN ssn SET MASK partial(0, 4);
        ALTER TABLE sales.people ALTER COLUMN email SET MASK email;
        ALTER TABLE sales.people ALTER COLUMN born SET MASK date_year;
        ALTER TABLE sales.people ALTER COLUMN salary SET MASK null;
        ALTER TABLE sales.people ALTER COLUMN note SET MASK hash;
    """)
    result = bob.sql("SELECT * FROM sales.people").to_arrow()
    row = result.to_pylist()[0]
    import datetime
    import hashlib

    assert row == {
        "id": 1,
        "name": "***",
        "ssn": "*******6789",
        "email": "***@x.com",
        "born": datetime.date(1990, 1, 1),
        "salary": None,
        "note": hashlib.sha256(b"vip").hexdigest(),
    }
    assert result.schema == owner.sql("SELECT * FROM sales.people").to_arrow().schema
    assert owner.sql("SELECT name, salary FROM sales.people").fetchall() == [("Ann", 5000)]


# --- tag-based masking ---------------------------------------------------------------------------


def test_tag_masking_policies_cover_every_tagged_column(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    owner.sql("""
        CREATE TABLE sales.contacts (id INT, work_email VARCHAR, home_email VARCHAR, phone VARCHAR);
        INSERT INTO sales.contacts VALUES (1, 'a@work.com', 'a@home.org', '555-1234');
        CREATE ROLE support;
        CREATE MASKING POLICY pii_email FOR TAG pii = 'email' USING mask_email EXCEPT ROLE support;
        CREATE MASKING POLICY pii_phone FOR TAG pii = 'phone' USING partial(0, 2);
        ALTER TABLE sales.contacts ALTER COLUMN work_email SET TAGS ('pii' = 'email');
        ALTER TABLE sales.contacts ALTER COLUMN home_email SET TAGS ('pii' = 'email');
        ALTER TABLE sales.contacts ALTER COLUMN phone SET TAGS ('pii' = 'phone');
    """)
    assert alice.sql("SELECT * FROM sales.contacts").fetchall() == [(1, "***@work.com", "***@home.org", "******34")]
    # A column added later and tagged is masked too.
    owner.sql("ALTER TABLE sales.contacts ADD COLUMN other_email VARCHAR")
    owner.sql("UPDATE sales.contacts SET other_email = 'a@other.net'")
    owner.sql("ALTER TABLE sales.contacts ALTER COLUMN other_email SET TAGS ('pii' = 'email')")
    assert alice.sql("SELECT other_email FROM sales.contacts").fetchall() == [("***@other.net",)]
    # The exempt role sees the real values; a statistics table is refused while a tag mask applies.
    with pytest.raises(AccessDenied, match="file statistics"):
        alice.sql("SELECT * FROM sales.contacts.files")
    owner.sql("GRANT ROLE support TO USER alice")
    assert alice.sql("SELECT work_email, phone FROM sales.contacts").fetchall() == [("a@work.com", "******34")]
    owner.sql("ALTER TABLE sales.contacts ALTER COLUMN phone UNSET TAGS ('pii')")
    assert alice.sql("SELECT phone FROM sales.contacts").fetchall() == [("555-1234",)]
    owner.sql("DROP MASKING POLICY pii_email")
    owner.sql("REVOKE ROLE support FROM USER alice")
    assert alice.sql("SELECT work_email FROM sales.contacts").fetchall() == [("a@work.com",)]


# --- copies, parameters, quality checks, inspection ---------------------------------------------


def test_a_copy_holds_only_what_the_copier_saw(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    owner.sql("CREATE SCHEMA scratch; GRANT ALL PRIVILEGES ON NAMESPACE scratch TO USER alice")
    alice.sql("CREATE TABLE scratch.copy AS SELECT * FROM sales.orders")
    assert owner.sql("SELECT * FROM scratch.copy ORDER BY id").fetchall() == US_MASKED
    alice.sql("INSERT INTO scratch.copy SELECT * FROM sales.orders.branch_main")
    assert owner.sql("SELECT count(*), count(DISTINCT region) FROM scratch.copy").fetchall() == [(4, 1)]


def test_prepared_statements_are_filtered(alice: wharf.Lakehouse) -> None:
    assert alice.sql("SELECT id FROM sales.orders WHERE id = ?", [2]).fetchall() == []
    assert alice.sql("SELECT id FROM sales.orders WHERE id = ?", [3]).fetchall() == [(3,)]
    assert alice.sql("SELECT count(*) FROM sales.orders WHERE email = $e", {"e": "cy@z.com"}).scalar() == 0


def test_quality_checks_see_the_filtered_rows(alice: wharf.Lakehouse) -> None:
    import wharf.quality as quality

    result = quality.evaluate(alice, "sales.orders", 'Rules = [ RowCount = 2, ColumnValues "region" in ["US"] ]')
    assert result.passed


def test_inspection_without_values(alice: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    assert [r[0] for r in alice.sql("DESCRIBE sales.orders").fetchall()][:4] == ["id", "region", "email", "amount"]
    assert alice.sql("SELECT count(*) FROM sales.orders.snapshots").scalar() == 1
    with pytest.raises(AccessDenied):
        bob.sql("DESCRIBE sales.orders")
    with pytest.raises(AccessDenied):
        bob.explain("SELECT * FROM sales.orders")
    with pytest.raises(AccessDenied):
        bob.table("sales.orders")


def test_grants_to_a_group_from_the_identity_provider(owner: wharf.Lakehouse) -> None:
    from wharf.principal import Principal

    owner.sql("GRANT SELECT ON TABLE sales.customers TO GROUP finance")  # never created: named by the IdP
    member = owner.session(principal=Principal("zoe", groups=frozenset({"finance"})))
    assert member.sql("SELECT count(*) FROM sales.customers").scalar() == 4
    with pytest.raises(AccessDenied):
        owner.session(principal=Principal("zoe")).sql("SELECT count(*) FROM sales.customers")
