"""Carry session events between instances: PostgreSQL LISTEN/NOTIFY, Redis pub/sub, or a table.

Each process delivers its own events to its own subscribers at once (``EventHub.publish``);
a transport sends them to the others and hands theirs to ``EventHub.deliver``. Messages
carry the sender's id, so nothing is delivered twice. A transport that loses its
connection reconnects; events sent meanwhile are lost, which a live page survives (it
reads the session's status whenever it reconnects).

``ARKGATE_EVENT_BUS=auto`` picks NOTIFY on PostgreSQL, the ``session_events`` table for
several SQLite workers or on MariaDB (polled every quarter second), and nothing for one
SQLite process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, insert, select

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.payments.events import EventHub
from arkgate.settings import Settings

log = structlog.get_logger("arkgate.cluster.bus")

CHANNEL = "arkgate_session_events"
RECONNECT_S = 1.0
POLL_S = 0.25
TABLE_WINDOW_S = 30.0  # rows are read again for this long (commits may land out of id order)
_QUEUE_MAX = 10_000


class Bus:
    """Base of the transports: a send queue drained by a task, and a receive loop."""

    kind = "memory"

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self.origin = secrets.token_hex(8)
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=_QUEUE_MAX)
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self.ready = asyncio.Event()

    def send(self, session_id: int, event: dict[str, Any]) -> None:
        message = json.dumps({"o": self.origin, "s": session_id, "e": event}, separators=(",", ":"))
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(message)
        self._wakeup.set()

    def receive(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
            if data["o"] == self.origin:
                return
            self.hub.deliver(int(data["s"]), dict(data["e"]))
        except (ValueError, KeyError, TypeError):
            log.warning("bus.bad_message")

    async def start(self) -> None:
        self.hub.transport = self
        self._task = asyncio.create_task(self._supervise(), name=f"event-bus-{self.kind}")

    async def aclose(self) -> None:
        self.hub.transport = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _supervise(self) -> None:
        while True:
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect whatever broke
                self.ready.clear()
                log.warning("bus.disconnected", kind=self.kind, error=type(exc).__name__)
            await asyncio.sleep(RECONNECT_S)

    async def _run(self) -> None:
        raise NotImplementedError


class PostgresBus(Bus):
    kind = "postgres"

    def __init__(self, hub: EventHub, database: Database) -> None:
        super().__init__(hub)
        url = database.engine.url.set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)

    async def _run(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self._dsn)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: self.receive(payload))
            self.ready.set()
            while not lost.is_set():
                get = asyncio.ensure_future(self._outbox.get())
                wait_lost = asyncio.ensure_future(lost.wait())
                done, _ = await asyncio.wait({get, wait_lost}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    raise ConnectionError("the LISTEN connection closed")
                wait_lost.cancel()
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, get.result())
        finally:
            self.ready.clear()
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)


class RedisBus(Bus):
    kind = "redis"

    def __init__(self, hub: EventHub, url: str) -> None:
        super().__init__(hub)
        self._url = url

    async def _run(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.from_url(self._url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            self.ready.set()
            sender = asyncio.create_task(self._send_loop(client))
            try:
                async for message in pubsub.listen():
                    if sender.done():
                        sender.result()
                    if message.get("type") == "message":
                        self.receive(message["data"])
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sender
        finally:
            self.ready.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis leaves PubSub.aclose unannotated
                await client.aclose()

    async def _send_loop(self, client: Any) -> None:
        while True:
            message = await self._outbox.get()
            await client.publish(CHANNEL, message)


class TableBus(Bus):
    """Events as rows of ``session_events``, polled: for SQLite workers and MariaDB."""

    kind = "database"

    def __init__(self, hub: EventHub, database: Database) -> None:
        super().__init__(hub)
        self.database = database
        self._seen: dict[int, float] = {}

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # Start after whatever is already there: those events were for streams of the past.
        async with self.database.read() as conn:
            for row in await conn.execute(
                select(t.session_events.c.id).where(
                    t.session_events.c.created_at >= utcnow() - timedelta(seconds=TABLE_WINDOW_S)
                )
            ):
                self._seen[int(row.id)] = loop.time()
        self.ready.set()
        last_prune = loop.time()
        while True:
            await self._flush()
            await self._poll()
            now = loop.time()
            if now - last_prune > TABLE_WINDOW_S:
                last_prune = now
                await self._prune()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), POLL_S)
            self._wakeup.clear()

    async def _flush(self) -> None:
        rows: list[dict[str, Any]] = []
        while not self._outbox.empty():
            message = self._outbox.get_nowait()
            data = json.loads(message)
            rows.append(
                {"origin": self.origin, "session_id": int(data["s"]), "payload": message, "created_at": utcnow()}
            )
        if rows:
            async with self.database.write() as conn:
                await conn.execute(insert(t.session_events), rows)

    async def _poll(self) -> None:
        now = asyncio.get_running_loop().time()
        since = utcnow() - timedelta(seconds=TABLE_WINDOW_S)
        async with self.database.read() as conn:
            rows = (
                await conn.execute(
                    select(t.session_events.c.id, t.session_events.c.origin, t.session_events.c.payload)
                    .where(t.session_events.c.created_at >= since)
                    .order_by(t.session_events.c.id)
                )
            ).all()
        for row in rows:
            if int(row.id) in self._seen:
                continue
            self._seen[int(row.id)] = now
            if row.origin != self.origin:
                self.receive(row.payload)
        self._seen = {k: v for k, v in self._seen.items() if now - v < TABLE_WINDOW_S * 2}

    async def _prune(self) -> None:
        async with self.database.write() as conn:
            await conn.execute(
                delete(t.session_events).where(
                    t.session_events.c.created_at < utcnow() - timedelta(seconds=TABLE_WINDOW_S * 4)
                )
            )


def choose_bus(settings: Settings, database: Database, hub: EventHub) -> Bus | None:
    """The transport ``settings.event_bus`` asks for (``auto``: see the module docstring)."""
    choice = settings.event_bus.strip().lower()
    if choice.startswith(("redis://", "rediss://", "unix://")):
        return RedisBus(hub, settings.event_bus.strip())
    if choice == "memory":
        return None
    if choice not in ("auto", "database"):
        raise ValueError(f"unknown event_bus {settings.event_bus!r} (auto, memory, database or redis://...)")
    if database.dialect == "postgresql":
        return PostgresBus(hub, database)
    if choice == "auto" and database.is_sqlite and settings.workers == 1:
        return None
    return TableBus(hub, database)
