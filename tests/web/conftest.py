"""Browser tests of the web front: a real uvicorn gateway on loopback, a real simulator, Debian's Chromium.

The gateway runs in barkd mode against the ``simulator`` fixture and in demo mode, so the
pages' "pay with the simulator" buttons work. Every browser context refuses requests that
leave loopback and fails the test that made one.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from arkgate.app import create_app
from arkgate.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
AXE_JS = Path(__file__).parent / "vendor" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class LiveGateway:
    """A gateway app served by uvicorn on a port-0 loopback socket in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

        async def remember_loop(rt: Any) -> None:
            self.loop = asyncio.get_running_loop()

        self.runtime.extras["startup_hooks"].append(remember_loop)

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float = 30) -> Any:
        """Run a coroutine on the server's loop (the ledger and watcher live there)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._server.started:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{self.url}/health", timeout=5).status_code in (200, 503):
                        break
            if not self._thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        else:
            raise RuntimeError("the gateway did not start in time")
        watcher = self.runtime.watcher
        if watcher is not None:
            assert self.run(watcher.wait_ready(15)), "the payment watcher did not connect to the simulator"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)

    # -- API shortcuts for setting the scene ------------------------------------------------------
    def create_session(self, sats: int) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/v1/sessions", json={"amount_sats": sats}, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def balance(self, token: str) -> int:
        response = httpx.get(f"{self.url}/v1/balance", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 200, response.text
        return int(response.json()["balance_sats"])

    def wait_balance(self, token: str, sats: int, timeout_s: float = 15) -> None:
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            last = self.balance(token)
            if last == sats:
                return
            time.sleep(0.02)
        raise AssertionError(f"balance did not reach {sats}; last {last}")


@pytest.fixture
def live_gateway(make_settings: Callable[..., Settings], simulator: Any) -> Iterator[LiveGateway]:
    settings = make_settings(
        payment_mode="barkd",
        barkd_url=simulator.url,
        barkd_token=simulator.token,
        reconcile_interval_s=3600,
        demo=True,
        simulator_url=simulator.url,
    )
    gateway = LiveGateway(settings)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module: Playwright's sync API holds an event loop on this thread while
    it runs, which async tests of other modules must not find there."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium fonts-dejavu-core)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class LoopbackGuard:
    """Lets loopback requests through and records (and aborts) any other."""

    def __init__(self) -> None:
        self.outside: list[str] = []

    def __call__(self, route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or (parts.hostname or "") in LOOPBACK_HOSTS:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort("blockedbyclient")


@pytest.fixture
def new_context(browser: Any, live_gateway: LiveGateway) -> Iterator[Callable[..., Any]]:
    """Browser contexts for one test; the test fails if any of them sent a request off loopback.

    It depends on ``live_gateway`` so the pages (and their event streams) close before the server stops.
    """
    opened: list[tuple[Any, LoopbackGuard]] = []

    def open_context(**options: Any) -> Any:
        options.setdefault("viewport", DESKTOP)
        context = browser.new_context(**options)
        guard = LoopbackGuard()
        context.route("**/*", guard)
        context.set_default_timeout(15_000)
        opened.append((context, guard))
        return context

    yield open_context
    outside = []
    for context, guard in opened:
        context.close()
        outside.extend(guard.outside)
    assert outside == [], f"requests left loopback: {outside}"


# --- page checks -------------------------------------------------


def save_screenshot(page: Any, name: str) -> Path:
    """A full-page PNG under test-artifacts/web/, checked to be more than a blank canvas."""
    from PIL import Image

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    data = page.screenshot(path=str(path), full_page=True)
    image = Image.open(io.BytesIO(data)).convert("L")
    histogram = image.histogram()
    dominant = max(histogram) / sum(histogram)
    colours = sum(1 for count in histogram if count)
    assert colours > 8 and dominant < 0.98, f"screenshot {name} looks blank ({colours} grey levels)"
    return path


def axe_violations(page: Any, *, exclude: list[str] | None = None) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page (axe is injected, not served)."""
    page.evaluate(AXE_JS.read_text())
    context = {"exclude": [[selector] for selector in exclude]} if exclude else None
    result = page.evaluate(
        "async (context) => await axe.run(context || document, {resultTypes: ['violations']})", context
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=2)
