"""/health/live, /health/ready and /health's overall status against a real dead barkd and a broken database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from arkgate.db.engine import async_url
from tests.conftest import BARKD_COMPAT, DEAD_END
from tests.databases import SERVER_URLS, backends, scratch_database


async def test_live_answers_ok_without_touching_anything(gateway):
    gateway.runtime.database.drop_connections()  # no pooled connection could still answer for the file
    Path(gateway.runtime.database.sqlite_path).unlink()
    response = await gateway.client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_ready_when_database_is_at_head_in_free_mode(gateway):
    response = await gateway.client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "barkd": None}


async def test_ready_reports_barkd_version_when_reachable(gateway_factory, simulator):
    async with gateway_factory(payment_mode="barkd", barkd_url=simulator.url, barkd_token=simulator.token) as gw:
        ready = await gw.client.get("/health/ready")
        health = (await gw.client.get("/health")).json()
    assert ready.status_code == 200
    assert ready.json()["barkd"] == {"reachable": True, "version": BARKD_COMPAT}
    assert health["status"] == "ok" and health["barkd"]["reachable"] is True


async def test_unreachable_barkd_is_reported_and_degrades_health(gateway_factory):
    async with gateway_factory(payment_mode="barkd", barkd_url=DEAD_END) as gw:
        ready = await gw.client.get("/health/ready")
        health = await gw.client.get("/health")
    assert ready.status_code == 200
    assert ready.json()["barkd"] == {"reachable": False, "version": None}
    assert health.status_code == 200
    assert health.json()["status"] == "degraded" and health.json()["barkd"]["reachable"] is False
    assert health.json()["database"] == "ok"


async def test_unreachable_barkd_makes_ready_503_when_required(gateway_factory):
    async with gateway_factory(payment_mode="barkd", barkd_url=DEAD_END, ready_requires_barkd=True) as gw:
        ready = await gw.client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready" and ready.json()["problems"] == ["barkd unreachable"]


async def test_database_gone_makes_ready_and_health_503(gateway):
    database = gateway.runtime.database
    path = Path(database.sqlite_path)
    database.drop_connections()  # the next connection opens the path afresh
    path.rename(path.with_suffix(".moved"))
    path.mkdir()  # a directory where the database was: SQLite cannot open it
    ready = await gateway.client.get("/health/ready")
    health = await gateway.client.get("/health")
    assert ready.status_code == 503
    assert ready.json()["problems"] == ["database unreachable"]
    assert health.status_code == 503
    assert health.json()["status"] == "degraded" and health.json()["database"] == "unreachable"
    path.rmdir()
    path.with_suffix(".moved").rename(path)
    assert (await gateway.client.get("/health/ready")).status_code == 200


async def test_schema_behind_the_code_makes_ready_503(gateway):
    async with gateway.runtime.database.write() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
    ready = await gateway.client.get("/health/ready")
    assert ready.status_code == 503
    assert "arkgate migrate" in ready.json()["problems"][0]


@pytest.mark.parametrize("kind", [param for param in backends() if param.values[0] != "sqlite"])
async def test_database_dropped_on_its_server_makes_ready_503(gateway_factory, tmp_path, kind):
    async with scratch_database(kind, str(tmp_path / "unused.sqlite3")) as url:
        async with gateway_factory(database_url=url) as gw:
            assert (await gw.client.get("/health/ready")).status_code == 200
            name = url.rpartition("/")[2]
            admin = create_async_engine(async_url(os.environ[SERVER_URLS[kind]]), isolation_level="AUTOCOMMIT")
            async with admin.connect() as conn:
                force = " WITH (FORCE)" if kind == "postgresql" else ""
                await conn.execute(text(f"DROP DATABASE {name}{force}"))
            await admin.dispose()
            ready = await gw.client.get("/health/ready")
            health = await gw.client.get("/health")
    assert ready.status_code == 503
    if kind == "postgresql":  # the server ends the connections
        assert ready.json()["problems"] == ["database unreachable"]
        assert health.status_code == 503 and health.json()["database"] == "unreachable"
    else:  # MariaDB keeps them, without the tables
        assert ready.json()["problems"][0].startswith("database schema at no revision")
