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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from arkgate.db.engine import async_url
from bench._relay import TurnRelay


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


# PostgreSQL 15+ keeps statistics in shared memory. A backend flushes its pending counts when it goes
# idle only if a second (PGSTAT_MIN_INTERVAL) has passed since its last flush; otherwise it arms a timer
# and flushes PGSTAT_IDLE_INTERVAL (10 s) later (pgstat_report_stat() in
# src/backend/utils/activity/pgstat.c; the idle timer in tcop/postgres.c). A pooled connection goes idle
# right after a burst, so its last second of transactions reaches pg_stat_database up to 10 s late:
# every read of the counter waits that long after the gateway's last request, plus a margin.
PG_STATS_FLUSH_S = 10.0 + 1.5
# MariaDB's global status and the relay's count are current: a short pause lets a reply still on the
# wire (a settlement after the response) land before the read.
SETTLE_S = 0.5


@dataclass(frozen=True)
class Trips:
    """Per request: round trips the relay saw, and what the database server itself counted."""

    relay: float
    server: float
    server_idle: float  # what the server counted in the idle window, per request: the noise's size


async def _less_idle(read: Callable[[], Awaitable[int]], started: float, start: int, settle: float) -> tuple[int, int]:
    """What ``read`` counted from ``started`` to ``settle`` after now, less an equally long idle window's count.

    The idle window comes right after, with no requests: the background (the gateway's periodic
    jobs, other clients of a shared server), subtracted from the burst's count. Returns the
    difference and the idle window's count.
    """
    await asyncio.sleep(settle)
    ended, end = time.monotonic(), await read()
    await asyncio.sleep(max(0.0, 2 * ended - started - time.monotonic()))
    idle = await read() - end
    return end - start - idle, idle


async def round_trips_per_request(
    kind: str,
    server: str,
    database_url: str,
    relay: TurnRelay,
    sends: Sequence[Callable[[], Awaitable[object]]],
    *,
    requests: int = 1000,
    prime: int = 20,
) -> list[Trips]:
    """One burst of ``requests`` sent one at a time per entry of ``sends``; per request, what was counted.

    The gateway reaches its database through ``relay``, which counts round trips (turns). The server's
    own counter is read at the same instants. PostgreSQL: transactions in the benchmark's database
    only (``pg_stat_database.xact_commit + xact_rollback``; without pg_stat_statements loaded the
    server keeps no per-database statement count), each read ``PG_STATS_FLUSH_S`` after the last
    request so the burst's counts have all been flushed. MariaDB: the global ``Questions`` (every
    statement, COMMIT and ROLLBACK included) plus ``Com_admin_commands`` (PING). What is counted in an
    equally long idle window right after each burst (the gateway's periodic jobs, other clients of a
    shared MariaDB) is subtracted. One large burst rather than the least of several small ones: the
    PostgreSQL wait makes each window long, and the background is spread over more requests.
    """
    name = database_url.rpartition("/")[2]
    settle = PG_STATS_FLUSH_S if kind == "postgresql" else SETTLE_S
    engine = create_async_engine(async_url(server), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    async with engine.connect() as conn:  # one connection, straight to the server: not through the relay

        async def server_count() -> int:
            if kind == "postgresql":
                await conn.execute(text("SELECT pg_stat_clear_snapshot()"))  # no cached stats snapshot
                row = await conn.execute(
                    text("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :name"),
                    {"name": name},
                )
                return int(row.scalar_one())
            rows = await conn.execute(
                text("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_admin_commands')")
            )
            return sum(int(value) for _, value in rows)

        async def relay_count() -> int:
            return relay.turns

        # What the gateway did before (start-up, warm-up) must have landed before the first read.
        await asyncio.sleep(settle)
        results = []
        for send in sends:
            started, counted = time.monotonic(), await server_count()
            # A few requests first, outside the relay's window: after an idle spell the pool tests each
            # connection once at its next checkout (three round trips on PostgreSQL), a cost of the
            # pause, not of a call. The server's window cannot start here (PostgreSQL's count would
            # miss what is not flushed yet), so it holds them and its per-request figure counts them.
            for _ in range(prime):
                await send()
            relay_started, turns = time.monotonic(), relay.turns
            for _ in range(requests):
                await send()
            # The relay's window closes at once, the server's when its counts are in: the shorter a
            # window, the fewer of the background's lumps (a periodic job's few round trips) fall in it.
            (trips, _), (counted, idle) = await asyncio.gather(
                _less_idle(relay_count, relay_started, turns, SETTLE_S),
                _less_idle(server_count, started, counted, settle),
            )
            sent = prime + requests
            results.append(Trips(relay=trips / requests, server=counted / sent, server_idle=idle / sent))
    await engine.dispose()
    return results
