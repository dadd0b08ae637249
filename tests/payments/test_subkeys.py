"""Sub-keys (issue 17): child tokens spend from their session within caps that hold under concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from arkgate.db import tables as t
from arkgate.db.engine import utcnow
from arkgate.payments.ledger import hash_token
from tests.conftest import Gateway, running_gateway
from tests.databases import backends, scratch_database


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_key(gw: Gateway, parent: str, **limits: Any) -> dict[str, Any]:
    response = await gw.client.post("/v1/sessions/me/keys", json=limits, headers=bearer(parent))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["token"].startswith("ak_") and created["key_id"].startswith("key_")
    return created  # type: ignore[no-any-return]


async def inspect(gw: Gateway, parent: str, key_id: str) -> dict[str, Any]:
    response = await gw.client.get(f"/v1/sessions/me/keys/{key_id}", headers=bearer(parent))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def set_key_columns(gw: Gateway, key_id: str, **values: Any) -> None:
    async with gw.runtime.database.write() as conn:
        await conn.execute(update(t.session_keys).where(t.session_keys.c.key_id == key_id).values(**values))


@pytest.mark.parametrize("backend", backends())
async def test_a_10_sat_cap_lets_exactly_5_of_50_concurrent_2_sat_calls_through(backend, make_settings, tmp_path):
    async with scratch_database(backend, str(tmp_path / "ledger.sqlite3")) as url:
        async with running_gateway(make_settings(database_url=url)) as gw:
            parent = await gw.new_session(100)
            key = await new_key(gw, parent, label="agent-1", cap_sats=10)
            calls = [gw.call("qr-generate", {"data": f"call {i}"}, token=key["token"]) for i in range(50)]
            responses = await asyncio.gather(*calls)
            statuses = [r.status_code for r in responses]
            assert statuses.count(200) == 5, statuses
            assert statuses.count(402) == 45
            refused = [r.json() for r in responses if r.status_code == 402]
            assert all(body["cost_sats"] == 0 and "cap" in body["error"] for body in refused)
            assert await gw.balance(parent) == 90
            assert (await inspect(gw, parent, key["key_id"]))["spent_sats"] == 10
            assert await gw.balance(key["token"]) == 0  # the parent's 90, capped by what the key has left
            await gw.assert_ledger_consistent()


@pytest.mark.parametrize("backend", backends())
async def test_a_daily_cap_holds_under_concurrency_and_opens_again_the_next_utc_day(backend, make_settings, tmp_path):
    async with scratch_database(backend, str(tmp_path / "ledger.sqlite3")) as url:
        async with running_gateway(make_settings(database_url=url)) as gw:
            parent = await gw.new_session(100)
            key = await new_key(gw, parent, label="daily", daily_cap_sats=6)
            responses = await asyncio.gather(
                *[gw.call("qr-generate", {"data": f"d {i}"}, token=key["token"]) for i in range(30)]
            )
            assert [r.status_code for r in responses].count(200) == 3
            assert "daily cap" in next(r.json()["error"] for r in responses if r.status_code == 402)
            seen = await inspect(gw, parent, key["key_id"])
            assert seen["spent_today_sats"] == 6 and seen["remaining_sats"] == 0
            # The counter belongs to one UTC day: move it to yesterday and today's allowance is whole again.
            await set_key_columns(gw, key["key_id"], day=(utcnow() - timedelta(days=1)).strftime("%Y-%m-%d"))
            responses = await asyncio.gather(
                *[gw.call("qr-generate", {"data": f"e {i}"}, token=key["token"]) for i in range(10)]
            )
            assert [r.status_code for r in responses].count(200) == 3
            seen = await inspect(gw, parent, key["key_id"])
            assert seen["spent_sats"] == 12 and seen["spent_today_sats"] == 6
            assert await gw.balance(parent) == 88
            await gw.assert_ledger_consistent()


async def test_an_endpoint_outside_the_allowed_list_is_refused_at_no_cost(gateway):
    parent = await gateway.new_session(100)
    key = await new_key(gateway, parent, allowed=["qr-generate"], cap_sats=50)
    refused = await gateway.call("dns-lookup", {"domain": "example.com"}, token=key["token"])
    assert refused.status_code == 403, refused.text
    assert refused.json()["cost_sats"] == 0 and "may not call dns-lookup" in refused.json()["error"]
    assert (await gateway.call("qr-generate", {"data": "ok"}, token=key["token"])).status_code == 200
    assert await gateway.balance(parent) == 98
    assert (await inspect(gateway, parent, key["key_id"]))["spent_sats"] == 2
    # A category allows every endpoint in it.
    by_category = await new_key(gateway, parent, allowed=["utility"])
    assert (await gateway.call("qr-generate", {"data": "ok"}, token=by_category["token"])).status_code == 200
    await gateway.assert_ledger_consistent()


async def test_unknown_allowed_names_and_bad_limits_are_refused(gateway):
    parent = await gateway.new_session(100)
    for body in (
        {"allowed": ["no-such-endpoint"]},
        {"cap_sats": 0},
        {"cap_sats": "ten"},
        {"daily_cap_sats": 10**30},
        {"expires_in": -5},
        {"label": "x" * 101},
        {"surprise": 1},
    ):
        response = await gateway.client.post("/v1/sessions/me/keys", json=body, headers=bearer(parent))
        assert response.status_code == 400, (body, response.text)
        assert response.json()["success"] is False


async def test_a_revoked_or_expired_key_is_refused_with_401_at_once(gateway):
    parent = await gateway.new_session(100)
    key = await new_key(gateway, parent, label="short-lived")
    assert (await gateway.call("qr-generate", {"data": "x"}, token=key["token"])).status_code == 200
    revoked = await gateway.client.delete(f"/v1/sessions/me/keys/{key['key_id']}", headers=bearer(parent))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    refused = await gateway.call("qr-generate", {"data": "x"}, token=key["token"])
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
    assert (await gateway.client.get("/v1/balance", headers=bearer(key["token"]))).status_code == 401

    expiring = await new_key(gateway, parent, expires_in=3600)
    await set_key_columns(gateway, expiring["key_id"], expires_at=utcnow() - timedelta(seconds=1))
    refused = await gateway.call("qr-generate", {"data": "x"}, token=expiring["token"])
    assert refused.status_code == 401 and "expired" in refused.json()["error"]
    assert await gateway.balance(parent) == 98
    listed = (await gateway.client.get("/v1/sessions/me/keys", headers=bearer(parent))).json()
    assert {k["key_id"]: k["status"] for k in listed["keys"]} == {
        key["key_id"]: "revoked",
        expiring["key_id"]: "expired",
    }
    assert all("token" not in k for k in listed["keys"])


async def test_a_sub_key_cannot_create_keys_top_up_or_manage_its_session(gateway):
    parent = await gateway.new_session(100)
    child = (await new_key(gateway, parent, cap_sats=10))["token"]
    for method, path, what in (
        ("POST", "/v1/sessions/me/keys", "create keys"),
        ("GET", "/v1/sessions/me/keys", "list keys"),
        ("POST", "/v1/sessions/topup", "top up"),
        ("GET", "/v1/sessions/me/payments", "read the session's payments"),
    ):
        response = await gateway.client.request(method, path, json={"amount_sats": 100}, headers=bearer(child))
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"].startswith(f"a sub-key cannot {what}")
    assert await gateway.balance(parent) == 100


async def test_receipts_show_which_key_spent_what(gateway):
    parent = await gateway.new_session(100)
    first = await new_key(gateway, parent, label="first")
    second = await new_key(gateway, parent, label="second")
    await gateway.call("qr-generate", {"data": "a"}, token=first["token"])
    await gateway.call("qr-generate", {"data": "b"}, token=second["token"])
    await gateway.call("qr-generate", {"data": "c"}, token=parent)
    everything = (await gateway.client.get("/v1/sessions/me/calls", headers=bearer(parent))).json()["calls"]
    assert [(c["key_id"], c["key_label"]) for c in everything] == [
        (None, None),
        (second["key_id"], "second"),
        (first["key_id"], "first"),
    ]
    own = (await gateway.client.get("/v1/sessions/me/calls", headers=bearer(first["token"]))).json()
    assert [(c["key_id"], c["cost_sats"]) for c in own["calls"]] == [(first["key_id"], 2)]


@pytest.mark.parametrize("backend", backends())
async def test_refunds_give_back_to_the_balance_and_the_key_cap(backend, make_settings, tmp_path):
    """A failed call, an unused reservation and the crash sweep all restore the key's spend too."""
    async with scratch_database(backend, str(tmp_path / "ledger.sqlite3")) as url:
        async with running_gateway(make_settings(database_url=url)) as gw:
            ledger = gw.runtime.ledger
            parent = await gw.new_session(100)
            key = await new_key(gw, parent, cap_sats=10, daily_cap_sats=10)
            child_hash = hash_token(key["token"])
            failed = await ledger.charge(child_hash, "qr-generate", 4)
            assert failed.key_id == key["key_id"]
            assert (await inspect(gw, parent, key["key_id"]))["spent_sats"] == 4
            await ledger.refund(failed, 4, reason="upstream_error", release_idempotency=True)
            seen = await inspect(gw, parent, key["key_id"])
            assert (seen["spent_sats"], seen["spent_today_sats"]) == (0, 0)
            assert await gw.balance(parent) == 100

            metered = await ledger.charge(child_hash, "qr-generate", 6)
            await ledger.settle(metered.call_id, refund_sats=5, reason="unused_reservation")
            assert (await inspect(gw, parent, key["key_id"]))["spent_sats"] == 1

            crashed = await ledger.charge(child_hash, "qr-generate", 9)
            assert (await inspect(gw, parent, key["key_id"]))["remaining_sats"] == 0
            swept = await ledger.sweep_interrupted(include_own=True)
            assert [s.call_id for s in swept] == [crashed.call_id]
            seen = await inspect(gw, parent, key["key_id"])
            assert (seen["spent_sats"], seen["spent_today_sats"], seen["remaining_sats"]) == (1, 1, 9)
            assert await gw.balance(parent) == 99
            # The receipt names the key on the refund row too.
            own = (await gw.client.get("/v1/sessions/me/calls", headers=bearer(key["token"]))).json()["calls"]
            assert {c["status"] for c in own} == {"refunded", "ok", "interrupted"}
            await gw.assert_ledger_consistent()


