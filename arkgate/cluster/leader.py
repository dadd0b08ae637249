"""One leader among the instances sharing a database: a lease row, renewed, taken over on death.

The instance holding the ``leader`` lease runs the leader-only jobs: the operator monitor
(refresh policy, auto-exit, exits, alerts), webhook resumption, and the sweeps of expired
rows. Anything may register a job (``Leadership.register``); jobs start when this instance
becomes leader and are cancelled the moment it stops being one.

The holder renews every third of the lease. If it dies, its lease runs out and another
instance takes over at its next attempt: take-over within ``lease_s * 4/3`` of the last
renewal (at once when the dead holder was a process on this host and in this PID namespace).
A holder that cannot renew in time steps down before its lease runs out, so two
leaders never act at once as long as the instances' clocks agree to well under the lease
(use NTP). An instance that shuts down cleanly releases the lease at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow

log = structlog.get_logger("arkgate.cluster.leader")

LEADER = "leader"
JOB_RESTART_S = 1.0


@dataclass(frozen=True, kw_only=True)
class LeaderJob:
    """A long-running coroutine that only the leader runs; cancelled when leadership is lost."""

    name: str
    run: Callable[[], Awaitable[None]]


def instance_id() -> str:
    """``host/pid-namespace/pid/random``: unique per process, and names the process to look for here."""
    return f"{_here()}/{os.getpid()}/{secrets.token_hex(3)}"


def _here() -> str:
    # The PID namespace too: containers sharing the host's name (host networking) see other PIDs.
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = "-"
    return f"{socket.gethostname()[:30]}/{namespace}"


class Leadership:
    def __init__(self, database: Database, *, lease_s: float = 10.0, name: str = LEADER) -> None:
        self.database = database
        self.lease_s = lease_s
        self.name = name
        self.holder = instance_id()
        self.term = 0
        self.is_leader = False
        self.jobs: dict[str, LeaderJob] = {}
        self.job_tasks: dict[str, asyncio.Task[None]] = {}
        self._valid_until = 0.0  # monotonic: after this, act as if the lease were lost
        self._loop_task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    @property
    def holds_lease(self) -> bool:
        """Leader with a lease confirmed recently enough: check before acting (a paused process may wake late)."""
        return self.is_leader and time.monotonic() < self._valid_until

    @property
    def renew_interval_s(self) -> float:
        return self.lease_s / 3

    def register(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Add a leader-only job (before or after start-up; it starts at once if this is the leader)."""
        if name in self.jobs:
            raise ValueError(f"a leader job called {name!r} is already registered")
        job = LeaderJob(name=name, run=run)
        self.jobs[name] = job
        if self.is_leader:
            self._start_job(job)

    async def start(self) -> None:
        """Try for the lease once now (a lone instance leads from its first request), then keep trying."""
        await self._attempt()
        self._loop_task = asyncio.create_task(self._loop(), name="leader-lease")

    async def aclose(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        was_leader = self.is_leader
        await self._step_down("shutdown")
        if was_leader:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self._release()

    async def wait_until_leader(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.is_leader:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return True

    # --- the lease ------------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_interval_s)
            await self._attempt()

    async def _attempt(self) -> None:
        try:
            held = await self._acquire_or_renew()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("leader.lease_error", error=type(exc).__name__)
            if self.is_leader and time.monotonic() >= self._valid_until:
                await self._step_down("lease_unconfirmed")
            return
        if held:
            if not self.is_leader:
                self.is_leader = True
                log.info("leader.elected", holder=self.holder, term=self.term)
                for job in self.jobs.values():
                    self._start_job(job)
                self._changed.set()
        elif self.is_leader:
            await self._step_down("lease_lost")

    async def _acquire_or_renew(self) -> bool:
        lease = t.leases
        started = time.monotonic()
        now = utcnow()
        expires = now + timedelta(seconds=self.lease_s)
        async with self.database.write() as conn:
            renewed = await conn.execute(
                update(lease).where(lease.c.name == self.name, lease.c.holder == self.holder).values(expires_at=expires)
            )
            if renewed.rowcount == 1:
                self._valid_until = started + self.lease_s * 0.9
                return True
            row = (await conn.execute(select(lease).where(lease.c.name == self.name))).one_or_none()
            if row is not None:
                if row.expires_at >= now and not _dead_here(row.holder):
                    return False
                taken = await conn.execute(
                    update(lease)
                    .where(lease.c.name == self.name, lease.c.holder == row.holder, lease.c.term == row.term)
                    .values(holder=self.holder, term=row.term + 1, expires_at=expires, acquired_at=now)
                )
                if taken.rowcount != 1:
                    return False  # another instance was quicker
                self.term = int(row.term) + 1
                self._valid_until = started + self.lease_s * 0.9
                log.info("leader.took_over", previous=row.holder, term=self.term)
                return True
        try:
            async with self.database.write() as conn:
                await conn.execute(
                    insert(lease).values(
                        name=self.name, holder=self.holder, term=1, expires_at=expires, acquired_at=now
                    )
                )
        except IntegrityError:
            return False
        self.term = 1
        self._valid_until = started + self.lease_s * 0.9
        return True

    async def _release(self) -> None:
        async with self.database.write() as conn:
            await conn.execute(
                update(t.leases)
                .where(t.leases.c.name == self.name, t.leases.c.holder == self.holder)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )

    # --- jobs -----------------------------------------------------------------------------------
    def _start_job(self, job: LeaderJob) -> None:
        self.job_tasks[job.name] = asyncio.create_task(self._supervise(job), name=job.name)

    async def _supervise(self, job: LeaderJob) -> None:
        while True:
            try:
                await job.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a leader job must not die of one failure
                log.warning("leader.job_failed", job=job.name, error=type(exc).__name__)
                await asyncio.sleep(JOB_RESTART_S)

    async def _step_down(self, reason: str) -> None:
        if self.is_leader:
            log.info("leader.stepped_down", holder=self.holder, reason=reason)
        self.is_leader = False
        tasks, self.job_tasks = list(self.job_tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._changed.set()


def _dead_here(holder: str) -> bool:
    """A holder that was a process on this host which no longer exists (a restart after a crash)."""
    host, namespace, pid_text, _ = ([*holder.split("/"), "", "", ""])[:4]
    if f"{host}/{namespace}" != _here() or namespace == "-" or not pid_text.isdigit():
        return False
    if int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
