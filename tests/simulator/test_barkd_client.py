"""The official barkd-client (0.8.0) models parse the simulator's responses (0.8.0 by default).

0.8.0 differs from 0.6.0 (BEHAVIOUR.md section 9): its ``Balance`` requires three fields 0.6.0
does not send, so that model parses the simulator's 0.8.0 balance and rejects its 0.6.0 one.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from barkd_client.models import (
    Balance,
    ExitProgressResponse,
    ExitTransactionStatus,
    LightningReceiveInfo,
    Movement,
    WalletVtxoInfo,
)

from arkgate.simulator.server import SimulatorServer

V1 = "/api/v1"


def test_client_models_parse_simulator_responses(sim: SimulatorServer, client: httpx.Client) -> None:
    address = client.post(f"{V1}/wallet/addresses/next").json()["address"]
    sim.send_ark(address, 25_000)
    invoice = client.post(f"{V1}/lightning/receives/invoice", json={"amount_sat": 8_000}).json()["invoice"]
    pending = LightningReceiveInfo.from_dict(client.get(f"{V1}/lightning/receives/{invoice}").json())
    assert pending.state == "awaiting-payment"
    sim.pay_invoice(invoice)
    settled = LightningReceiveInfo.from_dict(client.get(f"{V1}/lightning/receives/{invoice}").json())
    assert settled.state == "settled" and settled.amount_sat == 8_000

    movements = [Movement.from_dict(m) for m in client.get(f"{V1}/history").json()]
    assert {m.subsystem.name for m in movements} == {"bark.arkoor", "bark.lightning_receive"}
    vtxos = [WalletVtxoInfo.from_dict(v) for v in client.get(f"{V1}/wallet/vtxos?all=true").json()]
    assert sum(v.amount_sat for v in vtxos if v.policy_type == "pubkey") == 25_000 + 8_000 - 8

    client.post(f"{V1}/exits/start/all")
    progress = ExitProgressResponse.from_dict(client.post(f"{V1}/exits/progress", json={}).json())
    assert progress.done is False
    statuses = client.get(f"{V1}/exits/status/all?history=true&transactions=true").json()
    assert all(ExitTransactionStatus.from_dict(s).vtxo_id for s in statuses)


def test_client_0_8_0_balance_parses_the_0_8_balance(client: httpx.Client) -> None:
    balance = Balance.from_dict(client.get(f"{V1}/wallet/balance").json())
    assert balance.needs_refresh_sat == 0 and balance.pending_offboard_sat == 0


def test_client_0_8_0_balance_needs_fields_that_0_6_0_lacks(tmp_path: Path) -> None:
    with SimulatorServer(tmp_path / "sim06", compat="0.6.0") as sim06:
        body = httpx.get(f"{sim06.url}{V1}/wallet/balance", headers=sim06.headers()).json()
    assert "needs_refresh_sat" not in body
    with pytest.raises(Exception):
        Balance.from_dict(body)
    upgraded = Balance.from_dict(
        {**body, "needs_refresh_sat": 0, "pending_arkoor_send_sat": 0, "pending_offboard_sat": 0}
    )
    assert upgraded.spendable_sat == body["spendable_sat"]
