"""The paid call under ``arkgate serve`` (h11 with header limits and deadline) vs uvicorn's httptools.

``arkgate serve`` trades httptools for uvicorn's h11 protocol so header size and time limits
hold while reading (docs/deploy.md). This measures what that costs, in one run: the metered
qr-generate over 64 tokens under uvicorn + httptools, uvicorn + plain h11, and ``arkgate serve``.

    uv run python bench/serving.py [--seconds 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench._servers import free_port, wrk

ENV = {
    "ARKGATE_PAYMENT_MODE": "free",
    "ARKGATE_RATE_LIMITS": "off",
    "ARKGATE_MAX_SESSION_SATS": "100000000",
    "ARKGATE_LOG_LEVEL": "warning",
}


@contextlib.contextmanager
def serving(kind: str, data_dir: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, **ENV, "ARKGATE_DATA_DIR": data_dir, "ARKGATE_PORT": str(port)}
    if kind == "arkgate serve":
        command = [str(Path(sys.executable).parent / "arkgate"), "serve"]
    else:
        http = "httptools" if "httptools" in kind else "h11"
        command = [sys.executable, "-m", "uvicorn", "bench.apps:gateway", "--factory", "--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log", "--http", http]
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    for kind in ("uvicorn + httptools", "uvicorn + h11", "arkgate serve"):
        with tempfile.TemporaryDirectory() as data_dir, serving(kind, data_dir) as url:
            tokens = [
                httpx.post(f"{url}/v1/sessions", json={"amount_sats": 50_000_000}).json()["token"] for _ in range(64)
            ]
            wrk(url, "/api/qr-generate", tokens, seconds=2, connections=args.connections)  # warm-up
            rows[kind] = wrk(url, "/api/qr-generate", tokens, seconds=args.seconds, connections=args.connections)
    base = rows["uvicorn + httptools"]["rps"]
    print(f"{'server':<22}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'vs httptools':>14}")
    for name, row in rows.items():
        print(
            f"{name:<22}{row['rps']:>10.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['errors']:>9.0f}"
            f"{row['rps'] / base:>13.2f}x"
        )


if __name__ == "__main__":
    main()
