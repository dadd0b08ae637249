"""Activation latency: barkd settles a payment → the session is credited and announced.

Measured with 1, 1,000 and 10,000 sessions awaiting payment, against the bundled simulator
over HTTP. arkgate follows barkd's notification stream, so its latency should not depend on
how many sessions wait.

The baseline is how the reference gateway polls: every tick, for each unpaid session, it asks
barkd for that receive's status and downloads the wallet's whole history; a tick starts every
5 s or when the previous sweep ends, whichever is later. The cost of one session's two calls is
measured here against the same simulator, in the same run, with a wallet history of
``HISTORY_MOVEMENTS`` movements, and multiplied by the number of waiting sessions (a sweep over
10,000 sessions would take minutes to run). A payment lands at a uniformly random moment, so its
mean wait is half a tick until the next sweep starts plus half a sweep until its session's turn.

    .venv/bin/python -m bench.activation [--samples 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from arkgate.app import create_app
from arkgate.catalog import qr_generate
from arkgate.catalog.registry import Catalog
from arkgate.db import tables as t
from arkgate.db.engine import utcnow
from arkgate.logs import configure_logging
from arkgate.payments.ledger import hash_token
from arkgate.settings import Settings
from arkgate.simulator.server import SimulatorServer

POLL_INTERVAL_S = 5.0
HISTORY_MOVEMENTS = 1_000  # a modest wallet: one movement per past payment or payout
SWEEP_SAMPLE = 100  # sessions whose two calls are timed; the sweep is that cost times the waiting count


async def add_waiting_sessions(app, count: int, offset: int) -> None:  # type: ignore[no-untyped-def]
    """Bulk-insert unpaid sessions with pending invoices (what a busy gateway has)."""
    now = utcnow()
    rows = [
        {
            "token_hash": f"{offset + i:064x}",
            "status": "awaiting_payment",
            "balance_sats": 0,
            "requested_sats": 100,
            "ark_address": f"tark1waiting{offset + i}",
            "source": "api",
            "created_at": now,
            "expires_at": now + timedelta(hours=1),
        }
        for i in range(count)
    ]
    database = app.state.runtime.database
    async with database.write() as conn:
        for start in range(0, len(rows), 1000):
            result_ids = []
            for row in rows[start : start + 1000]:
                result = await conn.execute(insert(t.sessions).values(**row))
                result_ids.append(result.inserted_primary_key[0])
            await conn.execute(
                insert(t.invoices),
                [
                    {
                        "payment_hash": f"{sid:064x}",
                        "session_id": sid,
                        "bolt11": "lntbs1...",
                        "amount_sats": 100,
                        "purpose": "funding",
                        "status": "pending",
                        "created_at": now,
                        "expires_at": now + timedelta(hours=1),
                    }
                    for sid in result_ids
                ],
            )


async def activation_samples(app, client: httpx.AsyncClient, simulator: SimulatorServer, samples: int) -> list[float]:  # type: ignore[no-untyped-def]
    runtime = app.state.runtime
    latencies = []
    for _ in range(samples):
        created = (await client.post("/v1/sessions", json={"amount_sats": 100})).json()
        session = await runtime.ledger.session_by_token(hash_token(created["token"]))
        async with runtime.events.subscribe(session.id) as queue:
            started = time.perf_counter()
            await asyncio.to_thread(simulator.send_ark, created["funding"]["ark_address"], 100)
            await asyncio.wait_for(queue.get(), 30)
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def baseline_sweep_s(simulator: SimulatorServer, count: int) -> float:
    """One reference sweep over ``count`` unpaid sessions: per session the receive status and the full history."""
    sample = min(count, SWEEP_SAMPLE)
    async with httpx.AsyncClient(base_url=simulator.url, headers=simulator.headers()) as barkd:
        started = time.perf_counter()
        for i in range(sample):
            await barkd.get(f"/api/v1/lightning/receives/{i:064x}")
            (await barkd.get("/api/v1/history")).raise_for_status()
        return (time.perf_counter() - started) / sample * count


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


async def main(samples: int) -> None:
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as directory, SimulatorServer(Path(directory) / "sim") as simulator:
        settings = Settings(
            data_dir=Path(directory) / "gw",
            payment_mode="barkd",
            barkd_url=simulator.url,
            barkd_token=simulator.token,
            rate_limits="off",
            log_level="warning",
        )
        simulator.seed_history(HISTORY_MOVEMENTS)
        app = create_app(settings, catalog=Catalog([qr_generate.ENDPOINT]))
        async with app.router.lifespan_context(app):
            await app.state.runtime.watcher.wait_ready(10)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                waiting = 0
                print(
                    f"{'sessions waiting':>17}{'p50 ms':>9}{'p99 ms':>9}{'baseline sweep s':>18}"
                    f"{'baseline mean s':>17}{'baseline/ours':>15}"
                )
                for target in (1, 1_000, 10_000):
                    await add_waiting_sessions(app, target - waiting, waiting)
                    waiting = target
                    ours = await activation_samples(app, client, simulator, samples)
                    sweep = await baseline_sweep_s(simulator, target)
                    tick = max(POLL_INTERVAL_S, sweep)  # the next sweep never starts before this one ends
                    baseline_mean = tick / 2 + sweep / 2
                    p50 = statistics.median(ours)
                    print(
                        f"{target:>17}{p50:>9.1f}{percentile(ours, 99):>9.1f}{sweep:>18.2f}"
                        f"{baseline_mean:>17.2f}{baseline_mean * 1000 / p50:>14.0f}x"
                    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    asyncio.run(main(parser.parse_args().samples))
