"""Helpers for the benchmarks: run an ASGI app under uvicorn in a child process, drive it with wrk."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m uvicorn <factory> --factory`` in a child process, one worker, uvloop + httptools."""

    def __init__(self, factory: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.factory = factory
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                self.factory,
                "--factory",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
            ],
            env=self.env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/health/live", timeout=1)  # touches nothing: the cheapest probe
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)


WRK_SCRIPT = """
local tokens = {%s}
local counter = 0
request = function()
  counter = counter + 1
  local token = tokens[(counter %% #tokens) + 1]
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
  return wrk.format("POST", "%s", nil, '{"data": "https://example.com/bench/' .. counter .. '"}')
end
"""


def wrk(url: str, path: str, tokens: list[str], *, seconds: int = 8, connections: int = 32) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) reported by wrk for POSTs spread over ``tokens``."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (", ".join(json.dumps(t) for t in tokens), path))
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(script.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": rps,
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "errors": float(non_2xx.group(1)) if non_2xx else 0.0,
    }


def _ms(value: str) -> float:
    number = float(re.match(r"[\d.]+", value).group(0))  # type: ignore[union-attr]
    unit = value[len(re.match(r"[\d.]+", value).group(0)) :]  # type: ignore[union-attr]
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
