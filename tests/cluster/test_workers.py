"""``arkgate serve --workers 2`` on SQLite and on PostgreSQL: the same guarantees as separate instances.

Two worker processes behind one socket share the database: one leader, tickets and L402
macaroons that either worker accepts, live events that cross workers (the session_events
table on SQLite, NOTIFY on PostgreSQL), and concurrent paid calls that never overspend.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from arkgate.simulator.server import SimulatorServer
from tests.admin.test_webhook import Receiver
from tests.cluster.processes import ADMIN_TOKEN, EventStream, GatewayProcess, postgres_database, wait_until

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(
            not os.environ.get("ARKGATE_TEST_POSTGRES_URL"), reason="ARKGATE_TEST_POSTGRES_URL not set"
        ),
    ),
]


class Workers:
    def __init__(self, gateway: GatewayProcess, simulator: SimulatorServer, receiver: Receiver) -> None:
        self.gateway = gateway
        self.simulator = simulator
        self.receiver = receiver

    def log_events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.gateway.log().splitlines():
            if f'"{event}"' in line:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("event") == event:
                    found.append(entry)
        return found

    def funded_token(self, sats: int) -> str:
        url = self.gateway.url
        created = httpx.post(f"{url}/v1/sessions", json={"amount_sats": sats}, timeout=30).json()
        self.simulator.send_ark(created["funding"]["ark_address"], sats)
        wait_until(lambda: self.gateway.balance(created["token"]) == sats)
        return str(created["token"])


@pytest.fixture(scope="module", params=BACKENDS)
def workers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    root = tmp_path_factory.mktemp(f"workers-{request.param}")
    with SimulatorServer(root / "simulator", wait_timeout_s=2.0) as simulator, Receiver([]) as receiver:
        env = {
            "ARKGATE_BARKD_URL": simulator.url,
            "ARKGATE_BARKD_TOKEN_FILE": str(simulator.state_dir / "auth_token"),
            "ARKGATE_PAYMENT_MODE": "barkd",
            "ARKGATE_NETWORK": "signet",
            "ARKGATE_RATE_LIMITS": "off",
            "ARKGATE_LOG_JSON": "true",
            "ARKGATE_ADMIN_TOKEN": ADMIN_TOKEN,
            "ARKGATE_WEBHOOK_URL": receiver.url,
            "ARKGATE_DATABASE_POOL_SIZE": "6",
        }
        with _database(request.param, root) as url:
            if url:
                env["ARKGATE_DATABASE_URL"] = url
            gateway = GatewayProcess("workers", root / "gateway", env, workers=2)
            try:
                gateway.launch()
                gateway.wait_ready(time.monotonic() + 180)
                yield Workers(gateway, simulator, receiver)
            finally:
                gateway.stop()


def _database(kind: str, root: Any) -> contextlib.AbstractContextManager[str]:
    if kind == "postgresql":
        return postgres_database(root)
    return contextlib.nullcontext("")


def test_two_workers_start_together_and_elect_one_leader(workers: Workers) -> None:
    wait_until(lambda: len(workers.log_events("leader.elected")) >= 1)
    assert "Traceback" not in workers.gateway.log()
    answers = {json.dumps(workers.gateway.leader(), sort_keys=True) for _ in range(20)}
    leaders = [json.loads(a) for a in answers if json.loads(a)["is_leader"]]
    assert len({leader["instance"] for leader in leaders}) <= 1
    assert len(workers.log_events("leader.elected")) == 1
    ids = [workers.gateway.admin("alerts/test", "POST")["delivery_id"] for _ in range(4)]
    wait_until(lambda: set(ids) <= {int(r["headers"]["X-Arkgate-Delivery"]) for r in workers.receiver.received})
    received = [int(r["headers"]["X-Arkgate-Delivery"]) for r in workers.receiver.received]
    assert len(received) == len(set(received))  # every delivery (these and any alerts) once
    assert sorted(d for d in received if d in ids) == sorted(ids)


def test_live_streams_on_either_worker_see_a_payment_credited_once(workers: Workers) -> None:
    url = workers.gateway.url
    created = httpx.post(f"{url}/v1/sessions", json={"amount_sats": 250}, timeout=30).json()
    # Several streams: the kernel spreads the connections over both workers.
    streams = [EventStream(url, created["token"]) for _ in range(6)]
    try:
        wait_until(lambda: all(s.names() == ["status"] for s in streams))
        workers.simulator.pay_invoice(created["funding"]["lightning_invoice"])
        wait_until(lambda: all(s.names() == ["status", "payment"] for s in streams))
    finally:
        for stream in streams:
            stream.close()
    assert workers.gateway.balance(created["token"]) == 250
    credited = [e for e in workers.log_events("payment.credited") if e.get("amount_sats") == 250]
    assert len(credited) == 1


def test_l402_downloads_and_concurrent_calls_work_across_workers(workers: Workers) -> None:
    url = workers.gateway.url
    challenge = httpx.post(f"{url}/api/qr-generate", json={"data": "hi"}, timeout=30).json()["payment"]
    preimage = workers.simulator.pay_invoice(challenge["lightning_invoice"])["preimage"]
    auth = {"Authorization": f"L402 {challenge['macaroon']}:{preimage}"}
    for _ in range(4):  # new connections: either worker verifies the macaroon
        assert httpx.post(f"{url}/api/qr-generate", json={"data": "hi"}, headers=auth, timeout=30).status_code == 200

    token = workers.funded_token(41)
    bearer = {"Authorization": f"Bearer {token}"}
    made = httpx.post(f"{url}/api/qr-generate", json={"data": "file", "download": True}, headers=bearer, timeout=30)
    path = httpx.URL(made.json()["data"]["download_url"]).path
    for _ in range(4):
        assert httpx.get(f"{url}{path}", timeout=30).status_code == 200

    async def storm() -> list[int]:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=60)) as client:
            calls = [client.post(f"{url}/api/qr-generate", json={"data": f"{i}"}, headers=bearer) for i in range(60)]
            return [r.status_code for r in await asyncio.gather(*calls)]

    statuses = asyncio.run(storm())
    assert statuses.count(200) == 19 and statuses.count(402) == 41  # 39 sats left: 19 calls of 2 sats
    assert workers.gateway.balance(token) == 1
