"""A loopback TCP relay in front of a database server that counts round trips.

The servers' own counters cannot show round trips: PostgreSQL counts transactions (and reports them
late, see ``bench._servers.round_trips_per_request``), MariaDB counts every statement of a
multi-statement query. The relay sees the wire instead. A *turn* is the client sending after it last
received: one request/response exchange, however many protocol messages or statements it carries
(asyncpg's Parse/Bind/Execute/Sync, a multi-statement COM_QUERY). The benchmark points a gateway's
``ARKGATE_DATABASE_URL`` at the relay only for the round-trip measurement, never for the throughput
runs: the relay's own hop would slow them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306}


class _Link:
    """One client connection's state: has the client sent since it last received?"""

    __slots__ = ("client_sent",)

    def __init__(self) -> None:
        self.client_sent = False


class TurnRelay:
    """Relays ``127.0.0.1:<port>`` to ``target`` on its own thread and event loop, counting turns.

    A thread, not the benchmark's loop: the gateway connects (migrations, its pool) while the
    benchmark's main thread is blocked starting it.
    """

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self._target_url = parts
        self._target = (parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS[parts.scheme.split("+")[0]])
        self.turns = 0  # written on the relay's thread only; an int read from another is atomic
        self.connections = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """``target_url`` with its host and port replaced by the relay's."""
        parts = self._target_url
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def __enter__(self) -> TurnRelay:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="turn-relay", daemon=True)
        self._thread.start()
        if not ready.wait(10) or not self.port:
            raise RuntimeError("the relay did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self._serve(ready))

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await self._stop.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.close()
            self._tasks.discard(task)
            return
        self.connections += 1
        link = _Link()
        try:
            await asyncio.gather(
                self._pipe(client_reader, server_writer, link, from_client=True),
                self._pipe(server_reader, client_writer, link, from_client=False),
            )
        except asyncio.CancelledError:
            pass  # the relay is stopping with this connection still open: not an error worth a traceback
        finally:
            for writer in (client_writer, server_writer):
                writer.close()
            self._tasks.discard(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link, *, from_client: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if from_client:
                    if not link.client_sent:  # the first bytes since the last reply: a new turn
                        self.turns += 1
                        link.client_sent = True
                else:
                    link.client_sent = False
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Half-close the other side so a client's Terminate / QUIT reaches the server cleanly.
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()
