"""Fixtures and helpers for the AI endpoint tests: the backend server and a socket-served gateway."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import uvicorn

from arkgate.app import create_app
from arkgate.settings import Settings
from tests.ai_backends.server import AiBackend


def running_backend() -> Iterator[AiBackend]:
    """Body of each test module's ``ai_backend`` fixture: the server, stopped afterwards."""
    backend = AiBackend().start()
    try:
        yield backend
    finally:
        backend.stop()


def ai_overrides(backend: AiBackend, **extra: Any) -> dict[str, Any]:
    """Settings pointing every AI endpoint at the local backend, with prices large enough to tell apart."""
    values: dict[str, Any] = {
        "ai_base_url": backend.chat_base_url,
        "ai_api_key": "sk-test-secret-key-123",
        "translate_base_url": backend.libretranslate_url,
        "image_base_url": backend.chat_base_url,
        "image_api_key": "img-secret-key-456",
        "ai_chat_input_sats_per_1k": 100,
        "ai_chat_output_sats_per_1k": 1000,
        "ai_chat_min_sats": 2,
        "ai_translate_input_sats_per_1k": 50,
        "ai_translate_output_sats_per_1k": 500,
        "ai_translate_min_sats": 1,
        "ai_default_max_tokens": 200,
        "ai_max_output_tokens": 400,
        "image_poll_interval_s": 0.01,
    }
    values.update(extra)
    return values


async def calls_of(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    """The session's call receipts (debit and refund rows), newest first."""
    response = await client.get("/v1/sessions/me/calls", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()["calls"]  # type: ignore[no-any-return]


def ledger_kinds(call: dict[str, Any]) -> list[tuple[str, int]]:
    return [(row["kind"], row["amount_sats"]) for row in call["ledger"]]


class ServedGateway:
    """The gateway on a real loopback socket: needed where the ASGI test transport buffers (streaming)."""

    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.url = url
        self.client = httpx.AsyncClient(base_url=url, timeout=30)

    async def new_session(self, sats: int) -> str:
        response = await self.client.post("/v1/sessions", json={"amount_sats": sats})
        assert response.status_code == 201, response.text
        return response.json()["token"]  # type: ignore[no-any-return]

    async def balance(self, token: str) -> int:
        response = await self.client.get("/v1/balance", headers={"Authorization": f"Bearer {token}"})
        return int(response.json()["balance_sats"])

    async def assert_ledger_consistent(self) -> None:
        bad = await self.app.state.runtime.ledger.inconsistent_sessions()
        assert bad == [], f"sessions whose balance differs from their ledger sum: {bad}"


@contextlib.asynccontextmanager
async def served_gateway(settings: Settings) -> AsyncIterator[ServedGateway]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=2)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        gateway = ServedGateway(app, f"http://127.0.0.1:{port}")
        try:
            yield gateway
        finally:
            await gateway.client.aclose()
    finally:
        server.should_exit = True
        await task
