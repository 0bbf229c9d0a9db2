"""Red team, identity federation: forged and misdirected OIDC tokens against ``wharf serve``.

The server trusts one issuer (tests/oidc_issuer.py, on loopback; keys from its JWKS URL). Every
token below is refused with 401, the REST spec's error body and the exact reason, on the SQL API
and the Iceberg REST endpoint alike; none creates a user, none echoes the token. The provider's
user may not become the lake owner or a local user who has credentials of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

import wharf
from tests.governance.conftest import SETUP
from tests.oidc_issuer import AUDIENCE, OidcIssuer
from wharf.server.background import serve_in_background


class Target:
    def __init__(self, url: str, lake: wharf.Lakehouse, issuer: OidcIssuer) -> None:
        self.url = url
        self.lake = lake
        self.issuer = issuer


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    issuer = OidcIssuer()
    lake = wharf.connect(tmp_path_factory.mktemp("red-oidc") / "lake", user="tester")
    lake.sql(SETUP)
    lake.sql("MAP GROUP 'Sales Analysts' TO ROLE analyst")
    lake.auth.add_user("carol", "a long local password")  # a local user with credentials of her own
    background = serve_in_background(
        lake,
        no_auth=False,
        oidc_issuer=issuer.url,
        oidc_audience=(AUDIENCE,),
        oidc_jwks_url=f"{issuer.url}/jwks",
        oidc_attribute_claims=("region",),
        oidc_leeway_s=30,
        oidc_jwks_refresh_s=0,  # an unknown kid always refreshes here (the interval is tested in tests/server)
    )
    try:
        yield Target(background.url, lake, issuer)
    finally:
        background.stop()
        lake.close()
        issuer.stop()


@pytest.fixture
def http(target: Target) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.url, timeout=60) as client:
        yield client


def _rogue(kid: str | None = None) -> Any:
    return RSAKey.generate_key(2048, parameters={"kid": kid or "rogue-kid", "alg": "RS256", "use": "sig"}, private=True)


def _header(issuer: OidcIssuer, **extra: Any) -> dict[str, Any]:
    return {"alg": "RS256", "kid": issuer.signing_key.kid, "typ": "JWT", **extra}


# (case, token maker, the exact reason); every token names user "mallory", who must never appear.
NOW = int(time.time())
ATTEMPTS: list[tuple[str, Callable[[OidcIssuer], str], str]] = [
    ("wrong issuer", lambda i: i.token("mallory", iss="https://evil.example.com"), "token has the wrong issuer"),
    ("wrong audience", lambda i: i.token("mallory", aud="another-app"), "token has the wrong audience"),
    (
        "bad signature: another key under the provider's kid",
        lambda i: i.token("mallory", key=_rogue(i.signing_key.kid)),
        "token signature is invalid",
    ),
    (
        "payload changed after signing",
        lambda i: _tamper(i.token("mallory"), i.claims("mallory", groups=["admins"])),
        "token signature is invalid",
    ),
    ("alg none", lambda i: i.forge(_header(i, alg="none"), i.claims("mallory")), "token algorithm 'none' is not allowed"),
    (
        "HS256 signed with the provider's RSA public key (HS/RS confusion)",
        lambda i: i.forge(_header(i, alg="HS256"), i.claims("mallory"), hmac_secret=i.public_pem()),
        "token algorithm 'HS256' is not allowed",
    ),
    (
        "HS256 with the public key, claiming to be one of Wharf's own tokens",
        lambda i: i.forge(_header(i, alg="HS256"), {**i.claims("mallory"), "iss": "wharf", "ver": 1}, hmac_secret=i.public_pem()),
        "invalid token",
    ),
    (
        "ES256 header on the provider's RSA key",
        lambda i: i.forge(_header(i, alg="ES256"), i.claims("mallory"), hmac_secret=b"x"),
        "token algorithm 'ES256' does not match its key",
    ),
    (
        "expired (beyond the leeway)",
        lambda i: i.token("mallory", iat=NOW - 7200, nbf=NOW - 7200, exp=NOW - 600),
        "token expired",
    ),
    ("not yet valid (beyond the leeway)", lambda i: i.token("mallory", nbf=NOW + 3600), "token not yet valid"),
    ("unknown kid, after a refresh", lambda i: i.token("mallory", key=_rogue()), "token signed by an unknown key"),
    ("no exp", lambda i: i.token("mallory", exp=None), "token has no 'exp' claim"),
    ("no sub", lambda i: i.token("mallory", sub=None), "token has no 'sub' claim"),
    ("no aud", lambda i: i.token("mallory", aud=None), "token has no 'aud' claim"),
    ("no user name", lambda i: i.token("mallory", preferred_username=None), "token has no 'preferred_username' claim"),
    (
        "groups claim that is not a list of names",
        lambda i: i.token("mallory", groups=[1, 2]),
        "token's 'groups' claim is not a list of group names",
    ),
    (
        "attribute claim that is not one value",
        lambda i: i.token("mallory", region=["US", "EU"]),
        "token's 'region' claim is not a single value for attribute 'region'",
    ),
    (
        "user name no Wharf user can have",
        lambda i: i.token("mallory", preferred_username="mal lory/../x"),
        "the identity provider's user name is not usable as a Wharf user name",
    ),
]


def _tamper(token: str, claims: dict[str, Any]) -> str:
    """The provider's signed token with another payload: the signature no longer matches."""
    import base64
    import json

    header, _, signature = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def _refused(http: httpx.Client, token: str) -> list[tuple[int, str, str]]:
    """The SQL API's and the REST catalog's answers to ``token``: (status, error type, message)."""
    auth = {"Authorization": f"Bearer {token}"}
    answers = [
        http.post("/api/v1/sql", json={"sql": "SELECT * FROM sales.orders"}, headers=auth),
        http.get("/v1/namespaces/sales/tables/orders", headers=auth),
    ]
    found = []
    for response in answers:
        error = response.json()["error"]
        assert token not in response.text
        found.append((response.status_code, error["type"], error["message"].split(" (hint: ")[0]))
    return found


