"""``wharf roles …`` and ``wharf grants …``: the same model as SQL and ``lake.governance``."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import wharf
from wharf.cli import app
from wharf.errors import AccessDenied


def test_roles_and_grants_from_the_cli(owner: wharf.Lakehouse) -> None:
    runner = CliRunner()
    env = {"WHARF_USER": "tester", "COLUMNS": "200"}

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--lake", str(owner.path), *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    run("roles", "create", "auditor")
    run("roles", "grant", "auditor", "--user", "bob")
    run("grants", "grant", "SELECT", "--table", "sales.customers", "--role", "auditor")
    assert "auditor" in run("roles", "list") and "user bob" in run("roles", "list")
    listing = run("grants", "list", "--table", "sales.customers")
    assert "SELECT" in listing and "role auditor" in listing
    bob = owner.session(user="bob")
    assert bob.sql("SELECT count(*) FROM sales.customers").scalar() == 4
    run("grants", "revoke", "SELECT", "--table", "sales.customers", "--role", "auditor")
    with pytest.raises(AccessDenied):
        bob.sql("SELECT count(*) FROM sales.customers")
    run("roles", "create", "senior")
    run("roles", "grant", "auditor", "--role", "senior")
    refused = runner.invoke(app, ["--lake", str(owner.path), "roles", "grant", "senior", "--role", "auditor"], env=env)
    assert refused.exit_code != 0 and "cycle" in refused.output
