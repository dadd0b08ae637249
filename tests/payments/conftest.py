from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import Gateway, running_gateway


@pytest.fixture
def paid_gateway_factory(make_settings: Callable[..., Any], simulator: Any) -> Callable[..., Any]:
    """A gateway taking real payments from the simulator (barkd mode)."""

    def factory(**overrides: Any) -> contextlib.AbstractAsyncContextManager[Gateway]:
        values = {
            "payment_mode": "barkd",
            "barkd_url": simulator.url,
            "barkd_token": simulator.token,
            "reconcile_interval_s": 3600,
        }
        values.update(overrides)
        return running_gateway(make_settings(**values))

    return factory


@pytest.fixture
async def paid_gateway(paid_gateway_factory: Callable[..., Any]) -> AsyncIterator[Gateway]:
    async with paid_gateway_factory() as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        yield gw
