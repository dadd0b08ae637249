"""Shared fixtures: settings, an in-process gateway, a real simulator, and a polling helper."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from hypothesis import settings as hypothesis_settings

from arkgate.app import create_app
from arkgate.settings import Settings


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _loopback_only(event: str, args: tuple[Any, ...]) -> None:
    """No test may reach an address off this machine: connects, sends and DNS look-ups are checked."""
    if event in ("socket.connect", "socket.sendto") and isinstance(args[1], tuple):
        host = str(args[1][0])
        if not _is_loopback(host):
            raise ConnectionRefusedError(f"tests may only reach loopback addresses, not {host}")
    elif event == "socket.getaddrinfo":
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode()
        if host not in (None, "", "localhost") and not _is_loopback(str(host)):
            raise OSError(f"tests may not resolve outside names ({host})")


sys.addaudithook(_loopback_only)

# No timing thresholds in tests: Hypothesis's per-example deadline fails on a busy machine, not on a bug.
hypothesis_settings.register_profile("arkgate", deadline=None)
hypothesis_settings.load_profile("arkgate")


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    """Gateways run inside the test process: their info lines (call.charged, ...) stay out of captured
    stdout. Warnings still show. Not cached, so a test may reconfigure structlog to capture lines."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=False,
    )


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their own Settings; an operator's ARKGATE_* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith("ARKGATE_") and not name.startswith("ARKGATE_TEST_"):
            monkeypatch.delenv(name, raising=False)


# Nothing listens on the discard port: a test that forgets to point an upstream at its own
# loopback server fails fast instead of reaching the Internet or the machine's resolver.
DEAD_END = "http://127.0.0.1:9"


def offline_defaults() -> dict[str, Any]:
    """Every setting that names an outside service, pointed at a dead loopback port."""
    values: dict[str, Any] = {
        "dns_nameservers": ["127.0.0.1:9"],
        "whois_server": "127.0.0.1",
        "whois_port": 9,
        "news_feeds": [f"{DEAD_END}/feed"],
    }
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, str) and default.startswith(("http://", "https://")) and name != "barkd_url":
            values[name] = DEAD_END
    return values


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "payment_mode": "free",
            "rate_limits": "off",
            # One test client is one IP: tests of the per-IP bound on unfunded sessions set it themselves.
            "max_unfunded_sessions_per_ip": 0,
            "network": "signet",
            **offline_defaults(),
        }
        values.update(overrides)
        return Settings(**values)

    return build


class Gateway:
    """An in-process gateway with an httpx client bound to it."""

    def __init__(self, app: Any, client: httpx.AsyncClient, settings: Settings) -> None:
        self.app = app
        self.client = client
        self.settings = settings

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    async def create_session(self, sats: int = 1000) -> dict[str, Any]:
        response = await self.client.post("/v1/sessions", json={"amount_sats": sats})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def new_session(self, sats: int = 1000) -> str:
        """A funded session's token (free mode funds it at once)."""
        created = await self.create_session(sats)
        return created["token"]  # type: ignore[no-any-return]

    async def call(
        self,
        endpoint_id: str,
        payload: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        endpoint = self.runtime.catalog.get(endpoint_id)
        assert endpoint is not None, f"no endpoint {endpoint_id!r}"
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if endpoint.method == "GET":
            return await self.client.get(endpoint.path, params=payload or {}, headers=all_headers)
        return await self.client.post(endpoint.path, json=payload or {}, headers=all_headers)

    async def balance(self, token: str) -> int:
        response = await self.client.get("/v1/balance", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return int(response.json()["balance_sats"])

    async def assert_ledger_consistent(self) -> None:
        bad = await self.runtime.ledger.inconsistent_sessions()
        assert bad == [], f"sessions whose balance differs from their ledger sum: {bad}"


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, **app_kwargs: Any) -> AsyncIterator[Gateway]:
    """The app's lifespan runs in one task of its own: task groups inside it (MCP) must exit where they began."""
    app = create_app(settings, **app_kwargs)
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold_lifespan() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold_lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # start-up failed: raise its error
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60) as client:
            yield Gateway(app, client, settings)
    finally:
        stop.set()
        await task


@pytest.fixture
def gateway_factory(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    def factory(**overrides: Any) -> contextlib.AbstractAsyncContextManager[Gateway]:
        return running_gateway(make_settings(**overrides))

    return factory


@pytest.fixture
async def gateway(gateway_factory: Callable[..., Any]) -> AsyncIterator[Gateway]:
    async with gateway_factory() as gw:
        yield gw


# The barkd version the simulator speaks: 0.8.0 by default; CI runs the payments and admin
# suites a second time with ARKGATE_TEST_BARKD_COMPAT=0.6.0.
BARKD_COMPAT = os.environ.get("ARKGATE_TEST_BARKD_COMPAT", "0.8.0")


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Any]:
    """A real barkd simulator over HTTP on a free loopback port."""
    from arkgate.simulator.server import SimulatorServer

    with SimulatorServer(tmp_path / "simulator", wait_timeout_s=2.0, compat=BARKD_COMPAT) as sim:
        yield sim


# The tests' one polling helper: ``wait_for`` in async tests, ``wait_for_sync`` (the same loop, blocking)
# where no event loop runs. Never sleep to synchronise: poll with a deadline.
async def wait_for(
    check: Callable[[], Awaitable[Any] | Any], *, timeout_s: float = 10.0, interval_s: float = 0.02
) -> Any:
    """Poll ``check`` (a function or coroutine function) until it returns something truthy; fail showing the
    last value."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise _not_met(timeout_s, last, check)


def wait_for_sync(check: Callable[[], Any], *, timeout_s: float = 10.0, interval_s: float = 0.02) -> Any:
    """``wait_for`` for synchronous tests and helpers."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise _not_met(timeout_s, last, check)


def _not_met(timeout_s: float, last: Any, check: Callable[[], Any]) -> AssertionError:
    return AssertionError(f"condition not met within {timeout_s} s; last value: {last!r} (check: {check!r})")


def _skip_reason(report: pytest.TestReport) -> str:
    """A skip's reason, with the variants of one missing tool folded together."""
    longrepr = report.longrepr
    reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr).removeprefix("Skipped: ")
    for tool in ("chromium", "nsd"):
        if tool in reason.lower():
            return f"{tool} not installed"
    return reason


def pytest_unconfigure(config: pytest.Config) -> None:
    """The last line of a run says what did not run and why, so a green run without nsd or chromium is
    not mistaken for the full suite (README: "Run the full suite")."""
    terminalreporter = config.pluginmanager.get_plugin("terminalreporter")
    if terminalreporter is None or not hasattr(terminalreporter, "stats"):
        return
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = _skip_reason(report)
        reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        terminalreporter.write_line("skipped: none")
        return
    detail = ", ".join(f"{reason}: {count}" for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]))
    terminalreporter.write_line(f"skipped: {sum(reasons.values())} ({detail})", yellow=True)
