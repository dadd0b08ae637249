"""barkd's replies arrive as typed values, from a 0.8 daemon and from a 0.6 one alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from arkgate.payments.barkd import BarkdClient, parse_balance, parse_exit, parse_notification, parse_round
from arkgate.simulator.server import SimulatorServer


@pytest.mark.parametrize("compat", ["0.8.0", "0.6.0"])
async def test_wallet_replies_parse_on_both_barkd_dialects(tmp_path: Path, compat: str) -> None:
    with SimulatorServer(tmp_path / "barkd", compat=compat, wait_timeout_s=1.0) as sim:
        barkd = BarkdClient(sim.url, sim.token)
        try:
            sim.send_ark(await barkd.next_address(), 5000, vtxos=2)
            balance = await barkd.balance()
            assert balance.spendable_sats == 5000
            assert balance.is_v08 is (compat == "0.8.0")
            assert balance.assets_sats == 5000
            assert balance.raw["spendable_sat"] == 5000  # barkd's object, untouched, for the operator

            vtxos = await barkd.vtxo_list()
            assert sorted(v.amount_sats for v in vtxos) == [2500, 2500]
            assert all(v.state == "spendable" and v.is_live and v.expiry_height is not None for v in vtxos)
            assert all(v.vtxo_id and v.raw["id"] == v.vtxo_id for v in vtxos)

            fee = await barkd.fee_lightning_pay(1000)
            assert fee.fee_sats >= 0

            info = await barkd.ark_info()
            assert info.network is not None and info.vtxo_lifetime is not None

            round_info = await barkd.refresh_vtxos([vtxos[0].vtxo_id])
            assert round_info.inputs == [vtxos[0].vtxo_id]
            assert [r.round_id for r in await barkd.pending_rounds()] == [round_info.round_id]
        finally:
            await barkd.aclose()


@pytest.mark.parametrize(
    ("body", "assets", "v08", "exit_known"),
    [
        # 0.6: no needs_refresh_sat; pending_exit_sat present
        ({"spendable_sat": 10, "pending_in_round_sat": 2, "pending_exit_sat": 3}, 15, False, True),
        # 0.8: needs_refresh_sat counts; pending_exit_sat left out while the exit manager is busy
        ({"spendable_sat": 10, "needs_refresh_sat": 4, "pending_board_sat": None}, 14, True, False),
    ],
)
def test_balance_counts_the_operator_assets(
    body: dict[str, int | None], assets: int, v08: bool, exit_known: bool
) -> None:
    balance = parse_balance(body)
    assert (balance.assets_sats, balance.is_v08, balance.is_pending_exit_known) == (assets, v08, exit_known)


def test_round_outcome_prefers_08_failed_state() -> None:
    failed = parse_round({"id": 7, "status": {"status": "pending", "error": "boom"}, "state": "failed"})
    assert (failed.round_id, failed.outcome, failed.error) == ("7", "failed", "boom")
    assert parse_round({"id": 8, "status": {"status": "confirmed"}}).outcome == "confirmed"
    assert parse_round({}).outcome is None


def test_exit_and_notification_shapes() -> None:
    status = parse_exit({"vtxo_id": "v:0", "state": {"type": "awaiting-delta", "claimable_height": 120}})
    assert (status.vtxo_id, status.state, status.claimable_height, status.history) == ("v:0", "awaiting-delta", 120, [])
    assert parse_notification({"type": "channel-lagging"}).movement is None
    assert parse_notification("garbage").type is None
