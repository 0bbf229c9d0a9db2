"""AuthService against a real (SQLite) metadata database: passwords, personal access tokens,
service principals and signed tokens, expiry on an injected clock, immediate revocation, key rotation."""

from __future__ import annotations

import argon2
import jwt
import pytest
import sqlalchemy as sa

from wharf.auth import AuthService, hashing
from wharf.auth.tables import principals, tokens
from wharf.errors import AlreadyExists, AuthenticationError, InvalidArgument, NotFound

from .conftest import OWNER, FakeClock


def reason(exc: pytest.ExceptionInfo[AuthenticationError]) -> str:
    return exc.value.reason


# --- passwords ------------------------------------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes_and_checked(service: AuthService, engine: sa.Engine) -> None:
    service.add_user("ann", "correct horse", groups=["analysts"], attributes={"dept": "finance"})
    with engine.connect() as conn:
        stored = conn.execute(sa.select(principals.c.password_hash).where(principals.c.name == "ann")).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored

    principal = service.authenticate_password("ann", "correct horse")
    assert (principal.name, principal.kind, principal.groups, principal.is_owner) == ("ann", "user", {"analysts"}, False)
    account = service.account("ann")
    assert account.attributes == {"dept": "finance"} and account.has_password


def test_wrong_unknown_and_passwordless_logins_fail_alike(service: AuthService) -> None:
    service.add_user("ann", "correct horse")
    service.add_user("bob")  # tokens only
    for user, password in [("ann", "wrong"), ("ann", ""), ("nobody", "correct horse"), ("bob", "")]:
        with pytest.raises(AuthenticationError) as exc:
            service.authenticate_password(user, password)
        # Same words for a wrong password and an unknown user: the reason does not reveal who exists.
        assert reason(exc) == "invalid user name or password" and exc.value.status == 401


def test_a_disabled_user_cannot_log_in_and_is_told_so_only_with_the_right_password(service: AuthService) -> None:
    service.add_user("ann", "correct horse")
    service.set_disabled("ann", True, "user")
    with pytest.raises(AuthenticationError, match="invalid user name or password"):
        service.authenticate_password("ann", "wrong")
    with pytest.raises(AuthenticationError, match="user is disabled"):
        service.authenticate_password("ann", "correct horse")


def test_default_hashing_is_argon2_cffis_secure_default_and_old_hashes_are_upgraded_on_login(
    service: AuthService, engine: sa.Engine
) -> None:
    service.add_user("ann", "correct horse")  # hashed with the cheap test profile
    hashing.use_default_hashing()
    defaults = argon2.PasswordHasher()
    hasher = hashing.password_hasher()
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
        defaults.time_cost,
        defaults.memory_cost,
        defaults.parallelism,
    )
    assert hasher.memory_cost >= 64 * 1024 and hasher.type is argon2.Type.ID
    service.authenticate_password("ann", "correct horse")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(principals.c.password_hash).where(principals.c.name == "ann")).scalar_one()
    assert f"m={defaults.memory_cost},t={defaults.time_cost}" in stored


def test_names_are_validated_and_shared_by_users_and_service_principals(service: AuthService) -> None:
    service.add_user("ann")
    with pytest.raises(AlreadyExists, match="user named 'ann'"):
        service.create_principal("ann")
    for bad in ["", "../x", "a b", "x" * 300, "-lead", "nul\x00"]:
        with pytest.raises(InvalidArgument):
            service.add_user(bad)
    with pytest.raises(InvalidArgument, match="lake owner"):
        service.create_principal(OWNER)
    with pytest.raises(InvalidArgument, match="attribute"):
        service.add_user("bob", attributes={"bad key": "x"})
    with pytest.raises(NotFound, match="No service principal named 'ann'"):
        service.rotate_secret("ann")


# --- personal access tokens -----------------------------------------------------------------


