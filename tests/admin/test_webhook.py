"""Webhook alerts: signed deliveries to a real local HTTP server, retried after a 500, logged."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from arkgate.admin.alerts import Alerter, sign, verify
from tests.admin.conftest import admin_get, admin_post
from tests.conftest import wait_for

SECRET = "whsec_test_5d1e0c"


class Receiver:
    """A local webhook endpoint answering the queued statuses in order (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.received.append({"headers": dict(self.headers), "body": body, "answered": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/arkgate"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    made: list[Receiver] = []

    def factory(statuses: list[int]) -> Receiver:
        receiver = Receiver(statuses).__enter__()
        made.append(receiver)
        return receiver

    yield factory
    for receiver in made:
        receiver.__exit__()


async def _delivery(gw: Any, delivery_id: int) -> dict[str, Any] | None:
    alerts = await admin_get(gw.client, "alerts")
    return next((d for d in alerts["deliveries"] if d["id"] == delivery_id), None)


async def test_signed_delivery_is_retried_after_a_500_and_logged(admin_gateway_factory, receiver_factory):
    receiver = receiver_factory([500])
    async with admin_gateway_factory(webhook_url=receiver.url, webhook_secret=SECRET, webhook_backoff_s=0) as gw:
        sent = await admin_post(gw.client, "alerts/test")
        assert sent["webhook_enabled"] is True
        delivery_id = sent["delivery_id"]

        async def delivered() -> dict[str, Any] | None:
            row = await _delivery(gw, delivery_id)
            return row if row and row["status"] == "delivered" else None

        row = await wait_for(delivered)
        assert row["attempts"] == 2
        assert [r["answered"] for r in receiver.received] == [500, 200]
        for attempt, request in enumerate(receiver.received, start=1):
            headers = request["headers"]
            assert verify(SECRET, headers["X-Arkgate-Signature"], request["body"])
            assert not verify("another-secret", headers["X-Arkgate-Signature"], request["body"])
            assert not verify(SECRET, headers["X-Arkgate-Signature"], request["body"] + b" ")
            assert headers["X-Arkgate-Event"] == "test"
            assert headers["X-Arkgate-Delivery"] == str(delivery_id)
            assert headers["X-Arkgate-Attempt"] == str(attempt)
            payload = json.loads(request["body"])
            assert payload["event"] == "test"
            assert payload["id"] == delivery_id
        # The receiver can recompute the signature itself from the documented recipe.
        first = receiver.received[0]
        stamp = int(first["headers"]["X-Arkgate-Signature"].split(",")[0].removeprefix("t="))
        assert first["headers"]["X-Arkgate-Signature"].endswith("v1=" + sign(SECRET, stamp, first["body"]))
        alerts = await admin_get(gw.client, "alerts")
        assert alerts["alerts"][0]["status"] == "test"


async def test_a_delivery_that_keeps_failing_ends_failed_after_the_configured_attempts(
    admin_gateway_factory, receiver_factory
):
    receiver = receiver_factory([500, 503, 500, 500])
    async with admin_gateway_factory(
        webhook_url=receiver.url, webhook_secret=SECRET, webhook_backoff_s=0, webhook_max_attempts=3
    ) as gw:
        delivery_id = (await admin_post(gw.client, "alerts/test"))["delivery_id"]

        async def failed() -> dict[str, Any] | None:
            row = await _delivery(gw, delivery_id)
            return row if row and row["status"] == "failed" else None

        row = await wait_for(failed)
        assert row["attempts"] == 3
        assert row["last_error"] == "HTTP 500"
        assert [r["answered"] for r in receiver.received] == [500, 503, 500]


async def test_unreachable_webhook_is_recorded_without_its_url(admin_gateway_factory, receiver_factory):
    receiver = receiver_factory([])
    url = receiver.url + "?key=do-not-log"
    receiver.__exit__()  # nothing listens any more
    async with admin_gateway_factory(webhook_url=url, webhook_backoff_s=0, webhook_max_attempts=2) as gw:
        delivery_id = (await admin_post(gw.client, "alerts/test"))["delivery_id"]

        async def failed() -> dict[str, Any] | None:
            row = await _delivery(gw, delivery_id)
            return row if row and row["status"] == "failed" else None

        row = await wait_for(failed)
        assert "do-not-log" not in json.dumps(await admin_get(gw.client, "alerts"))
        assert row["last_error"] == "ConnectError"


def test_retry_delays_double_from_the_configured_backoff(make_settings):
    alerter = Alerter(make_settings(webhook_backoff_s=1.5), database=None)  # type: ignore[arg-type]
    assert [alerter.retry_delay(n) for n in (1, 2, 3, 4)] == [1.5, 3.0, 6.0, 12.0]


async def test_without_a_webhook_alerts_are_only_logged(admin_gateway_factory):
    async with admin_gateway_factory() as gw:
        sent = await admin_post(gw.client, "alerts/test")
        assert sent == {"delivery_id": None, "webhook_enabled": False}
        alerts = await admin_get(gw.client, "alerts")
        assert alerts["deliveries"] == []
        assert alerts["alerts"][0]["status"] == "test"
