"""End-to-end scenarios over real HTTP and WebSockets against SimulatorServer."""

from __future__ import annotations

import json
from pathlib import Path

import bolt11
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from arkgate.simulator.server import SimulatorServer
from tests.conftest import wait_for_sync

V1 = "/api/v1"


def _ws_url(sim: SimulatorServer, client: httpx.Client) -> str:
    ticket = client.get(f"{V1}/notifications/ws/ticket").json()
    return f"ws://127.0.0.1:{sim.port}{V1}/notifications/ws?ticket={ticket}"


async def test_paid_invoice_settles_with_movement_and_notifications(sim: SimulatorServer, client: httpx.Client) -> None:
    async with connect(_ws_url(sim, client)) as ws:
        invoice = client.post(f"{V1}/lightning/receives/invoice", json={"amount_sat": 10_000}).json()["invoice"]
        decoded = bolt11.decode(invoice)
        assert decoded.amount_msat == 10_000_000 and decoded.is_signet()
        result = sim.pay_invoice(invoice)
        assert result["payment_hash"] == decoded.payment_hash

        frames = [json.loads(await ws.recv()) for _ in range(2)]
    assert [f["type"] for f in frames] == ["movement-created", "movement-updated"]
    assert frames[0]["movement"]["status"] == "pending"
    assert "completed_at" not in frames[0]["movement"]["time"]

    receive = client.get(f"{V1}/lightning/receives/{decoded.payment_hash}").json()
    assert receive["state"] == "settled"
    assert receive["finished_at"] == receive["settled_at"] is not None
    assert receive["preimage_revealed_at"] is None and receive["htlc_vtxos"] == []
    assert client.get(f"{V1}/lightning/receives").json() == []

    movement = client.get(f"{V1}/history?type=invoice&value={invoice}").json()[0]
    assert movement["status"] == "successful"
    assert movement["subsystem"] == {"name": "bark.lightning_receive", "kind": "receive"}
    assert movement["metadata"]["payment_hash"] == decoded.payment_hash
    assert movement["metadata"]["payment_preimage"] == result["preimage"]
    assert movement["intended_balance_sat"] == 10_000
    assert movement["offchain_fee_sat"] == 10  # 1000 ppm
    assert movement["effective_balance_sat"] == 9_990
    assert movement["received_on"][0]["amount_sat"] == 10_000
    assert movement["time"]["created_at"].endswith("+00:00")

    waited = client.get(f"{V1}/notifications/wait").json()
    assert [n["type"] for n in waited["notifications"]] == ["movement-created", "movement-updated"]
    assert waited["last_pushed_at"].endswith("Z")
    after = client.get(f"{V1}/notifications/wait", params={"since": waited["last_pushed_at"]}).json()
    assert after == {"notifications": [], "last_pushed_at": waited["last_pushed_at"]}
    assert client.get(f"{V1}/wallet/balance").json()["spendable_sat"] == 9_990


def test_ark_payments_to_two_fresh_addresses_make_two_movements(sim: SimulatorServer, client: httpx.Client) -> None:
    first = client.post(f"{V1}/wallet/addresses/next").json()["address"]
    second = client.post(f"{V1}/wallet/addresses/next").json()["address"]
    assert first != second and first.startswith("tark1")
    sim.send_ark(first, 20_000, vtxos=3)
    sim.send_ark(second, 7_000)
    history = client.get(f"{V1}/history").json()
    assert [m["received_on"] for m in history] == [
        [{"destination": {"type": "ark", "value": second}, "amount_sat": 7_000}],
        [{"destination": {"type": "ark", "value": first}, "amount_sat": 20_000}],
    ]
    assert len(history[1]["output_vtxos"]) == 3 and "metadata" not in history[1]
    assert client.get(f"{V1}/history", params={"type": "ark", "value": first}).json() == [history[1]]


def test_cancelled_receive_is_gone_with_a_500(client: httpx.Client) -> None:
    invoice = client.post(f"{V1}/lightning/receives/invoice", json={"amount_sat": 5_000}).json()["invoice"]
    cancel = client.delete(f"{V1}/lightning/receives/{invoice}")
    assert cancel.status_code == 200 and cancel.content == b""
    gone = client.get(f"{V1}/lightning/receives/{invoice}")
    assert gone.status_code == 500
    assert "no pending lightning receive found" in gone.json()["message"]
    assert client.delete(f"{V1}/lightning/receives/{invoice}").status_code == 500


