"""GET helpers for operator-configured upstream APIs over the shared client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from arkgate.catalog._upstream.errors import UpstreamStatusError, upstream_errors
from arkgate.catalog._upstream.retry import RetryPolicy

Params = Mapping[str, str | int | float]


async def _get(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Params | None,
    headers: Mapping[str, str] | None,
    timeout_s: float,
    retry: RetryPolicy | None,
    ok_statuses: frozenset[int],
) -> httpx.Response:
    async def attempt() -> httpx.Response:
        response = await client.get(url, params=params, headers=headers, timeout=timeout_s)
        if response.status_code not in ok_statuses and not response.is_success:
            await response.aclose()
            raise UpstreamStatusError(response.status_code)
        return response

    return await (retry or RetryPolicy(retries=0)).run(attempt)


async def get_json(
    client: httpx.AsyncClient,
    name: str,
    url: str,
    *,
    params: Params | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float,
    retry: RetryPolicy | None = None,
    ok_statuses: frozenset[int] = frozenset(),
) -> tuple[int, Any]:
    """GET ``url`` and decode JSON; returns (status, body). Errors name only ``name``.

    ``ok_statuses`` lists non-2xx statuses the caller handles itself (e.g. 404 = no such record).
    """
    with upstream_errors(name):
        response = await _get(
            client,
            url,
            params=params,
            headers=headers,
            timeout_s=timeout_s,
            retry=retry,
            ok_statuses=ok_statuses,
        )
        if not response.is_success:
            return response.status_code, None
        return response.status_code, response.json()


async def get_text(
    client: httpx.AsyncClient,
    name: str,
    url: str,
    *,
    params: Params | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float,
    retry: RetryPolicy | None = None,
) -> str:
    """GET ``url`` and return the body as text (feeds, pages). Errors name only ``name``."""
    with upstream_errors(name):
        response = await _get(
            client,
            url,
            params=params,
            headers=headers,
            timeout_s=timeout_s,
            retry=retry,
            ok_statuses=frozenset(),
        )
        return response.text
