"""Paid qr-generate through the full meter vs the same handler unmetered, measured in one run.

Prints throughput and p50/p99 for: unmetered, metered on one token, metered over 64 tokens,
and the ratios. For scale, the Go reference gateway serves the paid call at about 350 calls/s
on one token and 480 calls/s over 64 tokens on a 2-core machine like this one.

    uv run python bench/paid_call.py [--seconds 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import tempfile

import httpx

from bench._servers import Server, wrk

REFERENCE = {"one token": 350.0, "64 tokens": 480.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    with Server("bench.apps:unmetered", {}) as server:
        wrk(server.url, "/api/qr-generate", ["none"], seconds=2, connections=args.connections)  # warm-up
        rows["unmetered"] = wrk(
            server.url, "/api/qr-generate", ["none"], seconds=args.seconds, connections=args.connections
        )
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "ARKGATE_DATA_DIR": data_dir,
            "ARKGATE_PAYMENT_MODE": "free",
            "ARKGATE_RATE_LIMITS": "off",
            "ARKGATE_MAX_SESSION_SATS": "100000000",
            "ARKGATE_LOG_LEVEL": "warning",
        }
        with Server("bench.apps:gateway", env) as server:
            tokens = [
                httpx.post(f"{server.url}/v1/sessions", json={"amount_sats": 50_000_000}).json()["token"]
                for _ in range(64)
            ]
            wrk(server.url, "/api/qr-generate", tokens[:1], seconds=2, connections=args.connections)
            rows["metered, one token"] = wrk(
                server.url, "/api/qr-generate", tokens[:1], seconds=args.seconds, connections=args.connections
            )
            rows["metered, 64 tokens"] = wrk(
                server.url, "/api/qr-generate", tokens, seconds=args.seconds, connections=args.connections
            )
    base = rows["unmetered"]["rps"]
    print(f"{'run':<22}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'vs unmetered':>14}")
    for name, row in rows.items():
        print(
            f"{name:<22}{row['rps']:>10.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['errors']:>9.0f}"
            f"{row['rps'] / base:>13.2f}x"
        )
    one, many = rows["metered, one token"]["rps"], rows["metered, 64 tokens"]["rps"]
    print(
        f"\nvs the Go reference (350 / 480 calls/s): one token {one / REFERENCE['one token']:.2f}x, "
        f"64 tokens {many / REFERENCE['64 tokens']:.2f}x (goal: 1.5x)"
    )


if __name__ == "__main__":
    main()
