"""The meter: charge before the work, refund on failure, timeout or disconnect; idempotent retries."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from pydantic import BaseModel, Field

from arkgate.catalog import qr_generate
from arkgate.catalog.registry import Catalog, Endpoint, Metered
from arkgate.errors import UpstreamError
from tests.conftest import running_gateway


class Echo(BaseModel):
    text: str = Field("hi", max_length=10)
    sleep_s: float = 0.0
    used: int = 0


started = asyncio.Event()


async def echo(request: Echo, ctx: Any) -> dict[str, Any]:
    started.set()
    if request.sleep_s:
        await asyncio.sleep(request.sleep_s)
    return {"text": request.text}


async def broken(request: Echo, ctx: Any) -> dict[str, Any]:
    raise UpstreamError("the example upstream failed")


async def crashing(request: Echo, ctx: Any) -> dict[str, Any]:
    raise RuntimeError("bug: secret internals /etc/passwd")


async def timing_out(request: Echo, ctx: Any) -> dict[str, Any]:
    raise TimeoutError("an upstream client's own timeout")


async def stubborn(request: Echo, ctx: Any) -> dict[str, Any]:
    # A handler that swallows its cancellation must not get a late result through.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(5)
    return {"text": "late"}


async def metered(request: Echo, ctx: Any) -> dict[str, Any]:
    ctx.settle(request.used)
    return {"used": request.used}


def build_catalog() -> Catalog:
    common = dict(category="test", summary="s", description="d", request_model=Echo)
    return Catalog(
        [
            qr_generate.ENDPOINT,
            Endpoint(id="echo", price_sats=3, handler=echo, timeout_s=0.5, **common),
            Endpoint(id="broken", price_sats=3, handler=broken, **common),
            Endpoint(id="crashing", price_sats=3, handler=crashing, **common),
            Endpoint(id="timing-out", price_sats=3, handler=timing_out, **common),
            Endpoint(id="stubborn", price_sats=3, handler=stubborn, timeout_s=0.2, **common),
            Endpoint(
                id="metered",
                price_sats=1,
                handler=metered,
                metered=Metered(
                    reserve_sats=lambda r, s: 10, rate=lambda s: "1 sat per unit", max_cost_sats=lambda s: 10
                ),
                **common,
            ),
        ]
    )


@pytest.fixture
async def gw(make_settings):
    async with running_gateway(make_settings(), catalog=build_catalog()) as gateway:
        yield gateway


async def test_success_wraps_data_in_arkapis_envelope(gw):
    token = await gw.new_session(10)
    body = (await gw.call("echo", {"text": "ok"}, token=token)).json()
    assert body["success"] is True and body["data"] == {"text": "ok"}
    assert body["cost_sats"] == 3 and body["balance_remaining"] == 7 and body["endpoint"] == "/api/echo"
    assert isinstance(body["response_ms"], int)


@pytest.mark.parametrize(
    ("payload", "content"),
    [({"text": "x" * 11}, None), ({"text": 5}, None), (None, b"{not json"), (None, b"[1,2]")],
)
async def test_bad_input_is_a_400_that_costs_nothing(gw, payload, content):
    token = await gw.new_session(10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if content is not None:
        response = await gw.client.post("/api/echo", content=content, headers=headers)
    else:
        response = await gw.call("echo", payload, token=token)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["cost_sats"] == 0 and body["error"]
    assert "Traceback" not in response.text
    assert await gw.balance(token) == 10


async def test_upstream_failure_is_refunded(gw):
    token = await gw.new_session(10)
    response = await gw.call("broken", {}, token=token)
    assert response.status_code == 502
    assert response.json()["cost_sats"] == 0 and response.json()["balance_remaining"] == 10
    assert await gw.balance(token) == 10
    calls = (await gw.client.get("/v1/sessions/me/calls", headers={"Authorization": f"Bearer {token}"})).json()
    assert [row["kind"] for row in calls["calls"][0]["ledger"]] == ["debit", "refund"]
    await gw.assert_ledger_consistent()


async def test_a_crash_is_a_refunded_500_without_internals(gw):
    token = await gw.new_session(10)
    response = await gw.call("crashing", {}, token=token)
    assert response.status_code == 500
    assert "/etc/passwd" not in response.text and response.json()["cost_sats"] == 0
    assert await gw.balance(token) == 10


async def test_timeout_is_a_refunded_504(gw):
    token = await gw.new_session(10)
    response = await gw.call("echo", {"sleep_s": 5}, token=token)
    assert response.status_code == 504
    assert await gw.balance(token) == 10
    await gw.assert_ledger_consistent()


async def test_a_handler_that_swallows_its_timeout_is_still_a_refunded_504(gw):
    token = await gw.new_session(10)
    response = await gw.call("stubborn", {}, token=token)
    assert response.status_code == 504 and response.json()["cost_sats"] == 0
    assert await gw.balance(token) == 10


async def test_client_disconnect_refunds(gw):
    token = await gw.new_session(10)
    started.clear()
    task = asyncio.create_task(gw.call("echo", {"sleep_s": 0.4}, token=token))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()  # the client goes away mid-call
    with pytest.raises(asyncio.CancelledError):
        await task
    from tests.conftest import wait_for

    assert await wait_for(lambda: _balance_is(gw, token, 10), timeout_s=5)
    await gw.assert_ledger_consistent()


async def test_a_client_that_hangs_up_mid_call_is_refunded_with_499(gw):
    """The server reports the hang-up (``http.disconnect``) while the handler waits: the call is refunded."""
    token = await gw.new_session(10)
    started.clear()
    body = b'{"sleep_s": 2}'
    hung_up = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": body, "more_body": False}
        await started.wait()
        hung_up.set()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/echo",
        "raw_path": b"/api/echo",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5555),
        "server": ("gateway", 80),
        "state": {},
    }
    await asyncio.wait_for(gw.app(scope, receive, send), 5)  # well before the handler's 2 s sleep ends
    assert hung_up.is_set()
    assert [m["status"] for m in sent if m.get("type") == "http.response.start"] == [499]
    assert await gw.balance(token) == 10
    await gw.assert_ledger_consistent()


async def test_a_handlers_own_timeout_error_is_a_refunded_500_not_a_504(gw):
    token = await gw.new_session(10)
    response = await gw.call("timing-out", {}, token=token)
    assert response.status_code == 500 and response.json()["cost_sats"] == 0
    assert await gw.balance(token) == 10


async def _balance_is(gw, token, sats):
    return await gw.balance(token) == sats


async def test_metered_call_settles_usage_and_refunds_the_rest(gw):
    token = await gw.new_session(20)
    body = (await gw.call("metered", {"used": 4}, token=token)).json()
    assert body["cost_sats"] == 4 and body["balance_remaining"] == 16
    calls = (await gw.client.get("/v1/sessions/me/calls", headers={"Authorization": f"Bearer {token}"})).json()
    assert calls["calls"][0]["ledger"][0] == {**calls["calls"][0]["ledger"][0], "kind": "debit", "amount_sats": 10}
    assert calls["calls"][0]["refunded_sats"] == 6
    await gw.assert_ledger_consistent()


async def test_missing_or_bad_tokens(gw):
    assert (await gw.call("echo", {})).status_code == 402
    response = await gw.call("echo", {}, token="ak_nope")
    assert response.status_code == 401 and response.json()["cost_sats"] == 0
    assert (await gw.client.get("/v1/balance")).status_code == 401


async def test_idempotent_retries_are_charged_once(gw):
    token = await gw.new_session(10)
    headers = {"Idempotency-Key": "retry-1"}
    first = await gw.call("echo", {"text": "a"}, token=token, headers=headers)
    again = await asyncio.gather(*[gw.call("echo", {"text": "a"}, token=token, headers=headers) for _ in range(5)])
    assert first.status_code == 200 and all(r.status_code == 200 for r in again)
    assert all(r.json() == first.json() for r in again)
    assert await gw.balance(token) == 7
    reused = await gw.call("echo", {"text": "b"}, token=token, headers=headers)
    assert reused.status_code == 400 and await gw.balance(token) == 7


async def test_concurrent_first_tries_with_one_key_are_charged_once(gw):
    token = await gw.new_session(30)
    headers = {"Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *[gw.call("echo", {"text": "a", "sleep_s": 0.05}, token=token, headers=headers) for _ in range(10)]
    )
    assert {r.status_code for r in responses} <= {200, 409}
    assert await gw.balance(token) == 27
    await gw.assert_ledger_consistent()


async def test_failed_call_with_a_key_can_be_retried(gw):
    token = await gw.new_session(10)
    headers = {"Idempotency-Key": "k"}
    assert (await gw.call("broken", {}, token=token, headers=headers)).status_code == 502
    assert (await gw.call("broken", {}, token=token, headers=headers)).status_code == 502
    assert await gw.balance(token) == 10


async def test_session_amount_validation(gw):
    # {} is not here: in free mode it opens a session with free_balance_sats (tests/compat)
    for bad in (
        {"amount_sats": 0},
        {"amount_sats": -5},
        {"amount_sats": "ten"},
        {"amount_sats": 10**12},
        {"amount_sats": 1.5},
        {"amount_sats": True},
    ):
        response = await gw.client.post("/v1/sessions", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["success"] is False and response.json()["error"]
    assert (await gw.client.post("/v1/sessions", content=b"nope")).status_code == 400
