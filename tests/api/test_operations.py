"""Operations: /metrics behind a token, a request id on every response and log line, call logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import structlog
import structlog.testing

from arkgate.logs import configure_logging

METRICS_TOKEN = "mtr_4b8d1f0e2c6a9e7d5f3b"
ADMIN_TOKEN = "adm_9e7d5f3b4b8d1f0e2c6a"


@pytest.mark.parametrize(
    ("settings", "accepted", "refused"),
    [
        ({"metrics_token": METRICS_TOKEN}, [METRICS_TOKEN], [None, "wrong", ADMIN_TOKEN]),
        ({"admin_token": ADMIN_TOKEN}, [ADMIN_TOKEN], [None, "wrong"]),
        ({"metrics_token": METRICS_TOKEN, "admin_token": ADMIN_TOKEN}, [METRICS_TOKEN, ADMIN_TOKEN], [None]),
        ({}, [None], []),
    ],
    ids=["metrics-token", "admin-token", "both", "neither"],
)
async def test_metrics_need_the_configured_token(
    gateway_factory: Any, settings: dict[str, str], accepted: list[str | None], refused: list[str | None]
) -> None:
    async with gateway_factory(**settings) as gw:
        for token in accepted:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await gw.client.get("/metrics", headers=headers)
            assert response.status_code == 200, response.text
            assert "arkgate_build_info" in response.text
        for token in refused:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await gw.client.get("/metrics", headers=headers)
            assert response.status_code == 401
            assert response.json()["success"] is False
            assert "arkgate_" not in response.text


async def test_every_response_has_a_request_id_and_a_sane_incoming_one_is_kept(gateway: Any) -> None:
    ids = set()
    for path in ("/health", "/v1/catalog", "/no-such-page"):
        response = await gateway.client.get(path)
        ids.add(response.headers["x-request-id"])
    assert len(ids) == 3
    kept = await gateway.client.get("/health", headers={"X-Request-ID": "edge-7f3a9c1b"})
    assert kept.headers["x-request-id"] == "edge-7f3a9c1b"
    for hostile in ("x" * 500, "a b c d e f g h", "short", "<script>alert(1)</script>"):
        replaced = await gateway.client.get("/health", headers={"X-Request-ID": hostile})
        assert replaced.headers["x-request-id"] != hostile
    too_big = await gateway.client.post("/v1/sessions", content=b"{" + b" " * 100_000 + b"}")
    assert too_big.status_code == 413 and too_big.headers["x-request-id"]


async def test_each_charge_and_refund_is_one_log_line_with_the_request_id_and_no_secret(gateway: Any) -> None:
    captured = structlog.testing.LogCapture()
    previous = structlog.get_config()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, captured],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=False,
    )
    try:
        token = await gateway.new_session(1000)
        captured.entries.clear()
        ok = await gateway.call("qr-generate", {"data": "hi"}, token=token, headers={"X-Request-ID": "req-ok-000001"})
        assert ok.status_code == 200
        bad = await gateway.call(
            "dns-lookup", {"domain": "example.invalid"}, token=token, headers={"X-Request-ID": "req-bad-00001"}
        )
        assert bad.json()["success"] is False
    finally:
        structlog.configure(**previous)
    lines = captured.entries
    charged = [line for line in lines if line["event"] == "call.charged"]
    refunded = [line for line in lines if line["event"] == "call.refunded"]
    assert [line["request_id"] for line in charged] == ["req-ok-000001", "req-bad-00001"]
    assert charged[0]["endpoint_id"] == "qr-generate" and charged[0]["amount_sats"] > 0
    assert [line["request_id"] for line in refunded] == ["req-bad-00001"]
    assert refunded[0]["reason"] and refunded[0]["amount_sats"] == charged[1]["amount_sats"]
    assert token.removeprefix("ak_") not in repr(lines)


def test_json_log_lines_redact_secrets_as_a_backstop(capsys: pytest.CaptureFixture[str]) -> None:
    previous = structlog.get_config()
    configure_logging("info", json_lines=True)
    try:
        structlog.get_logger("test").info("call.charged", authorization="Bearer ak_" + "s" * 40, note="ak_" + "t" * 40)
    finally:
        structlog.configure(**previous)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["authorization"] == "[secure]" and "t" * 40 not in line["note"]
