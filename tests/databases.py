"""Throwaway databases on the PostgreSQL and MariaDB servers named by ARKGATE_TEST_*_URL."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from arkgate.db.engine import async_url

SERVER_URLS = {
    "postgresql": "ARKGATE_TEST_POSTGRES_URL",
    "mysql": "ARKGATE_TEST_MYSQL_URL",
}


def backends() -> list[pytest.param]:  # type: ignore[valid-type]
    """sqlite always; the servers when their URL is set (CI sets both and fails if they are unreachable)."""
    params = [pytest.param("sqlite", id="sqlite")]
    for name, variable in SERVER_URLS.items():
        marks = [] if os.environ.get(variable) else [pytest.mark.skip(reason=f"{variable} not set")]
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@contextlib.asynccontextmanager
async def scratch_database(kind: str, sqlite_path: str) -> AsyncIterator[str]:
    """A fresh, empty database URL of the given kind, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{sqlite_path}"
        return
    server_url = os.environ[SERVER_URLS[kind]]
    name = f"arkgate_t_{secrets.token_hex(4)}"
    admin = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE {name}"))
        base, _, _ = server_url.rpartition("/")
        yield f"{base}/{name}"
    finally:
        async with admin.connect() as conn:
            if kind == "postgresql":
                await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await admin.dispose()
