"""Solvency gauges for ``/metrics``: liabilities, wallet assets, surplus, nearest VTXO expiry.

Read at scrape time from the same code as the admin overview and health report, so the
dashboard and Prometheus never disagree. barkd being unreachable leaves the wallet gauges
NaN rather than zero, which would look like an empty wallet.
"""

from __future__ import annotations

import math

from arkgate.admin.console import Console
from arkgate.admin.overview import wallet_view
from arkgate.errors import WalletUnavailableError
from arkgate.payments.barkd import BarkdError
from arkgate.runtime import Runtime


async def refresh_gauges(console: Console, rt: Runtime) -> None:
    """Set the solvency gauges of ``rt.metrics`` from the ledger and barkd."""
    metrics = rt.metrics
    liabilities = await rt.ledger.liabilities_sats()
    metrics.liabilities_sats.set(liabilities)
    if not console.has_wallet:
        return
    wallet = await wallet_view(console)
    assets = wallet["assets_sats"]
    metrics.wallet_assets_sats.set(math.nan if assets is None else assets)
    metrics.solvency_surplus_sats.set(math.nan if assets is None else assets - liabilities)
    try:
        tip = await console.barkd.tip_height()
        vtxos = await console.barkd.vtxo_list()
    except (BarkdError, WalletUnavailableError):
        tip, vtxos = 0, []
    live = [vtxo.expiry_height for vtxo in vtxos if vtxo.expiry_height is not None and vtxo.is_live]
    nearest = min(live) if live else math.nan
    metrics.vtxo_nearest_expiry_height.set(nearest)
    metrics.vtxo_nearest_expiry_blocks.set(nearest - tip)
