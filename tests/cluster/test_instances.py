"""Three ``arkgate serve`` processes on one fresh PostgreSQL database, started at the same moment.

Each has its own data directory and no other shared setting: the lease, the L402 key, stream
tickets, downloads and live events all go through the database. The processes are started
once for the module and reused by its tests, in order (the last one kills the leader).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from arkgate.db.engine import async_url
from arkgate.simulator.server import SimulatorServer
from tests.admin.test_webhook import Receiver
from tests.cluster.processes import (
    ADMIN_TOKEN,
    EventStream,
    GatewayProcess,
    postgres_database,
    start_together,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    not os.environ.get("ARKGATE_TEST_POSTGRES_URL"), reason="ARKGATE_TEST_POSTGRES_URL not set"
)

LEASE_S = 2.0


class Cluster:
    def __init__(self, gateways: list[GatewayProcess], simulator: SimulatorServer, url: str, receiver: Receiver):
        self.gateways = gateways
        self.simulator = simulator
        self.database_url = url
        self.receiver = receiver

    @property
    def alive(self) -> list[GatewayProcess]:
        return [g for g in self.gateways if g.is_alive()]

    def query(self, sql: str, **params: Any) -> list[Any]:
        async def run() -> list[Any]:
            engine = create_async_engine(async_url(self.database_url))
            try:
                async with engine.connect() as conn:
                    return list((await conn.execute(text(sql), params)).all())
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def leaders(self) -> list[GatewayProcess]:
        return [g for g in self.alive if g.leader()["is_leader"]]

    def log_events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for gateway in self.gateways:
            for line in gateway.log().splitlines():
                if f'"{event}"' in line:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if entry.get("event") == event:
                        found.append({**entry, "instance": gateway.name})
        return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    with (
        SimulatorServer(root / "simulator", wait_timeout_s=2.0) as simulator,
        Receiver([]) as receiver,
        postgres_database(root) as url,
    ):
        env = {
            "ARKGATE_DATABASE_URL": url,
            "ARKGATE_BARKD_URL": simulator.url,
            "ARKGATE_BARKD_TOKEN_FILE": str(simulator.state_dir / "auth_token"),
            "ARKGATE_PAYMENT_MODE": "barkd",
            "ARKGATE_NETWORK": "signet",
            "ARKGATE_RATE_LIMITS": "off",
            "ARKGATE_LOG_JSON": "true",
            "ARKGATE_ADMIN_TOKEN": ADMIN_TOKEN,
            "ARKGATE_WEBHOOK_URL": receiver.url,
            "ARKGATE_LEADER_LEASE_S": str(LEASE_S),
            "ARKGATE_REFRESH_CHECK_INTERVAL_S": "0.2",
            "ARKGATE_REFRESH_BEFORE_BLOCKS": "10",
            "ARKGATE_AUTO_EXIT_AFTER_S": "1",
            "ARKGATE_SWEEP_MARGIN_SATS": "0",
            "ARKGATE_DATABASE_POOL_SIZE": "6",
        }
        gateways = [GatewayProcess(name, root / name, env) for name in ("A", "B", "C")]
        try:
            start_together(gateways)
            yield Cluster(gateways, simulator, url, receiver)
        finally:
            for gateway in gateways:
                gateway.stop()


def test_three_instances_started_together_all_come_up_on_one_migrated_schema(cluster: Cluster) -> None:
    for gateway in cluster.gateways:
        assert httpx.get(f"{gateway.url}/health", timeout=10).status_code == 200
        assert "UniqueViolation" not in gateway.log()
    assert [row[0] for row in cluster.query("SELECT version_num FROM alembic_version")] != []
    assert len(cluster.query("SELECT version_num FROM alembic_version")) == 1
    # One L402 root key, generated once in the database for all of them.
    assert len(cluster.query("SELECT name FROM shared_keys WHERE name = 'l402_root_key'")) == 1


def test_a_session_paid_once_is_active_everywhere_and_live_streams_on_every_instance_see_it(
    cluster: Cluster,
) -> None:
    a = cluster.gateways[0]
    created = httpx.post(f"{a.url}/v1/sessions", json={"amount_sats": 300}, timeout=30).json()
    token = created["token"]
    streams = [EventStream(g.url, token) for g in cluster.gateways]
    try:
        wait_until(lambda: all(s.names() == ["status"] for s in streams))
        cluster.simulator.pay_invoice(created["funding"]["lightning_invoice"])
        cluster.simulator.send_ark(created["funding"]["ark_address"], 200)
        for gateway in cluster.gateways:
            wait_until(lambda g=gateway: g.balance(token) == 500)
        wait_until(lambda: all(s.names().count("payment") == 2 for s in streams))
    finally:
        for stream in streams:
            stream.close()
    for stream in streams:
        assert stream.error is None
        payments = [data for name, data in stream.events if name == "payment"]
        assert sorted(p["amount_sats"] for p in payments) == [200, 300]
    # Every watcher saw both payments; each was credited exactly once, by one of them.
    [(session_id,)] = cluster.query("SELECT id FROM sessions WHERE balance_sats = 500")
    rows = cluster.query("SELECT payment_key, amount_sats FROM payments WHERE session_id = :s", s=session_id)
    assert sorted(amount for _, amount in rows) == [200, 300]
    credited = [e for e in cluster.log_events("payment.credited") if e.get("session_id") == session_id]
    assert len(credited) == 2
    creditors = {e["instance"] for e in credited}
    # The streams on the instances that did not credit got the events through PostgreSQL NOTIFY.
    assert len(creditors) < 3
    print(f"\ncredited by {sorted(creditors)}; streams on A, B and C all saw both payments")


def test_an_l402_macaroon_minted_on_a_is_redeemed_on_c(cluster: Cluster) -> None:
    a, _, c = cluster.gateways
    challenge = httpx.post(f"{a.url}/api/qr-generate", json={"data": "hello"}, timeout=30)
    assert challenge.status_code == 402
    payment = challenge.json()["payment"]
    preimage = cluster.simulator.pay_invoice(payment["lightning_invoice"])["preimage"]
    auth = {"Authorization": f"L402 {payment['macaroon']}:{preimage}"}
    redeemed = httpx.post(f"{c.url}/api/qr-generate", json={"data": "hello"}, headers=auth, timeout=30)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["balance_remaining"] == payment["amount_sats"] - 2


def test_a_download_made_on_a_is_served_by_b(cluster: Cluster) -> None:
    a, b, _ = cluster.gateways
    token = funded_token(cluster, 50)
    made = httpx.post(
        f"{a.url}/api/qr-generate",
        json={"data": "shared download", "download": True},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert made.status_code == 200, made.text
    path = httpx.URL(made.json()["data"]["download_url"]).path
    on_a = httpx.get(f"{a.url}{path}", timeout=30)
    on_b = httpx.get(f"{b.url}{path}", timeout=30)
    assert on_b.status_code == 200
    assert on_b.headers["content-type"] == "image/png"
    assert on_b.content == on_a.content and on_b.content.startswith(b"\x89PNG")
    assert httpx.get(f"{b.url}/v1/downloads/{'x' * 32}", timeout=30).status_code == 404


def test_300_concurrent_paid_calls_over_three_instances_never_overspend(cluster: Cluster) -> None:
    token = funded_token(cluster, 401)  # 200 calls of 2 sats, then 1 sat is too little

    async def storm() -> list[int]:
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:

            async def one(i: int) -> int:
                url = cluster.gateways[i % 3].url
                response = await client.post(
                    f"{url}/api/qr-generate",
                    json={"data": f"call {i}"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                return response.status_code

            return await asyncio.gather(*(one(i) for i in range(300)))

    statuses = asyncio.run(storm())
    assert statuses.count(200) == 200
    assert statuses.count(402) == 100
    assert {g.balance(token) for g in cluster.gateways} == {1}
    bad = cluster.query(
        "SELECT s.id FROM sessions s WHERE s.balance_sats <> "
        "(SELECT COALESCE(SUM(p.amount_sats), 0) FROM payments p WHERE p.session_id = s.id)"
        " - (SELECT COALESCE(SUM(CASE WHEN k.kind = 'debit' THEN k.amount_sats ELSE -k.amount_sats END), 0)"
        " FROM calls k WHERE k.session_id = s.id)"
    )
    assert bad == []


def test_exactly_one_leader_runs_the_monitor_and_each_webhook_is_delivered_once(cluster: Cluster) -> None:
    [leader] = wait_until(lambda: cluster.leaders() or None)
    for gateway in cluster.gateways:
        info = gateway.leader()
        if gateway is leader:
            assert {"admin-monitor", "webhook-resume"} <= set(info["jobs"])
        else:
            assert info["jobs"] == []
    # An alert raised on every instance reaches the operator's webhook once each.
    ids = [g.admin("alerts/test", "POST")["delivery_id"] for g in cluster.gateways]
    wait_until(lambda: set(ids) <= delivered_ids(cluster))
    rows = [row for row in cluster.query("SELECT id, status, attempts FROM webhook_deliveries") if row[0] in ids]
    assert len(rows) == 3 and all(status == "delivered" and attempts == 1 for _, status, attempts in rows)
    received = [int(r["headers"]["X-Arkgate-Delivery"]) for r in cluster.receiver.received]
    assert len(received) == len(set(received))

    # The refresh policy runs once, on the leader, however many instances see the VTXO due.
    cluster.simulator.mine(134)
    wait_until(lambda: len(refreshes(cluster)) == 1)
    checks = leader.admin("health")["monitor"]["checks"]
    wait_until(lambda: leader.admin("health")["monitor"]["checks"] > checks + 5)
    assert len(refreshes(cluster)) == 1
    assert refreshes(cluster)[0]["source"] == "policy"
    # barkd 0.8 carries a delegated refresh through at its scheduled height; 0.6's round runs at the next block.
    scheduled = refreshes(cluster)[0].get("scheduled_height")
    cluster.simulator.mine(scheduled - leader.admin("health")["tip_height"] if scheduled else 1)
    wait_until(lambda: cluster.query("SELECT id FROM operator_log WHERE kind = 'refresh' AND status = 'completed'"))


def test_killing_the_leader_hands_the_lease_over_and_the_wallet_stays_protected(cluster: Cluster) -> None:
    # A leader that hangs (SIGSTOP) keeps its process: the others wait for its lease to run out.
    [hung] = wait_until(lambda: cluster.leaders() or None)
    term = hung.leader()["term"]
    hung.pause()
    paused_at = time.monotonic()
    try:
        [successor] = wait_until(lambda: leaders_among(cluster, hung) or None, timeout_s=LEASE_S * 4 / 3 + 30)
        expiry_takeover_s = time.monotonic() - paused_at
    finally:
        hung.resume()
    assert successor.leader()["term"] == term + 1
    # Woken up, the old leader finds its lease taken and steps down: never two leaders.
    wait_until(lambda: not hung.leader()["is_leader"])
    assert [g.name for g in cluster.leaders()] == [successor.name]

    # A leader killed outright (SIGKILL) on this host: its dead process is seen and the lease taken at once.
    term = successor.leader()["term"]
    killed_at = time.monotonic()
    successor.kill()
    [heir] = wait_until(lambda: cluster.leaders() or None, timeout_s=LEASE_S * 4 / 3 + 30)
    kill_takeover_s = time.monotonic() - killed_at
    assert heir.leader()["term"] == term + 1
    print(
        f"\nlease {LEASE_S} s: {hung.name} hung (SIGSTOP), {successor.name} took over after {expiry_takeover_s:.2f} s; "
        f"{successor.name} killed (SIGKILL), {heir.name} took over after {kill_takeover_s:.2f} s"
    )
    successor = heir

    # Activation does not wait for a leader: every instance runs the payment watcher.
    other = next(g for g in cluster.alive if g is not successor)
    created = httpx.post(f"{other.url}/v1/sessions", json={"amount_sats": 100}, timeout=30).json()
    paid_at = time.monotonic()
    cluster.simulator.pay_invoice(created["funding"]["lightning_invoice"])
    wait_until(lambda: other.balance(created["token"]) == 100, interval_s=0.01)
    print(f"a payment made after the leader died was active in {1000 * (time.monotonic() - paid_at):.0f} ms")

    # The refresh policy goes on under the new leader...
    cluster.simulator.mine(134)
    wait_until(lambda: len(refreshes(cluster)) == 2)
    cluster.simulator.mine(1)
    # ...and so does the watchdog: the Ark server gone past the threshold starts one emergency exit.
    cluster.simulator.set_online(False)
    try:
        started = wait_until(
            lambda: cluster.query("SELECT detail FROM operator_log WHERE kind = 'exit' AND status = 'started'")
        )
        assert len(started) == 1 and json.loads(started[0][0])["source"] == "auto-exit"
    finally:
        cluster.simulator.set_online(True)


# --- helpers ----------------------------------------------------------------------------------------
def leaders_among(cluster: Cluster, excluded: GatewayProcess) -> list[GatewayProcess]:
    return [g for g in cluster.alive if g is not excluded and g.leader()["is_leader"]]


def funded_token(cluster: Cluster, sats: int) -> str:
    gateway = cluster.alive[0]
    created = httpx.post(f"{gateway.url}/v1/sessions", json={"amount_sats": sats}, timeout=30).json()
    cluster.simulator.send_ark(created["funding"]["ark_address"], sats)
    wait_until(lambda: gateway.balance(created["token"]) == sats)
    return str(created["token"])


def delivered_ids(cluster: Cluster) -> set[int]:
    return {int(r["headers"]["X-Arkgate-Delivery"]) for r in cluster.receiver.received if r["answered"] == 200}


def refreshes(cluster: Cluster) -> list[dict[str, Any]]:
    rows = cluster.query("SELECT detail FROM operator_log WHERE kind = 'refresh' AND status = 'registered'")
    return [json.loads(detail) for (detail,) in rows]
