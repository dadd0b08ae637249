"""Fixtures for simulator tests: a real simulator on a free loopback port (polling: tests.conftest.wait_for_sync)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from arkgate.simulator.server import SimulatorServer


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    with SimulatorServer(tmp_path / "sim", wait_timeout_s=0.3, lightning_receive_ppm=1000) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers=sim.headers(), timeout=10) as c:
        yield c
