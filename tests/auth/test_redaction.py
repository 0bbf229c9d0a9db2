"""No secrets or tokens in logs: the redaction filter on real log records carrying real credentials."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from wharf.auth import AuthService, RedactSecrets, install_redaction, redact


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(detail)s"))
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("wharf.test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_credentials_never_reach_the_log(captured: tuple[logging.Logger, io.StringIO], service: AuthService) -> None:
    logger, stream = captured
    service.add_user("ann")
    pat = service.create_token("ann", expires_in_s=60).token
    creds = service.create_principal("etl")
    signed, _ = service.issue_token(creds.client_id, creds.client_secret)
    secrets = [pat, creds.client_secret, signed, "hunter2-password"]

    logger.info("request headers %s", {"Authorization": f"Bearer {signed}", "Accept": "json"}, extra={"detail": ""})
    logger.info(
        "POST /v1/oauth/tokens body=%s",
        f"grant_type=client_credentials&client_id={creds.client_id}&client_secret={creds.client_secret}&scope=catalog",
        extra={"detail": ""},
    )
    logger.info('{"access_token": "%s", "token_type": "bearer"}', signed, extra={"detail": ""})
    logger.info("login", extra={"detail": "password=hunter2-password"})
    logger.warning("token in a url ?token=%s and bare %s", pat, pat, extra={"detail": ""})
    try:
        raise ValueError(f"bad credential {creds.client_secret}")
    except ValueError:
        logger.exception("failed for Authorization: Basic %s", "YW5uOmh1bnRlcjI=", extra={"detail": ""})

    text = stream.getvalue()
    for secret in [*secrets, "YW5uOmh1bnRlcjI="]:
        assert secret not in text
    assert text.count("[REDACTED]") >= 7
    assert creds.client_id in text and "grant_type=client_credentials" in text  # the rest stays readable
    assert "token_type" in text and "ValueError" in text


def test_redact_keeps_ordinary_text() -> None:
    assert redact("GET /v1/namespaces/db/tables 200 3.1 ms") == "GET /v1/namespaces/db/tables 200 3.1 ms"
    assert redact("token expired") == "token expired"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [REDACTED]"
    assert redact("'client_secret': 'wharf_sec_abc-DEF_123'") == "'client_secret': '[REDACTED]'"
    assert redact("x eyJhbGciOi.eyJzdWIiOi.sig y") == "x [REDACTED] y"


def test_install_redaction_filters_every_root_handler_once() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        first = install_redaction()
        assert install_redaction() is first
        assert [f for f in handler.filters if isinstance(f, RedactSecrets)] == [first]
    finally:
        root.removeHandler(handler)


def test_redact_vended_s3_credentials() -> None:
    """What the REST catalog vends (a LoadTableResult's config) is redacted wherever it would be logged."""
    vended = '{"s3.access-key-id": "AKIA1", "s3.secret-access-key": "wJal/rX", "s3.session-token": "IQoJb3"}'
    assert (
        redact(vended) == '{"s3.access-key-id": "AKIA1", "s3.secret-access-key": "[REDACTED]", "s3.session-token": "[REDACTED]"}'
    )
    assert redact("AWS_SECRET_ACCESS_KEY=wJal/rX") == "AWS_SECRET_ACCESS_KEY=[REDACTED]"
