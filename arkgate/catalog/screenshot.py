"""screenshot: render a public web page in Chromium and host the PNG as a short-lived download.

Network safety: Chromium never talks to the network itself. Every request the
page makes is intercepted (``context.route``) and either fetched by arkgate's
outbound guard (vetted public address, no re-resolution, size and time caps) and
handed back to the page, or aborted. Chromium is also launched with
``--host-resolver-rules`` mapping every name to nothing, so a request that slipped
past interception (prefetch, a new API) could not resolve a name, let alone
re-resolve it to a private address (DNS rebinding); web sockets, service workers
and WebRTC's non-proxied UDP are disabled. Only GET and HEAD requests are served.

One browser per app, launched on first use and closed at shutdown (``Services``);
each capture gets a fresh, isolated context, at most ``screenshot_pool_size`` at a
time; the whole capture runs under ``screenshot_timeout_s``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from PIL import Image
from pydantic import BaseModel, Field, field_validator

from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint, needs_file, needs_module
from arkgate.chromium import HEADLESS_ARGS
from arkgate.downloads import get_download_store
from arkgate.errors import (
    ArkgateError,
    TargetRefusedError,
    UpstreamError,
    UpstreamTimeoutError,
)
from arkgate.outbound.guard import MAX_URL_CHARS, FetchResult, OutboundGuard, get_guard

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright, Route

    from arkgate.settings import Settings

LAUNCH_ARGS = [
    *HEADLESS_ARGS,
    "--dns-prefetch-disable",
    # Chromium resolves nothing: all traffic is fetched by the guard and fulfilled.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
]
MAX_REQUESTS = 300  # subresources per capture
MAX_TOTAL_BYTES = 40_000_000  # everything the page loads, together
MAX_BLOCKED_LISTED = 20
# Headers that describe the transfer, not the content: the guard already decoded the body.
_DROP_RESPONSE_HEADERS = frozenset(
    {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive", "alt-svc"}
)
_FORWARD_REQUEST_HEADERS = frozenset({"accept", "accept-language", "referer", "user-agent", "cookie", "range"})


class ScreenshotRequest(BaseModel):
    url: str = Field(
        ..., min_length=1, max_length=MAX_URL_CHARS, description="Public http(s) URL.", examples=["https://example.com"]
    )
    full_page: bool = Field(default=False, description="Capture the whole scrollable page, not just the viewport.")
    width: int = Field(1280, ge=320, le=1920, description="Viewport width in CSS pixels.")
    height: int = Field(800, ge=240, le=2160, description="Viewport height in CSS pixels.")
    include_base64: bool = Field(default=False, description="Also return the PNG inline as base64 when it is small.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if "://" not in value:
            value = "https://" + value
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value


class BlockedRequest(BaseModel):
    url: str
    reason: str


class ScreenshotResponse(BaseModel):
    url: str
    final_url: str = Field(..., description="Page URL after redirects.")
    status_code: int | None = Field(default=None, description="HTTP status of the page itself.")
    title: str | None = None
    mime_type: str = "image/png"
    width: int = Field(..., description="PNG width in pixels.")
    height: int = Field(..., description="PNG height in pixels.")
    full_page: bool
    size_bytes: int
    download_url: str = Field(..., description="Where to fetch the PNG (expires).")
    expires_at: datetime
    requests_served: int = Field(..., description="Page requests fetched through the guard.")
    requests_blocked: int = Field(..., description="Page requests refused (private targets, limits, methods).")
    blocked: list[BlockedRequest] = Field(default_factory=list, description="The first blocked requests.")
    image_base64: str | None = Field(default=None, description="The PNG, when include_base64 was set and it is small.")


class BrowserPool:
    """One lazily launched Chromium and a bound on concurrent captures (contexts)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.screenshot_pool_size)
        self._lock = asyncio.Lock()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    async def browser(self) -> Browser:
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            executable = self.settings.chromium_path
            if not executable.exists():
                raise UpstreamError("the screenshot browser is not installed on this server")
            from playwright.async_api import async_playwright

            if self._playwright is None:
                self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                executable_path=str(executable), headless=True, args=LAUNCH_ARGS
            )
            return self._browser

    @property
    def slots(self) -> asyncio.Semaphore:
        return self._slots

    async def aclose(self) -> None:
        async with self._lock:
            browser, self._browser = self._browser, None
            playwright, self._playwright = self._playwright, None
        if browser is not None:
            # A crashed browser is already gone; nothing is left to close.
            with contextlib.suppress(Exception):
                await browser.close()
        if playwright is not None:
            await playwright.stop()