def test_a_personal_access_token_is_shown_once_stored_hashed_and_identifies_its_user(
    service: AuthService, engine: sa.Engine, clock: FakeClock
) -> None:
    service.add_user("ann", groups=["analysts"])
    new = service.create_token("ann", expires_in_s=30 * 86400, label="laptop")
    assert new.token.startswith("wharf_pat_") and new.token not in repr(new)
    secret = new.token.removeprefix("wharf_pat_").partition("_")[2]  # wharf_pat_<id>_<secret>; the secret may hold "_"
    assert len(secret) >= 32
    with engine.connect() as conn:
        stored = [str(v) for row in conn.execute(sa.select(tokens)) for v in row]
    assert not any(secret in value or new.token in value for value in stored)

    principal = service.verify_bearer(new.token)
    assert (principal.name, principal.kind, principal.groups) == ("ann", "user", {"analysts"})
    [info] = service.tokens("ann")
    assert (info.id, info.label, info.status) == (new.id, "laptop", "active")
    assert info.last_used_at is not None and info.last_used_at.timestamp() == clock.now


def test_a_personal_access_token_expires_on_the_clock(service: AuthService, clock: FakeClock) -> None:
    service.add_user("ann")
    new = service.create_token("ann", expires_in_s=3600)
    forever = service.create_token("ann", expires_in_s=None)
    clock.advance(3599)
    assert service.verify_bearer(new.token).name == "ann"
    clock.advance(1)
    with pytest.raises(AuthenticationError) as exc:
        service.verify_bearer(new.token)
    assert reason(exc) == "token expired"
    assert {t.id: t.status for t in service.tokens("ann")} == {new.id: "expired", forever.id: "active"}
    clock.advance(10 * 365 * 86400)
    assert service.verify_bearer(forever.token).name == "ann"


def test_revoking_or_disabling_ends_a_token_at_once_in_every_process(service: AuthService, other_process: AuthService) -> None:
    service.add_user("ann")
    first, second = (service.create_token("ann", expires_in_s=3600) for _ in range(2))
    assert other_process.verify_bearer(first.token).name == "ann"

    service.revoke_token(first.id)
    with pytest.raises(AuthenticationError, match="token revoked"):
        other_process.verify_bearer(first.token)
    assert other_process.verify_bearer(second.token).name == "ann"

    service.set_disabled("ann", True, "user")
    with pytest.raises(AuthenticationError, match="user is disabled"):
        other_process.verify_bearer(second.token)
    service.set_disabled("ann", False, "user")
    assert other_process.verify_bearer(second.token).name == "ann"  # not revoked: works again
    with pytest.raises(AuthenticationError, match="token revoked"):
        other_process.verify_bearer(first.token)  # revoked stays revoked


def test_forged_and_malformed_tokens_are_refused(service: AuthService) -> None:
    service.add_user("ann")
    new = service.create_token("ann", expires_in_s=3600)
    cases = {
        new.token[:-2] + ("AA" if not new.token.endswith("AA") else "BB"): "invalid token",  # wrong secret
        f"wharf_pat_{'0' * 16}_{new.token.rsplit('_', 1)[-1]}": "invalid token",  # unknown id
        "wharf_pat_nounderscore": "malformed token",
        "not-a-token": "malformed token",
        "x" * 5000: "malformed token",
        "": "missing bearer token",
    }
    for token, expected in cases.items():
        with pytest.raises(AuthenticationError) as exc:
            service.verify_bearer(token)
        assert reason(exc) == expected, token[:40]


def test_tokens_for_disabled_or_unknown_users_and_bad_lifetimes_are_refused(service: AuthService) -> None:
    service.add_user("ann")
    service.set_disabled("ann", True, "user")
    with pytest.raises(InvalidArgument, match="disabled"):
        service.create_token("ann", expires_in_s=60)
    with pytest.raises(NotFound, match="No user named 'zed'"):
        service.create_token("zed", expires_in_s=60)
    service.add_user("bob")
    with pytest.raises(InvalidArgument, match="positive"):
        service.create_token("bob", expires_in_s=0)
    with pytest.raises(NotFound):
        service.revoke_token("nope")


