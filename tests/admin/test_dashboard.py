"""The /admin dashboard in headless Chromium (Debian's, through Playwright) against a real server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from arkgate.chromium import DEFAULT_PATH, HEADLESS_ARGS
from tests.admin.conftest import ADMIN_TOKEN, admin_headers
from tests.conftest import BARKD_COMPAT, wait_for
from tests.live import live_gateway as live_server

CHROMIUM = Path(DEFAULT_PATH)
ARGS = list(HEADLESS_ARGS)
ARTIFACTS = Path("test-artifacts")
CHARTS = ("chart-hourly", "chart-endpoints", "chart-funding", "chart-vtxos")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")


@contextlib.asynccontextmanager
async def browser_page() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            # The page must need nothing from outside this server.
            outside: list[str] = []
            page.on("request", lambda request: outside.append(request.url) if "127.0.0.1" not in request.url else None)
            yield page
            assert outside == []
        finally:
            await browser.close()


async def loads(page: Any) -> int:
    return int(await page.evaluate("() => Number(document.body.dataset.loads || 0)"))


async def reload_data(page: Any) -> None:
    before = await loads(page)
    await page.click("#reload")
    await wait_for(lambda: _more_loads(page, before))


async def _more_loads(page: Any, before: int) -> bool:
    return await loads(page) > before


async def painted_pixels(page: Any, canvas_id: str) -> int:
    return int(
        await page.evaluate(
            """(id) => {
                const c = document.getElementById(id);
                const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n++;
                return n;
            }""",
            canvas_id,
        )
    )


def assert_not_blank(path: Path) -> None:
    image = Image.open(path).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "the screenshot looks blank"
    lo, hi = zip(*image.getextrema(), strict=True)
    assert max(hi) - min(lo) > 100


async def test_dashboard_shows_the_overview_numbers_and_charts(make_settings):
    settings = make_settings(admin_token=ADMIN_TOKEN)
    with live_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            tokens = []
            for sats in (800, 300, 150):
                created = await client.post("/v1/sessions", json={"amount_sats": sats})
                tokens.append(created.json()["token"])
            for token in tokens:
                for text in ("a", "bb"):
                    response = await client.post(
                        "/api/qr-generate", json={"data": text}, headers={"Authorization": f"Bearer {token}"}
                    )
                    assert response.status_code == 200
            overview = (await client.get("/admin/api/overview", headers=admin_headers())).json()
        assert overview["revenue_all_time_sats"] > 0

        async with browser_page() as page:
            await page.goto(f"{server.url}/admin", wait_until="load")
            assert await page.is_visible("#login")
            await page.fill("#token", "not-the-token")
            await page.click("#login-button")
            await page.wait_for_function("() => document.getElementById('login-error').textContent.includes('401')")
            assert not await page.is_visible("#console")

            await page.fill("#token", ADMIN_TOKEN)
            await page.click("#login-button")
            await page.wait_for_function("() => Number(document.body.dataset.loads || 0) >= 1")
            assert await page.is_visible("#console")
            assert not await page.is_visible("#login")
            assert await page.evaluate("() => sessionStorage.getItem('arkgate.admin.token')") == ADMIN_TOKEN

            numbers = {
                "liabilities": overview["liabilities_sats"],
                "revenue-today": overview["revenue_today_sats"],
                "revenue-7d": overview["revenue_7d_sats"],
                "revenue-all": overview["revenue_all_time_sats"],
                "receive-fees": overview["receive_fees_sats"],
                "orphans": overview["attention"]["orphan_payments"],
            }
            for element, value in numbers.items():
                assert await page.get_attribute(f"#{element}", "data-value") == str(value), element
                assert (await page.text_content(f"#{element}")).replace(",", "") == str(value), element
            assert await page.get_attribute("#solvent", "data-value") == "true"
            rows = await page.locator("#endpoints tbody tr").all_inner_texts()
            assert any("qr-generate" in row and "\t6\t" in row for row in rows), rows
            assert await page.locator("#calls tbody tr").count() == 6
            assert await page.locator("#payments tbody tr").count() == 3

            for canvas in ("chart-hourly", "chart-endpoints", "chart-funding"):
                assert await painted_pixels(page, canvas) > 0, canvas
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "admin-dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert_not_blank(shot)
            for canvas in ("chart-hourly", "chart-funding"):
                element_shot = ARTIFACTS / f"admin-{canvas}.png"
                await page.locator(f"#{canvas}").screenshot(path=str(element_shot))
                assert_not_blank(element_shot)

            # The token survives a reload (session storage) and is forgotten on sign-out.
            await page.reload(wait_until="load")
            await page.wait_for_function("() => Number(document.body.dataset.loads || 0) >= 1")
            assert await page.is_visible("#console")
            await page.click("#logout")
            assert await page.is_visible("#login")
            assert await page.evaluate("() => sessionStorage.getItem('arkgate.admin.token')") is None


async def test_dashboard_follows_an_emergency_exit_through_barkds_states(make_settings, simulator):
    settings = make_settings(
        admin_token=ADMIN_TOKEN,
        payment_mode="barkd",
        barkd_url=simulator.url,
        barkd_token=simulator.token,
        reconcile_interval_s=3600,
        refresh_check_interval_s=3600,  # the test drives progress itself
        refresh_before_blocks=10,
    )
    with live_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=admin_headers()) as client:
            created = (await client.post("/v1/sessions", json={"amount_sats": 3000})).json()
            simulator.send_ark(created["funding"]["ark_address"], 3000)

            async def credited() -> bool:
                overview = (await client.get("/admin/api/overview")).json()
                return overview["liabilities_sats"] == 3000

            await wait_for(credited)
            simulator.fund_onchain(50_000)
            simulator.mine(1)

            async with browser_page() as page:
                await page.goto(f"{server.url}/admin", wait_until="load")
                await page.fill("#token", ADMIN_TOKEN)
                await page.click("#login-button")
                await page.wait_for_function("() => Number(document.body.dataset.loads || 0) >= 1")
                assert await page.get_attribute("#liabilities", "data-value") == "3000"
                assert await page.get_attribute("#assets", "data-value") == str(3000 + 50_000)
                assert await page.get_attribute("#solvent", "data-value") == "true"
                assert await painted_pixels(page, "chart-vtxos") > 0
                assert await page.get_attribute("#exits", "data-states") == ""

                started = await client.post("/admin/api/exits/start", json={})
                assert started.status_code == 200, started.text
                seen = []

                async def shows(state: str) -> None:
                    await reload_data(page)
                    assert await page.get_attribute("#exits", "data-states") == state
                    assert state in (await page.locator("#exits tbody").inner_text())
                    seen.append(state)

                await shows("start")
                await client.post("/admin/api/exits/progress", json={})
                await shows("processing")
                simulator.mine(1)
                await shows("awaiting-delta")
                tip = (await client.get("/admin/api/health")).json()["tip_height"]
                detail = (await client.get("/admin/api/exits")).json()["exits"][0]["detail"]
                simulator.mine(detail["claimable_height"] - tip)
                await shows("claimable")
                claimed = await client.post("/admin/api/exits/claim", json={})
                assert claimed.status_code == 200, claimed.text
                await shows("claim-in-progress")
                simulator.mine(1)
                await shows("claimed")
                assert seen == ["start", "processing", "awaiting-delta", "claimable", "claim-in-progress", "claimed"]
                history = await page.locator("#exits tbody tr td").nth(3).inner_text()
                assert history.startswith("start → processing → awaiting-delta → claimable")
                ARTIFACTS.mkdir(exist_ok=True)
                shot = ARTIFACTS / "admin-dashboard-exit-claimed.png"
                await page.screenshot(path=str(shot), full_page=True)
                assert_not_blank(shot)


async def test_dashboard_shows_barkd_08_balances_and_the_scheduled_refresh(make_settings, simulator):
    settings = make_settings(
        admin_token=ADMIN_TOKEN,
        payment_mode="barkd",
        barkd_url=simulator.url,
        barkd_token=simulator.token,
        reconcile_interval_s=3600,
        refresh_check_interval_s=0.05,
    )
    v08 = BARKD_COMPAT == "0.8.0"
    with live_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=admin_headers()) as client:
            created = (await client.post("/v1/sessions", json={"amount_sats": 4000})).json()
            # At the server's maximum exit depth: barkd 0.8 counts them in needs_refresh_sat; due either way.
            simulator.send_ark(created["funding"]["ark_address"], 4000, exit_depth=100)

            async def registered() -> dict[str, Any] | None:
                health = (await client.get("/admin/api/health")).json()
                return health if health["pending_rounds"] else None

            health = await wait_for(registered)
            scheduled = health["next_scheduled_refresh_height"]
            if v08:
                assert scheduled == health["tip_height"] + 144 - 12  # half the 24-block window before expiry
            else:
                assert scheduled is None

            async with browser_page() as page:
                await page.goto(f"{server.url}/admin", wait_until="load")
                await page.fill("#token", ADMIN_TOKEN)
                await page.click("#login-button")
                await page.wait_for_function("() => Number(document.body.dataset.loads || 0) >= 1")
                categories = await page.locator("#wallet-categories").inner_text()
                assert "needs refresh" in categories and "pending offboard" in categories
                table = await page.locator("#health").inner_text()
                assert f"barkd API\t{'0.8' if v08 else '0.6'}" in table
                assert f"next scheduled refresh height\t{scheduled if v08 else '–'}" in table
                assert "unused keys since last payment" in table
                rounds = await page.locator("#rounds tbody").inner_text()
                assert ("delegated-pending" if v08 else "pending") in rounds
                if v08:
                    assert str(scheduled) in rounds
                ARTIFACTS.mkdir(exist_ok=True)
                shot = ARTIFACTS / f"admin-dashboard-barkd-{BARKD_COMPAT}.png"
                await page.locator("#health").scroll_into_view_if_needed()
                await page.screenshot(path=str(shot), full_page=True)
                assert_not_blank(shot)