def get_browser_pool(settings: Settings) -> BrowserPool:
    """``Services`` factory: one browser pool per app."""
    return BrowserPool(settings)


@dataclass
class _Traffic:
    """What the page asked for, and the limits it is held to."""

    guard: OutboundGuard
    per_request_bytes: int
    deadline: float
    served: int = 0
    total_bytes: int = 0
    blocked: list[BlockedRequest] = field(default_factory=list)
    blocked_count: int = 0
    main_error: ArkgateError | None = None
    # The page itself, fetched (and its redirects vetted) before navigation; served once.
    preloaded: dict[str, FetchResult] = field(default_factory=dict)

    def block(self, url: str, reason: str) -> None:
        self.blocked_count += 1
        if len(self.blocked) < MAX_BLOCKED_LISTED:
            self.blocked.append(BlockedRequest(url=url[:300], reason=reason))

    async def handle(self, route: Route) -> None:
        request = route.request
        url = request.url
        is_main = request.is_navigation_request() and request.frame.parent_frame is None
        if request.method not in ("GET", "HEAD"):
            self.block(url, f"{request.method} requests are not sent from screenshots")
            await route.abort("blockedbyclient")
            return
        if self.served + self.blocked_count >= MAX_REQUESTS or self.total_bytes >= MAX_TOTAL_BYTES:
            self.block(url, "the page made too many or too large requests")
            await route.abort("blockedbyclient")
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARD_REQUEST_HEADERS}
        remaining = max(0.5, self.deadline - time.monotonic())
        preloaded = self.preloaded.pop(_url_key(url), None)
        try:
            # The guard follows redirects itself, vetting every hop (Chromium does not follow a
            # fulfilled 3xx: it would try the network, which it cannot reach).
            result = preloaded or await self.guard.fetch(
                url, method=request.method, headers=headers, max_bytes=self.per_request_bytes, timeout_s=remaining
            )
        except TargetRefusedError as exc:
            self.block(url, exc.message)
            if is_main:
                self.main_error = exc
            await route.abort("blockedbyclient")
            return
        except ArkgateError as exc:
            if is_main:
                self.main_error = exc
            await route.abort("failed")
            return
        self.served += 1
        self.total_bytes += len(result.content)
        response_headers = {k: v for k, v in result.headers.items() if k.lower() not in _DROP_RESPONSE_HEADERS}
        await route.fulfill(status=result.status_code, headers=response_headers, body=result.content)