def test_verify_authorization_reads_the_bearer_header(service: AuthService) -> None:
    service.add_user("ann")
    token = service.create_token("ann", expires_in_s=60).token
    assert service.verify_authorization(f"Bearer {token}").name == "ann"
    assert service.verify_authorization(f"bearer   {token} ").name == "ann"
    for header in [None, "", "Basic dXNlcjpwYXNz", "Bearer "]:
        with pytest.raises(AuthenticationError):
            service.verify_authorization(header)


# --- service principals and signed tokens ---------------------------------------------------


def test_client_credentials_give_a_short_lived_signed_token(service: AuthService, clock: FakeClock) -> None:
    creds = service.create_principal("etl", groups=["jobs"])
    assert creds.credential == f"{creds.client_id}:{creds.client_secret}" and creds.client_secret not in repr(creds)
    token, expires_in = service.issue_token(creds.client_id, creds.client_secret, "PRINCIPAL_ROLE:ALL")
    assert expires_in == 3600
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and header["kid"] == service.signing_keys()[0].kid
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scope"] == "PRINCIPAL_ROLE:ALL" and claims["exp"] - claims["iat"] == 3600

    principal = service.verify_bearer(token)
    assert (principal.name, principal.kind, principal.groups, principal.is_owner) == ("etl", "service", {"jobs"}, False)
    clock.advance(3599)
    assert service.verify_bearer(token).name == "etl"
    clock.advance(1)
    with pytest.raises(AuthenticationError, match="token expired"):
        service.verify_bearer(token)


def test_wrong_client_credentials_are_refused_alike(service: AuthService) -> None:
    creds = service.create_principal("etl")
    for client_id, secret in [(creds.client_id, "wrong"), ("unknown", creds.client_secret), (creds.client_id, "")]:
        with pytest.raises(AuthenticationError) as exc:
            service.issue_token(client_id, secret)
        assert (reason(exc), exc.value.error) == ("invalid client credentials", "invalid_client")


def test_disabling_or_rotating_a_principal_ends_its_signed_tokens_at_once(
    service: AuthService, other_process: AuthService
) -> None:
    creds = service.create_principal("etl")
    token, _ = service.issue_token(creds.client_id, creds.client_secret)
    assert other_process.verify_bearer(token).name == "etl"  # now cached as verified in that process

    service.set_disabled("etl", True, "service")
    with pytest.raises(AuthenticationError, match="service principal is disabled"):
        other_process.verify_bearer(token)
    with pytest.raises(AuthenticationError, match="client is disabled"):
        service.issue_token(creds.client_id, creds.client_secret)
    service.set_disabled("etl", False, "service")
    with pytest.raises(AuthenticationError, match="token revoked"):  # re-enabling does not revive old tokens
        other_process.verify_bearer(token)

    token, _ = service.issue_token(creds.client_id, creds.client_secret)
    rotated = service.rotate_secret("etl")
    assert rotated.client_id == creds.client_id and rotated.client_secret != creds.client_secret
    with pytest.raises(AuthenticationError, match="token revoked"):
        other_process.verify_bearer(token)
    with pytest.raises(AuthenticationError, match="invalid client credentials"):
        service.issue_token(creds.client_id, creds.client_secret)
    fresh, _ = service.issue_token(rotated.client_id, rotated.client_secret)
    assert other_process.verify_bearer(fresh).name == "etl"


def test_a_password_change_ends_the_users_signed_tokens(service: AuthService) -> None:
    service.add_user("ann", "first password")
    token, _ = service.login("ann", "first password")
    assert service.verify_bearer(token).name == "ann"
    service.set_password("ann", "second password")
    with pytest.raises(AuthenticationError, match="token revoked"):
        service.verify_bearer(token)
    with pytest.raises(AuthenticationError):
        service.login("ann", "first password")
    assert service.verify_bearer(service.login("ann", "second password")[0]).name == "ann"


