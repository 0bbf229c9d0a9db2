"""The governance model: principals, groups, roles (hierarchy, cycles), privileges and their inheritance, the version."""

from __future__ import annotations

import pytest

import wharf
from wharf.errors import AccessDenied, AlreadyExists, InvalidArgument, SqlParseError

pytestmark = pytest.mark.metadata_backends


def test_roles_are_granted_to_users_groups_and_roles(owner: wharf.Lakehouse) -> None:
    owner.sql("CREATE ROLE reader; CREATE ROLE senior; GRANT ROLE reader TO ROLE senior; GRANT ROLE senior TO USER bob")
    owner.sql("GRANT SELECT ON TABLE sales.customers TO ROLE reader")
    bob = owner.session(user="bob")
    assert bob.governance.whoami()["roles"] == ["reader", "senior"]
    assert bob.sql("SELECT count(*) FROM sales.customers").scalar() == 4
    assert owner.sql("SHOW ROLES").fetchall() == [
        ("analyst", "group analysts"),
        ("reader", "role senior"),
        ("senior", "user bob"),
    ]


def test_role_cycles_are_refused(owner: wharf.Lakehouse) -> None:
    owner.sql("CREATE ROLE a; CREATE ROLE b; CREATE ROLE c; GRANT ROLE a TO ROLE b; GRANT ROLE b TO ROLE c")
    with pytest.raises(InvalidArgument, match="cycle"):
        owner.sql("GRANT ROLE c TO ROLE a")
    with pytest.raises(InvalidArgument, match="cycle"):
        owner.sql("GRANT ROLE a TO ROLE a")