def test_held_receive_cannot_be_cancelled_and_sync_completes_it(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults(hold_receives="htlcs-ready")
    invoice = client.post(f"{V1}/lightning/receives/invoice", json={"amount_sat": 5_000}).json()["invoice"]
    sim.pay_invoice(invoice)
    assert client.get(f"{V1}/lightning/receives/{invoice}").json()["state"] == "htlcs-ready"
    assert client.get(f"{V1}/wallet/balance").json()["claimable_lightning_receive_sat"] == 4_995
    refused = client.delete(f"{V1}/lightning/receives/{invoice}")
    assert refused.status_code == 500 and "HTLCs already granted" in refused.json()["message"]
    sim.faults(hold_receives=None)
    assert client.post(f"{V1}/wallet/sync").content == b""
    assert client.get(f"{V1}/lightning/receives/{invoice}").json()["state"] == "settled"


def test_unpaid_invoice_is_reaped_by_sync_after_expiry_and_grace(sim: SimulatorServer, client: httpx.Client) -> None:
    invoice = client.post(f"{V1}/lightning/receives/invoice", json={"amount_sat": 5_000}).json()["invoice"]
    sim.advance_time(3600 + 61)
    assert client.get(f"{V1}/lightning/receives/{invoice}").json()["state"] == "awaiting-payment"
    client.post(f"{V1}/wallet/sync")
    assert client.get(f"{V1}/lightning/receives/{invoice}").status_code == 500


def test_near_expiry_vtxos_refresh_into_fresh_ones_after_the_round(sim: SimulatorServer, client: httpx.Client) -> None:
    address = client.post(f"{V1}/wallet/addresses/next").json()["address"]
    tip = client.get(f"{V1}/bitcoin/tip").json()["tip_height"]
    sim.send_ark(address, 30_000, vtxos=2, expiry_height=tip + 5)
    pending = client.post(f"{V1}/wallet/refresh/all").json()
    assert pending["status"] == {"status": "pending"}
    locked = client.get(f"{V1}/wallet/vtxos").json()
    assert {v["state"]["type"] for v in locked} == {"locked"}
    assert client.get(f"{V1}/wallet/balance").json()["pending_in_round_sat"] == 30_000
    sim.mine(1)
    fresh = client.get(f"{V1}/wallet/vtxos").json()
    assert len(fresh) == 1 and fresh[0]["expiry_height"] == tip + 1 + 144
    refresh = client.get(f"{V1}/history").json()[0]
    assert refresh["subsystem"] == {"name": "bark.round", "kind": "refresh"} and refresh["status"] == "successful"
    assert refresh["output_vtxos"] == [fresh[0]["id"]]
    assert client.get(f"{V1}/wallet/rounds").json()[0]["status"]["status"] == "unconfirmed"


def test_exit_of_all_vtxos_reaches_claimed(sim: SimulatorServer, client: httpx.Client) -> None:
    address = client.post(f"{V1}/wallet/addresses/next").json()["address"]
    sim.send_ark(address, 40_000)
    client.post(f"{V1}/exits/start/all")
    progress = client.post(f"{V1}/exits/progress", json={}).json()
    assert progress["done"] is False and progress["exits"][0]["state"]["type"] == "processing"

    def state() -> str:
        return str(client.get(f"{V1}/exits/status/all").json()[0]["state"]["type"])

    for _ in range(30):
        if state() == "claimable":
            break
        sim.mine(1)
    assert state() == "claimable"
    assert client.get(f"{V1}/wallet/vtxos").json()[0]["state"] == {"type": "exited"}
    assert client.get(f"{V1}/wallet/balance").json()["pending_exit_sat"] == 40_000
    destination = client.post(f"{V1}/onchain/addresses/next").json()["address"]
    assert client.post(f"{V1}/exits/claim/all", json={"destination": destination}).status_code == 200
    assert state() == "claim-in-progress"
    sim.mine(1)
    assert state() == "claimed"
    exit_movement = client.get(f"{V1}/history").json()[0]
    assert exit_movement["subsystem"]["name"] == "bark.exit" and exit_movement["status"] == "successful"
    assert client.get(f"{V1}/onchain/balance").json()["confirmed_sat"] > 0


def test_restart_keeps_state_but_clears_notifications(sim: SimulatorServer, client: httpx.Client) -> None:
    address = client.post(f"{V1}/wallet/addresses/next").json()["address"]
    sim.send_ark(address, 12_000)
    token, port = sim.token, sim.port
    sim.restart()
    assert (sim.token, sim.port) == (token, port)
    with httpx.Client(base_url=sim.url, headers=sim.headers()) as fresh:
        assert fresh.get(f"{V1}/wallet/balance").json()["spendable_sat"] == 12_000
        assert fresh.get(f"{V1}/wallet/addresses/index/0").json()["address"] == address
        assert fresh.get(f"{V1}/notifications/wait").json()["notifications"] == []


async def test_slow_websocket_consumer_gets_channel_lagging(sim: SimulatorServer, client: httpx.Client) -> None:
    address = client.post(f"{V1}/wallet/addresses/next").json()["address"]
    async with connect(_ws_url(sim, client)) as ws:
        wait_for_sync(lambda: sim.state()["ws_subscribers"] == 1)
        sim.faults(ws_paused=True)
        for _ in range(70):
            sim.send_ark(address, 1_000)
        sim.faults(ws_paused=False)
        frames = [json.loads(await ws.recv()) for _ in range(65)]
    assert frames[0] == {"type": "channel-lagging"}
    assert all(f["type"] == "movement-created" for f in frames[1:])
    assert frames[-1]["movement"]["id"] == 70


async def test_websocket_ticket_is_single_use(sim: SimulatorServer, client: httpx.Client) -> None:
    url = _ws_url(sim, client)
    async with connect(url):
        pass
    with pytest.raises(InvalidStatus) as info:
        async with connect(url):
            pass
    assert info.value.response.status_code == 401
    assert json.loads(info.value.response.body) == {"message": "Invalid websocket ticket"}


def test_mailbox_down_holds_arkoor_payments_until_sync(sim: SimulatorServer, client: httpx.Client) -> None:
    address = client.post(f"{V1}/wallet/addresses/next").json()["address"]
    sim.faults(mailbox_down=True)
    assert sim.send_ark(address, 5_000)["held"] is True
    assert client.get(f"{V1}/history").json() == []
    sim.faults(mailbox_down=False)
    assert client.post(f"{V1}/wallet/sync/mailbox").json()["checkpoint"] == 1
    assert len(client.get(f"{V1}/history").json()) == 1


def test_duplicate_arkoor_fault_records_same_outputs_twice(sim: SimulatorServer, client: httpx.Client) -> None:
    address = client.post(f"{V1}/wallet/addresses/next").json()["address"]
    sim.faults(duplicate_arkoor=1)
    sim.send_ark(address, 5_000)
    first, second = client.get(f"{V1}/history").json()
    assert first["id"] != second["id"] and first["output_vtxos"] == second["output_vtxos"]


def test_offline_server_fails_like_barkd(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.set_online(False)
    assert client.get(f"{V1}/wallet/connected").json() == {"connected": False}
    info = client.get(f"{V1}/wallet/ark-info")
    assert info.status_code == 404 and info.json()["resources"] == ["ark server"]
    created = client.post(f"{V1}/lightning/receives/invoice", json={"amount_sat": 1_000})
    assert created.status_code == 500 and created.json()["message"].startswith("Failed to create invoice")
    sim.set_online(True)
    assert client.get(f"{V1}/wallet/connected").json() == {"connected": True}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "body"),
    [
        ("GET", "/nope", {"content": b"xyz"}, 404, '"path not found: xyz"'),
        ("GET", f"{V1}/history/", {}, 404, '"path not found: "'),
        ("DELETE", f"{V1}/wallet/balance", {}, 405, ""),
        ("POST", f"{V1}/lightning/receives/invoice", {"content": b"{}"}, 415, None),
        (
            "POST",
            f"{V1}/lightning/receives/invoice",
            {"json": None, "content": b"{", "headers": {"content-type": "application/json"}},
            400,
            None,
        ),
        ("POST", f"{V1}/lightning/receives/invoice", {"json": {"amount_sat": "x"}}, 422, None),
        ("GET", f"{V1}/wallet/addresses/index/abc", {}, 400, None),
        (
            "GET",
            f"{V1}/history",
            {"params": {"type": "ark"}},
            400,
            '{"message": "`type` and `value` must be supplied together"}',
        ),
        ("GET", f"{V1}/notifications/wait", {"params": {"since": "yesterday"}}, 400, None),
    ],
)
def test_bad_requests_get_barkd_error_shapes(
    client: httpx.Client, method: str, path: str, kwargs: dict[str, object], status: int, body: str | None
) -> None:
    kwargs = {k: v for k, v in kwargs.items() if not (k == "json" and v is None)}
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    if body is not None:
        assert response.text == body
    if status in (415, 400, 422) and body is None:
        assert response.headers["content-type"].startswith("text/plain")