async def test_a_sub_key_sees_its_sessions_balance_capped_by_what_it_has_left(gateway):
    parent = await gateway.new_session(100)
    capped = await new_key(gateway, parent, cap_sats=10)
    uncapped = await new_key(gateway, parent)
    await gateway.call("qr-generate", {"data": "x"}, token=capped["token"])
    view = (await gateway.client.get("/v1/balance", headers=bearer(capped["token"]))).json()
    assert view["balance_sats"] == 8
    assert view["key"]["spent_sats"] == 2 and view["key"]["cap_sats"] == 10
    assert await gateway.balance(uncapped["token"]) == 98
    assert await gateway.balance(parent) == 98


async def test_a_sub_key_is_refused_when_its_session_runs_dry_and_nothing_is_written(gateway):
    parent = await gateway.new_session(3)
    key = await new_key(gateway, parent, cap_sats=100)
    assert (await gateway.call("qr-generate", {"data": "x"}, token=key["token"])).status_code == 200
    refused = await gateway.call("qr-generate", {"data": "y"}, token=key["token"])
    assert refused.status_code == 402 and "insufficient balance" in refused.json()["error"]
    assert (await inspect(gateway, parent, key["key_id"]))["spent_sats"] == 2
    await gateway.assert_ledger_consistent()


