"""End to end against the barkd simulator: refresh policy, sweeps, emergency exits and auto-exit."""

from __future__ import annotations

import secrets
from typing import Any

from embit import script
from embit.ec import PrivateKey
from embit.networks import NETWORKS

from arkgate.admin.console import console_of
from arkgate.payments.ledger import hash_token
from tests.admin.conftest import admin_get, admin_headers, admin_post
from tests.conftest import BARKD_COMPAT, wait_for


def external_signet_address() -> str:
    """A valid signet address the wallet does not own (the operator's cold storage)."""
    key = PrivateKey(bytes.fromhex("11" * 32))
    return str(script.p2wpkh(key.get_public_key()).address(NETWORKS["signet"]))


async def funded_session(gw: Any, simulator: Any, sats: int) -> dict[str, Any]:
    created = await gw.create_session(sats)
    simulator.send_ark(created["funding"]["ark_address"], sats)

    async def credited() -> bool:
        return await gw.balance(created["token"]) == sats

    await wait_for(credited)
    return created


async def log_entries(gw: Any, kind: str) -> list[dict[str, Any]]:
    return (await admin_get(gw.client, "log", params={"kind": kind}))["entries"]


async def exit_states(gw: Any) -> list[str]:
    return [e["state"] for e in (await admin_get(gw.client, "exits"))["exits"]]


async def test_vtxos_near_expiry_are_refreshed_by_the_policy_after_mining(operator_gateway_factory, simulator):
    async with operator_gateway_factory(refresh_before_blocks=10) as gw:
        await funded_session(gw, simulator, 5000)
        health = await admin_get(gw.client, "health")
        assert health["ark_connected"] is True
        assert health["network_matches"] is True
        [vtxo] = [v for v in health["vtxos"] if v["state"] == "spendable"]
        assert vtxo["blocks_left"] == 144
        assert vtxo["refresh_due"] is False
        assert health["next_refresh_due_in_blocks"] == 134
        assert await log_entries(gw, "refresh") == []

        simulator.mine(134)  # now 10 blocks from expiry: due

        async def registered() -> list[dict[str, Any]]:
            return [e for e in await log_entries(gw, "refresh") if e["status"] == "registered"]

        [entry] = await wait_for(registered)
        assert entry["detail"]["vtxos"] == [vtxo["id"]]
        assert entry["detail"]["source"] == "policy"
        assert entry["amount_sats"] == 5000
        assert entry["detail"]["fee_estimate_sats"] == 0  # within the fee policy
        tip = (await admin_get(gw.client, "health"))["tip_height"]
        if BARKD_COMPAT == "0.8.0":
            # Delegated to the server, scheduled half the refresh window (5 blocks) before expiry.
            assert entry["detail"]["mode"] == "delegated"
            scheduled = entry["detail"]["scheduled_height"]
            assert scheduled == vtxo["expiry_height"] - 5
            assert tip < scheduled < vtxo["expiry_height"]
            health = await admin_get(gw.client, "health")
            assert health["next_scheduled_refresh_height"] == scheduled
            assert health["barkd_version"] == "0.8"
            simulator.mine(scheduled - tip)  # the server carries it through at that height
        else:
            assert entry["detail"]["mode"] == "interactive"
            assert entry["detail"]["scheduled_height"] is None
            simulator.mine(1)  # the round runs

        async def refreshed() -> dict[str, Any] | None:
            current = await admin_get(gw.client, "health")
            fresh = [v for v in current["vtxos"] if v["state"] == "spendable"]
            done = [e for e in await log_entries(gw, "refresh") if e["status"] == "completed"]
            return current if done and fresh and all(not v["refresh_due"] for v in fresh) else None

        current = await wait_for(refreshed)
        [fresh] = [v for v in current["vtxos"] if v["state"] == "spendable"]
        assert fresh["id"] != vtxo["id"]
        assert fresh["amount_sats"] == 5000
        assert fresh["expiry_height"] == current["tip_height"] + 144
        assert fresh["expiry_height"] > vtxo["expiry_height"]
        overview = await admin_get(gw.client, "overview")
        assert overview["wallet"]["spendable_sat"] == 5000  # barkd's own object, untouched
        assert overview["liabilities_sats"] == 5000
        assert overview["solvent"] is True


