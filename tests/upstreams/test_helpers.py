"""The shared upstream plumbing (cache, retries, error mapping) and the recorded-response server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from arkgate.catalog._upstream import RetryPolicy, TTLCache, get_json, get_text
from arkgate.errors import UpstreamError, UpstreamTimeoutError
from tests.upstreams import UpstreamServer, upstream_server_fixture  # noqa: F401


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_cache_loads_once_for_concurrent_callers() -> None:
    cache = TTLCache()
    calls = 0
    release = asyncio.Event()

    async def load() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "value"

    tasks = [asyncio.create_task(cache.get_or_load("k", load, 60)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*tasks) == ["value"] * 5
    assert calls == 1
    assert cache.misses == 1 and cache.hits == 4


async def test_cache_entries_expire_and_failures_are_not_cached() -> None:
    clock = Clock()
    cache = TTLCache(clock=clock)
    outcomes: list[object] = [RuntimeError("down"), "first", "second"]

    async def load() -> object:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(RuntimeError):
        await cache.get_or_load("k", load, 10)
    assert await cache.get_or_load("k", load, 10) == "first"
    clock.now += 9
    assert await cache.get_or_load("k", load, 10) == "first"
    clock.now += 2
    assert await cache.get_or_load("k", load, 10) == "second"


def test_cache_is_bounded() -> None:
    cache = TTLCache(max_entries=2)
    for key in "abc":
        cache.put(key, key, 60)
    assert len(cache) == 2
    assert cache.get("a") is None and cache.get("c") == "c"


async def test_retry_policy_retries_transient_statuses_only(upstream_server: UpstreamServer) -> None:
    upstream_server.serve_json("/ok", {"fine": True})
    upstream_server.fail("/ok", 503, times=2)
    upstream_server.fail("/missing", 404)
    policy = RetryPolicy(retries=2, backoff_s=0)
    async with httpx.AsyncClient() as client:
        status, body = await get_json(client, "Demo", f"{upstream_server.url}/ok", timeout_s=2, retry=policy)
        assert (status, body) == (200, {"fine": True})
        assert upstream_server.hits("/ok") == 3
        with pytest.raises(UpstreamError, match="Demo answered with HTTP 404"):
            await get_json(client, "Demo", f"{upstream_server.url}/missing", timeout_s=2, retry=policy)
        assert upstream_server.hits("/missing") == 1


async def test_errors_name_the_upstream_never_the_url(upstream_server: UpstreamServer) -> None:
    upstream_server.hang("/slow")
    upstream_server.serve_text("/garbage", "not json", content_type="application/json")
    async with httpx.AsyncClient() as client:
        with pytest.raises(UpstreamTimeoutError) as timeout:
            await get_text(client, "Slowpoke", f"{upstream_server.url}/slow?key=SECRET", timeout_s=0.2)
        with pytest.raises(UpstreamError) as garbage:
            await get_json(client, "Garbled", f"{upstream_server.url}/garbage", timeout_s=2)
        with pytest.raises(UpstreamError) as refused:
            await get_json(client, "Closed", "http://127.0.0.1:9/x?key=SECRET", timeout_s=2)
    assert upstream_server.hits("/slow") == 1  # a timeout is not retried
    for exc, name in ((timeout, "Slowpoke"), (garbage, "Garbled"), (refused, "Closed")):
        assert name in exc.value.message
        assert "127.0.0.1" not in exc.value.message and "SECRET" not in exc.value.message


async def test_server_matches_queries_and_records_requests(upstream_server: UpstreamServer) -> None:
    upstream_server.serve_json("/q", {"which": "default"})
    upstream_server.serve_json("/q", {"which": "berlin"}, query={"name": "Berlin"})
    async with httpx.AsyncClient() as client:
        berlin = await client.get(f"{upstream_server.url}/q", params={"name": "Berlin", "x": "1"})
        other = await client.get(f"{upstream_server.url}/q", params={"name": "Paris"}, headers={"X-Key": "k"})
        unknown = await client.get(f"{upstream_server.url}/nothing")
    assert berlin.json() == {"which": "berlin"}
    assert other.json() == {"which": "default"}
    assert unknown.status_code == 404
    assert upstream_server.hits("/q") == 2
    assert upstream_server.requests_to("/q")[1].headers["x-key"] == "k"