async def test_idempotency_keys_of_a_sub_key_replay_to_it_alone(gateway):
    parent = await gateway.new_session(100)
    key = await new_key(gateway, parent)
    headers = {"Idempotency-Key": "same"}
    first = await gateway.call("qr-generate", {"data": "i"}, token=key["token"], headers=headers)
    again = await gateway.call("qr-generate", {"data": "i"}, token=key["token"], headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    from_parent = await gateway.call("qr-generate", {"data": "i"}, token=parent, headers=headers)
    assert from_parent.status_code == 200 and from_parent.headers.get("Idempotent-Replayed") is None
    assert await gateway.balance(parent) == 96


async def test_keys_need_a_funded_session_and_an_owner(gateway):
    other = await gateway.new_session(100)
    parent = await gateway.new_session(100)
    key = await new_key(gateway, parent)
    missing = await gateway.client.get(f"/v1/sessions/me/keys/{key['key_id']}", headers=bearer(other))
    assert missing.status_code == 404
    gone = await gateway.client.delete(f"/v1/sessions/me/keys/{key['key_id']}", headers=bearer(other))
    assert gone.status_code == 404
    assert (await gateway.call("qr-generate", {"data": "x"}, token=key["token"])).status_code == 200


@pytest.mark.parametrize("backend", backends())
async def test_neither_a_closed_session_nor_its_keys_can_spend_what_it_still_holds(backend, make_settings, tmp_path):
    """As after a payment that arrived once the session was closed: the sats are there, the tokens are dead."""
    async with scratch_database(backend, str(tmp_path / "ledger.sqlite3")) as url:
        async with running_gateway(make_settings(database_url=url)) as gw:
            parent = await gw.new_session(100)
            key = await new_key(gw, parent, label="agent-1")
            session = await gw.runtime.ledger.session_by_token(hash_token(parent))
            assert session is not None
            await gw.runtime.ledger.close_session(session.id)
            for token, says in ((parent, "this session was closed"), (key["token"], "this key's session was closed")):
                response = await gw.call("qr-generate", {"data": "after close"}, token=token)
                assert response.status_code == 401, response.text
                assert response.json()["error"] == says and response.json()["cost_sats"] == 0
            after = await gw.runtime.ledger.session_by_id(session.id)
            assert after is not None and after.balance_sats == 100 and after.status == "closed"
            await gw.assert_ledger_consistent()
