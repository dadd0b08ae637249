"""Real ``arkgate serve`` processes sharing one database, and clients that watch them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_for_sync
from tests.databases import scratch_database

START_TIMEOUT_S = 180.0  # generous: 2 cores, several processes importing every library at once
ADMIN_TOKEN = "adm_cluster_test_7c1d2e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """One ``arkgate serve`` with its own data directory and port."""

    def __init__(self, name: str, data_dir: Path, env: dict[str, str], *, workers: int = 1) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "gateway.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARKGATE_")},
            "ARKGATE_PORT": str(self.port),
            "ARKGATE_DATA_DIR": str(data_dir),
            "ARKGATE_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        argv = [sys.executable, "-c", "from arkgate.cli import main; main()", "serve"]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        # A process group of its own: SIGKILL reaches uvicorn's worker processes too. The child keeps its
        # own copy of the log's descriptor; ours is closed once it has started.
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, env=self.env, stdout=log, stderr=log, start_new_session=True)

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited at start-up:\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"{self.name} did not start:\n{self.log()[-3000:]}")

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, the lease is not released."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(15)

    def pause(self) -> None:
        """SIGSTOP: alive but silent, like a hung or partitioned instance."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    # --- API ----------------------------------------------------------------------------------
    def admin(self, path: str, method: str = "GET", body: Any = None) -> Any:
        response = httpx.request(
            method,
            f"{self.url}/admin/api/{path}",
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def leader(self) -> dict[str, Any]:
        return self.admin("health")["leader"]  # type: ignore[no-any-return]

    def balance(self, token: str) -> int:
        response = httpx.get(f"{self.url}/v1/balance", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 200, response.text
        return int(response.json()["balance_sats"])


def start_together(gateways: list[GatewayProcess]) -> None:
    """Launch every process at the same moment, then wait for all of them."""
    for gateway in gateways:
        gateway.launch()
    deadline = time.monotonic() + START_TIMEOUT_S
    for gateway in gateways:
        gateway.wait_ready(deadline)


class EventStream:
    """A live session stream read in a thread: the events it has received so far."""

    def __init__(self, url: str, token: str) -> None:
        ticket = httpx.post(
            f"{url}/v1/sessions/stream-ticket", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert ticket.status_code == 200, ticket.text
        self.url = f"{url}/v1/sessions/events?ticket={ticket.json()['ticket']}"
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=httpx.Timeout(60, read=60)) as response:
                assert response.status_code == 200, response.read()
                name = ""
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        self.events.append((name, json.loads(line.removeprefix("data: "))))
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def close(self) -> None:
        self._stop.set()


@contextlib.contextmanager
def postgres_database(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database for the module (created and dropped around it)."""
    manager = scratch_database("postgresql", str(tmp_path / "unused.sqlite3"))
    loop = asyncio.new_event_loop()
    try:
        url = loop.run_until_complete(manager.__aenter__())
        try:
            yield url
        finally:
            loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()


# The tests' polling helper with a longer default deadline: these gateways are separate processes on a
# loaded machine.
wait_until = functools.partial(wait_for_sync, timeout_s=30.0, interval_s=0.05)
