"""Rate limits: per IP for session creation, per token for calls; memory or Redis; refusals cost nothing."""

from __future__ import annotations

import os
import secrets

import pytest

from tests.conftest import running_gateway


def storages() -> list:
    redis_url = os.environ.get("ARKGATE_TEST_REDIS_URL")
    return [
        pytest.param("memory://", id="memory"),
        pytest.param(
            redis_url or "",
            id="redis",
            marks=[] if redis_url else [pytest.mark.skip(reason="ARKGATE_TEST_REDIS_URL not set")],
        ),
    ]


@pytest.mark.parametrize("storage", storages())
async def test_session_creation_is_limited_per_ip(make_settings, storage):
    settings = make_settings(
        rate_limits="on",
        rate_limit_storage=storage,
        rate_limit_sessions="3/minute",
        # a unique limit per run keeps a shared Redis from carrying counts between tests
        rate_limit_calls=f"{1000 + secrets.randbelow(1000)}/hour",
    )
    async with running_gateway(settings) as gw:
        gw.runtime.limits.sessions.namespace = secrets.token_hex(4)
        statuses = [(await gw.client.post("/v1/sessions", json={"amount_sats": 10})).status_code for _ in range(5)]
        assert statuses == [201, 201, 201, 429, 429]
        refused = await gw.client.post("/v1/sessions", json={"amount_sats": 10})
        assert refused.json()["success"] is False and "Retry-After" in refused.headers


@pytest.mark.parametrize("storage", storages())
async def test_paid_calls_are_limited_per_token_and_refusals_are_free(make_settings, storage):
    settings = make_settings(rate_limits="on", rate_limit_storage=storage, rate_limit_calls="4/minute")
    async with running_gateway(settings) as gw:
        gw.runtime.limits.calls.namespace = secrets.token_hex(4)
        token = await gw.new_session(100)
        statuses = [(await gw.call("qr-generate", {"data": "x"}, token=token)).status_code for _ in range(6)]
        assert statuses == [200, 200, 200, 200, 429, 429]
        assert await gw.balance(token) == 100 - 4 * 2
        other = await gw.new_session(10)  # another token has its own allowance
        assert (await gw.call("qr-generate", {"data": "x"}, token=other)).status_code == 200
        await gw.assert_ledger_consistent()


async def test_rate_limits_off_for_load_tests(make_settings):
    async with running_gateway(make_settings(rate_limits="off", rate_limit_sessions="1/minute")) as gw:
        for _ in range(3):
            assert (await gw.client.post("/v1/sessions", json={"amount_sats": 10})).status_code == 201


def test_memory_windows_move_with_the_clock_and_forget_idle_keys():
    from limits import parse

    from arkgate.services.ratelimit import MovingWindows

    now = [1000.0]
    windows = MovingWindows(clock=lambda: now[0])
    item = parse("3/second")
    assert [windows.hit(item, "calls", "a")[:2] for _ in range(4)] == [(True, 2), (True, 1), (True, 0), (False, 0)]
    assert windows.hit(item, "calls", "b")[:2] == (True, 2)  # another key has its own window
    now[0] += 0.5
    allowed, remaining, reset_s = windows.hit(item, "calls", "a")
    assert (allowed, remaining, reset_s) == (False, 0, 0.5)  # the first hit leaves the window in 0.5 s
    now[0] += 0.5  # the three hits at t=1000 are out of the window now
    assert windows.hit(item, "calls", "a")[:2] == (True, 2)
    now[0] += 5
    windows._sweep(now[0])
    assert windows._hits == {}  # keys whose window emptied are dropped