def _url_key(url: str) -> str:
    """Chromium and httpx spell the same URL slightly differently (empty path, fragment)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return url
    return str(parsed.copy_with(fragment=None, path=parsed.path or "/"))


def _png_size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        return image.size


async def _capture(request: ScreenshotRequest, ctx: CallContext) -> tuple[bytes, dict[str, Any], _Traffic]:
    settings = ctx.settings
    guard = ctx.services.get(get_guard)
    pool = ctx.services.get(get_browser_pool)
    traffic = _Traffic(
        guard=guard,
        per_request_bytes=settings.outbound_max_bytes,
        deadline=time.monotonic() + settings.screenshot_timeout_s,
    )
    # Fetch the page first: a refused redirect is a free 400 and a dead site a 502/504, before
    # any browser work; Chromium then opens the final URL so relative links resolve correctly.
    page_result = await guard.fetch(
        request.url,
        headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
        max_bytes=settings.outbound_max_bytes,
        timeout_s=settings.screenshot_timeout_s / 2,
    )
    traffic.preloaded[_url_key(page_result.url)] = page_result
    async with pool.slots:
        browser = await pool.browser()
        context = await browser.new_context(
            viewport={"width": request.width, "height": request.height},
            service_workers="block",
            accept_downloads=False,
            java_script_enabled=True,
        )
        try:
            await context.route("**/*", traffic.handle)
            await context.route_web_socket("**/*", lambda ws: ws.close())
            page = await context.new_page()
            budget_ms = max(1000.0, (traffic.deadline - time.monotonic()) * 1000)
            try:
                await page.goto(page_result.url, wait_until="load", timeout=budget_ms)
                # Give late subresources a short chance; never longer than the budget.
                idle_ms = min(3000.0, max(0.0, (traffic.deadline - time.monotonic()) * 1000 - 2000))
                if idle_ms > 0:
                    # A chatty page never goes idle: then shoot what is there.
                    with contextlib.suppress(Exception):
                        await page.wait_for_load_state("networkidle", timeout=idle_ms)
            except Exception as exc:
                if traffic.main_error is not None:
                    raise traffic.main_error from exc
                if "Timeout" in type(exc).__name__:
                    raise UpstreamTimeoutError("the page did not finish loading in time") from exc
                raise UpstreamError("the page could not be loaded") from exc
            if traffic.main_error is not None:
                raise traffic.main_error
            clip: Any = None
            if request.full_page:
                scroll_height = await page.evaluate("() => document.documentElement.scrollHeight")
                if isinstance(scroll_height, int | float) and scroll_height > settings.screenshot_max_height:
                    clip = {"x": 0, "y": 0, "width": request.width, "height": settings.screenshot_max_height}
                    ctx.notes.append(f"the page is taller than {settings.screenshot_max_height} px; it was cut")
            png = await page.screenshot(
                type="png", full_page=request.full_page, clip=clip, timeout=max(1000.0, budget_ms / 2)
            )
            info = {
                "final_url": page.url,
                "status_code": page_result.status_code,
                "title": (await page.title()) or None,
            }
            return png, info, traffic
        finally:
            await context.close()


async def screenshot(request: ScreenshotRequest, ctx: CallContext) -> ScreenshotResponse:
    try:
        async with asyncio.timeout(ctx.settings.screenshot_timeout_s + 5):
            png, info, traffic = await _capture(request, ctx)
    except TimeoutError as exc:
        raise UpstreamTimeoutError("the screenshot did not finish within its time budget") from exc
    if not png:
        raise UpstreamError("the browser returned an empty image")
    width, height = _png_size(png)
    download = await ctx.services.get(get_download_store).save(png, "image/png")
    base = (ctx.base_url or ctx.settings.public_url or "").rstrip("/")
    inline = None
    if request.include_base64:
        if len(png) <= ctx.settings.screenshot_inline_max_bytes:
            inline = base64.b64encode(png).decode()
        else:
            ctx.notes.append("the PNG is too large to inline; use download_url")
    if traffic.blocked_count:
        ctx.notes.append(f"{traffic.blocked_count} request(s) of the page were blocked")
    return ScreenshotResponse(
        url=request.url,
        final_url=info["final_url"],
        status_code=info["status_code"],
        title=info["title"],
        width=width,
        height=height,
        full_page=request.full_page,
        size_bytes=len(png),
        download_url=base + download.url_path,
        expires_at=download.expires_at,
        requests_served=traffic.served,
        requests_blocked=traffic.blocked_count,
        blocked=traffic.blocked,
        image_base64=inline,
    )


ENDPOINT = Endpoint(
    id="screenshot",
    price_sats=15,
    category="visual",
    summary="Screenshot a web page",
    description=(
        "Renders a public web page in a real browser and returns a short-lived download URL for the "
        "PNG, with its pixel size, the final URL, HTTP status and title. Options: full_page, viewport "
        "width and height, include_base64 for small images. Requests the page makes to private or "
        "internal addresses are blocked and listed."
    ),
    request_model=ScreenshotRequest,
    response_model=ScreenshotResponse,
    handler=screenshot,
    requires=(needs_module("playwright", extra="screenshot"), needs_file("chromium_path", "the Chromium browser")),
    timeout_s=60.0,
    example={"url": "https://example.com"},
)
