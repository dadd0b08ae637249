"""Drive every barkd route on the simulator in 0.8.0 and 0.6.0 mode; validate each body against that spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import bolt11
import httpx
import pytest

from arkgate.simulator.server import SimulatorServer

from .contract import ContractClient, load_spec

V1 = "/api/v1"


@pytest.fixture(params=["0.8.0", "0.6.0"])
def compat(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sim(tmp_path: Path, compat: str) -> Iterator[SimulatorServer]:
    with SimulatorServer(tmp_path / "sim", wait_timeout_s=0.3, lightning_receive_ppm=1000, compat=compat) as server:
        yield server


@pytest.fixture
def api(client: httpx.Client, compat: str) -> ContractClient:
    return ContractClient(client, load_spec(compat))


def test_every_route_answers_with_schema_valid_bodies(sim: SimulatorServer, api: ContractClient, compat: str) -> None:
    c = api.call
    v08 = compat == "0.8.0"
    c("GET", "/ping")
    assert c("GET", f"{V1}/wallet")["fingerprint"]
    c("POST", f"{V1}/wallet/create", status=400, json={"network": "signet"})
    c("GET", f"{V1}/wallet/mnemonic", status=404)
    address = c("POST", f"{V1}/wallet/addresses/next")["address"]
    assert c("GET", f"{V1}/wallet/addresses/index/{{index}}", params={"index": 0})["address"] == address
    c("GET", f"{V1}/wallet/addresses/index/{{index}}", params={"index": 999}, status=500)
    bip = c("POST", f"{V1}/wallet/bip321", json={"amount_sat": 5000, "onchain": True, "label": "x"})
    assert bip["bip321"].startswith("bitcoin:")
    c("GET", f"{V1}/wallet/ark-info")
    c("GET", f"{V1}/wallet/connected")
    c("GET", f"{V1}/wallet/next-round")
    c("GET", f"{V1}/bitcoin/tip")

    # Money in: an arkoor payment and a Lightning receive.
    sim.send_ark(address, 50_000, vtxos=2)
    invoice = c("POST", f"{V1}/lightning/receives/invoice", json={"amount_sat": 20_000, "description": "t"})["invoice"]
    payment_hash = bolt11.decode(invoice).payment_hash
    c("GET", f"{V1}/lightning/receives")
    c("GET", f"{V1}/lightning/receives/{{identifier}}", params={"identifier": payment_hash})
    sim.pay_invoice(invoice)
    c("GET", f"{V1}/lightning/receives/{{identifier}}", params={"identifier": invoice})
    unpaid = c("POST", f"{V1}/lightning/receives/invoice", json={"amount_sat": 1000})["invoice"]
    c("DELETE", f"{V1}/lightning/receives/{{identifier}}", params={"identifier": unpaid})
    c("GET", f"{V1}/lightning/receives/{{identifier}}", params={"identifier": unpaid}, status=500)
    c("GET", f"{V1}/lightning/receives/{{identifier}}", params={"identifier": "zz"}, status=400)
    other = c("POST", f"{V1}/wallet/addresses/next")["address"]
    c("POST", f"{V1}/lightning/receives/invoice/for-address", json={"amount_sat": 2000, "address": other})

    assert ("needs_refresh_sat" in c("GET", f"{V1}/wallet/balance")) is v08
    vtxos = c("GET", f"{V1}/wallet/vtxos")
    vtxo_id = vtxos[0]["id"]
    c("GET", f"{V1}/wallet/vtxos/{{id}}", params={"id": vtxo_id})
    c("GET", f"{V1}/wallet/vtxos/{{id}}", params={"id": "00" * 32 + ":9"}, status=404)
    c("GET", f"{V1}/wallet/vtxos/{{id}}", params={"id": "bad"}, status=400)
    encoded = c("GET", f"{V1}/wallet/vtxos/{{id}}/encoded", params={"id": vtxo_id})["encoded"]
    c("POST", f"{V1}/wallet/import-vtxo", json={"vtxos": [encoded], "gap_limit": 50, "allow_partial": True})

    # History and notifications.
    movements = c("GET", f"{V1}/history")
    assert movements
    c("GET", f"{V1}/history?type=ark&value={address}")
    c("GET", f"{V1}/history?type=ark", status=400)
    c("GET", f"{V1}/wallet/history")
    c("GET", f"{V1}/wallet/movements")
    c("POST", f"{V1}/history/{{id}}/metadata", params={"id": movements[0]["id"]}, json={"order": "42"})
    c("POST", f"{V1}/history/{{id}}/metadata", params={"id": 9999}, json={"a": 1}, status=500)
    waited = c("GET", f"{V1}/notifications/wait")
    assert waited["notifications"]
    c("GET", f"{V1}/notifications/wait?since={waited['last_pushed_at']}")
    ticket = c("GET", f"{V1}/notifications/ws/ticket")
    assert isinstance(ticket, str) and len(ticket) == 64

    # Fees.
    onchain = c("POST", f"{V1}/onchain/addresses/next")["address"]
    c("GET", f"{V1}/fees/onchain")
    c("GET", f"{V1}/fees/board?amount_sat=10000")
    c("GET", f"{V1}/fees/lightning/receive?amount_sat=10000")
    c("GET", f"{V1}/fees/lightning/pay?amount_sat=10000")
    c("GET", f"{V1}/fees/offboard-all?address={onchain}")
    c("POST", f"{V1}/fees/offboard", json={"address": onchain, "vtxos": [vtxo_id]})
    c("GET", f"{V1}/fees/send-onchain?amount_sat=5000&address={onchain}")
    c("GET", f"{V1}/exits/fee")

    # Money out.
    foreign_invoice = _foreign_invoice()
    paid = c("POST", f"{V1}/lightning/pay", json={"destination": foreign_invoice})
    c("GET", f"{V1}/lightning/sends/{{identifier}}", params={"identifier": paid["payment_hash"]})
    c("POST", f"{V1}/wallet/send", json={"destination": other, "amount_sat": 1000, "retry_for_secs": 30})
    assert sim.state()["last_send_request"]["retry_for_secs"] == (30 if v08 else None)
    c("POST", f"{V1}/wallet/send-onchain", json={"destination": onchain, "amount_sat": 2000})
    c("POST", f"{V1}/message/sign", json={"message": "hi", "address": address})
    sig = c("POST", f"{V1}/message/sign", json={"message": "hi", "address": address})["signature"]
    assert c("POST", f"{V1}/message/verify", json={"message": "hi", "signature": sig, "address": address})["valid"]

    # Rounds.
    some = c("GET", f"{V1}/wallet/vtxos")
    c("POST", f"{V1}/wallet/refresh/vtxos", json={"vtxos": [some[0]["id"]]})
    tip = c("GET", f"{V1}/bitcoin/tip")["tip_height"]
    c("POST", f"{V1}/wallet/refresh/delegated/vtxos", json={"vtxos": [some[1]["id"]], "height": tip + 2})
    c("POST", f"{V1}/wallet/refresh/counterparty")
    states = {r.get("state") for r in c("GET", f"{V1}/wallet/rounds")}
    assert states == ({"pending", "delegated-pending"} if v08 else {None})
    sim.mine(1)
    c("GET", f"{V1}/wallet/rounds")
    sim.mine(2)
    sim.faults(fail_rounds="failed")
    c("POST", f"{V1}/wallet/refresh/vtxos", json={"vtxos": [c("GET", f"{V1}/wallet/vtxos")[0]["id"]]})
    sim.run_round()
    failed = c("GET", f"{V1}/wallet/rounds")
    assert "failed" in [r["status"]["status"] for r in failed]
    sim.faults(fail_rounds=None)
    sim.mine(1)
    c("POST", f"{V1}/wallet/refresh/all")
    sim.mine(1)
    c("POST", f"{V1}/wallet/sync")
    c("POST", f"{V1}/wallet/sync/mailbox")

    # On-chain wallet and boards.
    sim.fund_onchain(200_000)
    sim.mine(1)
    c("GET", f"{V1}/onchain/balance")
    c("POST", f"{V1}/onchain/send", json={"destination": onchain, "amount_sat": 10_000})
    sim.mine(1)
    c("POST", f"{V1}/onchain/send-many", json={"destinations": [f"{onchain}:5000"]})
    c("POST", f"{V1}/onchain/sync")
    c("GET", f"{V1}/onchain/utxos")
    c("GET", f"{V1}/onchain/transactions")
    sim.mine(1)
    c("POST", f"{V1}/boards/board-amount", json={"amount_sat": 20_000})
    c("GET", f"{V1}/boards/pending")
    sim.mine(1)
    c("POST", f"{V1}/boards/board-all")
    sim.mine(3)
    c("POST", f"{V1}/onchain/drain", json={"destination": onchain})

    # Exits.
    spendable = [v["id"] for v in c("GET", f"{V1}/wallet/vtxos") if v["state"]["type"] == "spendable"]
    c("POST", f"{V1}/exits/start/vtxos", json={"vtxos": [spendable[0]]})
    c("POST", f"{V1}/exits/start/vtxos", json={"vtxos": ["00" * 32 + ":1"]}, status=404)
    c("POST", f"{V1}/exits/cancel/{{vtxo_id}}", params={"vtxo_id": spendable[0]})
    c("POST", f"{V1}/exits/cancel/{{vtxo_id}}", params={"vtxo_id": "00" * 32 + ":1"}, status=404)
    c("POST", f"{V1}/exits/start/all")
    c("POST", f"{V1}/exits/progress", json={})
    sim.mine(1)
    c("POST", f"{V1}/exits/progress", json={})
    sim.mine(15)
    c("GET", f"{V1}/exits/status/all?history=true&transactions=true")
    c("GET", f"{V1}/exits/status/live")
    c("GET", f"{V1}/exits/status/finished")
    c("GET", f"{V1}/exits/status", status=308, follow_redirects=False)
    c("GET", f"{V1}/exits/status/vtxo/{{vtxo_id}}", params={"vtxo_id": spendable[1]})
    c("GET", f"{V1}/exits/status/{{vtxo_id}}", params={"vtxo_id": spendable[1]})
    c("POST", f"{V1}/exits/claim/vtxos", json={"destination": onchain, "vtxos": [spendable[1]]})
    c("POST", f"{V1}/exits/claim/all", json={"destination": onchain})
    c("POST", f"{V1}/wallet/offboard/all", json={}, status=500)
    sim.send_ark(address, 30_000)
    fresh = [v["id"] for v in c("GET", f"{V1}/wallet/vtxos") if v["state"]["type"] == "spendable"]
    offboard = c("POST", f"{V1}/wallet/offboard/vtxos", json={"vtxos": fresh[:1], "address": onchain})
    assert ("movement_id" in offboard) is v08
    sim.send_ark(address, 30_000)
    c("POST", f"{V1}/wallet/offboard/all", json={})

    if v08:
        # An exit that has not committed when its VTXO expires ends ``vtxo-swept`` (0.8.0).
        sim.send_ark(address, 21_000, expiry_height=c("GET", f"{V1}/bitcoin/tip")["tip_height"] + 1)
        doomed = next(v["id"] for v in c("GET", f"{V1}/wallet/vtxos") if v["amount_sat"] == 21_000)
        c("POST", f"{V1}/exits/start/vtxos", json={"vtxos": [doomed]})
        sim.mine(1)
        swept = c("GET", f"{V1}/exits/status/vtxo/{{vtxo_id}}", params={"vtxo_id": doomed})
        assert swept["state"]["type"] == "vtxo-swept"

    # Finally the wallet lifecycle: delete, then every wallet route answers 422.
    fingerprint = c("GET", f"{V1}/wallet")["fingerprint"]
    c("DELETE", f"{V1}/wallet", json={"dangerous": True, "fingerprint": fingerprint})
    c("GET", f"{V1}/wallet/balance", status=422)
    c("POST", f"{V1}/wallet/create", json={"network": "signet"})

    missing = api.all_operations() - api.covered
    assert not missing, sorted(missing)


def _foreign_invoice() -> str:
    """An invoice from some other Lightning node (not one of the simulator's receives)."""
    import hashlib

    from arkgate.simulator.invoices import encode_invoice

    return encode_invoice(
        network="signet",
        amount_sat=1500,
        payment_hash=hashlib.sha256(b"foreign").hexdigest(),
        payment_secret="22" * 32,
        description="coffee",
        expiry_s=600,
        node_secret=hashlib.sha256(b"foreign node").digest(),
    )
