"""Gateways with webhooks allowed to loopback, a test catalog, and local receivers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from arkgate.catalog.registry import Catalog, Endpoint
from arkgate.errors import UpstreamError
from tests.conftest import Gateway, running_gateway
from tests.webhooks.receiver import Receiver


class Ping(BaseModel):
    text: str = "hi"


async def ping(request: Ping, ctx: Any) -> dict[str, Any]:
    return {"text": request.text}


async def broken(request: Ping, ctx: Any) -> dict[str, Any]:
    raise UpstreamError("the example upstream failed")


def build_catalog() -> Catalog:
    common = dict(category="test", summary="s", description="d", request_model=Ping)
    return Catalog(
        [
            Endpoint(id="ping", price_sats=2, handler=ping, **common),
            Endpoint(id="broken", price_sats=3, handler=broken, **common),
        ]
    )


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def factory(statuses: list[int] | None = None) -> Receiver:
        receiver = Receiver(statuses)
        made.append(receiver)
        return receiver

    yield factory
    for receiver in made:
        receiver.close()


def webhook_settings(receiver: Receiver, **overrides: Any) -> dict[str, Any]:
    """Loopback allowed for callback URLs (the operator's list), the receiver's port allowed."""
    values: dict[str, Any] = {
        "webhook_allow_networks": ["127.0.0.0/8"],
        "outbound_allowed_ports": [80, 443, receiver.port],
        "webhook_backoff_s": 0,
    }
    values.update(overrides)
    return values


@pytest.fixture
def hook_gateway_factory(make_settings: Callable[..., Any]) -> Callable[..., Any]:
    def factory(receiver: Receiver, **overrides: Any) -> contextlib.AbstractAsyncContextManager[Gateway]:
        return running_gateway(make_settings(**webhook_settings(receiver, **overrides)), catalog=build_catalog())

    return factory


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def session_with_webhook(gw: Gateway, url: str, sats: int = 100, **extra: Any) -> tuple[str, str]:
    """A funded session created with ``callback_url``; returns (token, whsec secret)."""
    response = await gw.client.post("/v1/sessions", json={"amount_sats": sats, "callback_url": url, **extra})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["token"], body["webhook"]["secret"]


async def settle(gw: Gateway) -> None:
    """Let hook tasks queue their deliveries."""
    assert gw.runtime.webhooks is not None
    await gw.runtime.webhooks.drain()
    await asyncio.sleep(0)
