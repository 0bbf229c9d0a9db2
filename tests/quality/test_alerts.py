"""Webhook alerts: a failed run calls the ruleset's webhook — signed, retried with backoff, bounded.

The receiver is a real HTTP server on loopback (``http.server`` in a thread).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import wharf
from tests.quality.sensors import BAD, RANGE_RULE, RULES, TABLE, sensors
from wharf.quality.webhooks import SIGNATURE_HEADER, RetryPolicy, send, verify_signature

__all__ = ["sensors"]

SECRET = "s3cret"
FAST = RetryPolicy(attempts=4, first_wait_s=0.01, request_timeout_s=2.0, budget_s=10.0)


class Receiver:
    """A loopback HTTP receiver answering each POST with the next status of ``statuses`` (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([])
    yield r
    r.close()


@pytest.fixture
def flaky() -> Iterator[Receiver]:
    r = Receiver([500, 503])  # fails twice, then succeeds
    yield r
    r.close()


def _alerting(lake: wharf.Lakehouse, url: str) -> None:
    lake.quality.create_ruleset("alerting", TABLE, RULES, webhook=url)
    lake.quality.webhook_secret = SECRET
    lake.quality.webhook_retry = FAST


def test_failed_run_calls_the_webhook_with_a_signed_payload(sensors: wharf.Lakehouse, receiver: Receiver) -> None:
    _alerting(sensors, receiver.url)
    assert sensors.quality.evaluate(TABLE, "alerting").alert is None  # a passing run alerts nobody
    assert receiver.requests == []

    sensors.table(TABLE).append(BAD)
    run = sensors.quality.evaluate(TABLE, "alerting")
    assert not run.passed and run.alert is not None and run.alert.delivered and run.alert.attempts == 1
    [(headers, body, status)] = receiver.requests
    assert status == 200
    assert verify_signature(body, headers[SIGNATURE_HEADER], SECRET)
    assert not verify_signature(body, headers[SIGNATURE_HEADER], "another secret")
    payload = json.loads(body)
    assert payload["ruleset"] == "alerting" and payload["table"] == TABLE
    assert payload["snapshot_id"] == run.snapshot_id == sensors.table(TABLE).current_snapshot_id()
    assert [r["rule"] for r in payload["failed_rules"]] == [RANGE_RULE]
    assert payload["run_id"] == run.run_id


def test_webhook_is_retried_with_backoff_until_it_succeeds(sensors: wharf.Lakehouse, flaky: Receiver) -> None:
    _alerting(sensors, flaky.url)
    sensors.table(TABLE).append(BAD)
    run = sensors.quality.evaluate(TABLE, "alerting")
    assert run.alert is not None and run.alert.delivered and run.alert.attempts == 3
    assert [status for _h, _b, status in flaky.requests] == [500, 503, 200]
    bodies = {body for _h, body, _s in flaky.requests}
    assert len(bodies) == 1  # the same signed payload each time


def test_waits_double_between_attempts() -> None:
    waits: list[float] = []
    delivery = send("http://127.0.0.1:9/unreachable", {"x": 1}, secret=None, policy=FAST, sleep=waits.append)
    assert not delivery.delivered and delivery.attempts == 4 and delivery.error
    assert waits == [0.01, 0.02, 0.04]


def test_unreachable_webhook_never_fails_the_evaluation(sensors: wharf.Lakehouse) -> None:
    _alerting(sensors, "http://127.0.0.1:9/nobody-listens")
    sensors.table(TABLE).append(BAD)
    run = sensors.quality.evaluate(TABLE, "alerting")
    assert not run.passed  # the result is there; the alert is reported, not raised
    assert run.alert is not None and not run.alert.delivered and run.alert.attempts == FAST.attempts


def test_receiver_refusing_the_payload_is_not_retried() -> None:
    refusing = Receiver([400])
    try:
        delivery = send(refusing.url, {"x": 1}, secret=SECRET, policy=FAST)
    finally:
        refusing.close()
    assert not delivery.delivered and delivery.attempts == 1 and delivery.status == 400
