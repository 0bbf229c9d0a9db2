"""``auth``: what authentication costs a request.

Systems: **wharf** — ``AuthService.verify_bearer`` on a lake's SQLite metadata database, which
checks the signature (or the token's hash) *and* reads the principal's state on every request,
so a disabled user or revoked token stops working at once; **stateless** — the same credential
checked with no database and no revocation check (``jwt.decode`` with the same key; SHA-256 +
``hmac.compare_digest`` for a personal access token): the floor the per-request check is paid
on top of. A third case times a password login with argon2-cffi's default parameters against
``argon2.PasswordHasher().verify`` alone.

Each timed round verifies ``N`` tokens; the extra column is the cost of one request.
"""

from __future__ import annotations

from typing import Any

import argon2
import jwt

import wharf
from bench.data import run_dir
from bench.harness import Case, Options, Peer, Report, Runner, Target, log, measure
from wharf.auth import hashing

PEERS = [
    Peer("wharf", "system", "Wharf verify_bearer (signature + per-request revocation check)"),
    Peer("stateless", "limit", "jwt.decode / SHA-256 compare / argon2 verify alone (no database, no revocation check)"),
]


def run(opts: Options) -> Report:
    scale = opts.scale if opts.scale is not None else (0.04 if opts.quick else 1.0)
    n = max(50, int(5000 * scale))
    logins = max(1, int(5 * scale))
    warmup = opts.warmup if opts.warmup is not None else 1
    reps = opts.reps or (1 if opts.quick else 5)
    budget = opts.budget_s or (30.0 if opts.quick else 120.0)
    report = Report("auth", f"auth: {n} token verifications per round, {logins} password logins", opts, PEERS, params={"n": n})
    report.extra_columns = [("wharf µs/request", "wharf", "us_per_request"), ("stateless µs", "stateless", "us_per_request")]

    hashing.use_default_hashing()  # the secure defaults users get
    path = run_dir(opts.data_dir, "auth") / "lake"
    lake = wharf.connect(path, user="bench")
    service = lake.auth.service
    creds = lake.auth.create_principal("etl")
    signed, _ = service.issue_token(creds.client_id, creds.client_secret, "catalog")
    lake.auth.add_user("ann", "correct horse battery staple")
    personal = lake.auth.create_token("ann", expires="1d").token
    kid = jwt.get_unverified_header(signed)["kid"]
    key = service.keys.secret(kid)
    stored_hash = argon2.PasswordHasher().hash("correct horse battery staple")

    def verify_many(token: str, count: int) -> Any:
        name = None
        for _ in range(count):
            name = service.verify_bearer(token).name
        return name

    def decode_many(count: int) -> Any:
        name = None
        for _ in range(count):
            name = jwt.decode(signed, key, algorithms=["HS256"], issuer="wharf")["name"]
        return name

    token_id, _, secret = personal.removeprefix(hashing.TOKEN_PREFIX).partition("_")
    digests = {token_id: hashing.digest(secret)}

    def compare_many(count: int) -> Any:
        name = None
        for _ in range(count):
            tid, _, sec = personal.removeprefix(hashing.TOKEN_PREFIX).partition("_")
            if hashing.digest_matches(digests.get(tid), sec):
                name = "ann"
        return name

    def argon2_many(count: int) -> Any:
        hasher = argon2.PasswordHasher()
        for _ in range(count):
            hasher.verify(stored_hash, "correct horse battery staple")
        return "ann"

    def logins_many(count: int) -> Any:
        name = None
        for _ in range(count):
            name = service.authenticate_password("ann", "correct horse battery staple").name
        return name

    cases = [
        (f"verify signed token (JWT) × {n}", n, lambda: verify_many(signed, n), lambda: decode_many(n), "etl"),
        (f"verify personal access token × {n}", n, lambda: verify_many(personal, n), lambda: compare_many(n), "ann"),
        (f"password login (argon2 defaults) × {logins}", logins, lambda: logins_many(logins), lambda: argon2_many(logins), "ann"),
    ]
    try:
        for name, count, mine, peer, expected in cases:
            case = Case(
                name,
                [Runner("wharf", mine), Runner("stateless", peer)],
                params={"requests": count, "principal": expected},
                compare=lambda ref, other: ref == other,
            )
            log(f"auth: {name}")
            result = measure(case, opts, warmup=warmup, reps=reps, budget_s=budget)
            for system in ("wharf", "stateless"):
                median = result.systems[system].median_s
                if median:
                    result.systems[system].extra["us_per_request"] = round(median / count * 1e6, 1)
            report.add(result)
    finally:
        lake.close()
    for case in report.cases[:2]:
        us = case.systems["wharf"].extra.get("us_per_request")
        report.targets.append(
            Target(
                f"{case.name.split(' ×')[0]}: cost per request",
                "well under 1 ms (< 250 µs), revocation checked on every request",
                f"{us} µs" if us is not None else "n/a",
                None if us is None else us < 250,
            )
        )
    report.notes.append(
        "wharf reads the principal's row (and the key's) per request: a disabled user is refused on the next request"
    )
    return report