async def test_refresh_failure_is_recorded_and_alerted(operator_gateway_factory, simulator):
    async with operator_gateway_factory(refresh_check_interval_s=3600) as gw:
        await funded_session(gw, simulator, 2000)
        simulator.faults(fail_routes=["/api/v1/wallet/refresh/all"])
        response = await gw.client.post("/admin/api/refresh", json={"all": True}, headers=admin_headers())
        assert response.status_code == 502
        assert [e["status"] for e in await log_entries(gw, "refresh")] == ["failed"]
        alerts = await admin_get(gw.client, "alerts")
        assert alerts["alerts"][0]["status"] == "refresh_failed"
        simulator.faults(fail_routes=[])
        ok = await admin_post(gw.client, "refresh", {"all": True})
        assert ok["refreshed"] is True


async def test_a_sweep_moves_exactly_the_surplus_and_leaves_liabilities_covered(operator_gateway_factory, simulator):
    margin = 500
    async with operator_gateway_factory(sweep_margin_sats=margin, refresh_check_interval_s=3600) as gw:
        first = await funded_session(gw, simulator, 3000)
        await funded_session(gw, simulator, 2000)
        # Revenue: 2,900 sats of calls (one partly refunded), so liabilities fall to 2,100.
        charge = await gw.runtime.ledger.charge(hash_token(first["token"]), "ai-chat", 2000)
        await gw.runtime.ledger.refund(charge, 100, reason="unused_tokens")
        await gw.runtime.ledger.charge(hash_token(first["token"]), "ai-chat", 1000)
        before = await admin_get(gw.client, "overview")
        assert before["liabilities_sats"] == 2100
        assert before["wallet"]["spendable_sat"] == 5000
        assert before["revenue_all_time_sats"] == 2900
        destination = external_signet_address()

        dry = await admin_post(gw.client, "sweep", {"destination": destination, "dry_run": True})
        plan = dry["plan"]
        assert dry["swept"] is False
        assert plan["reserve_sats"] == 2100 + margin
        assert plan["surplus_sats"] == 5000 - 2600
        assert plan["fee_sats"] > 0
        assert plan["amount_sats"] + plan["fee_sats"] == plan["surplus_sats"]
        assert plan["remaining_sats"] == 2600
        assert (await admin_get(gw.client, "overview"))["wallet"]["spendable_sat"] == 5000  # nothing moved

        done = await admin_post(gw.client, "sweep", {"destination": destination})
        assert done["swept"] is True
        assert done["plan"]["amount_sats"] == plan["amount_sats"]
        assert done["spendable_after_sats"] == 2100 + margin
        after = await admin_get(gw.client, "overview")
        assert after["wallet"]["spendable_sat"] == after["liabilities_sats"] + margin
        assert after["solvent"] is True
        assert after["surplus_sats"] == margin
        # The on-chain payment went to the operator's address, with barkd's fee on top.
        movements = [m for m in await gw.runtime.barkd.history() if m.subsystem == "bark.offboard"]
        assert [(d.value, d.amount_sats) for d in movements[0].sent_to] == [(destination, plan["amount_sats"])]

        again = await admin_post(gw.client, "sweep", {"destination": destination})
        assert again["swept"] is False
        assert "no surplus" in again["reason"]
        statuses = [e["status"] for e in await log_entries(gw, "sweep")]
        assert statuses == ["skipped", "sent", "dry_run"]

        await gw.assert_ledger_consistent()


async def test_sweep_refuses_a_bad_destination_with_barkds_reason(operator_gateway_factory, simulator):
    async with operator_gateway_factory(refresh_check_interval_s=3600) as gw:
        created = await funded_session(gw, simulator, 3000)
        await gw.runtime.ledger.charge(hash_token(created["token"]), "ai-chat", 2500)
        response = await gw.client.post(
            "/admin/api/sweep",
            json={"destination": "bc1qmainnetaddressonsignet", "dry_run": True},
            headers=admin_headers(),
        )
        assert response.status_code == 400
        assert "barkd refused" in response.json()["error"]


