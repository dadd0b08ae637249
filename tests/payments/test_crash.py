"""The gateway killed (SIGKILL): between barkd settling a payment and the credit commit, and during paid calls."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from arkgate.db.engine import Database
from arkgate.payments.ledger import Ledger
from tests.ai_backends.fixtures import ai_overrides, running_backend
from tests.conftest import offline_defaults, wait_for, wait_for_sync
from tests.databases import backends, scratch_database
from tests.upstreams import UpstreamServer, upstream_server_fixture  # noqa: F401


@pytest.fixture
def ai_backend() -> Any:
    yield from running_backend()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setting_env(values: dict[str, Any]) -> dict[str, str]:
    """Settings as the ARKGATE_* variables a separate gateway process reads (lists comma-separated)."""
    env = {}
    for name, value in values.items():
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        env[f"ARKGATE_{name.upper()}"] = str(value)
    return env


class GatewayProcess:
    def __init__(self, data_dir: Path, simulator: Any = None, **settings: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "gateway.log"
        # The audit hook does not reach a child process: point every outside service at loopback.
        values: dict[str, Any] = {**offline_defaults(), "payment_mode": "free"}
        if simulator is not None:
            values.update(
                payment_mode="barkd",
                barkd_url=simulator.url,
                barkd_token_file=simulator.state_dir / "auth_token",
            )
        values.update(settings)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARKGATE_")},
            **setting_env(values),
            "ARKGATE_PORT": str(self.port),
            "ARKGATE_DATA_DIR": str(data_dir),
            "ARKGATE_RATE_LIMITS": "off",
            "ARKGATE_LOG_LEVEL": "debug",
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # The child keeps its own copy of the descriptor; ours is closed once it has started.
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from arkgate.cli import main; main()", "serve"],
                env=self.env,
                stdout=log,
                stderr=log,
            )

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_for_sync(healthy, timeout_s=120, interval_s=0.05)  # generous: start-up imports many libraries
        except AssertionError:
            raise AssertionError(f"gateway did not start: {self.log_path.read_text()[-2000:]}") from None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def test_sigkill_before_the_credit_commits_then_restart_credits_exactly_once(tmp_path, simulator):
    gateway = GatewayProcess(tmp_path, simulator)
    gateway.start()
    try:
        created = httpx.post(f"{gateway.url}/v1/sessions", json={"amount_sats": 300}).json()
        auth = {"Authorization": f"Bearer {created['token']}"}
        database = tmp_path / "arkgate.sqlite3"

        # Hold SQLite's write lock: the watcher can receive barkd's events but cannot commit a credit.
        blocker = sqlite3.connect(database, isolation_level=None, timeout=30)
        blocker.execute("BEGIN IMMEDIATE")
        events_before = gateway.log().count("watcher.event")
        simulator.pay_invoice(created["funding"]["lightning_invoice"])
        simulator.send_ark(created["funding"]["ark_address"], 100)
        # Lightning: movement-created (pending), then movement-updated (successful) whose credit now blocks.
        await wait_for(lambda: gateway.log().count("watcher.event") >= events_before + 2, timeout_s=10)
        gateway.kill()  # mid-credit: barkd has settled, nothing is committed
        blocker.execute("ROLLBACK")
        blocker.close()

        with sqlite3.connect(database) as check:
            assert check.execute("SELECT count(*) FROM payments").fetchone()[0] == 0

        gateway.start()
        await wait_for(lambda: httpx.get(f"{gateway.url}/v1/balance", headers=auth).json()["balance_sats"] == 400)
        gateway.kill()
        gateway.start()  # and once more: a replay after a clean restart credits nothing new
        await wait_for(lambda: "watcher.event" in gateway.log())
        assert httpx.get(f"{gateway.url}/v1/balance", headers=auth).json()["balance_sats"] == 400
        with sqlite3.connect(database) as check:
            keys = [row[0] for row in check.execute("SELECT payment_key FROM payments")]
            assert len(keys) == len(set(keys)) == 2
            balance = check.execute("SELECT balance_sats FROM sessions").fetchone()[0]
            ledger_sum = check.execute("SELECT sum(amount_sats) FROM payments WHERE session_id IS NOT NULL").fetchone()[
                0
            ]
            assert balance == ledger_sum == 400
    finally:
        if gateway.process and gateway.process.poll() is None:
            gateway.kill()


# --- calls in flight ------------------------------------------------------------------------------
COINGECKO = "/api/v3/simple/price"
FLAT = ("btc-price", "GET", {"currencies": "USD"})
METERED = ("ai-chat", "POST", {"prompt": "Say hi", "max_tokens": 50})
STREAMED = ("ai-chat", "POST", {"prompt": "Say hi", "max_tokens": 50, "stream": True})


def auth(token: str, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": key}


def paid_call(client: httpx.AsyncClient, call: tuple[str, str, dict[str, Any]], token: str) -> Any:
    endpoint, method, payload = call
    if method == "GET":
        return client.get(f"/api/{endpoint}", params=payload, headers=auth(token, f"crash-{endpoint}-{method}"))
    key = f"crash-{endpoint}-{'stream' if payload.get('stream') else 'plain'}"
    return client.post(f"/api/{endpoint}", json=payload, headers=auth(token, key))


async def receipts(gateway: GatewayProcess, token: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        response = await client.get("/v1/sessions/me/calls", headers={"Authorization": f"Bearer {token}"})
        return list(response.json()["calls"])


async def balance(gateway: GatewayProcess, token: str) -> int:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        response = await client.get("/v1/balance", headers={"Authorization": f"Bearer {token}"})
        return int(response.json()["balance_sats"])


@pytest.mark.parametrize("backend", backends())
async def test_sigkill_during_flat_metered_and_streaming_calls_refunds_each_once_and_retries_run(
    backend, tmp_path, upstream_server, ai_backend
):
    upstream_server.hang(COINGECKO, times=1)  # the first flat call waits on its upstream
    upstream_server.serve_file(COINGECKO, "coingecko/simple_price.json")
    ai_backend.stream_mode, ai_backend.stream_cut = "hold", 3  # the stream stops after 3 tokens
    async with scratch_database(backend, str(tmp_path / "data" / "arkgate.sqlite3")) as url:
        gateway = GatewayProcess(
            tmp_path / "data",
            database_url=url,
            coingecko_url=f"{upstream_server.url}/api/v3",
            btc_price_providers=["coingecko"],
            btc_price_timeout_s=60,
            **ai_overrides(ai_backend),
        )
        gateway.start()
        tokens: dict[tuple[str, str, Any], str] = {}
        try:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
                for call in (FLAT, METERED, STREAMED):
                    created = (await client.post("/v1/sessions", json={"amount_sats": 1000})).json()
                    tokens[_name(call)] = created["token"]
                before = {name: await balance(gateway, token) for name, token in tokens.items()}

                # The stream first, until tokens flow; then the flat call and a held metered one.
                streamed: list[str] = []

                async def stream() -> None:
                    endpoint, _, payload = STREAMED
                    headers = auth(tokens[_name(STREAMED)], "crash-ai-chat-stream")
                    async with client.stream("POST", f"/api/{endpoint}", json=payload, headers=headers) as r:
                        async for line in r.aiter_lines():
                            streamed.append(line)

                in_flight = [asyncio.create_task(stream())]
                await wait_for(lambda: streamed.count("event: delta") >= 3)
                ai_backend.hold_chat = True
                in_flight.append(asyncio.create_task(paid_call(client, FLAT, tokens[_name(FLAT)])))
                in_flight.append(asyncio.create_task(paid_call(client, METERED, tokens[_name(METERED)])))
                await wait_for(
                    lambda: upstream_server.hits(COINGECKO) == 1 and ai_backend.chat_arrived == 2, timeout_s=30
                )
                for name, token in tokens.items():
                    calls = await receipts(gateway, token)
                    assert [c["status"] for c in calls] == ["in_flight"], (name, calls)
                    assert await balance(gateway, token) < before[name]  # debited before the work

                gateway.kill()
                await asyncio.gather(*in_flight, return_exceptions=True)
                ai_backend.hold_chat, ai_backend.stream_mode = False, "ok"
                ai_backend.release()

                gateway.start()  # the start-up sweep refunds what the dead process left in flight
                for name, token in tokens.items():
                    assert await balance(gateway, token) == before[name], name
                    (call,) = await receipts(gateway, token)
                    assert call["status"] == "interrupted", (name, call)
                    assert call["refund_reason"] == "interrupted"
                    assert call["refunded_sats"] == call["charged_sats"] > 0
                await _assert_ledger_consistent(url)

                # Retries with the same Idempotency-Key run now, and are charged once.
                for call in (FLAT, METERED):
                    retry = await paid_call(client, call, tokens[_name(call)])
                    assert retry.status_code == 200, retry.text
                    assert "Idempotent-Replayed" not in retry.headers
                    assert (
                        await balance(gateway, tokens[_name(call)]) == before[_name(call)] - retry.json()["cost_sats"]
                    )
                    replay = await paid_call(client, call, tokens[_name(call)])
                    assert replay.headers.get("Idempotent-Replayed") == "true"
                streamed.clear()
                await stream()
                assert "event: done" in streamed, streamed  # the retried stream ran to its end
                for name, token in tokens.items():
                    calls = await receipts(gateway, token)
                    assert [c["status"] for c in calls] == ["ok", "interrupted"], (name, calls)
                    kept = sum(c["cost_sats"] for c in calls)
                    assert kept == calls[0]["cost_sats"] > 0  # charged once: only the retry kept sats
                    assert await balance(gateway, token) == before[name] - kept
                await _assert_ledger_consistent(url)
        finally:
            if gateway.process and gateway.process.poll() is None:
                gateway.kill()


def _name(call: tuple[str, str, dict[str, Any]]) -> tuple[str, str, Any]:
    return (call[0], call[1], bool(call[2].get("stream")))


async def _assert_ledger_consistent(url: str) -> None:
    database = Database(url)
    try:
        assert await Ledger(database, session_ttl_s=60, group_commit=False).inconsistent_sessions() == []
    finally:
        await database.dispose()


@pytest.mark.parametrize("backend", backends())
async def test_sigkill_during_a_sub_keys_call_gives_back_its_cap_and_the_balance(backend, tmp_path, upstream_server):
    upstream_server.hang(COINGECKO, times=1)  # the sub-key's first call waits on its upstream
    upstream_server.serve_file(COINGECKO, "coingecko/simple_price.json")
    async with scratch_database(backend, str(tmp_path / "data" / "arkgate.sqlite3")) as url:
        gateway = GatewayProcess(
            tmp_path / "data",
            database_url=url,
            coingecko_url=f"{upstream_server.url}/api/v3",
            btc_price_providers=["coingecko"],
            btc_price_timeout_s=60,
        )
        gateway.start()
        try:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
                parent = (await client.post("/v1/sessions", json={"amount_sats": 100})).json()["token"]
                owner = {"Authorization": f"Bearer {parent}"}
                limits = {"label": "crashy", "cap_sats": 1, "daily_cap_sats": 1}
                key = (await client.post("/v1/sessions/me/keys", json=limits, headers=owner)).json()

                async def spent() -> tuple[int, int]:
                    seen = (await client.get(f"/v1/sessions/me/keys/{key['key_id']}", headers=owner)).json()
                    return seen["spent_sats"], seen["spent_today_sats"]

                in_flight = asyncio.create_task(paid_call(client, FLAT, key["token"]))
                await wait_for(lambda: upstream_server.hits(COINGECKO) == 1)
                assert await spent() == (1, 1)  # the whole cap is taken by the call in flight
                gateway.kill()
                await asyncio.gather(in_flight, return_exceptions=True)

                gateway.start()  # the start-up sweep refunds the call, to the balance and to the key
                assert await spent() == (0, 0)
                assert await balance(gateway, parent) == 100
                (call,) = await receipts(gateway, parent)
                assert (call["status"], call["key_id"], call["key_label"]) == ("interrupted", key["key_id"], "crashy")
                retry = await paid_call(client, FLAT, key["token"])
                assert retry.status_code == 200, retry.text
                assert await spent() == (1, 1)
                assert await balance(gateway, parent) == 99
                await _assert_ledger_consistent(url)
        finally:
            if gateway.process and gateway.process.poll() is None:
                gateway.kill()
