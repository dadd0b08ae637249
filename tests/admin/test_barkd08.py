"""barkd 0.8 and the merchant wallet's long life (issue 18), run against the simulator in 0.8 and 0.6 mode.

Solvency with ``needs_refresh_sat``, the refresh policy's batching, fee limit and round alerts,
movement labels and ``reconcile``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from arkgate.admin.console import console_of
from arkgate.admin.monitor import Monitor
from arkgate.db import tables as t
from arkgate.payments.barkd import Vtxo
from arkgate.payments.ledger import hash_token
from arkgate.settings import Settings
from arkgate.simulator.server import SimulatorServer
from tests.admin.conftest import ADMIN_TOKEN, admin_get, admin_post
from tests.admin.test_wallet_safety import funded_session, log_entries
from tests.conftest import BARKD_COMPAT, Gateway, running_gateway, wait_for

V08 = BARKD_COMPAT == "0.8.0"


async def alert_names(gw: Gateway) -> list[str]:
    return [a["status"] for a in (await admin_get(gw.client, "alerts"))["alerts"]]


async def checks_pass(gw: Gateway, count: int) -> None:
    state = console_of(gw.app).state
    start = state.checks
    await wait_for(lambda: state.checks >= start + count)


async def test_vtxos_moving_to_needs_refresh_raise_no_false_solvency_alert(operator_gateway_factory, simulator):
    # The operator task's first pass runs at start-up; its solvency check is then driven by hand,
    # before the refresh policy could lock the VTXOs into a round.
    async with operator_gateway_factory(solvency_alert_sats=0, refresh_check_interval_s=3600) as gw:
        console = console_of(gw.app)
        await wait_for(lambda: console.state.checks >= 1)
        created = await gw.create_session(5000)
        # VTXOs at the server's maximum exit depth can no longer be sent: 0.8 moves them out of spendable_sat.
        simulator.send_ark(created["funding"]["ark_address"], 5000, vtxos=2, exit_depth=100)
        await wait_for(lambda: gw.balance(created["token"]))
        overview = await admin_get(gw.client, "overview")
        if V08:
            assert overview["wallet"]["spendable_sat"] == 0
            assert overview["wallet"]["needs_refresh_sat"] == 5000
            assert overview["wallet_categories"]["needs_refresh_sats"] == 5000
        assert overview["liabilities_sats"] == 5000
        assert overview["solvent"] is True
        monitor = Monitor(console)
        for _ in range(3):
            await monitor._watch_solvency()
        assert console.state.solvency_low is False
        assert "solvency_low" not in await alert_names(gw)


@contextlib.asynccontextmanager
async def operator_on(
    make_settings: Callable[..., Settings], sim: SimulatorServer, **overrides: Any
) -> AsyncIterator[Gateway]:
    values: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "payment_mode": "barkd",
        "barkd_url": sim.url,
        "barkd_token": sim.token,
        "reconcile_interval_s": 3600,
        "refresh_check_interval_s": 0.02,
        **overrides,
    }
    async with running_gateway(make_settings(**values)) as gw:
        yield gw


async def test_refresh_batches_small_vtxos_waits_out_a_dear_fee_and_alerts_on_failed_rounds(make_settings, tmp_path):
    # A 100-sat refresh fee: 1.5% of the 6,500 sats refreshed, over the 1% limit until a VTXO is urgent.
    with SimulatorServer(tmp_path / "sim", compat=BARKD_COMPAT, refresh_base_fee_sat=100, wait_timeout_s=2.0) as sim:
        async with operator_on(
            make_settings,
            sim,
            refresh_before_blocks=10,
            refresh_batch_below_sats=1000,
            refresh_max_fee_ppm=10_000,
        ) as gw:
            big = await funded_session(gw, sim, 5000)
            sim.mine(50)
            for _ in range(3):
                await funded_session(gw, sim, 500)
            [big_vtxo] = [v for v in await gw.runtime.barkd.vtxo_list() if v.amount_sats == 5000]
            assert big_vtxo.expiry_height is not None
            sim.mine(big_vtxo.expiry_height - 10 - sim.state()["tip_height"])  # the big one is due

            async def entries(status: str) -> list[dict[str, Any]]:
                return [e for e in await log_entries(gw, "refresh") if e["status"] == status]

            [skipped] = await wait_for(lambda: entries("skipped"))
            assert skipped["amount_sats"] == 6500  # the due VTXO and the three small ones
            assert skipped["detail"]["fee_sats"] == 100
            assert "exceeds 10000 ppm" in skipped["detail"]["reason"]
            await checks_pass(gw, 3)
            assert await entries("registered") == []  # held back, and the skip recorded once
            assert len(await entries("skipped")) == 1

            sim.faults(fail_rounds="failed")
            sim.mine(5)  # 5 blocks left: urgent, refreshed whatever the fee
            [registered] = await wait_for(lambda: entries("registered"))
            assert len(registered["detail"]["vtxos"]) == 4
            assert registered["detail"]["mode"] == ("delegated" if V08 else "interactive")
            if V08:
                assert registered["detail"]["scheduled_height"] < big_vtxo.expiry_height
            sim.mine(max(1, (registered["detail"]["scheduled_height"] or 0) - sim.state()["tip_height"]))
            await wait_for(lambda: entries("failed"))
            assert "refresh_failed" in await alert_names(gw)
            # The policy registers again at once (still urgent); this time the server cancels the round.
            sim.faults(fail_rounds="canceled")
            await wait_for(lambda: _at_least(entries("registered"), 2))
            sim.mine(1)

            async def canceled_alert() -> bool:
                alerts = (await admin_get(gw.client, "alerts"))["alerts"]
                return any("ended canceled" in a["detail"]["message"] for a in alerts)

            await wait_for(canceled_alert)
            sim.faults(fail_rounds=None)
            assert big["token"]


async def _at_least(items: Any, count: int) -> bool:
    return len(await items) >= count


@pytest.mark.skipif(not V08, reason="delegated refresh is how the policy speaks to barkd 0.8")
async def test_a_refused_delegation_falls_back_to_an_interactive_refresh(operator_gateway_factory, simulator):
    async with operator_gateway_factory(refresh_before_blocks=10) as gw:
        vtxo_expiry = simulator.state()["tip_height"] + 144
        await funded_session(gw, simulator, 4000)
        simulator.faults(fail_routes=["/api/v1/wallet/refresh/delegated"])
        simulator.mine(134)

        async def registered() -> list[dict[str, Any]]:
            return [e for e in await log_entries(gw, "refresh") if e["status"] == "registered"]

        [entry] = await wait_for(registered)
        assert entry["detail"]["mode"] == "interactive"
        assert entry["detail"]["scheduled_height"] is None
        simulator.mine(1)
        fresh = await wait_for(lambda: _fresh_vtxo(gw, vtxo_expiry))
        assert fresh.amount_sats == 4000


async def _fresh_vtxo(gw: Gateway, old_expiry: int) -> Vtxo | None:
    vtxos = await gw.runtime.barkd.vtxo_list()
    return next((v for v in vtxos if v.state == "spendable" and (v.expiry_height or 0) > old_expiry), None)


@pytest.mark.skipif(not V08, reason="vtxo-swept is a barkd 0.8 exit state")
async def test_an_exit_swept_before_it_committed_alerts_exit_failed(operator_gateway_factory, simulator):
    async with operator_gateway_factory(refresh_check_interval_s=3600) as gw:
        created = await gw.create_session(3000)
        tip = simulator.state()["tip_height"]
        simulator.send_ark(created["funding"]["ark_address"], 3000, expiry_height=tip + 1)
        await wait_for(lambda: gw.balance(created["token"]))
        simulator.fund_onchain(50_000)
        await admin_post(gw.client, "exits/start", {"force": True})
        simulator.mine(1)  # expired while the exit was still starting: the server sweeps it
        exits = (await admin_get(gw.client, "exits"))["exits"]
        assert [e["state"] for e in exits] == ["vtxo-swept"]
        assert "exit_failed" in await alert_names(gw)


async def session_id_of(gw: Gateway, token: str) -> int:
    session = await gw.runtime.ledger.session_by_token(hash_token(token))
    assert session is not None
    return int(session.id)


def barkd_history(sim: SimulatorServer) -> list[dict[str, Any]]:
    with httpx.Client(base_url=sim.url, headers=sim.headers()) as barkd:
        return list(barkd.get("/api/v1/history").json())


async def test_credited_movements_carry_the_session_and_reconcile_reports_differences(
    operator_gateway_factory, simulator
):
    async with operator_gateway_factory(refresh_check_interval_s=3600) as gw:
        ark_one = await funded_session(gw, simulator, 1200)
        ark_two = await funded_session(gw, simulator, 1300)
        lightning = await gw.create_session(1400)
        simulator.pay_invoice(lightning["funding"]["lightning_invoice"])
        await wait_for(lambda: gw.balance(lightning["token"]))
        sessions = {
            "ark_one": await session_id_of(gw, ark_one["token"]),
            "ark_two": await session_id_of(gw, ark_two["token"]),
            "lightning": await session_id_of(gw, lightning["token"]),
        }

        def labels() -> dict[int, Any]:
            return {
                m["id"]: (m.get("metadata") or {}).get("arkgate")
                for m in barkd_history(simulator)
                if m["subsystem"]["kind"] == "receive"
            }

        # Read back from barkd's own history: every credited movement names its session.
        found = await wait_for(lambda: all(labels().values()) and len(labels()) == 3 and labels())
        assert sorted(label["session_ids"][0] for label in found.values()) == sorted(sessions.values())
        assert {label["rail"] for label in found.values()} == {"ark", "lightning"}

        clean = await admin_get(gw.client, "reconcile")
        assert clean["consistent"] is True and clean["movements_checked"] == 3 and clean["applied"] is False

        # An unknown receive: money to a wallet address arkgate never handed out.
        stray = await gw.runtime.barkd.next_address()
        simulator.send_ark(stray, 777)
        # A deleted credit: ark_two's payment disappears from the ledger.
        async with gw.runtime.database.write() as conn:
            payment_id = (
                await conn.execute(select(t.payments.c.id).where(t.payments.c.session_id == sessions["ark_two"]))
            ).scalar_one()
            await conn.execute(delete(t.payment_vtxos).where(t.payment_vtxos.c.payment_id == payment_id))
            await conn.execute(delete(t.payments).where(t.payments.c.id == payment_id))

        async def report() -> dict[str, Any]:
            return await admin_get(gw.client, "reconcile")

        found_report = await wait_for(lambda: _with_unknown(report()))
        assert found_report["consistent"] is False
        [unknown] = found_report["unknown_receives"]
        assert unknown["amount_sats"] == 777 and unknown["received_on"] == [stray]
        [missing] = found_report["missing_credits"]
        assert missing["session_ids"] == [sessions["ark_two"]] and missing["amount_sats"] == 1300
        # Report-only: nothing changed in the ledger.
        assert await gw.balance(ark_two["token"]) == 1300
        assert (await admin_get(gw.client, "reconcile"))["missing_credits"] == [missing]

        # A lost label is written back only when asked.
        lightning_movement = next(m for m, label in labels().items() if label and label["rail"] == "lightning")
        with httpx.Client(base_url=simulator.url, headers=simulator.headers()) as barkd:
            barkd.post(f"/api/v1/history/{lightning_movement}/metadata", json={"arkgate": None})
        unlabelled = (await report())["unlabelled_credits"]
        assert [item["movement_id"] for item in unlabelled] == [lightning_movement]
        applied = await admin_post(gw.client, "reconcile", {"apply": True})
        assert applied["applied"] is True and applied["labels_written"] == 1
        assert labels()[lightning_movement]["session_ids"] == [sessions["lightning"]]


async def _with_unknown(report: Any) -> Any:
    body = await report
    return body if body["unknown_receives"] else None


def test_fixture_paths_exist() -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "barkd"
    assert (fixtures / "openapi-0.6.0.json").is_file() and (fixtures / "openapi-0.8.0.json").is_file()