async def test_exit_start_is_refused_politely_when_onchain_funds_cannot_pay_fees(operator_gateway_factory, simulator):
    async with operator_gateway_factory(refresh_check_interval_s=3600) as gw:
        await funded_session(gw, simulator, 4000)
        estimate = await admin_get(gw.client, "exits/estimate")
        assert estimate["fundable"] is False
        assert estimate["needed_sats"] > 0
        refused = await gw.client.post("/admin/api/exits/start", json={}, headers=admin_headers())
        assert refused.status_code == 409
        body = refused.json()
        assert body["error_code"] == "exit_unfunded"
        assert body["needed_sats"] == estimate["needed_sats"]
        assert body["shortfall_sats"] == estimate["needed_sats"]
        assert f"{estimate['needed_sats']} sats" in body["error"]
        assert await exit_states(gw) == []

        simulator.fund_onchain(estimate["needed_sats"] + 1000)
        simulator.mine(1)
        assert (await admin_get(gw.client, "exits/estimate"))["fundable"] is True
        started = await admin_post(gw.client, "exits/start", {})
        assert len(started["started"]) == 1
        assert started["amount_sats"] == 4000
        claim_early = await gw.client.post("/admin/api/exits/claim", json={}, headers=admin_headers())
        assert claim_early.status_code == 409
        assert "no exit is claimable yet" in claim_early.json()["error"]


async def test_ark_server_offline_past_the_threshold_exits_and_claims_to_the_onchain_wallet(
    operator_gateway_factory, simulator
):
    async with operator_gateway_factory(auto_exit_after_s=0.2) as gw:
        await funded_session(gw, simulator, 5000)
        simulator.fund_onchain(20_000)
        simulator.mine(1)
        estimate = await admin_get(gw.client, "exits/estimate")
        assert estimate["fundable"] is True
        claim_fee = estimate["estimate"]["claim_fee_sats"]
        onchain_before = (await admin_get(gw.client, "overview"))["onchain"]["confirmed_sats"]
        assert onchain_before == 20_000

        simulator.set_online(False)

        async def auto_started() -> list[dict[str, Any]]:
            return [e for e in await log_entries(gw, "exit") if e["status"] == "started"]

        [started] = await wait_for(auto_started)
        assert started["detail"]["source"] == "auto-exit"
        assert started["amount_sats"] == 5000

        async def alerted() -> bool:
            # The exit is logged before its alert is sent: wait for the alert too.
            alerts = [a["status"] for a in (await admin_get(gw.client, "alerts"))["alerts"]]
            return "server_disconnected" in alerts and "exit_started" in alerts

        await wait_for(alerted)
        health = await admin_get(gw.client, "health")
        assert health["ark_connected"] is False
        assert health["monitor"]["auto_exit_started"] is True

        async def state_is(expected: str) -> bool:
            return await exit_states(gw) == [expected]

        # The background progress moves start -> processing; each later step needs blocks.
        await wait_for(lambda: state_is("processing"))
        simulator.mine(1)
        await wait_for(lambda: state_is("awaiting-delta"))
        overview = await admin_get(gw.client, "overview")
        assert overview["wallet"]["pending_exit_sat"] == 5000
        assert overview["wallet"]["spendable_sat"] == 0
        assert overview["solvent"] is True  # exiting sats still cover the 5,000 sats owed
        [exit_row] = (await admin_get(gw.client, "exits"))["exits"]
        assert exit_row["history"] == ["start", "processing"]
        claimable_height = exit_row["detail"]["claimable_height"]

        simulator.mine(claimable_height - health["tip_height"] - 1)
        await wait_for(lambda: state_is("claimable"))
        claimed = await admin_post(gw.client, "exits/claim", {})
        assert claimed["amount_sats"] == 5000
        assert claimed["destination"].startswith("tb1")
        assert await exit_states(gw) == ["claim-in-progress"]
        simulator.mine(1)
        await wait_for(lambda: state_is("claimed"))

        overview = await admin_get(gw.client, "overview")
        assert overview["onchain"]["confirmed_sats"] == onchain_before + 5000 - claim_fee
        assert overview["wallet"]["pending_exit_sat"] == 0
        recorded = [e["status"] for e in reversed(await log_entries(gw, "exit"))]
        assert recorded[:1] == ["started"]
        for state in ("start", "processing", "awaiting-delta", "claimable", "claim-in-progress", "claimed"):
            assert state in recorded, recorded
        changes = [a for a in (await admin_get(gw.client, "alerts"))["alerts"] if a["status"] == "exit_state_changed"]
        assert {a["detail"]["state"] for a in changes} >= {"processing", "awaiting-delta", "claimable", "claimed"}

        simulator.set_online(True)

        async def reconnected() -> bool:
            alerts = [a["status"] for a in (await admin_get(gw.client, "alerts"))["alerts"]]
            return "server_reconnected" in alerts

        await wait_for(reconnected)


