"""Wallet health: barkd reachable, Ark server connected, network, VTXO expiry against the tip, rounds."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from arkgate.admin.console import Console
from arkgate.errors import WalletUnavailableError
from arkgate.payments.barkd import BarkdError, Vtxo
from arkgate.timestamps import format_optional

# arkgate says "mainnet" or "bitcoin"; barkd's ark-info says "bitcoin".
_NETWORK_ALIASES = {"mainnet": "bitcoin"}


def expected_network(configured: str) -> str:
    return _NETWORK_ALIASES.get(configured, configured)


def vtxo_rows(vtxos: list[Vtxo], tip: int, refresh_before: int) -> list[dict[str, Any]]:
    """Each VTXO with blocks left and whether the refresh policy considers it due."""
    rows = []
    for vtxo in vtxos:
        expiry = vtxo.expiry_height
        left = expiry - tip if expiry is not None else None
        rows.append(
            {
                "id": vtxo.vtxo_id,
                "amount_sats": vtxo.amount_sats,
                "policy_type": vtxo.policy_type,
                "state": vtxo.state,
                "expiry_height": expiry,
                "blocks_left": left,
                "expired": left is not None and left <= 0,
                "refresh_due": vtxo.state == "spendable"
                and vtxo.policy_type == "pubkey"
                and left is not None
                and left <= refresh_before,
                "exit_depth": vtxo.exit_depth,
            }
        )
    rows.sort(key=lambda row: (row["expiry_height"] is None, row["expiry_height"] or 0))
    return rows


async def build_health(console: Console) -> dict[str, Any]:
    settings = console.settings
    refresh_before = settings.effective_refresh_before_blocks
    state = console.state
    monitor = {
        "running": state.monitor_running,
        "checks": state.checks,
        "last_check_at": format_optional(state.last_check_at),
        "last_error": state.last_error,
        "disconnected_since": format_optional(state.disconnected_at),
        "auto_exit_after_s": settings.auto_exit_after_s,
        "auto_exit_started": state.auto_exit_started,
    }
    report: dict[str, Any] = {
        "payment_mode": settings.payment_mode,
        "network": settings.network,
        "refresh_before_blocks": refresh_before,
        "monitor": monitor,
        # Which instance answered and whether it leads (runs the monitor) when several share the database.
        "leader": {
            "is_leader": console.rt.leader.is_leader,
            "instance": console.rt.leader.holder,
            "term": console.rt.leader.term,
            "jobs": sorted(console.rt.leader.job_tasks),
        },
        "barkd_reachable": False,
        "wallet_loaded": False,
        "ark_connected": False,
        "network_matches": None,
        "ark_network": None,
        "tip_height": None,
        "vtxos": [],
        "next_refresh_due_height": None,
        "next_refresh_due_in_blocks": None,
        "next_expiry_height": None,
        "pending_rounds": [],
        "barkd_version": None,
        "next_scheduled_refresh_height": None,
        "address_gap": None,
        "exits": [],
        "problems": [],
    }
    if not console.has_wallet:
        report["problems"].append("free payment mode: no wallet to watch")
        return report
    barkd = console.barkd
    problems: list[str] = report["problems"]
    if not await barkd.ping():
        problems.append("barkd is unreachable")
        return report
    report["barkd_reachable"] = True
    try:
        report["wallet_loaded"] = await barkd.wallet_fingerprint() is not None
        report["ark_connected"] = await barkd.connected()
        tip = await barkd.tip_height()
        report["tip_height"] = tip
        vtxos = await barkd.vtxo_list()
        rounds = await barkd.pending_rounds()
        report["pending_rounds"] = [r.raw for r in rounds]
        report["exits"] = [status.raw for status in await barkd.exit_statuses("all")]
        report["barkd_version"] = await barkd.api_version()
    except (BarkdError, WalletUnavailableError) as exc:
        problems.append(exc.message)
        return report
    if report["ark_connected"]:
        try:
            info = await barkd.ark_info()
            report["ark_network"] = info.network
            report["network_matches"] = info.network == expected_network(settings.network)
            report["vtxo_lifetime"] = info.vtxo_lifetime
            report["round_interval"] = info.round_interval
            report["next_round_start"] = await barkd.next_round_start()
        except (BarkdError, WalletUnavailableError) as exc:
            problems.append(f"ark-info unavailable: {exc.message}")
    else:
        problems.append("the Ark server is not connected")
    if report["network_matches"] is False:
        problems.append(f"barkd is on {report['ark_network']}, arkgate is configured for {settings.network}")
    # barkd 0.8: delegated refreshes wait for the height they were scheduled at.
    scheduled = [r.scheduled_height for r in rounds if r.scheduled_height is not None]
    report["next_scheduled_refresh_height"] = min(scheduled) if scheduled else None
    book = console.rt.sessions.address_book
    if book is not None:
        report["address_gap"] = asdict(await book.report())
    rows = vtxo_rows(vtxos, tip, refresh_before)
    report["vtxos"] = rows
    live = [row for row in rows if row["state"] in ("spendable", "locked") and isinstance(row["expiry_height"], int)]
    if live:
        soonest = min(row["expiry_height"] for row in live)
        report["next_expiry_height"] = soonest
        report["next_refresh_due_height"] = soonest - refresh_before
        report["next_refresh_due_in_blocks"] = max(0, soonest - refresh_before - tip)
    expired = [row["id"] for row in rows if row["expired"] and row["state"] == "spendable"]
    if expired:
        problems.append(f"{len(expired)} VTXO(s) past expiry: refresh or exit them now")
    return report
