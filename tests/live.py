"""The gateway on a real loopback socket, for browsers, subprocesses and real HTTP clients.

uvicorn serves the app in a background thread on a port-0 socket; the app's own event loop
lives in that thread, so reach the runtime (ledger, watcher) through ``run(coroutine)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import httpx
import uvicorn

from arkgate.app import create_app
from arkgate.catalog.registry import Catalog
from arkgate.runtime import Part
from arkgate.settings import Settings
from tests.conftest import wait_for_sync

START_TIMEOUT_S = 60.0


class LiveGateway:
    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.app = create_app(settings, catalog=catalog)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

        async def remember_loop(rt: Any) -> None:
            self.loop = asyncio.get_running_loop()

        self.runtime.add(Part(startup_hooks=(remember_loop,)))

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float = 30) -> Any:
        """Run a coroutine on the server's loop (the ledger and watcher live there)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def start(self, *, wait_for_watcher: bool = False) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.01)
        watcher = self.runtime.watcher
        if wait_for_watcher and watcher is not None:
            assert self.run(watcher.wait_ready(15)), "the payment watcher did not connect to barkd"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)

    # --- API shortcuts for setting the scene ---------------------------------------------------
    def create_session(self, sats: int = 1000) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/v1/sessions", json={"amount_sats": sats}, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def balance(self, token: str) -> int:
        response = httpx.get(f"{self.url}/v1/balance", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 200, response.text
        return int(response.json()["balance_sats"])

    def wait_balance(self, token: str, sats: int, timeout_s: float = 15) -> None:
        wait_for_sync(lambda: self.balance(token) == sats, timeout_s=timeout_s)


@contextlib.contextmanager
def live_gateway(
    settings: Settings, catalog: Catalog | None = None, *, wait_for_watcher: bool = False
) -> Iterator[LiveGateway]:
    gateway = LiveGateway(settings, catalog)
    gateway.start(wait_for_watcher=wait_for_watcher)
    try:
        yield gateway
    finally:
        gateway.stop()
