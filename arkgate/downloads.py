"""Hosted downloads: files served at ``/v1/downloads/{id}`` for a limited time.

A file is stored as ``<data_dir>/downloads/<id>.bin`` with a ``<id>.json`` sidecar
(media type, expiry). Ids come from ``secrets.token_urlsafe`` (192 bits), so a URL
is the only capability needed to read a file and cannot be guessed. Expired files
are refused at once and deleted by a background task.

Handlers use ``ctx.services.get(get_download_store)``; the API router reads the same
store through the app's ``Services``. On PostgreSQL and MariaDB, where several instances
share the database, ``create_app`` provides a ``DatabaseDownloadStore`` instead (unless
``ARKGATE_DOWNLOADS_DIR`` names a shared directory), so any instance serves any file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from arkgate.db import tables as t
from arkgate.db.engine import Database
from arkgate.errors import InputError

if TYPE_CHECKING:
    from arkgate.settings import Settings

ID_BYTES = 24  # 192 bits of randomness; token_urlsafe makes 32 characters of them
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32}$")
URL_PREFIX = "/v1/downloads/"


@dataclass(frozen=True, kw_only=True)
class Download:
    """A stored file: its id, the path it is served at, and when it stops being served."""

    id: str
    url_path: str
    expires_at: datetime
    mime: str
    size_bytes: int


@dataclass(frozen=True, kw_only=True)
class StoredFile:
    data: bytes
    mime: str
    expires_at: datetime


class DownloadStore:
    """Saves bytes under unguessable ids and serves them until they expire."""

    def __init__(
        self,
        directory: Path,
        *,
        default_ttl_s: int = 1800,
        max_bytes: int = 20_000_000,
        cleanup_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.default_ttl_s = default_ttl_s
        self.max_bytes = max_bytes
        self.cleanup_interval_s = cleanup_interval_s
        self._clock = clock
        self._cleanup_task: asyncio.Task[None] | None = None

    @staticmethod
    def is_valid_id(download_id: str) -> bool:
        """Only ids we could have made; anything else (``..``, slashes) never reaches the filesystem."""
        return bool(_ID_PATTERN.fullmatch(download_id))

    async def save(self, data: bytes, mime: str, ttl_s: int | None = None) -> Download:
        """Store ``data`` for ``ttl_s`` seconds (default from settings) and return its handle."""
        if len(data) > self.max_bytes:
            raise InputError(f"the file is too large to host ({len(data)} bytes, limit {self.max_bytes})")
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise ValueError("ttl_s must be positive")
        self._ensure_cleanup_task()
        download_id = secrets.token_urlsafe(ID_BYTES)
        expires_ts = self._clock() + ttl
        await asyncio.to_thread(self._write, download_id, data, mime, expires_ts)
        return Download(
            id=download_id,
            url_path=URL_PREFIX + download_id,
            expires_at=_utc(expires_ts),
            mime=mime,
            size_bytes=len(data),
        )

    async def load(self, download_id: str) -> StoredFile | None:
        """The file's bytes and type, or None when the id is unknown, malformed or expired."""
        if not self.is_valid_id(download_id):
            return None
        self._ensure_cleanup_task()
        return await asyncio.to_thread(self._read, download_id)

    async def cleanup(self) -> int:
        """Delete every expired file now; returns how many were removed."""
        return await asyncio.to_thread(self._cleanup_sync)

    def start(self) -> None:
        """Start the background cleanup now (it otherwise starts on first use)."""
        self._ensure_cleanup_task()

    async def aclose(self) -> None:
        task, self._cleanup_task = self._cleanup_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- background cleanup ------------------------------------------------------------
    def _ensure_cleanup_task(self) -> None:
        # Started lazily from the first use, because the store is built outside any event loop.
        if self._cleanup_task is None or self._cleanup_task.done():
            self._cleanup_task = asyncio.get_running_loop().create_task(self._cleanup_loop(), name="downloads-cleanup")

    async def _cleanup_loop(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                await self.cleanup()
            await asyncio.sleep(self.cleanup_interval_s)

    # --- filesystem (run in a worker thread) -------------------------------------------
    def _paths(self, download_id: str) -> tuple[Path, Path]:
        return self.directory / f"{download_id}.bin", self.directory / f"{download_id}.json"

    def _write(self, download_id: str, data: bytes, mime: str, expires_ts: float) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        body, meta = self._paths(download_id)
        # Write the body before its sidecar: a file without metadata is never served.
        _atomic_write(body, data)
        _atomic_write(meta, json.dumps({"mime": mime, "expires_ts": expires_ts}).encode())

    def _read(self, download_id: str) -> StoredFile | None:
        body, meta = self._paths(download_id)
        try:
            info = json.loads(meta.read_bytes())
            expires_ts = float(info["expires_ts"])
            if expires_ts <= self._clock():
                self._remove(download_id)
                return None
            return StoredFile(data=body.read_bytes(), mime=str(info["mime"]), expires_at=_utc(expires_ts))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _remove(self, download_id: str) -> None:
        for path in self._paths(download_id)[::-1]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _cleanup_sync(self) -> int:
        if not self.directory.is_dir():
            return 0
        now = self._clock()
        removed = 0
        for meta in self.directory.glob("*.json"):
            download_id = meta.stem
            try:
                expired = float(json.loads(meta.read_bytes())["expires_ts"]) <= now
            except (OSError, ValueError, KeyError, TypeError):
                expired = True  # unreadable metadata: the file can never be served
            if expired:
                self._remove(download_id)
                removed += 1
        # Bodies whose sidecar never got written (crash mid-save) are orphans. File times are
        # wall-clock, whatever clock the store uses; the grace period spares a save in progress.
        wall_now = time.time()
        for body in self.directory.glob("*.bin"):
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile by a reader
                if not body.with_suffix(".json").exists() and wall_now - body.stat().st_mtime > 60:
                    body.unlink()
        return removed


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


class DatabaseDownloadStore(DownloadStore):
    """The same contract with the files in the ``downloads`` table, readable by every instance.

    Expired rows are refused at once and deleted by ``cleanup`` (a leader-only job).
    """

    def __init__(self, database: Database, **kwargs: Any) -> None:
        super().__init__(Path("/nonexistent"), **kwargs)
        self.database = database

    async def save(self, data: bytes, mime: str, ttl_s: int | None = None) -> Download:
        if len(data) > self.max_bytes:
            raise InputError(f"the file is too large to host ({len(data)} bytes, limit {self.max_bytes})")
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise ValueError("ttl_s must be positive")
        download_id = secrets.token_urlsafe(ID_BYTES)
        expires_ts = self._clock() + ttl
        async with self.database.write() as conn:
            await conn.execute(
                insert(t.downloads).values(id=download_id, mime=mime, data=data, expires_at=_utc(expires_ts))
            )
        return Download(
            id=download_id,
            url_path=URL_PREFIX + download_id,
            expires_at=_utc(expires_ts),
            mime=mime,
            size_bytes=len(data),
        )

    async def load(self, download_id: str) -> StoredFile | None:
        if not self.is_valid_id(download_id):
            return None
        async with self.database.read() as conn:
            row = (await conn.execute(select(t.downloads).where(t.downloads.c.id == download_id))).one_or_none()
        if row is None:
            return None
        expires_at: datetime = row.expires_at
        if expires_at.timestamp() <= self._clock():
            return None
        return StoredFile(data=bytes(row.data), mime=str(row.mime), expires_at=expires_at)

    async def cleanup(self) -> int:
        async with self.database.write() as conn:
            result = await conn.execute(delete(t.downloads).where(t.downloads.c.expires_at <= _utc(self._clock())))
        return int(result.rowcount or 0)

    def start(self) -> None:
        """Nothing to start: the leader runs ``cleanup_forever``."""

    async def cleanup_forever(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                await self.cleanup()
            await asyncio.sleep(self.cleanup_interval_s)


def store_options(settings: Settings) -> dict[str, Any]:
    return {
        "default_ttl_s": settings.downloads_ttl_s,
        "max_bytes": settings.downloads_max_bytes,
        "cleanup_interval_s": settings.downloads_cleanup_interval_s,
    }


def get_download_store(settings: Settings) -> DownloadStore:
    """``Services`` factory: one store per app, in ``downloads_dir`` or ``data_dir / "downloads"``."""
    return DownloadStore(settings.downloads_dir or settings.data_dir / "downloads", **store_options(settings))