def test_namespace_grants_cover_tables_created_later(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    owner.sql("CREATE TABLE sales.later AS SELECT 1 AS x")
    assert alice.sql("SELECT x FROM sales.later").fetchall() == [(1,)]


def test_catalog_grants_cover_everything(owner: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    owner.sql("CREATE SCHEMA hr; CREATE TABLE hr.t AS SELECT 7 AS x; GRANT SELECT ON CATALOG TO USER bob")
    assert bob.sql("SELECT x FROM hr.t").fetchall() == [(7,)]


def test_each_grant_moves_the_policy_version(owner: wharf.Lakehouse) -> None:
    before = owner.governance.policy_version()
    owner.sql("GRANT SELECT ON TABLE sales.customers TO USER bob")
    middle = owner.governance.policy_version()
    owner.sql("REVOKE SELECT ON TABLE sales.customers FROM USER bob")
    assert before < middle < owner.governance.policy_version()


def test_only_managers_grant(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    with pytest.raises(AccessDenied, match="MANAGE privilege on table sales.customers") as info:
        alice.sql("GRANT SELECT ON TABLE sales.customers TO USER bob")
    assert "tester" in (info.value.hint or "")
    owner.sql("GRANT MANAGE ON TABLE sales.customers TO USER alice")
    alice.sql("GRANT SELECT ON TABLE sales.customers TO USER bob")
    assert owner.session(user="bob").sql("SELECT count(*) FROM sales.customers").scalar() == 4
    with pytest.raises(AccessDenied):
        alice.sql("CREATE ROLE mine")


def test_owners_of_created_objects_have_every_privilege(owner: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    with pytest.raises(AccessDenied, match="CREATE privilege on the catalog"):
        bob.sql("CREATE SCHEMA bobs")
    owner.sql("GRANT CREATE ON CATALOG TO USER bob")
    bob.sql("CREATE SCHEMA bobs")
    bob.sql("CREATE TABLE bobs.t AS SELECT 1 AS x")
    bob.sql("INSERT INTO bobs.t VALUES (2)")
    assert bob.sql("SELECT sum(x) FROM bobs.t").scalar() == 3
    assert owner.governance.owner_of("bobs.t") == "bob"
    bob.sql("GRANT SELECT ON TABLE bobs.t TO USER alice")
    assert owner.session(user="alice").sql("SELECT count(*) FROM bobs.t").scalar() == 2


def test_create_table_needs_create_on_the_namespace(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    with pytest.raises(AccessDenied, match="CREATE privilege on namespace sales"):
        alice.sql("CREATE TABLE sales.mine (x INT)")
    with pytest.raises(AccessDenied, match="CREATE privilege on namespace sales"):
        alice.create_table("sales.mine2", data={"x": [1]})
    assert "mine" not in " ".join(owner.tables("sales"))


def test_a_dropped_table_takes_its_grants_along(owner: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    owner.sql("CREATE SCHEMA hr; CREATE TABLE hr.t (x INT); GRANT SELECT ON TABLE hr.t TO USER bob")
    owner.sql("DROP TABLE hr.t")
    owner.sql("CREATE TABLE hr.t (x INT)")
    with pytest.raises(AccessDenied):
        bob.sql("SELECT * FROM hr.t")


def test_column_grants(owner: wharf.Lakehouse, bob: wharf.Lakehouse) -> None:
    owner.sql("GRANT SELECT (id, name) ON TABLE sales.customers TO USER bob")
    assert bob.sql("SELECT id, name FROM sales.customers ORDER BY id LIMIT 2").fetchall() == [(1, "Ann"), (2, "Bea")]
    with pytest.raises(AccessDenied, match="column\\(s\\) ssn"):
        bob.sql("SELECT ssn FROM sales.customers")
    with pytest.raises(AccessDenied, match="only on columns id, name"):
        bob.sql("SELECT * FROM sales.customers")
    with pytest.raises(AccessDenied, match="column\\(s\\) ssn"):
        bob.sql("SELECT count(*) FROM sales.customers WHERE ssn = '111'")
    assert owner.sql("SHOW GRANTS TO USER bob").fetchall() == [
        ("SELECT", "TABLE sales.customers (id)", "user bob", "tester"),
        ("SELECT", "TABLE sales.customers (name)", "user bob", "tester"),
    ]


def test_user_attributes_and_groups(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    assert alice.governance.whoami() == {
        "user": "alice",
        "groups": ["analysts"],
        "roles": ["analyst"],
        "attributes": {"region": "US"},
        "owner": False,
    }
    owner.sql("ALTER USER alice SET ATTRIBUTES ('region' = 'EU', 'team' = 'ops')")
    owner.sql("ALTER GROUP analysts DROP USER alice")
    assert alice.governance.whoami()["attributes"] == {"region": "EU", "team": "ops"}
    assert alice.governance.whoami()["roles"] == []
    with pytest.raises(AlreadyExists):
        owner.sql("CREATE USER alice")


def test_parse_errors_point_at_the_token(owner: wharf.Lakehouse) -> None:
    with pytest.raises(SqlParseError) as info:
        owner.sql("GRANT SELECT ON TABLE sales.orders TO PERSON alice")
    assert info.value.column == 39 and "USER, GROUP or ROLE" in str(info.value)
    with pytest.raises(InvalidArgument, match="Unknown privilege 'READ'"):
        owner.sql("GRANT READ ON TABLE sales.orders TO USER alice")


def test_python_api_mirrors_sql(owner: wharf.Lakehouse) -> None:
    g = owner.governance
    g.create_role("auditor")
    g.grant(["SELECT"], table="sales.customers", role="auditor")
    g.grant_role("auditor", user="bob")
    assert owner.session(user="bob").sql("SELECT count(*) FROM sales.customers").scalar() == 4
    assert [x.privilege for x in g.grants_on(table="sales.customers")] == ["SELECT"]
    assert g.revoke("SELECT", table="sales.customers", role="auditor") == 1
    with pytest.raises(AccessDenied):
        owner.session(user="bob").sql("SELECT count(*) FROM sales.customers")
    assert g.policies_on("sales.orders") == {"row_filter": "by_region(region)", "masks": {"email": "mask_email(email)"}}


def test_policy_functions_are_checked_when_created(owner: wharf.Lakehouse) -> None:
    with pytest.raises(InvalidArgument, match="reads a table"):
        owner.sql("CREATE FUNCTION peek(x INT) RETURNS BOOLEAN RETURN x IN (SELECT id FROM sales.customers)")
    with pytest.raises(InvalidArgument, match="not one of its arguments"):
        owner.sql("CREATE FUNCTION other(x INT) RETURNS BOOLEAN RETURN amount > 0")
    owner.sql("CREATE FUNCTION positive(x INT) RETURNS INT RETURN abs(x)")
    with pytest.raises(InvalidArgument, match="returns BOOLEAN"):
        owner.sql("ALTER TABLE sales.orders SET ROW FILTER positive ON (amount)")
    with pytest.raises(InvalidArgument, match="takes 1 argument"):
        owner.sql("ALTER TABLE sales.orders SET ROW FILTER by_region ON (region, email)")
    with pytest.raises(InvalidArgument, match="in use"):
        owner.sql("DROP FUNCTION by_region")
    assert [f.name for f in owner.governance.functions()] == ["by_region", "mask_email", "positive"]


def test_a_mask_keeps_the_column_type(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    owner.sql("CREATE FUNCTION zero(x INT) RETURNS INT RETURN CASE WHEN is_member('admins') THEN x ELSE 0 END")
    owner.sql("ALTER TABLE sales.orders ALTER COLUMN amount SET MASK zero")
    result = alice.sql("SELECT amount FROM sales.orders ORDER BY id").to_arrow()
    assert result.column("amount").to_pylist() == [0, 0] and str(result.schema.field("amount").type) == "int32"


def test_policy_version_helper(owner: wharf.Lakehouse) -> None:
    from wharf.governance import policy_version

    before = policy_version(owner.catalog, owner.owner)
    owner.sql("CREATE ROLE x")
    assert policy_version(owner.catalog, owner.owner) == before + 1 == owner.governance.policy_version()
