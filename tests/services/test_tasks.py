"""The application's task tracker: refunds that outlive their request finish before shutdown."""

from __future__ import annotations

import asyncio

from arkgate.services.tasks import TaskTracker


async def test_drain_waits_for_a_refund_still_running():
    tracker = TaskTracker()
    release = asyncio.Event()
    committed: list[str] = []

    async def refund() -> None:
        await release.wait()
        committed.append("refund")

    tracker.spawn(refund(), name="refund")
    assert len(tracker) == 1
    draining = asyncio.create_task(tracker.drain(timeout_s=5))
    await asyncio.sleep(0)
    assert not draining.done()  # shutdown is held while the refund runs
    release.set()
    await draining
    assert committed == ["refund"] and len(tracker) == 0


async def test_drain_gives_up_on_a_stuck_task_after_its_timeout():
    tracker = TaskTracker()
    tracker.spawn(asyncio.Event().wait(), name="stuck")
    await tracker.drain(timeout_s=0.05)
    assert len(tracker) == 0
