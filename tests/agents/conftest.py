"""A gateway served by a real uvicorn server on a loopback port (MCP client, CLI, client tests)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from arkgate.app import create_app
from arkgate.catalog.registry import Catalog, load_catalog
from arkgate.settings import Settings

START_TIMEOUT_S = 30.0


class LiveGateway:
    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.url = url

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def create_session(self, sats: int = 1000) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/v1/sessions", json={"amount_sats": sats}, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def balance(self, token: str) -> int:
        response = httpx.get(f"{self.url}/v1/balance", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 200, response.text
        return int(response.json()["balance_sats"])


@contextlib.contextmanager
def serve(settings: Settings, catalog: Catalog | None = None) -> Iterator[LiveGateway]:
    app = create_app(settings, catalog=catalog)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.01)
    try:
        yield LiveGateway(app, url)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def offline_catalog(*ids: str) -> Catalog:
    """A catalog subset of endpoints that need no network (fast, deterministic)."""
    wanted = ids or ("qr-generate",)
    return load_catalog(plugins=False, only=wanted)


@pytest.fixture
def live_gateway_factory(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    def factory(catalog: Catalog | None = None, **overrides: Any) -> contextlib.AbstractContextManager[LiveGateway]:
        return serve(make_settings(**overrides), catalog)

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
