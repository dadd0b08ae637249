"""A real ``arkgate serve`` process on a loopback port, configured by ARKGATE_* variables."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import offline_defaults

START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ServedGateway:
    url: str
    host: str
    port: int
    pid: int

    def status_kb(self, field: str) -> int:
        """A figure from /proc/<pid>/status in kB, e.g. VmRSS (resident now) or VmHWM (peak resident)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc/{self.pid}/status")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _env_value(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


@contextlib.contextmanager
def served_gateway(tmp_path: Path, **settings: object) -> Iterator[ServedGateway]:
    host = "127.0.0.1"
    port = free_port(host)
    values: dict[str, object] = {
        **offline_defaults(),
        "payment_mode": "free",
        "network": "signet",
        "rate_limits": "off",
        "data_dir": tmp_path / "served",
        "host": host,
        "port": port,
        **settings,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKGATE_") or k.startswith("ARKGATE_TEST_")}
    env.update({f"ARKGATE_{name.upper()}": _env_value(value) for name, value in values.items()})
    log = (tmp_path / "served.log").open("wb")
    script = Path(sys.executable).parent / "arkgate"
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from arkgate.cli import main; main()"]
    process = subprocess.Popen([*command, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise AssertionError(f"arkgate serve exited: {(tmp_path / 'served.log').read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("arkgate serve did not start")
            time.sleep(0.05)
        yield ServedGateway(url=url, host=host, port=port, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
