"""Controls the gateway's watcher tests rely on: request counts, dropped WebSockets, long histories, no fingerprint."""

from __future__ import annotations

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from arkgate.simulator.server import SimulatorServer
from tests.conftest import wait_for_sync

V1 = "/api/v1"


def test_requests_are_counted_per_path_and_filtered_reads_apart(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.reset_requests()
    address = client.post(f"{V1}/wallet/addresses/next").json()["address"]
    client.get(f"{V1}/history")
    client.get(f"{V1}/history", params={"type": "ark", "value": address})
    client.get(f"{V1}/history", params={"type": "ark", "value": address})
    counts = sim.requests()
    assert counts == {
        f"POST {V1}/wallet/addresses/next": 1,
        f"GET {V1}/history": 1,
        f"GET {V1}/history?type&value": 2,
    }
    sim.reset_requests()
    assert sim.requests() == {}


async def test_dropping_websockets_closes_them_and_a_new_one_can_connect(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    ticket = client.get(f"{V1}/notifications/ws/ticket").json()
    async with connect(f"ws://127.0.0.1:{sim.port}{V1}/notifications/ws?ticket={ticket}") as ws:
        wait_for_sync(lambda: sim.state()["ws_subscribers"] == 1)
        assert sim.drop_websockets() == 1
        try:
            await ws.recv()
            closed = False
        except ConnectionClosed:
            closed = True
        assert closed
    assert sim.state()["ws_subscribers"] == 0


def test_seeded_history_is_old_outgoing_movements_without_notifications(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    assert sim.seed_history(500)["movements"] == 500
    history = client.get(f"{V1}/history").json()
    assert len(history) == 500
    assert {m["subsystem"]["kind"] for m in history} == {"send"}
    assert sim.state()["notifications_buffered"] == 0


def test_a_hidden_fingerprint_reads_as_null_until_shown(sim: SimulatorServer, client: httpx.Client) -> None:
    real = client.get(f"{V1}/wallet").json()["fingerprint"]
    sim.faults(hide_fingerprint=True)
    assert client.get(f"{V1}/wallet").json() == {"fingerprint": None}
    sim.faults(hide_fingerprint=False)
    assert client.get(f"{V1}/wallet").json()["fingerprint"] == real
