"""The gateway killed (SIGKILL) between barkd settling a payment and the credit commit."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    def __init__(self, data_dir: Path, simulator: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "gateway.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARKGATE_")},
            "ARKGATE_PORT": str(self.port),
            "ARKGATE_DATA_DIR": str(data_dir),
            "ARKGATE_BARKD_URL": simulator.url,
            "ARKGATE_BARKD_TOKEN_FILE": str(simulator.state_dir / "auth_token"),
            "ARKGATE_PAYMENT_MODE": "barkd",
            "ARKGATE_RATE_LIMITS": "off",
            "ARKGATE_LOG_LEVEL": "debug",
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from arkgate.cli import main; main()", "serve"],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 120  # generous: start-up imports many libraries
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"gateway did not start: {self.log_path.read_text()[-2000:]}")

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
