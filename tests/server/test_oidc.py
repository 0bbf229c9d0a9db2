"""Identity federation end to end: a real OIDC issuer on loopback, ``wharf serve`` trusting it.

The issuer (tests/oidc_issuer.py) serves discovery and JWKS and signs tokens; the server finds
its keys through discovery. A user in the provider's group "Sales Analysts" (mapped to role
analyst) with the claim ``region`` sees, through ``/api/v1/sql``, only the orders of their
region; PyIceberg's RestCatalog with ``token=`` works as that user and is refused the filtered
table. The issuer rotates its key once: tokens of the new key work at once, tokens of the old
key work while it is published and stop once it is not. Wharf's own tokens keep working.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import wharf
from tests.oidc_issuer import AUDIENCE, OidcIssuer
from wharf.auth.oidc import JwksCache, OidcConfig
from wharf.errors import InvalidArgument
from wharf.server.background import serve_in_background
from wharf.server.config import ServerConfig, load_config

SETUP = """
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id INT, region VARCHAR, amount INT);
INSERT INTO sales.orders VALUES (1, 'US', 10), (2, 'EU', 20), (3, 'US', 30), (4, 'APAC', 40);
CREATE TABLE sales.regions (region VARCHAR, name VARCHAR);
INSERT INTO sales.regions VALUES ('US', 'Americas'), ('EU', 'Europe');
CREATE ROLE analyst;
GRANT SELECT ON NAMESPACE sales TO ROLE analyst;
MAP GROUP 'Sales Analysts' TO ROLE analyst;
CREATE FUNCTION by_region(r VARCHAR) RETURNS BOOLEAN RETURN r = current_user_attribute('region');
ALTER TABLE sales.orders SET ROW FILTER by_region ON (region);
"""


class Federated:
    def __init__(self, url: str, lake: wharf.Lakehouse, issuer: OidcIssuer) -> None:
        self.url = url
        self.lake = lake
        self.issuer = issuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[OidcIssuer]:
    running = OidcIssuer()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, issuer: OidcIssuer) -> Iterator[Federated]:
    lake = wharf.connect(tmp_path_factory.mktemp("oidc") / "lake", user="owner")
    lake.sql(SETUP)
    background = serve_in_background(
        lake,
        no_auth=False,
        oidc_issuer=issuer.url,  # keys through the issuer's discovery document
        oidc_audience=(AUDIENCE,),
        oidc_attribute_claims=("region",),
        # A short cache, so the retired key's removal is seen within a second or so.
        oidc_jwks_cache_s=1,
        oidc_jwks_refresh_s=0,
    )
    try:
        yield Federated(background.url, lake, issuer)
    finally:
        background.stop()
        lake.close()


@pytest.fixture
def http(served: Federated) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=60) as client:
        yield client


def sql(http: httpx.Client, token: str, query: str) -> httpx.Response:
    return http.post("/api/v1/sql", json={"sql": query}, headers={"Authorization": f"Bearer {token}"})


def rows(http: httpx.Client, token: str, query: str) -> list[list[Any]]:
    response = sql(http, token, query)
    assert response.status_code == 200, response.text
    found: list[list[Any]] = response.json()["rows"]
    return found


ORDERS = "SELECT id, region, amount FROM sales.orders ORDER BY id"


def test_a_federated_analyst_sees_only_the_rows_of_their_region(served: Federated, http: httpx.Client) -> None:
    issuer = served.issuer
    ann = issuer.token("ann", groups=["Sales Analysts"], region="US")
    eve = issuer.token("eve", groups=["Sales Analysts", "Other"], region="EU")
    assert rows(http, ann, ORDERS) == [[1, "US", 10], [3, "US", 30]]
    assert rows(http, eve, ORDERS) == [[2, "EU", 20]]
    assert rows(http, ann, "SELECT count(*) FROM sales.orders o JOIN sales.regions r USING (region)") == [[2]]

    # Created at the first sign-in: a user row, the provider's groups and the mapped attribute.
    account = served.lake.auth.service.account("ann")
    assert (account.kind, account.groups, dict(account.attributes)) == ("user", ("Sales Analysts",), {"region": "US"})
    assert not account.has_password
    signed_in = [(r.principal, r.decision, r.detail["issuer"]) for r in served.lake.audit.records() if r.kind == "authentication"]
    for user in ("ann", "eve"):  # audited once, at the first sign-in (other tests of the module sign in others)
        assert [r for r in signed_in if r[0] == user] == [(user, "allowed", issuer.url)]

    # The provider moves ann to EU: the next token's claim is the truth, on the next statement.
    moved = issuer.token("ann", groups=["Sales Analysts"], region="EU")
    assert rows(http, moved, ORDERS) == [[2, "EU", 20]]
    assert dict(served.lake.auth.service.account("ann").attributes) == {"region": "EU"}

    # Out of the group: no role, no SELECT (the row filter never had a chance to matter).
    outsider = issuer.token("ann", groups=[], region="EU")
    refused = sql(http, outsider, ORDERS)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "ForbiddenException"


def test_pyiceberg_with_an_oidc_token(served: Federated) -> None:
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import ForbiddenError

    token = served.issuer.token("pia", groups=["Sales Analysts"], region="US")
    catalog = load_catalog("wharf", type="rest", uri=served.url, token=token)
    assert ("sales",) in catalog.list_namespaces()
    regions = catalog.load_table("sales.regions").scan().to_arrow()
    assert sorted(regions.column("name").to_pylist()) == ["Americas", "Europe"]
    # Under a row filter, direct file access is refused: the SQL API applies it, an engine might not.
    with pytest.raises(ForbiddenError, match="SQL API"):
        catalog.load_table("sales.orders")


def test_wharf_tokens_keep_working_beside_oidc(served: Federated, http: httpx.Client) -> None:
    auth = served.lake.auth
    auth.add_user("local")
    served.lake.sql("GRANT ROLE analyst TO USER local")
    served.lake.sql("ALTER USER local SET ATTRIBUTES ('region' = 'APAC')")
    pat = auth.create_token("local", expires="1h")
    assert rows(http, pat.token, ORDERS) == [[4, "APAC", 40]]
    creds = auth.create_principal("etl")
    issued = http.post(
        "/v1/oauth/tokens",
        data={"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret},
    )
    assert issued.status_code == 200
    served.lake.sql("GRANT SELECT ON TABLE sales.regions TO USER etl")
    assert rows(http, issued.json()["access_token"], "SELECT name FROM sales.regions ORDER BY 1") == [["Americas"], ["Europe"]]


def _poll_status(http: httpx.Client, token: str, want: int) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        response = sql(http, token, "SELECT 1")
        if response.status_code == want or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_key_rotation_without_a_restart(served: Federated, http: httpx.Client) -> None:
    issuer = served.issuer
    old_key = issuer.signing_key
    before = issuer.token("rot", groups=["Sales Analysts"], region="US")
    assert rows(http, before, "SELECT 1") == [[1]]

    new_key = issuer.rotate("ES256")  # published beside the old key; the new one signs from now on
    after = issuer.token("rot", groups=["Sales Analysts"], region="US")
    assert rows(http, after, ORDERS) == [[1, "US", 10], [3, "US", 30]]  # an unknown kid fetched the keys again
    assert rows(http, before, "SELECT 1") == [[1]]  # still published: still valid

    issuer.retire(old_key)
    refused = _poll_status(http, before, 401)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"].startswith("token signed by an unknown key")
    assert rows(http, after, "SELECT 1") == [[1]]
    assert issuer.signing_key is new_key


def test_an_unknown_kid_refreshes_the_keys_at_most_once_per_interval(issuer: OidcIssuer) -> None:
    now = [1000.0]
    config = OidcConfig(issuer=issuer.url, audience=(AUDIENCE,), jwks_url=f"{issuer.url}/jwks", jwks_refresh_s=10)
    cache = JwksCache(config, clock=lambda: now[0])
    assert cache.key(issuer.signing_key.kid) is not None and cache.fetches == 1
    assert cache.key("forged-0") is None and cache.fetches == 1  # fetched just now: no refresh yet
    now[0] += config.jwks_refresh_s
    for i in range(20):  # forged kids: one refresh, then none until the interval has passed again
        assert cache.key(f"forged-{i}") is None
    assert cache.fetches == 2
    now[0] += config.jwks_refresh_s
    assert cache.key("forged-again") is None and cache.fetches == 3
    now[0] += config.jwks_cache_s  # and by age, even for known kids
    assert cache.key(issuer.signing_key.kid) is not None and cache.fetches == 4
    assert issuer.jwks_requests >= 4  # every fetch was a real request to the issuer


def test_configuration_from_a_file_and_the_environment(tmp_path: Path, issuer: OidcIssuer) -> None:
    file = tmp_path / "wharf.toml"
    file.write_text(
        f"""
