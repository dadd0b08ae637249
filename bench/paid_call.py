"""Paid qr-generate and GET /v1/balance through the full gateway vs the same handlers unmetered, in one run.

Every figure printed is measured in this run: the unmetered handler (same code and envelope, no token,
ledger or limiter) is the baseline, and the gateway runs on SQLite, and on PostgreSQL and MariaDB when
their servers are named by ``ARKGATE_BENCH_POSTGRES_URL`` / ``ARKGATE_BENCH_MYSQL_URL`` (or the
``ARKGATE_TEST_*`` ones). wrk drives each run for a few seconds on loopback and reports p50/p99/p99.9
from its full latency histogram. All servers run at once and every run is repeated in interleaved rounds
(``--rounds``); the table shows medians, each ratio against the baseline of the same round. On the database servers the benchmark also prints, per paid call and
per balance poll, the round trips a counting relay between a separate gateway run and the server saw,
next to what the server itself counted (see ``bench._relay`` and ``round_trips_per_request``).

    .venv/bin/python -m bench.paid_call [--seconds 3] [--rounds 3] [--connections 16] [--databases ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
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


@dataclass
class Target:
    """One server under test and the runs made against it each round."""

    url: str
    runs: list[tuple[str, str, list[str], str, str | None]]  # row name, path, tokens, method, baseline row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="every run is repeated this many times, interleaved")
    parser.add_argument("--databases", default="sqlite,postgresql,mysql", help="comma-separated subset to run")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        # Every server runs for the whole benchmark and each round visits all of them in turn, so a slow
        # spell of the machine hits the baseline and the gateways alike; the ratios are per round.
        targets = [_unmetered(stack)]
        databases: list[tuple[str, str, dict[str, str]]] = []
        for kind in ("sqlite", "postgresql", "mysql"):
            if kind not in args.databases.split(","):
                continue
            server_base = None if kind == "sqlite" else server_url(kind)
            if kind != "sqlite" and server_base is None:
                print(f"({kind}: no server URL set, skipped)")
                continue
            database_url, data_dir = stack.enter_context(_database(kind, server_base))
            env = {
                "ARKGATE_DATA_DIR": data_dir,
                "ARKGATE_DATABASE_URL": database_url,
                "ARKGATE_PAYMENT_MODE": "free",
                "ARKGATE_RATE_LIMITS": "off",
                "ARKGATE_MAX_SESSION_SATS": "100000000",
                "ARKGATE_LOG_LEVEL": "warning",
            }
            targets.append(_gateway(stack, kind, env))
            if kind == "sqlite":
                # The limiter's cost: same database, limits on (the default) but too high to refuse anything.
                limited = {**env, "ARKGATE_RATE_LIMITS": "on", "ARKGATE_RATE_LIMIT_CALLS": "100000000/minute"}
                limited["ARKGATE_RATE_LIMIT_CALLS_IP"] = limited["ARKGATE_RATE_LIMIT_SESSIONS"] = "100000000/minute"
                targets.append(_gateway(stack, kind, limited, limits_on=True))
            if server_base is not None:
                databases.append((kind, server_base, env))
        for target in targets:  # warm-up
            wrk(target.url, QR, target.runs[0][2], seconds=1, connections=args.connections)
        results: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for target in targets:
                for name, path, tokens, method, _baseline in target.runs:
                    result = wrk(
                        target.url, path, tokens, seconds=args.seconds, connections=args.connections, method=method
                    )
                    results.setdefault(name, []).append(result)
        baselines = {name: baseline for target in targets for name, _, _, _, baseline in target.runs}
    trips: dict[str, tuple[Trips, Trips]] = {}
    for kind, server_base, env in databases:
        # A gateway of its own, reaching the database through the counting relay; the ones above have
        # stopped, so nothing else uses this database (a fresh one: the throughput runs' was dropped).
        with scratch_database(kind, server_base) as database_url:
            trips[kind] = _round_trips(kind, server_base, database_url, {**env, "ARKGATE_DATABASE_URL": database_url})
    _print(results, baselines, trips, args.connections, args.rounds)


def _unmetered(stack: contextlib.ExitStack[bool | None]) -> Target:
    server = stack.enter_context(Server("bench.apps:unmetered", {}))
    return Target(
        server.url,
        [
            ("unmetered qr-generate", QR, ["none"], "POST", None),
            ("unmetered balance", BALANCE, ["none"], "GET", None),
        ],
    )


def _gateway(
    stack: contextlib.ExitStack[bool | None], kind: str, env: dict[str, str], *, limits_on: bool = False
) -> Target:
    server = stack.enter_context(Server("bench.apps:gateway", env))
    tokens = _sessions(server.url, 64)
    if limits_on:
        return Target(
            server.url, [(f"{kind}: paid, 64 tokens, limits on", QR, tokens, "POST", "unmetered qr-generate")]
        )
    return Target(
        server.url,
        [
            (f"{kind}: paid, 1 token", QR, tokens[:1], "POST", "unmetered qr-generate"),
            (f"{kind}: paid, 64 tokens", QR, tokens, "POST", "unmetered qr-generate"),
            (f"{kind}: balance", BALANCE, tokens, "GET", "unmetered balance"),
        ],
    )


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


def _print(
    results: dict[str, list[dict[str, float]]],
    baselines: dict[str, str | None],
    trips: dict[str, tuple[Trips, Trips]],
    connections: int,
    rounds: int,
) -> None:
    print(
        f"\n{platform.node()}, {platform.python_implementation()} {platform.python_version()}, "
        f"wrk {connections} connections, {rounds} interleaved rounds; medians of the rounds, every ratio from "
        "this run (per round, against that round's baseline; the range in brackets)"
    )
    print(
        f"{'run':<38}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'p99/p50':>9}{'failed':>8}"
        f"{'vs unmetered':>26}"
    )
    for name, runs in results.items():
        baseline = baselines[name]
        ratio = f"{'':>26}"
        if baseline is not None:
            ratios = [run["rps"] / base["rps"] for run, base in zip(runs, results[baseline], strict=True)]
            ratio = f"{statistics.median(ratios):>13.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"
        median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        worst = max(run["p99_ms"] / run["p50_ms"] for run in runs)
        print(
            f"{name:<38}{median['rps']:>9.0f}{median['p50_ms']:>9.2f}{median['p99_ms']:>9.2f}"
            f"{median['p999_ms']:>10.2f}{worst:>9.1f}{sum(run['errors'] for run in runs):>8.0f}{ratio}"
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