def test_missing_and_invalid_tokens_are_401(sim: SimulatorServer) -> None:
    plain = httpx.get(f"{sim.url}{V1}/wallet/balance")
    assert (plain.status_code, plain.json()) == (401, {"message": "missing auth token"})
    wrong = httpx.get(f"{sim.url}{V1}/wallet/balance", headers={"Authorization": "Bearer " + "A" * 44})
    assert (wrong.status_code, wrong.json()) == (401, {"message": "invalid auth token"})
    assert httpx.get(f"{sim.url}/ping").text == "pong"


def test_compat_0_1_4_receive_model_and_paths(tmp_path: Path) -> None:
    with (
        SimulatorServer(tmp_path / "old", compat="0.1.4") as old,
        httpx.Client(base_url=old.url, headers=old.headers()) as c,
    ):
        assert c.get(f"{V1}/notifications/wait").status_code == 404
        assert c.get(f"{V1}/history").status_code == 404
        invoice = c.post(f"{V1}/lightning/receives/invoice", json={"amount_sat": 3_000}).json()["invoice"]
        c.delete(f"{V1}/lightning/receives/{invoice}")
        receive = c.get(f"{V1}/lightning/receives/{invoice}").json()
        assert "state" not in receive and receive["finished_at"] is not None
        assert receive["preimage_revealed_at"] is None
        unknown = c.get(f"{V1}/lightning/receives/{'ab' * 32}")
        assert unknown.status_code == 404
        assert unknown.json() == {"resources": ["ab" * 32], "message": "No invoice found"}
        assert c.get(f"{V1}/wallet/history").status_code == 200
