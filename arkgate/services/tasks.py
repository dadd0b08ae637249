"""Background tasks the gateway owns (refunds that outlive a cancelled request), drained at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger("arkgate.tasks")


class TaskTracker:
    """Keeps references to fire-and-forget tasks (asyncio holds only weak ones) and waits for them at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task.failed", task=task.get_name(), error=repr(task.exception()))

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for every tracked task (a refund in progress must commit); cancel what is left after ``timeout_s``."""
        while self._tasks:
            pending = set(self._tasks)
            _, still = await asyncio.wait(pending, timeout=timeout_s)
            if still:
                for task in still:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*still, return_exceptions=True)
                log.warning("tasks.abandoned", count=len(still))
                return