def test_forged_signed_tokens_are_refused(service: AuthService, clock: FakeClock) -> None:
    creds = service.create_principal("etl")
    token, _ = service.issue_token(creds.client_id, creds.client_secret)
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    forged = {
        "another key": jwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"kid": kid}),
        "unknown kid": jwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"kid": "nope"}),
        "longer life": jwt.encode({**claims, "exp": claims["exp"] + 10**6}, b"k" * 32, algorithm="HS256", headers={"kid": kid}),
        "tampered payload": token.split(".")[0]
        + "."
        + jwt.encode({**claims, "sub": "x"}, b"k" * 32).split(".")[1]
        + "."
        + token.split(".")[2],
    }
    for name, bad in forged.items():
        with pytest.raises(AuthenticationError, match="invalid token"):
            service.verify_bearer(bad)
        assert name
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    with pytest.raises(AuthenticationError, match="malformed token"):
        service.verify_bearer(unsigned)
    assert service.verify_bearer(token).name == "etl"


def test_the_owners_user_account_authenticates_as_the_owner(service: AuthService) -> None:
    service.add_user(OWNER, "owner password")
    principal = service.authenticate_password(OWNER, "owner password")
    assert principal.is_owner and principal.external_access


def test_groups_changes_take_effect_on_the_next_request(service: AuthService) -> None:
    service.add_user("ann", groups=["a"])
    token = service.create_token("ann", expires_in_s=60).token
    assert service.verify_bearer(token).groups == {"a"}
    service.set_groups("ann", ["b", "c"])
    assert service.verify_bearer(token).groups == {"b", "c"}


# --- signing keys ---------------------------------------------------------------------------


def test_rotating_the_key_keeps_earlier_tokens_until_they_expire(
    service: AuthService, other_process: AuthService, clock: FakeClock
) -> None:
    creds = service.create_principal("etl")
    before, _ = service.issue_token(creds.client_id, creds.client_secret)
    first_kid = jwt.get_unverified_header(before)["kid"]

    new_kid = service.rotate_key()
    after, _ = service.issue_token(creds.client_id, creds.client_secret)
    assert jwt.get_unverified_header(after)["kid"] == new_kid != first_kid
    assert [(k.kid, k.active) for k in service.signing_keys()] == [(first_kid, False), (new_kid, True)]
    assert other_process.verify_bearer(before).name == "etl"  # signed with the previous key: still valid
    assert other_process.verify_bearer(after).name == "etl"

    clock.advance(1800)
    third, _ = service.issue_token(creds.client_id, creds.client_secret)
    clock.advance(1800)  # the token signed before the rotation is now past its expiry
    with pytest.raises(AuthenticationError, match="token expired"):
        other_process.verify_bearer(before)
    service.rotate_key()  # the first key retired an hour ago: no token it signed can be valid, so it goes
    assert first_kid not in [k.kid for k in service.signing_keys()]
    assert other_process.verify_bearer(third).name == "etl"


def test_rotating_with_invalidate_previous_ends_every_earlier_token_at_once(
    service: AuthService, other_process: AuthService
) -> None:
    creds = service.create_principal("etl")
    token, _ = service.issue_token(creds.client_id, creds.client_secret)
    assert other_process.verify_bearer(token).name == "etl"
    kid = service.rotate_key(invalidate_previous=True)
    with pytest.raises(AuthenticationError, match="token revoked"):
        other_process.verify_bearer(token)
    assert [k.kid for k in service.signing_keys()] == [kid]
    fresh, _ = service.issue_token(creds.client_id, creds.client_secret)
    assert other_process.verify_bearer(fresh).name == "etl"
