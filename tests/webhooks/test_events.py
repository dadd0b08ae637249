"""Each event reaches a real local receiver, verified with the Standard Webhooks library."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from arkgate.db import tables as t
from arkgate.db.engine import utcnow
from arkgate.webhooks.events import WithdrawalFinished
from tests.admin.conftest import ADMIN_TOKEN, admin_headers
from tests.conftest import running_gateway, wait_for
from tests.webhooks.conftest import auth, build_catalog, session_with_webhook, settle, webhook_settings

OPERATOR_SECRET = "whsec_" + "b3BlcmF0b3Itc2VjcmV0LWZvci10ZXN0cw=="


def events_of(receiver, path: str | None = None) -> list[str]:
    return [r.payload["type"] for r in receiver.accepted(path)]


async def test_payment_credited_when_the_simulator_pays_the_invoice(make_settings, simulator, receiver_factory):
    receiver = receiver_factory()
    settings = make_settings(
        payment_mode="barkd",
        barkd_url=simulator.url,
        barkd_token=simulator.token,
        reconcile_interval_s=3600,
        **webhook_settings(receiver),
    )
    async with running_gateway(settings) as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        response = await gw.client.post("/v1/sessions", json={"amount_sats": 500, "callback_url": receiver.url})
        assert response.status_code == 201, response.text
        created = response.json()
        secret = created["webhook"]["secret"]
        simulator.pay_invoice(created["funding"]["lightning_invoice"])
        await wait_for(lambda: events_of(receiver) == ["payment.credited"])
        [payload] = receiver.verify_all(secret)
        assert payload["data"] == {"rail": "lightning", "amount_sats": 500, "balance_sats": 500, "late": False}
        assert payload["timestamp"].endswith("Z")
        log = (await gw.client.get("/v1/sessions/me/webhook/deliveries", headers=auth(created["token"]))).json()
        assert [(d["event"], d["status"], d["attempts"]) for d in log["deliveries"]] == [
            ("payment.credited", "delivered", 1)
        ]
        assert log["deliveries"][0]["message_id"] == receiver.received[0].message_id

        # A top-up over Ark (long payment keys) is announced the same way.
        simulator.send_ark(created["funding"]["ark_address"], 40)
        await wait_for(lambda: events_of(receiver) == ["payment.credited", "payment.credited"])
        payloads = receiver.verify_all(secret)
        assert payloads[1]["data"] == {"rail": "ark", "amount_sats": 40, "balance_sats": 540, "late": False}


async def test_balance_low_fires_once_per_crossing_after_calls(hook_gateway_factory, receiver_factory):
    receiver = receiver_factory()
    async with hook_gateway_factory(receiver) as gw:
        token, secret = await session_with_webhook(gw, receiver.url, sats=10, low_balance_sats=5)
        for expected_balance in (8, 6, 4, 2, 0):  # 2 sats a call: below 5 from the third call on
            response = await gw.call("ping", {}, token=token)
            assert response.json()["balance_remaining"] == expected_balance
            await settle(gw)
        await wait_for(lambda: events_of(receiver) == ["balance.low"])
        [payload] = receiver.verify_all(secret)
        assert payload["data"] == {"balance_sats": 4, "threshold_sats": 5}

        # Back above the threshold re-arms it; the next crossing is announced again.
        session_id = await _session_id(gw, token)
        assert await gw.runtime.webhooks.check_balance(session_id, 20) is False
        assert await gw.runtime.webhooks.check_balance(session_id, 3) is True
        await wait_for(lambda: events_of(receiver) == ["balance.low", "balance.low"])
        assert await gw.runtime.webhooks.check_balance(session_id, 1) is False


async def _session_id(gw: Any, token: str) -> int:
    from arkgate.payments.ledger import hash_token

    session = await gw.runtime.ledger.session_by_token(hash_token(token))
    assert session is not None
    return int(session.id)


async def test_session_expiring_with_a_short_ttl(hook_gateway_factory, receiver_factory):
    receiver = receiver_factory()
    async with hook_gateway_factory(
        receiver, session_ttl_s=60, webhook_expiring_before_s=300, webhook_scan_interval_s=0.05
    ) as gw:
        token, secret = await session_with_webhook(gw, receiver.url, sats=10)
        await gw.new_session(10)  # no webhook: nothing to announce
        await wait_for(lambda: events_of(receiver) == ["session.expiring"])
        [payload] = receiver.verify_all(secret)
        assert payload["data"]["balance_sats"] == 10
        assert payload["data"]["expires_at"].endswith("Z")
        assert await gw.runtime.webhooks.scan_expiring() == 0  # once per session
        # A call pushes the expiry forward but still inside the window: no second notice.
        assert (await gw.call("ping", {}, token=token)).status_code == 200
        assert await gw.runtime.webhooks.scan_expiring() == 0
        # Extended well past the window (a new lease of life) re-arms it for the next approach.
        session_id = await _session_id(gw, token)
        await _set_expiry(gw, session_id, timedelta(hours=2))
        assert await gw.runtime.webhooks.scan_expiring() == 0
        await _set_expiry(gw, session_id, timedelta(seconds=30))
        await wait_for(lambda: events_of(receiver) == ["session.expiring", "session.expiring"])
        receiver.verify_all(secret)


async def _set_expiry(gw: Any, session_id: int, after: timedelta) -> None:
    async with gw.runtime.database.write() as conn:
        await conn.execute(update(t.sessions).where(t.sessions.c.id == session_id).values(expires_at=utcnow() + after))


async def test_call_refunded_on_a_failed_call(hook_gateway_factory, receiver_factory):
    receiver = receiver_factory()
    async with hook_gateway_factory(receiver) as gw:
        token, secret = await session_with_webhook(gw, receiver.url, sats=10)
        response = await gw.call("broken", {}, token=token)
        assert response.status_code == 502
        await wait_for(lambda: events_of(receiver) == ["call.refunded"])
        [payload] = receiver.verify_all(secret)
        data = payload["data"]
        assert data["endpoint_id"] == "broken"
        assert data["refunded_sats"] == 3
        assert data["balance_sats"] == 10
        assert data["reason"] == "upstream_error"
        assert data["call_id"] == response.json().get("call_id", data["call_id"])


async def test_withdrawal_events_reach_the_session_and_the_operator(make_settings, receiver_factory):
    receiver = receiver_factory()
    operator_url = f"http://127.0.0.1:{receiver.port}/operator"
    settings = make_settings(
        admin_token=ADMIN_TOKEN, webhook_url=operator_url, webhook_secret=OPERATOR_SECRET, **webhook_settings(receiver)
    )
    async with running_gateway(settings, catalog=build_catalog()) as gw:
        token, secret = await session_with_webhook(gw, receiver.url, sats=10)
        session_id = await _session_id(gw, token)
        hooks = gw.runtime.webhooks
        for status in ("completed", "failed"):
            finished = WithdrawalFinished(
                session_id=session_id,
                withdrawal_id=f"wd_{status}",
                status=status,  # type: ignore[arg-type]
                amount_sats=7,
                fee_sats=1,
                destination_kind="bolt11",
                reason=None if status == "completed" else "no route",
            )
            assert len(await hooks.emit_withdrawal(finished)) == 2
            assert await hooks.emit_withdrawal(finished) == []  # the same payout is announced once
        await wait_for(lambda: len(receiver.accepted()) == 4)
        customer = receiver.verify_all(secret, "/hooks/arkgate")
        assert [p["type"] for p in customer] == ["withdrawal.completed", "withdrawal.failed"]
        assert customer[1]["data"]["reason"] == "no route"
        assert "session_id" not in customer[0]["data"]
        operator = receiver.verify_all(OPERATOR_SECRET, "/operator")
        assert [p["type"] for p in operator] == ["withdrawal.completed", "withdrawal.failed"]
        assert operator[0]["data"]["session_id"] == session_id
        # The admin log lists both audiences' deliveries.
        listed = (await gw.client.get("/admin/api/webhooks", headers=admin_headers())).json()
        audiences = sorted((d["session_id"] is None, d["event"]) for d in listed["deliveries"])
        assert audiences == [
            (False, "withdrawal.completed"),
            (False, "withdrawal.failed"),
            (True, "withdrawal.completed"),
            (True, "withdrawal.failed"),
        ]


async def test_retries_after_a_500_then_redelivery_from_the_admin_api(make_settings, receiver_factory):
    receiver = receiver_factory([500, 503])
    settings = make_settings(admin_token=ADMIN_TOKEN, **webhook_settings(receiver))
    async with running_gateway(settings, catalog=build_catalog()) as gw:
        token, secret = await session_with_webhook(gw, receiver.url, sats=10)
        await gw.call("broken", {}, token=token)
        await wait_for(lambda: len(receiver.accepted()) == 1)
        assert [r.answered for r in receiver.of()] == [500, 503, 200]
        receiver.verify_all(secret)  # every attempt is signed
        assert len({r.message_id for r in receiver.of()}) == 1  # one webhook-id across the retries
        assert len({r.headers["webhook-timestamp"] for r in receiver.of()}) >= 1

        async def delivered() -> dict[str, Any] | None:
            # The receiver answers before the gateway records the outcome: wait for the record.
            url = "/v1/sessions/me/webhook/deliveries"
            [row] = (await gw.client.get(url, headers=auth(token))).json()["deliveries"]
            return row if row["status"] == "delivered" else None

        row = await wait_for(delivered)
        assert row["attempts"] == 3

        again = await gw.client.post(f"/admin/api/webhooks/{row['id']}/redeliver", headers=admin_headers())
        assert again.status_code == 200, again.text
        await wait_for(lambda: len(receiver.accepted()) == 2)
        assert receiver.accepted()[1].message_id == receiver.accepted()[0].message_id
        receiver.verify_all(secret)
        missing = await gw.client.post("/admin/api/webhooks/999999/redeliver", headers=admin_headers())
        assert missing.status_code == 409
        assert missing.json()["success"] is False


async def test_the_operator_gets_payment_credited(make_settings, simulator, receiver_factory):
    receiver = receiver_factory()
    settings = make_settings(
        payment_mode="barkd",
        barkd_url=simulator.url,
        barkd_token=simulator.token,
        reconcile_interval_s=3600,
        webhook_url=receiver.url,
        webhook_secret="plain-operator-secret",
    )
    async with running_gateway(settings) as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        created = await gw.create_session(300)  # no customer webhook
        simulator.pay_invoice(created["funding"]["lightning_invoice"])
        await wait_for(lambda: events_of(receiver) == ["payment.credited"])
        # A plain (non-whsec) operator secret signs with its UTF-8 bytes.
        [payload] = receiver.verify_all(b"plain-operator-secret")
        assert payload["data"]["amount_sats"] == 300
        assert isinstance(payload["data"]["session_id"], int)


async def test_a_credit_whose_announcement_a_crash_lost_is_caught_up_once(hook_gateway_factory, receiver_factory):
    from arkgate.payments.ledger import Credit

    receiver = receiver_factory()
    async with hook_gateway_factory(receiver) as gw:
        token, secret = await session_with_webhook(gw, receiver.url, sats=10)
        session_id = await _session_id(gw, token)
        # Credited straight through the ledger: as if the instance died before the watcher announced it.
        # Ark payment keys run long; the dedupe key must still fit.
        key = "ark:" + "f" * 380
        result = await gw.runtime.ledger.credit_lightning(
            Credit(rail="ark", payment_key=key, amount_sats=25), session_id=session_id
        )
        assert result.credited
        hooks = gw.runtime.webhooks
        assert await hooks.catch_up_credits(min_age_s=0) == 1
        assert await hooks.catch_up_credits(min_age_s=0) == 0  # from where it left off
        hooks._credit_cursor = None  # a new leader starts over the last hour: the dedupe key holds
        assert await hooks.catch_up_credits(min_age_s=0) == 0
        await wait_for(lambda: events_of(receiver) == ["payment.credited"])
        [payload] = receiver.verify_all(secret)
        assert payload["data"] == {"rail": "ark", "amount_sats": 25, "balance_sats": None, "late": False}


async def test_a_threshold_set_after_calls_applies_to_the_next_charge(hook_gateway_factory, receiver_factory):
    receiver = receiver_factory()
    async with hook_gateway_factory(receiver) as gw:
        token = await gw.new_session(10)
        assert (await gw.call("ping", {}, token=token)).status_code == 200  # no webhook yet: nothing to read
        await settle(gw)
        registered = await gw.client.post(
            "/v1/sessions/me/webhook", json={"callback_url": receiver.url, "low_balance_sats": 100}, headers=auth(token)
        )
        secret = registered.json()["secret"]
        assert (await gw.call("ping", {}, token=token)).status_code == 200
        await wait_for(lambda: events_of(receiver) == ["balance.low"])
        [payload] = receiver.verify_all(secret)
        assert payload["data"] == {"balance_sats": 6, "threshold_sats": 100}


async def test_each_session_sees_only_its_own_log_and_removing_the_webhook_cancels_what_is_pending(
    hook_gateway_factory, receiver_factory
):
    receiver = receiver_factory([500])
    async with hook_gateway_factory(receiver, webhook_backoff_s=0.3) as gw:
        token_a, _ = await session_with_webhook(gw, receiver.url, sats=10)
        token_b, _ = await session_with_webhook(gw, receiver.url, sats=10)
        finished = WithdrawalFinished(
            session_id=await _session_id(gw, token_a),
            withdrawal_id="wd_a",
            status="failed",
            amount_sats=5,
            fee_sats=0,
            destination_kind="lightning_address",
            reason="no route",
        )
        await gw.runtime.webhooks.emit_withdrawal(finished)
        await wait_for(lambda: len(receiver.of()) == 1)  # the first attempt got a 500; a retry is due
        assert (await gw.client.delete("/v1/sessions/me/webhook", headers=auth(token_a))).status_code == 200

        async def log_of(token: str) -> list[dict[str, Any]]:
            answer = await gw.client.get("/v1/sessions/me/webhook/deliveries", headers=auth(token))
            return answer.json()["deliveries"]  # type: ignore[no-any-return]

        async def canceled() -> bool:
            return [d["status"] for d in await log_of(token_a)] == ["canceled"]

        await wait_for(canceled)
        assert await log_of(token_b) == []
        assert len(receiver.of()) == 1  # nothing went out after the webhook was removed


async def test_a_real_withdrawal_is_announced_to_the_session_once(make_settings, simulator, receiver_factory):
    """The payout service's outcome reaches the session's webhook as withdrawal.completed (app wiring)."""
    receiver = receiver_factory()
    settings = make_settings(
        payment_mode="barkd",
        barkd_url=simulator.url,
        barkd_token=simulator.token,
        reconcile_interval_s=3600,
        payout_fee_base_sats=5,
        **webhook_settings(receiver),
    )
    async with running_gateway(settings) as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        response = await gw.client.post("/v1/sessions", json={"amount_sats": 1000, "callback_url": receiver.url})
        created = response.json()
        simulator.pay_invoice(created["funding"]["lightning_invoice"])
        await wait_for(lambda: events_of(receiver) == ["payment.credited"])
        address = simulator.payee_address()
        paid = await gw.client.post(
            "/v1/sessions/withdraw", json={"destination": address, "amount_sats": 600}, headers=auth(created["token"])
        )
        assert paid.status_code == 200, paid.text
        await wait_for(lambda: events_of(receiver) == ["payment.credited", "withdrawal.completed"])
        payload = receiver.verify_all(created["webhook"]["secret"])[1]
        assert payload["data"]["withdrawal_id"] == paid.json()["payout_id"]
        assert (payload["data"]["amount_sats"], payload["data"]["fee_sats"]) == (600, 5)
        assert payload["data"]["destination_kind"] == "ark"
