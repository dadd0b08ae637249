"""Fixtures for simulator tests: a real simulator on a free loopback port, and polling helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from arkgate.simulator.server import SimulatorServer


def wait_for(check: Callable[[], Any], timeout_s: float = 5.0) -> Any:
    """Poll ``check`` every 20 ms until it returns a truthy value; fail with the last value."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s}s; last value: {last!r}")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    with SimulatorServer(tmp_path / "sim", wait_timeout_s=0.3, lightning_receive_ppm=1000) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers=sim.headers(), timeout=10) as c:
        yield c
