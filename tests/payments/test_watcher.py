"""The watcher does not wait on luck: sync, catch-up after gaps, back to the WebSocket, a cursor for history."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from arkgate.db import tables as t
from arkgate.db.engine import utcnow
from arkgate.payments.barkd import parse_notification
from arkgate.payments.ledger import hash_token
from tests.conftest import wait_for

QUIET = {"payment_sync_interval_s": 3600, "reconcile_interval_s": 3600}  # only what the test triggers


async def all_credited(gw: Any, expected: dict[str, int]) -> bool:
    for token, sats in expected.items():
        if await gw.balance(token) != sats:
            return False
    return True


async def test_with_the_mailbox_push_dropped_40_payments_are_credited_by_the_watchers_sync(
    paid_gateway_factory, simulator
):
    async with paid_gateway_factory() as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        simulator.faults(mailbox_down=True)  # barkd never hears of incoming payments by itself
        sessions = [await gw.create_session(100) for _ in range(20)]
        started = time.monotonic()
        for created in sessions:
            simulator.pay_invoice(created["funding"]["lightning_invoice"])
            simulator.send_ark(created["funding"]["ark_address"], 50)
        await wait_for(lambda: all_credited(gw, {c["token"]: 150 for c in sessions}), timeout_s=30)
        print(f"40 payments with the mailbox push dropped credited in {time.monotonic() - started:.2f} s")
        assert gw.runtime.watcher.syncs >= 1
        await gw.assert_ledger_consistent()


async def test_receives_held_after_the_payer_has_the_preimage_are_driven_by_the_watchers_sync(
    paid_gateway_factory, simulator
):
    async with paid_gateway_factory() as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        simulator.faults(hold_receives="preimage-revealed")
        sessions = [await gw.create_session(100 + i) for i in range(40)]
        for created in sessions:
            paid = simulator.pay_invoice(created["funding"]["lightning_invoice"])
            assert paid["state"] == "preimage-revealed"  # the payer has the preimage; barkd stalled
        simulator.faults(hold_receives=None)  # the claim could go on now, but nothing drives it
        started = time.monotonic()
        await wait_for(lambda: all_credited(gw, {c["token"]: 100 + i for i, c in enumerate(sessions)}), timeout_s=30)
        print(f"40 held receives credited in {time.monotonic() - started:.2f} s")
        await gw.assert_ledger_consistent()


async def test_after_a_websocket_close_the_watcher_is_back_on_the_websocket(paid_gateway, simulator):
    watcher = paid_gateway.runtime.watcher
    assert watcher.mode == "websocket"
    connections = watcher.websocket_connections
    assert simulator.drop_websockets() == 1
    await wait_for(lambda: watcher.websocket_connections == connections + 1 and watcher.mode == "websocket")
    await wait_for(lambda: simulator.state()["ws_subscribers"] == 1)
    created = await paid_gateway.create_session(70)
    simulator.send_ark(created["funding"]["ark_address"], 70)
    await wait_for(lambda: all_credited(paid_gateway, {created["token"]: 70}))


async def test_a_dropped_notification_is_caught_up_at_the_next_event(paid_gateway_factory, simulator):
    async with paid_gateway_factory(**QUIET) as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        first, second = await gw.create_session(40), await gw.create_session(60)
        simulator.faults(drop_notifications=1)
        simulator.send_ark(first["funding"]["ark_address"], 40)  # its movement-created is lost
        simulator.send_ark(second["funding"]["ark_address"], 60)  # its id jumps by two: a gap
        await wait_for(lambda: all_credited(gw, {first["token"]: 40, second["token"]: 60}))
        await gw.assert_ledger_consistent()


async def test_channel_lagging_triggers_a_catch_up(paid_gateway_factory, simulator):
    async with paid_gateway_factory(**QUIET) as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        created = await gw.create_session(30)
        simulator.faults(drop_notifications=1)
        simulator.send_ark(created["funding"]["ark_address"], 30)
        await gw.runtime.watcher.handle_notification(parse_notification({"type": "channel-lagging"}))
        assert await gw.balance(created["token"]) == 30


async def test_a_restart_with_5000_old_history_entries_costs_what_is_pending(paid_gateway_factory, simulator):
    async with paid_gateway_factory(**QUIET) as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        for _ in range(3):
            await gw.create_session(100)  # 3 invoices and 3 addresses pending

    async def restart_counting() -> dict[str, int]:
        simulator.reset_requests()
        async with paid_gateway_factory(**QUIET) as gw:
            assert await gw.runtime.watcher.wait_ready(10)
            counts = simulator.requests()
        # The operator monitor (a leader job) reads the wallet's state once per check, whenever its lease
        # starts: what it reads does not depend on the history and is not the watcher's cost.
        monitor = (
            "/bitcoin/tip",
            "/wallet/ark-info",
            "/wallet/connected",
            "/wallet/vtxos",
            "/wallet/rounds",
            "/exits/",
            "balance",
        )
        return {path: n for path, n in counts.items() if not any(part in path for part in monitor)}

    short = await restart_counting()
    simulator.seed_history(5000)
    long = await restart_counting()
    print(f"barkd requests at restart: {sum(short.values())} with a short history, {sum(long.values())} with 5000")
    assert long == short
    assert "GET /api/v1/history" not in long  # the whole history is not read again
    assert long["GET /api/v1/history?type&value"] == 6  # one filtered read per pending receive


async def test_the_first_start_reads_the_whole_history_once_and_stores_a_cursor(paid_gateway_factory, simulator):
    simulator.seed_history(50)
    async with paid_gateway_factory(**QUIET) as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        assert simulator.requests()["GET /api/v1/history"] == 1
        cursor = await gw.runtime.ledger.cursor(f"history:{gw.runtime.watcher.wallet_id}")
        assert '"movement_id": 50' in cursor


async def test_no_ark_credit_while_barkd_reports_no_fingerprint(paid_gateway_factory, simulator):
    simulator.faults(hide_fingerprint=True)
    async with paid_gateway_factory(**QUIET) as gw:
        created = await gw.create_session(80)
        simulator.send_ark(created["funding"]["ark_address"], 80)
        simulator.reset_requests()
        # The watcher keeps asking for the fingerprint, crediting nothing meanwhile.
        await wait_for(lambda: simulator.requests().get("GET /api/v1/wallet", 0) >= 2)
        assert await gw.balance(created["token"]) == 0
        assert gw.runtime.watcher.wallet_id is None
        simulator.faults(hide_fingerprint=False)
        await wait_for(lambda: all_credited(gw, {created["token"]: 80}), timeout_s=20)
        fingerprint = gw.runtime.watcher.wallet_id
        async with gw.runtime.database.read() as conn:
            keys = [row.payment_key for row in await conn.execute(select(t.payments.c.payment_key))]
        assert len(keys) == 1 and keys[0].startswith(f"ark:{fingerprint}:")
        await gw.assert_ledger_consistent()


async def test_invoice_expiry_runs_even_when_barkd_history_fails(paid_gateway_factory, simulator):
    async with paid_gateway_factory(reconcile_interval_s=0.1, payment_sync_interval_s=3600) as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        created = await gw.create_session(100)
        async with gw.runtime.database.write() as conn:
            await conn.execute(update(t.invoices).values(expires_at=utcnow() - timedelta(minutes=1)))
        simulator.faults(fail_routes=["/api/v1/history"])

        session = await gw.runtime.ledger.session_by_token(hash_token(created["token"]))

        async def status() -> str:
            return str((await gw.runtime.ledger.invoices_of(session.id))[0].status)

        await wait_for(lambda: _equals(status(), "expired"))


async def _equals(awaitable: Any, expected: Any) -> bool:
    return await awaitable == expected
