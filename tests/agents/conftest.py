"""A gateway served by a real uvicorn server on a loopback port (MCP client, CLI, client tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from arkgate.catalog.registry import Catalog, load_catalog
from arkgate.settings import Settings
from tests.live import LiveGateway, live_gateway

START_TIMEOUT_S = 30.0


def offline_catalog(*ids: str) -> Catalog:
    """A catalog subset of endpoints that need no network (fast, deterministic)."""
    wanted = ids or ("qr-generate",)
    return load_catalog(only=wanted)


@pytest.fixture
def live_gateway_factory(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    def factory(catalog: Catalog | None = None, **overrides: Any) -> contextlib.AbstractContextManager[LiveGateway]:
        return live_gateway(make_settings(**overrides), catalog)

    return factory


@pytest.fixture
def paid_settings(make_settings: Callable[..., Settings], simulator: Any) -> Callable[..., Settings]:
    """Settings of a gateway taking real payments from the simulator (barkd mode)."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "payment_mode": "barkd",
            "barkd_url": simulator.url,
            "barkd_token": simulator.token,
            "reconcile_interval_s": 3600,
        }
        values.update(overrides)
        return make_settings(**values)

    return build
