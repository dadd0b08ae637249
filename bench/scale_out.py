"""Paid-call throughput of ``arkgate serve`` with 1 and 2 worker processes on PostgreSQL, in one run.

Needs a PostgreSQL server (``ARKGATE_BENCH_POSTGRES_URL``, else ``ARKGATE_TEST_POSTGRES_URL``) and wrk.
A fresh database is created and dropped. Each run drives metered qr-generate calls over 64 tokens
(free payment mode, rate limits off) and prints calls/s, latency and the 2-worker/1-worker ratio.
On a 2-core machine the load generator shares the cores, so expect well under 2x.

    uv run python bench/scale_out.py [--seconds 8] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench._servers import free_port, wrk


def _admin(server_url: str, statement: str) -> None:
    async def run() -> None:
        _, _, rest = server_url.partition("://")
        engine = create_async_engine(f"postgresql+asyncpg://{rest}", isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


def measure(database_url: str, workers: int, seconds: int, connections: int) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARKGATE_")},
            "ARKGATE_DATABASE_URL": database_url,
            "ARKGATE_DATA_DIR": data_dir,
            "ARKGATE_PORT": str(port),
            "ARKGATE_PAYMENT_MODE": "free",
            "ARKGATE_RATE_LIMITS": "off",
            "ARKGATE_MAX_SESSION_SATS": "100000000",
            "ARKGATE_LOG_LEVEL": "warning",
            "ARKGATE_DATABASE_POOL_SIZE": "16",
        }
        argv = [sys.executable, "-c", "from arkgate.cli import main; main()", "serve", "--workers", str(workers)]
        process = subprocess.Popen(argv, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the gateway did not start")
                time.sleep(0.1)
            tokens = [
                httpx.post(f"{url}/v1/sessions", json={"amount_sats": 50_000_000}, timeout=30).json()["token"]
                for _ in range(64)
            ]
            wrk(url, "/api/qr-generate", tokens, seconds=2, connections=connections)  # warm-up, both workers
            return wrk(url, "/api/qr-generate", tokens, seconds=seconds, connections=connections)
        finally:
            os.killpg(process.pid, 15)
            process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    server_url = os.environ.get("ARKGATE_BENCH_POSTGRES_URL") or os.environ.get("ARKGATE_TEST_POSTGRES_URL")
    if not server_url:
        raise SystemExit("set ARKGATE_BENCH_POSTGRES_URL (or ARKGATE_TEST_POSTGRES_URL) to a PostgreSQL server")
    name = f"arkgate_bench_{secrets.token_hex(4)}"
    _admin(server_url, f"CREATE DATABASE {name}")
    database_url = f"{server_url.rpartition('/')[0]}/{name}"
    rows: dict[int, dict[str, float]] = {}
    try:
        for workers in (1, 2):
            rows[workers] = measure(database_url, workers, args.seconds, args.connections)
    finally:
        _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(f"{'workers':<10}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for workers, row in rows.items():
        print(f"{workers:<10}{row['rps']:>10.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['errors']:>9.0f}")
    print(
        f"2 workers / 1 worker: {rows[2]['rps'] / rows[1]['rps']:.2f}x paid calls/s on PostgreSQL ({os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
