"""``GET /v1/downloads/{id}``: serve a hosted download until it expires.

Free to fetch: the id is the capability (unguessable, short-lived). Unknown,
malformed and expired ids all get the same 404, so the answer reveals nothing.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from arkgate.catalog.context import Services
from arkgate.downloads import DownloadStore, get_download_store
from arkgate.runtime import Part, Runtime

router = APIRouter(tags=["visual"])

_NOT_FOUND = {
    "success": False,
    "error": "download not found or expired",
    "code": 404,
    "error_code": "not_found",
    "cost_sats": 0,
}


def _services(app: Any) -> Services:
    """The app's shared services (the same ones handlers see as ``ctx.services``)."""
    runtime = getattr(app.state, "runtime", None)
    services = getattr(runtime, "services", None) or getattr(app.state, "services", None)
    if not isinstance(services, Services):
        # A bare app (unit tests) without a runtime still gets one store per app.
        services = Services(app.state.settings)
        app.state.services = services
    return services


def _store(request: Request) -> DownloadStore:
    return _services(request.app).get(get_download_store)


def install(app: FastAPI, rt: Runtime) -> Part:
    """Mount the route and start the expiry sweeper with the app (not on first use)."""
    app.include_router(router)

    async def start_cleanup(rt: Runtime) -> None:
        rt.services.get(get_download_store).start()

    return Part(startup_hooks=(start_cleanup,))


@router.get(
    "/v1/downloads/{download_id}",
    summary="Fetch a hosted download",
    responses={200: {"description": "The file (for example image/png)."}, 404: {"description": "Missing or expired."}},
)
async def get_download(download_id: str, request: Request) -> Response:
    stored = await _store(request).load(download_id)
    if stored is None:
        return JSONResponse(_NOT_FOUND, status_code=404)
    remaining_s = max(0, math.floor((stored.expires_at - datetime.now(UTC)).total_seconds()))
    extension = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg", "application/pdf": "pdf"}
    filename = f"{download_id}.{extension.get(stored.mime, 'bin')}"
    return Response(
        content=stored.data,
        media_type=stored.mime,
        headers={
            "Cache-Control": f"private, max-age={remaining_s}",
            "Expires": stored.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "Content-Disposition": f'inline; filename="{filename}"',
            # Stored files are served from our origin: never let one run as a page.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
        },
    )
