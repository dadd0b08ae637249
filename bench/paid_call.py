"""Paid qr-generate and GET /v1/balance through the full gateway vs the same handlers unmetered, in one run.

Every figure printed is measured in this run: the unmetered handler (same code and envelope, no token,
ledger or limiter) is the baseline, and the gateway runs on SQLite, and on PostgreSQL and MariaDB when
their servers are named by ``ARKGATE_BENCH_POSTGRES_URL`` / ``ARKGATE_BENCH_MYSQL_URL`` (or the
``ARKGATE_TEST_*`` ones). wrk drives each run for a few seconds on loopback and reports p50/p99/p99.9
from its full latency histogram. On the database servers the benchmark also prints, per paid call and
per balance poll, the round trips a counting relay between a separate gateway run and the server saw,
next to what the server itself counted (see ``bench._relay`` and ``round_trips_per_request``).

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

from bench._relay import TurnRelay
from bench._servers import Server, Trips, round_trips_per_request, scratch_database, server_url, wrk

QR = "/api/qr-generate"
BALANCE = "/v1/balance"


# The round-trip gateway's periodic jobs, an hour apart: they are no part of a call, and their lumps (a
# lease renewal every 3 s, sweeps every 15-60 s, several round trips each) would land in one window
# and not the next, swinging the background subtracted. What stays (webhook resumes) is subtracted.
QUIET_JOBS = {
    f"ARKGATE_{name}": "3600"
    for name in (
        "LEADER_LEASE_S",
        "CALL_SWEEP_INTERVAL_S",
        "PAYOUT_RECOVER_INTERVAL_S",
        "WEBHOOK_SCAN_INTERVAL_S",
        "DOWNLOADS_CLEANUP_INTERVAL_S",
    )
}
# More than this per request in the idle window: a background large enough to swing the server's
# figure by whole statements, so the line says it is unreliable.
NOISY_IDLE = 0.1


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
    trips: dict[str, tuple[Trips, Trips]] = {}
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
                # A gateway of its own, reaching the database through the counting relay; the one above
                # has stopped, so nothing else uses this database.
                trips[kind] = _round_trips(kind, server_base, database_url, env)
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


def _round_trips(kind: str, server: str, database_url: str, env: dict[str, str]) -> tuple[Trips, Trips]:
    """Per paid call and per balance poll: round trips through the relay, and the server's own count."""
    with (
        TurnRelay(database_url) as relay,
        Server("bench.apps:gateway", {**env, **QUIET_JOBS, "ARKGATE_DATABASE_URL": relay.url}) as gw,
    ):
        token = _sessions(gw.url, 1)[0]

        async def measure() -> list[Trips]:
            async with httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"Bearer {token}"}) as client:

                async def paid() -> object:
                    return (
                        await client.post(QR, json={"data": "https://example.com/bench", "size": 256})
                    ).raise_for_status()

                async def balance() -> object:
                    return (await client.get(BALANCE)).raise_for_status()

                for _ in range(20):  # warm-up: pooled connections open, statements prepared
                    await paid()
                    await balance()
                return await round_trips_per_request(kind, server, database_url, relay, [paid, balance])

        paid, balance = asyncio.run(measure())
    return paid, balance


def _print(rows: list[Row], trips: dict[str, tuple[Trips, Trips]], connections: int) -> None:
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
    for kind, (paid, balance) in trips.items():
        unit = (
            "transactions (pg_stat_database)"
            if kind == "postgresql"
            else "statements + pings (global status; each statement of a multi-statement query counts)"
        )
        line = (
            f"{kind}: {paid.relay:.2f} round trips per paid call (relay), {paid.server:.2f} {unit}; "
            f"{balance.relay:.2f} per balance poll (relay), {balance.server:.2f} {unit.partition(' (')[0]}"
        )
        # MariaDB's counters are server-wide: other clients' statements (a test suite on the same
        # server) can dwarf the gateway's, and subtracting an idle window cannot take them out.
        noise = max(paid.server_idle, balance.server_idle)
        if noise > NOISY_IDLE:
            line += f" (unreliable: {noise:.1f} per request counted in the idle window, other clients)"
        print(line)


if __name__ == "__main__":
    main()
