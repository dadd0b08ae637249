"""Routes ArkAPI's clients and links expect: its public ``/v1/stats`` and its old page paths.

``/dashboard/`` and ``/topoff/`` are where ArkAPI's site keeps the session and top-up
pages; arkgate serves them at ``/session`` and ``/topup``, so old links redirect there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from arkgate.payments.stats import public_stats
from arkgate.runtime import runtime
from arkgate.services.envelope import json_response

router = APIRouter(tags=["public"])

PAGE_REDIRECTS = {"/dashboard": "/session", "/topoff": "/topup"}


@router.get("/v1/stats", summary="Public usage statistics (ArkAPI's landing-page numbers)")
async def stats(request: Request) -> Response:
    rt = runtime(request)
    numbers = await public_stats(rt.database, (e.id for e in rt.catalog))
    return json_response(dataclasses.asdict(numbers), headers={"Cache-Control": "public, max-age=10"})


def _redirect_to(target: str) -> Callable[[Request], Awaitable[RedirectResponse]]:
    async def redirect(request: Request) -> RedirectResponse:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(target + query, status_code=301)

    return redirect


for _old, _new in PAGE_REDIRECTS.items():
    for _path in (_old, _old + "/"):
        router.add_api_route(_path, _redirect_to(_new), methods=["GET"], include_in_schema=False)
