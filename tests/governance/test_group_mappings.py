"""Group-to-role mappings for identity-provider groups: SQL, Python and the CLI are one model.

A mapping is a role granted to a group spelled as the provider spells it ("Sales Analysts"), so
a principal whose token names the group holds the role: ``Principal(groups=…)`` stands for the
token here (tests/server/test_oidc.py proves it with real tokens).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import wharf
from wharf.cli import app
from wharf.errors import AccessDenied, InvalidArgument, NotFound
from wharf.principal import Principal


def _member(owner: wharf.Lakehouse, *groups: str) -> wharf.Lakehouse:
    return owner.session(principal=Principal("zoe", groups=frozenset(groups)))


def test_map_group_in_sql_gives_the_role_to_the_providers_members(owner: wharf.Lakehouse) -> None:
    owner.sql("CREATE ROLE support_staff")
    owner.sql("GRANT SELECT ON TABLE sales.customers TO ROLE support_staff")
    with pytest.raises(AccessDenied):
        _member(owner, "Customer Support").sql("SELECT count(*) FROM sales.customers")
    assert owner.sql("MAP GROUP 'Customer Support' TO ROLE support_staff").fetchall() == [
        ("Mapped group Customer Support to role support_staff",)
    ]
    assert _member(owner, "Customer Support").sql("SELECT count(*) FROM sales.customers").scalar() == 4
    with pytest.raises(AccessDenied):  # names are exact: another group
        _member(owner, "customer support").sql("SELECT count(*) FROM sales.customers")
    assert owner.sql("SHOW GROUP MAPPINGS").fetchall() == [("Customer Support", "support_staff"), ("analysts", "analyst")]
    assert _member(owner, "Customer Support").governance.whoami()["roles"] == ["support_staff"]
    owner.sql("UNMAP GROUP 'Customer Support' FROM ROLE support_staff")
    with pytest.raises(AccessDenied):
        _member(owner, "Customer Support").sql("SELECT count(*) FROM sales.customers")
    with pytest.raises(InvalidArgument, match="is not mapped"):
        owner.sql("UNMAP GROUP 'Customer Support' FROM ROLE support_staff")


def test_mappings_are_an_admins_statement(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    with pytest.raises(AccessDenied):
        alice.sql("MAP GROUP 'Sales Analysts' TO ROLE analyst")
    with pytest.raises(AccessDenied):
        alice.governance.map_group("admins", "analyst")
    with pytest.raises(NotFound, match="No role named 'ghost'"):
        owner.sql("MAP GROUP 'Sales Analysts' TO ROLE ghost")
    with pytest.raises(InvalidArgument, match="Invalid identity-provider group name"):
        owner.governance.map_group(" padded", "analyst")
    assert owner.governance.map_group("Sales Analysts", "analyst") is True
    assert owner.governance.map_group("Sales Analysts", "analyst") is False
    assert owner.governance.group_mappings() == [("Sales Analysts", "analyst"), ("analysts", "analyst")]


def test_map_group_from_the_cli(owner: wharf.Lakehouse) -> None:
    runner = CliRunner()
    env = {"WHARF_USER": "tester", "COLUMNS": "200"}

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--lake", str(owner.path), "roles", *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    run("map-group", "Sales Analysts", "analyst")
    assert "Sales Analysts" in run("mappings")
    assert _member(owner, "Sales Analysts").sql("SELECT count(*) FROM sales.customers").scalar() == 4
    run("unmap-group", "Sales Analysts", "analyst")
    assert owner.governance.group_mappings() == [("analysts", "analyst")]
    again = runner.invoke(app, ["--lake", str(owner.path), "roles", "unmap-group", "Sales Analysts", "analyst"], env=env)
    assert again.exit_code == 1 and "is not mapped" in again.output
