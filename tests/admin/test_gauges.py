"""Solvency gauges on /metrics agree with the admin overview and health report."""

from __future__ import annotations

import math
import re
from typing import Any

from tests.admin.conftest import admin_get, admin_headers
from tests.admin.test_wallet_safety import funded_session


def _gauge(text: str, name: str) -> float | None:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match is not None, f"{name} missing"
    value = float(match.group(1))
    return None if math.isnan(value) else value


async def test_metrics_report_liabilities_assets_and_nearest_vtxo_expiry(
    operator_gateway_factory: Any, simulator: Any
) -> None:
    async with operator_gateway_factory() as gw:
        empty = (await gw.client.get("/metrics", headers=admin_headers())).text
        assert _gauge(empty, "arkgate_vtxo_nearest_expiry_height") is None  # unknown, not zero
        await funded_session(gw, simulator, 4000)
        text = (await gw.client.get("/metrics", headers=admin_headers())).text
        overview = await admin_get(gw.client, "overview")
        health = await admin_get(gw.client, "health")
        assert _gauge(text, "arkgate_liabilities_sats") == overview["liabilities_sats"] == 4000
        assert _gauge(text, "arkgate_wallet_assets_sats") == overview["assets_sats"]
        assert _gauge(text, "arkgate_solvency_surplus_sats") == overview["surplus_sats"]
        assert health["next_expiry_height"] is not None
        assert _gauge(text, "arkgate_vtxo_nearest_expiry_height") == health["next_expiry_height"]
        blocks = health["next_expiry_height"] - health["tip_height"]
        assert _gauge(text, "arkgate_vtxo_nearest_expiry_blocks") == blocks
        assert re.search(r'^arkgate_build_info\{version="[^"]+"\} 1\.0$', text, re.M)
        assert _gauge(text, "process_resident_memory_bytes")
