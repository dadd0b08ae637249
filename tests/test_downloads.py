"""The hosted-downloads store and ``GET /v1/downloads/{id}``."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from arkgate.api.downloads import router
from arkgate.catalog.context import Services
from arkgate.downloads import ID_BYTES, DownloadStore, get_download_store
from arkgate.errors import InputError
from arkgate.settings import Settings
from tests.conftest import wait_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, payment_mode="free")


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    app = FastAPI()
    app.state.settings = settings
    app.state.services = Services(settings)
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client, app.state.services
    await app.state.services.aclose()


async def test_saved_file_is_served_with_its_type(app_client: tuple[httpx.AsyncClient, Services]) -> None:
    client, services = app_client
    download = await services.get(get_download_store).save(PNG, "image/png")
    assert download.url_path == f"/v1/downloads/{download.id}"
    resp = await client.get(download.url_path)
    assert resp.status_code == 200
    assert resp.content == PNG
    assert resp.headers["content-type"] == "image/png"
    assert resp.headers["x-content-type-options"] == "nosniff"


async def test_ids_carry_at_least_128_bits_of_randomness(tmp_path: Path) -> None:
    store = DownloadStore(tmp_path)
    ids = {(await store.save(b"x", "text/plain")).id for _ in range(50)}
    await store.aclose()
    assert len(ids) == 50
    assert ID_BYTES * 8 >= 128
    for download_id in ids:
        # token_urlsafe: 6 bits per base64url character
        assert re.fullmatch(r"[A-Za-z0-9_-]+", download_id)
        assert len(download_id) * 6 >= 128


@pytest.mark.parametrize("download_id", ["nope", "A" * 32, "%00" + "a" * 31, "a" * 31 + "."])
async def test_unknown_or_malformed_id_is_404_in_the_error_envelope(
    app_client: tuple[httpx.AsyncClient, Services], download_id: str
) -> None:
    client, _ = app_client
    resp = await client.get(f"/v1/downloads/{download_id}")
    assert resp.status_code == 404
    body = resp.json()
    assert body["success"] is False
    assert body["code"] == 404
    assert body["error"]


@pytest.mark.parametrize("path", ["../../etc/passwd", "..%2F..%2Fsettings", "%2e%2e%2fx"])
async def test_path_traversal_never_reaches_the_filesystem(
    app_client: tuple[httpx.AsyncClient, Services], path: str
) -> None:
    client, _ = app_client
    resp = await client.get(f"/v1/downloads/{path}")
    assert resp.status_code == 404


async def test_expired_id_is_404_and_its_file_is_deleted(settings: Settings) -> None:
    clock = FakeClock()
    store = DownloadStore(settings.data_dir / "downloads", clock=clock)
    services = Services(settings)
    services._values[get_download_store] = store  # the app's store, with a controllable clock
    services.on_close(store.aclose)
    app = FastAPI()
    app.state.settings = settings
    app.state.services = services
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client:
        download = await store.save(PNG, "image/png", ttl_s=30)
        assert (await client.get(download.url_path)).status_code == 200
        clock.now += 31
        resp = await client.get(download.url_path)
        assert resp.status_code == 404
        assert resp.json()["code"] == 404
    await services.aclose()
    assert list((settings.data_dir / "downloads").glob(f"{download.id}.*")) == []


async def test_cleanup_deletes_only_expired_files(tmp_path: Path) -> None:
    clock = FakeClock()
    store = DownloadStore(tmp_path, clock=clock)
    short = await store.save(b"short", "text/plain", ttl_s=10)
    long = await store.save(b"long", "text/plain", ttl_s=1000)
    clock.now += 11
    assert await store.cleanup() == 1
    assert await store.load(short.id) is None
    stored = await store.load(long.id)
    assert stored is not None and stored.data == b"long"
    assert not (tmp_path / f"{short.id}.bin").exists()
    await store.aclose()


async def test_background_task_cleans_up_without_being_asked(tmp_path: Path) -> None:
    clock = FakeClock()
    store = DownloadStore(tmp_path, clock=clock, cleanup_interval_s=0.01)
    download = await store.save(b"x", "text/plain", ttl_s=5)
    clock.now += 6
    await wait_for(lambda: not (tmp_path / f"{download.id}.bin").exists())
    await store.aclose()


async def test_expiry_and_default_ttl_come_from_settings(settings: Settings) -> None:
    store = get_download_store(settings.model_copy(update={"downloads_ttl_s": 120}))
    download = await store.save(PNG, "image/png")
    stored = await store.load(download.id)
    assert stored is not None
    assert stored.expires_at == download.expires_at
    # expires_at is whole seconds, up to 120 s from now
    from datetime import UTC, datetime

    remaining = (download.expires_at - datetime.now(UTC)).total_seconds()
    assert 0 < math.ceil(remaining) <= 120
    await store.aclose()


async def test_oversized_file_is_refused(tmp_path: Path) -> None:
    store = DownloadStore(tmp_path, max_bytes=10)
    with pytest.raises(InputError):
        await store.save(b"x" * 11, "text/plain")
    await store.aclose()


async def test_gateway_serves_downloads_and_runs_the_sweeper(gateway) -> None:
    store = gateway.runtime.services.get(get_download_store)
    assert store._cleanup_task is not None and not store._cleanup_task.done()  # started with the app
    download = await store.save(PNG, "image/png")
    resp = await gateway.client.get(download.url_path)
    assert resp.status_code == 200
    assert resp.content == PNG
    missing = await gateway.client.get("/v1/downloads/" + "B" * 32)
    assert missing.status_code == 404
    assert missing.json()["success"] is False
    assert missing.json()["code"] == 404
