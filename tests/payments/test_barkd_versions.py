"""barkd 0.1.x has no long poll, no history filter and no receive `state`: the gateway still credits exactly once."""

from __future__ import annotations

import pytest

from arkgate.payments.barkd import parse_receive
from arkgate.simulator.server import SimulatorServer
from tests.conftest import running_gateway, wait_for


@pytest.fixture
def old_barkd(tmp_path):
    with SimulatorServer(tmp_path / "old-barkd", compat="0.1.4", wait_timeout_s=2.0) as sim:
        yield sim


async def test_gateway_on_barkd_0_1_4_credits_both_rails_once(old_barkd, make_settings):
    settings = make_settings(
        payment_mode="barkd", barkd_url=old_barkd.url, barkd_token=old_barkd.token, poll_interval_s=0.1
    )
    async with running_gateway(settings) as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        created = await gw.create_session(120)
        old_barkd.pay_invoice(created["funding"]["lightning_invoice"])
        old_barkd.send_ark(created["funding"]["ark_address"], 30)
        assert await wait_for(lambda: _balance_is(gw, created["token"], 150), timeout_s=15)
        await gw.runtime.watcher.reconcile()
        assert await gw.balance(created["token"]) == 150
        await gw.assert_ledger_consistent()


@pytest.mark.parametrize(
    ("body", "paid"),
    [
        ({"state": "settled", "finished_at": "t", "settled_at": "t"}, True),
        ({"state": "awaiting-payment", "finished_at": None}, False),
        ({"state": "htlcs-ready", "finished_at": None}, False),
        # 0.1.x: finished_at alone is set on cancel and expiry too; it is not payment.
        ({"finished_at": "t", "preimage_revealed_at": None}, False),
        ({"finished_at": "t", "preimage_revealed_at": "t"}, True),
        ({"finished_at": None, "preimage_revealed_at": None}, False),
    ],
)
def test_receive_is_paid_only_as_barkd_defines_it(body, paid):
    assert parse_receive({"payment_hash": "ab" * 32, "amount_sat": 1, **body}).is_paid is paid


async def _balance_is(gw, token, sats):
    return await gw.balance(token) == sats


@pytest.mark.parametrize(
    ("compat", "expected_mode"),
    [("0.6.0", "long-poll"), ("0.1.4", "polling")],
)
async def test_without_a_websocket_the_watcher_falls_back(tmp_path, make_settings, compat, expected_mode):
    with SimulatorServer(tmp_path / "barkd", compat=compat, wait_timeout_s=1.0) as sim:
        sim.faults(fail_routes=["/api/v1/notifications/ws"])
        settings = make_settings(payment_mode="barkd", barkd_url=sim.url, barkd_token=sim.token, poll_interval_s=0.1)
        async with running_gateway(settings) as gw:
            assert await gw.runtime.watcher.wait_ready(10)
            assert gw.runtime.watcher.mode == expected_mode
            created = await gw.create_session(80)
            sim.pay_invoice(created["funding"]["lightning_invoice"])
            sim.send_ark(created["funding"]["ark_address"], 20)
            assert await wait_for(lambda: _balance_is(gw, created["token"], 100), timeout_s=15)
            await gw.assert_ledger_consistent()


@pytest.mark.parametrize(("compat", "expected"), [("0.8.0", "0.8"), ("0.6.0", "0.6"), ("0.1.4", "0.1")])
async def test_the_adapter_tells_the_barkd_api_from_its_answers(tmp_path, compat, expected):
    from arkgate.payments.barkd import BarkdClient

    with SimulatorServer(tmp_path / "barkd", compat=compat, wait_timeout_s=1.0) as sim:
        barkd = BarkdClient(sim.url, sim.token)
        try:
            assert await barkd.api_version() == expected
            assert await barkd.speaks_08() is (expected == "0.8")
            # retry_for_secs reaches a 0.8 barkd only; older ones never see the field.
            address = await barkd.next_address()
            sim.send_ark(address, 5000)
            await barkd.send_ark(await barkd.next_address(), 1000, retry_for_secs=45)
            sent = sim.state()["last_send_request"]
            assert sent["retry_for_secs"] == (45 if expected == "0.8" else None)
            assert ("retry_for_secs" in sent["fields"]) is (expected == "0.8")
        finally:
            await barkd.aclose()
