"""``wharf users|tokens|principals|auth`` end to end (typer's runner on a real lake), and ``lake.auth``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import wharf
from wharf.cli import app
from wharf.errors import AccessDenied, AuthenticationError


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    wharf.connect(path, user="owner").close()
    return path


def run(lake_dir: Path, *args: str, input: str | None = None) -> Result:  # noqa: A002
    return CliRunner().invoke(app, ["--lake", str(lake_dir), *args], input=input, env={"COLUMNS": "200"})


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def test_users_tokens_and_principals_from_the_cli(lake_dir: Path) -> None:
    ok(
        run(
            lake_dir,
            "users",
            "add",
            "ann",
            "--password-stdin",
            "--attribute",
            "dept=finance",
            "--group",
            "analysts",
            input="correct horse\n",
        )
    )
    ok(run(lake_dir, "users", "add", "bob"))
    listing = ok(run(lake_dir, "users", "list")).stdout
    assert "ann" in listing and "dept=finance" in listing and "analysts" in listing and "bob" in listing

    created = ok(run(lake_dir, "tokens", "create", "--user", "ann", "--expires", "12h", "--label", "laptop"))
    token = created.stdout.strip()
    assert token.startswith("wharf_pat_") and "\n" not in token  # alone on stdout: TOKEN=$(wharf tokens create …)
    assert "shown only this once" in created.stderr

    principal = ok(run(lake_dir, "principals", "create", "etl", "--group", "jobs")).stdout
    fields = dict(line.split(": ", 1) for line in principal.strip().splitlines())
    assert set(fields) == {"client_id", "client_secret"}
    assert fields["client_id"] in ok(run(lake_dir, "principals", "list")).stdout

    with wharf.connect(lake_dir) as lake:
        assert lake.auth.verify_bearer(token).name == "ann"
        assert lake.auth.authenticate_password("ann", "correct horse").groups == {"analysts"}
        signed, expires_in = lake.auth.issue_token(fields["client_id"], fields["client_secret"], "catalog")
        assert lake.auth.verify_bearer(signed).groups == {"jobs"} and expires_in == 3600
        [info] = lake.auth.tokens("ann")

        tokens = ok(run(lake_dir, "tokens", "list")).stdout
        assert info.id in tokens and "laptop" in tokens and "active" in tokens and token not in tokens
        ok(run(lake_dir, "tokens", "revoke", info.id))
        with pytest.raises(AuthenticationError, match="token revoked"):
            lake.auth.verify_bearer(token)
        assert lake.auth.token(info.id).status == "revoked"

        ok(run(lake_dir, "principals", "disable", "etl"))
        with pytest.raises(AuthenticationError, match="disabled"):
            lake.auth.verify_bearer(signed)
        ok(run(lake_dir, "principals", "enable", "etl"))
        rotated = dict(
            line.split(": ", 1) for line in ok(run(lake_dir, "principals", "rotate-secret", "etl")).stdout.strip().splitlines()
        )
        assert rotated["client_id"] == fields["client_id"] and rotated["client_secret"] != fields["client_secret"]
        lake.auth.issue_token(rotated["client_id"], rotated["client_secret"])

        ok(run(lake_dir, "users", "disable", "ann"))
        assert lake.auth.user("ann").disabled
        with pytest.raises(AuthenticationError, match="disabled"):
            lake.auth.authenticate_password("ann", "correct horse")
        ok(run(lake_dir, "users", "enable", "ann"))
        ok(run(lake_dir, "users", "set-password", "ann", "--password-stdin", input="new horse\n"))
        assert lake.auth.authenticate_password("ann", "new horse").name == "ann"

        first_key = lake.auth.signing_keys()[0].kid
        assert "New signing key" in ok(run(lake_dir, "auth", "rotate-key")).stderr
        keys = ok(run(lake_dir, "auth", "keys")).stdout
        assert first_key in keys and "verifying until expiry" in keys and "signing" in keys


def test_cli_errors_are_one_clear_line(lake_dir: Path) -> None:
    ok(run(lake_dir, "users", "add", "ann"))
    cases = [
        (["users", "add", "ann"], "AlreadyExists: A user named 'ann' already exists"),
        (["users", "add", "bad name"], "InvalidArgument: Invalid name 'bad name'"),
        (["users", "add", "cy", "--attribute", "nokey"], "--attribute 'nokey' is not key=value"),
        (["users", "disable", "zed"], "NotFound: No user named 'zed'"),
        (["tokens", "create", "--user", "ann", "--expires", "soon"], "Cannot read the duration 'soon'"),
        (["principals", "disable", "ann"], "No service principal named 'ann'"),
    ]
    for args, message in cases:
        result = run(lake_dir, *args, input="")
        assert result.exit_code == 1, (args, result.output)
        assert message in " ".join(result.stderr.split()), (args, result.stderr)
        assert "Traceback" not in result.output


def test_lake_auth_manages_identities_for_the_owner_only(tmp_path: Path) -> None:
    with wharf.connect(tmp_path / "lake", user="owner") as lake:
        creds = lake.auth.create_principal("etl")
        ann = lake.session("ann")
        with pytest.raises(AccessDenied, match="only the lake's owner"):
            ann.auth.add_user("mallory")
        with pytest.raises(AccessDenied):
            ann.auth.tokens()
        # Verifying credentials is for anyone: that is how a caller becomes someone.
        signed, _ = ann.auth.issue_token(creds.client_id, creds.client_secret)
        assert ann.auth.verify_bearer(signed).name == "etl"
        assert lake.auth.service is ann.auth.service  # one service (and key cache) per open lake
        # The owner's own user account (for the server) authenticates as the owner.
        lake.auth.add_user(lake.owner)
        new = lake.auth.create_token(lake.owner, expires="1h")
        assert lake.auth.verify_bearer(new.token).is_owner
