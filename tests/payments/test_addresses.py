"""Address hygiene (issue 18): anonymous 402 challenges share a small pool of Ark addresses, and the
run of unused wallet keys after the last paid one stays short enough for a seed recovery."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from arkgate.db import tables as t
from arkgate.payments import addresses
from arkgate.simulator.server import SimulatorServer
from tests.agents.conftest import offline_catalog
from tests.conftest import BARKD_COMPAT, Gateway, running_gateway, wait_for

BARKD_GAP_LIMIT = 20  # the simulated barkd's recovery gap limit


async def address_rows(gw: Gateway) -> int:
    async with gw.runtime.database.read() as conn:
        query = select(func.count()).select_from(t.wallet_keys).where(t.wallet_keys.c.kind == "address")
        return int((await conn.execute(query)).scalar_one())


async def challenge(gw: Gateway) -> dict[str, Any]:
    response = await gw.client.post("/api/qr-generate", json={"data": "hello"})
    assert response.status_code == 402, response.text
    return response.json()["payment"]  # type: ignore[no-any-return]


async def test_500_anonymous_challenges_share_the_address_pool(make_settings, simulator):
    settings = make_settings(
        payment_mode="barkd",
        barkd_url=simulator.url,
        barkd_token=simulator.token,
        reconcile_interval_s=3600,
        address_pool_size=8,
    )
    async with running_gateway(settings, catalog=offline_catalog("qr-generate")) as gw:
        offered: set[str] = set()
        without_address = 0
        for _ in range(500):
            payment = await challenge(gw)
            assert payment["lightning_invoice"]  # every challenge can still be paid
            if payment["ark_address"]:
                offered.add(payment["ark_address"])
            else:
                without_address += 1
        assert len(offered) == 8
        assert without_address == 492
        assert await address_rows(gw) == 8
        # barkd was asked for 8 addresses, not 500 (the other derived keys are the 500 invoices).
        assert simulator.state()["next_key_index"] == 8 + 500

        # A caller who creates a session on purpose gets an address of its own.
        created = await gw.create_session(1000)
        assert created["funding"]["ark_address"] not in offered
        assert await address_rows(gw) == 9


async def run_gap_scenario(gw: Gateway, sim: SimulatorServer, challenges: int) -> tuple[list[str], dict[str, Any]]:
    """Pay one session, answer many anonymous challenges (rounds run meanwhile), pay another."""
    first = await gw.create_session(5000)
    sim.send_ark(first["funding"]["ark_address"], 5000)
    await wait_for(lambda: gw.balance(first["token"]))
    for n in range(challenges):
        await challenge(gw)
        if n % 4 == 3:
            sim.run_round()  # rounds keep happening: a gap-closing refresh completes
    last = await gw.create_session(3000)
    sim.send_ark(last["funding"]["ark_address"], 3000)
    await wait_for(lambda: gw.balance(last["token"]))
    sim.mine(1)
    paid = [first["funding"]["ark_address"], last["funding"]["ark_address"]]
    return paid, sim.recover(BARKD_GAP_LIMIT)


@pytest.fixture
def no_keeper_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addresses, "_KEEPER_BACKOFF_S", 0.0)


async def test_a_seed_recovery_at_barkds_gap_limit_finds_every_paid_address(make_settings, tmp_path, no_keeper_backoff):
    with SimulatorServer(tmp_path / "sim", compat=BARKD_COMPAT, wait_timeout_s=2.0) as sim:
        settings = make_settings(
            payment_mode="barkd",
            barkd_url=sim.url,
            barkd_token=sim.token,
            reconcile_interval_s=3600,
            address_pool_size=4,
            address_gap_limit=10,
        )
        async with running_gateway(settings, catalog=offline_catalog("qr-generate")) as gw:
            paid, recovery = await run_gap_scenario(gw, sim, challenges=60)
            report = await gw.runtime.sessions.address_book.report()
            assert report.gap < 10
        assert set(paid) <= set(recovery["found_addresses"]), recovery
        assert recovery["recovered_sat"] == recovery["unspent_sat"] == 8000


async def test_without_closing_the_gap_a_recovery_would_miss_the_later_payment(make_settings, tmp_path):
    """The control experiment: the same run with the gap left open loses the second payment."""
    with SimulatorServer(tmp_path / "sim", compat=BARKD_COMPAT, wait_timeout_s=2.0) as sim:
        settings = make_settings(
            payment_mode="barkd",
            barkd_url=sim.url,
            barkd_token=sim.token,
            reconcile_interval_s=3600,
            address_pool_size=4,
            address_gap_limit=10_000,
        )
        async with running_gateway(settings, catalog=offline_catalog("qr-generate")) as gw:
            paid, recovery = await run_gap_scenario(gw, sim, challenges=60)
        assert paid[0] in recovery["found_addresses"]
        assert paid[1] not in recovery["found_addresses"]
        assert recovery["recovered_sat"] == 5000 < recovery["unspent_sat"]
