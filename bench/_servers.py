"""Helpers for the benchmarks: run an ASGI app under uvicorn in a child process, drive it with wrk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from arkgate.db.engine import async_url


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
local method, path = "%s", "%s"
local counter = 0
request = function()
  counter = counter + 1
  local token = tokens[(counter %% #tokens) + 1]
  wrk.headers["Authorization"] = "Bearer " .. token
  if method == "GET" then
    return wrk.format("GET", path, nil, nil)
  end
  wrk.headers["Content-Type"] = "application/json"
  return wrk.format("POST", path, nil, '{"data":"https://example.com/bench/' .. counter .. '","size":256}')
end
done = function(summary, latency, requests)
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration, failed,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""


def wrk(
    url: str, path: str, tokens: list[str], *, seconds: int = 3, connections: int = 16, method: str = "POST"
) -> dict[str, float]:
    """Requests/s, failures and latency percentiles (ms, from wrk's full histogram) for requests over ``tokens``.

    POST bodies are the issue's: a URL to encode as a 256-pixel QR code.
    """
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (", ".join(json.dumps(t) for t in tokens), method, path))
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(script.name).unlink()
    match = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    requests, duration_us, failed, p50, p99, p999 = (int(v) for v in match.groups())
    return {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "p999_ms": p999 / 1000,
        "errors": float(failed),
    }


BACKEND_URLS = {
    "postgresql": ("ARKGATE_BENCH_POSTGRES_URL", "ARKGATE_TEST_POSTGRES_URL"),
    "mysql": ("ARKGATE_BENCH_MYSQL_URL", "ARKGATE_TEST_MYSQL_URL"),
}


def server_url(kind: str) -> str | None:
    """The PostgreSQL or MariaDB server to benchmark on, from the environment (bench first, then test)."""
    return next((os.environ[v] for v in BACKEND_URLS[kind] if os.environ.get(v)), None)


async def _admin(url: str, *statements: str) -> None:
    engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def scratch_database(kind: str, server: str) -> Iterator[str]:
    """A fresh database on ``server``, dropped afterwards (each run starts from empty tables)."""
    name = f"arkgate_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(server, f"CREATE DATABASE {name}"))
    try:
        yield f"{server.rpartition('/')[0]}/{name}"
    finally:
        force = " WITH (FORCE)" if kind == "postgresql" else ""
        asyncio.run(_admin(server, f"DROP DATABASE IF EXISTS {name}{force}"))


async def round_trips_per_request(
    kind: str, server: str, database_url: str, send: Callable[[], Awaitable[object]], *, requests: int = 200
) -> float:
    """Requests sent one at a time; what the database server counted for them, per request.

    PostgreSQL: transactions in the benchmark's database only (``pg_stat_database.xact_commit +
    xact_rollback``; without pg_stat_statements loaded the server keeps no per-database statement
    count). MariaDB: the global ``Questions`` (every statement, COMMIT and ROLLBACK included) plus
    ``Com_admin_commands`` (PING). What the server counts in an equally long idle window right after
    (background jobs, other clients) is subtracted, and the least of three bursts is taken.
    """
    name = database_url.rpartition("/")[2]
    engine = create_async_engine(async_url(server), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    async with engine.connect() as conn:  # one connection: its own queries are known

        async def count() -> int:
            if kind == "postgresql":
                # Backends report their counts at most once a second, and later still when the shared
                # stats are busy: read until two reads a second apart agree (at most ~12 s), or a count
                # flushed late lands in the next window and the least of the bursts comes out too low.
                last = -1
                for _ in range(10):
                    await asyncio.sleep(1.2)
                    await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
                    row = await conn.execute(
                        text("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :name"),
                        {"name": name},
                    )
                    current = int(row.scalar_one())
                    if current == last:
                        break
                    last = current
                return last
            rows = await conn.execute(
                text("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_admin_commands')")
            )
            return sum(int(value) for _, value in rows)

        results = []
        for _ in range(3):
            before = await count()
            started = time.monotonic()
            for _ in range(requests):
                await send()
            elapsed = time.monotonic() - started
            during = await count() - before
            # The same time again with no requests: the gateway's background jobs (lease renewals,
            # sweeps) and, on MariaDB, other clients of the server; subtracted from the burst's count.
            await asyncio.sleep(elapsed)
            idle = await count() - before - during
            results.append((during - idle) / requests)
    await engine.dispose()
    return min(results)