async def test_solvency_and_orphan_payments_raise_alerts_once(operator_gateway_factory, simulator):
    async with operator_gateway_factory(solvency_alert_sats=1000) as gw:
        await funded_session(gw, simulator, 600)  # assets - liabilities = 0 < 1,000

        async def alert_names() -> list[str]:
            return [a["status"] for a in (await admin_get(gw.client, "alerts"))["alerts"]]

        await wait_for(lambda: _contains(alert_names(), "solvency_low"))
        overview = await admin_get(gw.client, "overview")
        assert overview["solvency_low"] is True
        assert overview["solvent"] is True
        stray = await gw.runtime.barkd.next_address()  # an address no session owns
        simulator.send_ark(stray, 2500)
        await wait_for(lambda: _contains(alert_names(), "orphan_payment"))
        overview = await admin_get(gw.client, "overview")
        assert overview["attention"]["orphan_payments"] == 1
        assert overview["solvency_low"] is False  # the orphan's sats are in the wallet, owed to no one
        checks = console_of(gw.app).state.checks
        await wait_for(lambda: console_of(gw.app).state.checks > checks + 2)
        names = await alert_names()
        assert names.count("solvency_low") == 1
        assert names.count("orphan_payment") == 1


async def _contains(names: Any, name: str) -> bool:
    return name in await names


async def test_the_operator_task_runs_in_barkd_mode_only_and_stops_with_the_gateway(
    operator_gateway_factory, admin_gateway_factory
):
    async with admin_gateway_factory() as gw:  # free mode
        assert "admin-monitor" not in gw.runtime.leader.job_tasks
    async with operator_gateway_factory() as gw:
        task = gw.runtime.leader.job_tasks["admin-monitor"]
        await wait_for(lambda: console_of(gw.app).state.checks > 0)
        assert not task.done()
    assert task.done()
    assert console_of(gw.app).state.monitor_running is False


def operator_invoice(amount_sats: int) -> str:
    """A BOLT11 invoice from the operator's own (outside) Lightning node."""
    from arkgate.simulator.invoices import encode_invoice

    return encode_invoice(
        network="signet",
        amount_sat=amount_sats,
        payment_hash=secrets.token_hex(32),
        payment_secret=secrets.token_hex(32),
        description="arkgate sweep",
        expiry_s=3600,
        node_secret=bytes.fromhex("22" * 32),
    )


async def test_sweep_to_a_lightning_invoice_pays_it_only_when_the_surplus_covers_it(
    operator_gateway_factory, simulator
):
    async with operator_gateway_factory(refresh_check_interval_s=3600) as gw:
        created = await funded_session(gw, simulator, 5000)
        await gw.runtime.ledger.charge(hash_token(created["token"]), "ai-chat", 2500)  # surplus 2,500
        too_big = await admin_post(gw.client, "sweep", {"destination": operator_invoice(4000)})
        assert too_big["swept"] is False
        assert "asks 4000 sats" in too_big["reason"]
        paid = await admin_post(gw.client, "sweep", {"destination": operator_invoice(2000)})
        assert paid["swept"] is True
        assert paid["plan"]["destination_type"] == "lightning_invoice"
        assert paid["plan"]["amount_sats"] == 2000
        assert paid["spendable_after_sats"] >= 2500  # liabilities stay covered
        assert len(paid["reference"]["payment_hash"]) == 64
        # barkd 0.8 is told how long to keep retrying the operator's send; 0.6 never sees the field.
        retry = simulator.state()["last_send_request"]["retry_for_secs"]
        assert retry == (60 if BARKD_COMPAT == "0.8.0" else None)
