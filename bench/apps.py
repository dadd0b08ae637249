"""App factories the benchmarks serve: the real gateway, and the same handler without metering."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from arkgate.app import create_app
from arkgate.catalog import qr_generate
from arkgate.catalog.registry import Catalog
from arkgate.gc_tuning import freeze_startup_heap
from arkgate.logs import configure_logging
from arkgate.services.envelope import dumps
from arkgate.settings import Settings


def gateway() -> FastAPI:
    """The gateway with only qr-generate, free payment mode, settings from ARKGATE_* variables."""
    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)  # as `arkgate serve` does
    return create_app(settings, catalog=Catalog([qr_generate.ENDPOINT]))


def unmetered() -> FastAPI:
    """The same handler and envelope, with no token, no ledger and no rate limit: the baseline.

    It gets the gateway's garbage-collector tuning too, so the two differ only by the meter.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        restore = freeze_startup_heap()
        yield
        restore()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health/live")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/qr-generate")
    async def qr(request: Request) -> Response:
        started = time.perf_counter()
        payload = qr_generate.QrRequest.model_validate_json(await request.body())
        result: Any = await qr_generate.generate(payload, None)  # type: ignore[arg-type]
        body = {
            "success": True,
            "data": result.model_dump(mode="json"),
            "cost_sats": 0,
            "balance_remaining": 0,
            "response_ms": int((time.perf_counter() - started) * 1000),
            "endpoint": "qr-generate",
        }
        return Response(dumps(body), media_type="application/json")

    @app.get("/v1/balance")
    async def balance(request: Request) -> Response:
        """A constant body of the real one's shape: the framework's floor for a GET with a bearer token."""
        body = {
            "balance_sats": 1000,
            "status": "active",
            "expires_at": "2026-12-03T20:00:00Z",
            "expires_in": 86400,
            "ark_address": None,
            "funded": True,
        }
        return Response(dumps(body), media_type="application/json")

    return app
