"""Fixtures for the operator console: gateways with an admin token, a real uvicorn server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from arkgate.settings import Settings
from tests.conftest import Gateway, running_gateway
from tests.live import LiveGateway, live_gateway

ADMIN_TOKEN = "adm_test_2f0c9a7e5b1d4c3a8e6f"


def admin_headers(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_gateway_factory(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """An in-process gateway (free mode unless overridden) with the admin console enabled."""

    def factory(**overrides: Any) -> contextlib.AbstractAsyncContextManager[Gateway]:
        values: dict[str, Any] = {"admin_token": ADMIN_TOKEN}
        values.update(overrides)
        return running_gateway(make_settings(**values))

    return factory


@pytest.fixture
def operator_gateway_factory(make_settings: Callable[..., Settings], simulator: Any) -> Callable[..., Any]:
    """A barkd-mode gateway on the simulator with the admin console and a fast operator task."""

    def factory(**overrides: Any) -> contextlib.AbstractAsyncContextManager[Gateway]:
        values: dict[str, Any] = {
            "admin_token": ADMIN_TOKEN,
            "payment_mode": "barkd",
            "barkd_url": simulator.url,
            "barkd_token": simulator.token,
            "reconcile_interval_s": 3600,
            "refresh_check_interval_s": 0.05,
            "sweep_margin_sats": 0,
        }
        values.update(overrides)
        return running_gateway(make_settings(**values))

    return factory


@pytest.fixture
def live_gateway_factory(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    def factory(**overrides: Any) -> contextlib.AbstractContextManager[LiveGateway]:
        values: dict[str, Any] = {"admin_token": ADMIN_TOKEN}
        values.update(overrides)
        return live_gateway(make_settings(**values))

    return factory


async def admin_get(client: httpx.AsyncClient, path: str, **kwargs: Any) -> Any:
    response = await client.get(f"/admin/api/{path}", headers=admin_headers(), **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def admin_post(client: httpx.AsyncClient, path: str, body: Any = None, *, status: int = 200) -> Any:
    response = await client.post(f"/admin/api/{path}", json=body or {}, headers=admin_headers())
    assert response.status_code == status, response.text
    return response.json()


@contextlib.asynccontextmanager
async def async_client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client