[server]
port = 9000

[oidc]
issuer = "{issuer.url}"
audience = ["{AUDIENCE}", "other-client"]
jwks_url = "{issuer.url}/jwks"
groups_claim = "realm_access.roles"
leeway_s = 30

[oidc.attributes]
region = "region"
dept = "org.department"
""",
        encoding="utf-8",
    )
    config = load_config(file, environ={"WHARF_OIDC_USERNAME_PREFIX": "kc:"})
    oidc = config.oidc()
    assert oidc is not None
    assert (oidc.issuer, oidc.audience, oidc.groups_claim, oidc.leeway_s, oidc.username_prefix) == (
        issuer.url,
        (AUDIENCE, "other-client"),
        "realm_access.roles",
        30,
        "kc:",
    )
    assert oidc.attribute_claims == (("region", "region"), ("dept", "org.department"))
    assert ServerConfig.from_json(config.to_json()) == config  # what workers of `wharf serve --workers N` get
    env = load_config(environ={"WHARF_OIDC_ISSUER": "https://idp.example.com", "WHARF_OIDC_AUDIENCE": "a,b"}).oidc()
    assert env is not None and env.audience == ("a", "b") and env.algorithms[0] == "RS256"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"oidc_algorithms": ("HS256",)}, "oidc_algorithms: 'HS256' is not allowed: an HMAC algorithm"),
        ({"oidc_algorithms": ("RS256", "none")}, "oidc_algorithms: 'none' is not allowed: an unsigned token"),
        ({"oidc_audience": ()}, "oidc_audience is required with oidc_issuer"),
        ({"oidc_jwks_url": "http://idp.example.com/jwks"}, "oidc_jwks_url 'http://idp.example.com/jwks' must be an https:// URL"),
    ],
)
def test_unsafe_configurations_are_refused(settings: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"oidc_issuer": "https://idp.example.com", "oidc_audience": ("wharf",), **settings}
    with pytest.raises(InvalidArgument) as caught:
        ServerConfig(**values)
    assert str(caught.value).startswith(message)


def test_keys_from_a_jwks_file_and_the_clock_skew_leeway(tmp_path: Path, issuer: OidcIssuer) -> None:
    from wharf.auth.oidc import OidcVerifier
    from wharf.errors import AuthenticationError

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()), encoding="utf-8")
    verifier = OidcVerifier(OidcConfig(issuer=issuer.url, audience=(AUDIENCE,), jwks_file=str(jwks), leeway_s=60))
    now = int(time.time())
    skewed = issuer.token("sam", exp=now - 20, nbf=now + 20)  # the provider's clock is a little off: accepted
    assert verifier.verify(skewed)["preferred_username"] == "sam"
    with pytest.raises(AuthenticationError) as late:
        verifier.verify(issuer.token("sam", exp=now - 120))
    assert late.value.reason == "token expired"
    with pytest.raises(AuthenticationError) as early:
        verifier.verify(issuer.token("sam", nbf=now + 120))
    assert early.value.reason == "token not yet valid"


def test_a_remembered_token_still_expires(issuer: OidcIssuer) -> None:
    from wharf.auth.oidc import OidcVerifier
    from wharf.errors import AuthenticationError

    verifier = OidcVerifier(OidcConfig(issuer=issuer.url, audience=(AUDIENCE,), jwks_url=f"{issuer.url}/jwks", leeway_s=0))
    token = issuer.token("tia", exp=int(time.time()) + 2)
    assert verifier.verify(token)["sub"] == "sub-tia" and verifier.remembers(token)
    deadline = time.monotonic() + 60
    reason = None
    while reason is None and time.monotonic() < deadline:  # the signature is not checked again; the expiry is
        try:
            verifier.verify(token)
            time.sleep(0.2)
        except AuthenticationError as exc:
            reason = exc.reason
    assert reason == "token expired"


@pytest.mark.parametrize(
    ("groups_claim", "claims", "groups"),
    [
        ("groups", {"groups": ["Sales Analysts", "EMEA"]}, {"Sales Analysts", "EMEA"}),
        ("roles", {"roles": "admin"}, {"admin"}),  # a single name
        ("realm_access.roles", {"realm_access": {"roles": ["Sales Analysts"]}}, {"Sales Analysts"}),
        ("https://wharf.example/groups", {"https://wharf.example/groups": ["g1"]}, {"g1"}),  # a dotted claim name, whole
        ("realm_access.roles", {"realm_access": {}}, set()),  # absent: no groups
    ],
)
def test_groups_and_attributes_from_claim_paths(groups_claim: str, claims: dict[str, Any], groups: set[str]) -> None:
    from wharf.auth.oidc import OidcVerifier

    config = OidcConfig(
        issuer="https://idp.example.com",
        audience=("wharf",),
        groups_claim=groups_claim,
        username_claim="email",
        username_prefix="idp:",
        attribute_claims=(("region", "address.region"), ("level", "level"), ("team", "team")),
    )
    base = {"sub": "s-1", "email": "ann@example.com", "address": {"region": "US"}, "level": 3}
    identity = OidcVerifier(config).identity({**base, **claims})
    assert (identity.name, set(identity.groups)) == ("idp:ann@example.com", groups)
    assert dict(identity.attributes) == {"region": "US", "level": "3", "team": None}  # None: removed at sign-in


def test_a_custom_authenticator_and_an_identity_provider_do_not_mix() -> None:
    from wharf.server.app import load_authenticator

    config = ServerConfig(
        oidc_issuer="https://idp.example.com", oidc_audience=("wharf",), authenticator="wharf.server.authentication:authenticator"
    )
    with pytest.raises(InvalidArgument, match="oidc_issuer applies to Wharf's own authenticator"):
        load_authenticator(config, lake=None)
