"""Browser tests of the web front: a real uvicorn gateway on loopback, a real simulator, Debian's Chromium.

The gateway runs in barkd mode against the ``simulator`` fixture and in demo mode, so the
pages' "pay with the simulator" buttons work. Every browser context refuses requests that
leave loopback and fails the test that made one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from arkgate.chromium import DEFAULT_PATH, HEADLESS_ARGS
from arkgate.settings import Settings
from tests.live import LiveGateway
from tests.live import live_gateway as live_gateway_server

CHROMIUM = Path(DEFAULT_PATH)
CHROMIUM_ARGS = list(HEADLESS_ARGS)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
AXE_JS = Path(__file__).parent / "vendor" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


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
    with live_gateway_server(settings, wait_for_watcher=True) as gateway:
        yield gateway


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