@pytest.mark.parametrize(("make", "reason"), [a[1:] for a in ATTEMPTS], ids=[a[0] for a in ATTEMPTS])
def test_forged_or_misdirected_tokens_are_refused(
    target: Target, http: httpx.Client, make: Callable[[OidcIssuer], str], reason: str
) -> None:
    fetched = target.issuer.jwks_requests
    answers = _refused(http, make(target.issuer))
    assert [(status, kind) for status, kind, _ in answers] == [(401, "NotAuthorizedException")] * 2
    assert [message for _, _, message in answers] == [reason] * 2
    assert "mallory" not in [a.name for a in target.lake.auth.service.accounts()]
    if reason == "token signed by an unknown key":
        assert target.issuer.jwks_requests > fetched  # the keys were fetched again before refusing


def test_the_provider_cannot_sign_in_as_the_owner_or_a_local_user_with_credentials(target: Target, http: httpx.Client) -> None:
    issuer = target.issuer
    owner = _refused(http, issuer.token("tester", sub="sub-owner-lookalike", groups=["admins"]))
    assert owner[0][:2] == (401, "NotAuthorizedException")
    assert owner[0][2] == "the identity provider's user name is the lake owner's"
    carol = _refused(http, issuer.token("carol", sub="sub-carol-lookalike"))
    assert carol[0][2] == "the identity provider's user name belongs to another account"
    assert target.lake.auth.service.account("carol").has_password  # untouched
    assert "tester" not in [a.name for a in target.lake.auth.service.accounts()]  # no user row in the owner's name


def test_a_second_provider_account_cannot_take_over_a_federated_user(target: Target, http: httpx.Client) -> None:
    issuer = target.issuer
    first = issuer.token("frank", sub="sub-frank", groups=["Sales Analysts"], region="US")
    ok = http.post(
        "/api/v1/sql", json={"sql": "SELECT id FROM sales.orders ORDER BY id"}, headers={"Authorization": f"Bearer {first}"}
    )
    assert ok.status_code == 200 and ok.json()["rows"] == [[1], [3]]
    other = _refused(http, issuer.token("frank", sub="sub-someone-else", groups=["Sales Analysts"], region="EU"))
    assert other[0][:2] == (401, "NotAuthorizedException")
    assert other[0][2] == "the identity provider's user name belongs to another account"


def test_a_disabled_federated_user_is_refused_at_once(target: Target, http: httpx.Client) -> None:
    token = target.issuer.token("gina", groups=["Sales Analysts"], region="EU")
    auth = {"Authorization": f"Bearer {token}"}
    first = http.post("/api/v1/sql", json={"sql": "SELECT id FROM sales.orders"}, headers=auth)
    assert first.status_code == 200 and first.json()["rows"] == [[2]]
    target.lake.auth.disable_user("gina")
    refused = _refused(http, token)
    assert refused == [(401, "NotAuthorizedException", "user is disabled")] * 2


def test_provider_groups_only_give_what_is_mapped(target: Target, http: httpx.Client) -> None:
    issuer = target.issuer

    def select(token: str) -> httpx.Response:
        query = "SELECT id FROM sales.orders ORDER BY id"
        return http.post("/api/v1/sql", json={"sql": query}, headers={"Authorization": f"Bearer {token}"})

    unmapped = select(issuer.token("hal", groups=["Sales Analysts "], region="US"))  # a trailing space: another group
    assert unmapped.status_code == 403 and unmapped.json()["error"]["type"] == "ForbiddenException"
    assert "***" not in unmapped.text and "ann@x.com" not in unmapped.text
    assert select(issuer.token("hal", groups=["Sales Analysts"], region="US")).json()["rows"] == [[1], [3]]
    target.lake.sql("UNMAP GROUP 'Sales Analysts' FROM ROLE analyst")
    try:
        assert select(issuer.token("hal", groups=["Sales Analysts"], region="US")).status_code == 403  # next statement
    finally:
        target.lake.sql("MAP GROUP 'Sales Analysts' TO ROLE analyst")


def test_a_placeholder_user_is_taken_by_the_first_provider_account_only(target: Target, http: httpx.Client) -> None:
    issuer = target.issuer

    def ids(token: str) -> httpx.Response:
        query = "SELECT id FROM sales.orders ORDER BY id"
        return http.post("/api/v1/sql", json={"sql": query}, headers={"Authorization": f"Bearer {token}"})

    # alice was made with CREATE USER (no password, no token) and is in group analysts: granted before she signs in.
    first = ids(issuer.token("alice", sub="sub-alice", region="US"))
    assert first.status_code == 200 and first.json()["rows"] == [[1], [3]]
    assert ids(issuer.token("alice", sub="sub-alice-impostor", region="EU")).status_code == 401
    assert dict(target.lake.auth.service.account("alice").attributes) == {"region": "US"}
