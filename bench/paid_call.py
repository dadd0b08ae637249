"""Paid qr-generate and GET /v1/balance through the full gateway vs the same handlers unmetered, in one run.

Every figure printed is measured in this run: the unmetered handler (same code and envelope, no token,
ledger or limiter) is the baseline, and the gateway runs on SQLite, and on PostgreSQL and MariaDB when
their servers are named by ``ARKGATE_BENCH_POSTGRES_URL`` / ``ARKGATE_BENCH_MYSQL_URL`` (or the
``ARKGATE_TEST_*`` ones). wrk drives each run for a few seconds on loopback and reports p50/p99/p99.9
from its full latency histogram. On the database servers the benchmark also prints what the server
itself counted per paid call and per balance poll (see ``round_trips_per_request``).

    .venv/bin/python -m bench.paid_call [--seconds 3] [--connections 16] [--databases sqlite,postgresql,mysql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from bench._servers import Server, round_trips_per_request, scratch_database, server_url, wrk

QR = "/api/qr-generate"
BALANCE = "/v1/balance"


@dataclass(frozen=True)
class Row:
    name: str
    result: dict[str, float]
    baseline: str | None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--databases", default="sqlite,postgresql,mysql", help="comma-separated subset to run")
    args = parser.parse_args()

    def run(url: str, path: str, tokens: list[str], method: str = "POST") -> dict[str, float]:
        return wrk(url, path, tokens, seconds=args.seconds, connections=args.connections, method=method)

    rows: list[Row] = []
    with Server("bench.apps:unmetered", {}) as server:
        wrk(server.url, QR, ["none"], seconds=1, connections=args.connections)  # warm-up
        rows.append(Row("unmetered qr-generate", run(server.url, QR, ["none"]), None))
        rows.append(Row("unmetered balance", run(server.url, BALANCE, ["none"], "GET"), None))
    trips: dict[str, tuple[float, float, str]] = {}
    for kind in ("sqlite", "postgresql", "mysql"):
        if kind not in args.databases.split(","):
            continue
        server_base = None if kind == "sqlite" else server_url(kind)
        if kind != "sqlite" and server_base is None:
            print(f"({kind}: no server URL set, skipped)")
            continue
        with _database(kind, server_base) as (database_url, data_dir):
            env = {
                "ARKGATE_DATA_DIR": data_dir,
                "ARKGATE_DATABASE_URL": database_url,
                "ARKGATE_PAYMENT_MODE": "free",
                "ARKGATE_RATE_LIMITS": "off",
                "ARKGATE_MAX_SESSION_SATS": "100000000",
                "ARKGATE_LOG_LEVEL": "warning",
            }
            with Server("bench.apps:gateway", env) as server:
                tokens = _sessions(server.url, 64)
                wrk(server.url, QR, tokens, seconds=1, connections=args.connections)  # warm-up
                rows.append(Row(f"{kind}: paid, 1 token", run(server.url, QR, tokens[:1]), "unmetered qr-generate"))
                rows.append(Row(f"{kind}: paid, 64 tokens", run(server.url, QR, tokens), "unmetered qr-generate"))
                rows.append(Row(f"{kind}: balance", run(server.url, BALANCE, tokens, "GET"), "unmetered balance"))
                if server_base is not None:
                    trips[kind] = _round_trips(kind, server_base, database_url, server.url, tokens[0])
            if kind == "sqlite":
                # The limiter's cost: same database, limits on (the default) but too high to refuse anything.
                limited = {**env, "ARKGATE_RATE_LIMITS": "on", "ARKGATE_RATE_LIMIT_CALLS": "100000000/minute"}
                limited["ARKGATE_RATE_LIMIT_CALLS_IP"] = limited["ARKGATE_RATE_LIMIT_SESSIONS"] = "100000000/minute"
                with Server("bench.apps:gateway", limited) as server:
                    tokens = _sessions(server.url, 64)
                    wrk(server.url, QR, tokens, seconds=1, connections=args.connections)
                    rows.append(
                        Row("sqlite: paid, 64 tokens, limits on", run(server.url, QR, tokens), "unmetered qr-generate")
                    )
    _print(rows, trips, args.connections)


@contextlib.contextmanager
def _database(kind: str, server: str | None) -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as data_dir:
        if server is None:
            yield f"sqlite:///{data_dir}/bench.sqlite3", data_dir
            return
        with scratch_database(kind, server) as url:
            yield url, data_dir


def _sessions(url: str, count: int) -> list[str]:
    return [httpx.post(f"{url}/v1/sessions", json={"amount_sats": 50_000_000}).json()["token"] for _ in range(count)]


def _round_trips(kind: str, server: str, database_url: str, url: str, token: str) -> tuple[float, float, str]:
    headers = {"Authorization": f"Bearer {token}"}

    async def measure() -> tuple[float, float]:
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:

            async def paid() -> object:
                return (
                    await client.post(QR, json={"data": "https://example.com/bench", "size": 256})
                ).raise_for_status()

            async def balance() -> object:
                return (await client.get(BALANCE)).raise_for_status()

            return (
                await round_trips_per_request(kind, server, database_url, paid),
                await round_trips_per_request(kind, server, database_url, balance),
            )

    paid, balance = asyncio.run(measure())
    unit = (
        "transactions (pg_stat_database)"
        if kind == "postgresql"
        else "statements + pings (global status; each statement of a multi-statement query counts)"
    )
    return paid, balance, unit


def _print(rows: list[Row], trips: dict[str, tuple[float, float, str]], connections: int) -> None:
    by_name = {row.name: row.result for row in rows}
    print(
        f"\n{platform.node()}, {platform.python_implementation()} {platform.python_version()}, "
        f"wrk {connections} connections, every ratio from this run"
    )
    print(
        f"{'run':<38}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'p99/p50':>9}{'failed':>8}"
        f"{'vs unmetered':>14}"
    )
    for row in rows:
        r = row.result
        ratio = f"{r['rps'] / by_name[row.baseline]['rps']:>13.2f}x" if row.baseline else f"{'':>14}"
        print(
            f"{row.name:<38}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['p999_ms']:>10.2f}"
            f"{r['p99_ms'] / r['p50_ms']:>9.1f}{r['errors']:>8.0f}{ratio}"
        )
    for kind, (paid, balance, unit) in trips.items():
        print(f"{kind}: {paid:.2f} per paid call, {balance:.2f} per balance poll, {unit}")


if __name__ == "__main__":
    main()
