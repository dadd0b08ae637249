"""The operator background task: Ark server watchdog (and auto-exit), refresh policy, exits, alerts.

A leader-only job (``arkgate.cluster.leader``): with several instances, only the leader runs it.

One loop, one check every ``refresh_check_interval_s``. Alerts fire when something changes
(server lost or back, solvency dropping below the threshold, a new orphan payment, an exit
moving to a new state), not on every check.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from sqlalchemy import func, select

from arkgate.admin import exits, refresh
from arkgate.admin.console import Console
from arkgate.admin.overview import wallet_view
from arkgate.db import tables as t
from arkgate.db.engine import utcnow
from arkgate.errors import ArkgateError, WalletUnavailableError
from arkgate.payments.barkd import BarkdError

log = structlog.get_logger("arkgate.admin.monitor")


class Monitor:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def run(self) -> None:
        console = self.console
        console.state.monitor_running = True
        try:
            await exits.load_known_states(console)
            while True:
                try:
                    await self.check_once()
                    console.state.last_error = None
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the watchdog must outlive any one failure
                    message = exc.message if isinstance(exc, ArkgateError) else type(exc).__name__
                    console.state.last_error = message
                    log.warning("monitor.check_failed", error=message)
                await asyncio.sleep(console.settings.refresh_check_interval_s)
        finally:
            console.state.monitor_running = False

    async def check_once(self) -> None:
        console = self.console
        if not console.rt.leader.holds_lease:
            return  # woke after a pause with an unconfirmed lease: the lease loop decides first
        state = console.state
        state.checks += 1
        state.last_check_at = utcnow()
        barkd = console.barkd
        reachable = True
        try:
            connected = await barkd.connected()
        except (WalletUnavailableError, BarkdError):
            reachable = await barkd.ping()
            connected = False
        await self._watch_connection(connected, reachable)
        if not reachable:
            return
        if connected:
            with contextlib.suppress(ArkgateError):  # recorded and alerted by refresh()
                await refresh.run_policy(console)
            await refresh.follow_rounds(console)
        if await barkd.exit_statuses("live"):
            await exits.progress(console)
        elif any(kind in exits.LIVE for kind in state.exit_states.values()):
            await exits.track_states(console)
        await self._watch_solvency()
        await self._watch_orphans()

    async def _watch_connection(self, connected: bool, reachable: bool) -> None:
        console = self.console
        state = console.state
        settings = console.settings
        now = asyncio.get_running_loop().time()
        if connected:
            if state.disconnected_since is not None:
                await console.alerter.emit("server_reconnected", "the Ark server is reachable again")
            state.disconnected_since = None
            state.disconnected_at = None
            state.auto_exit_started = False
            state.connected = True
            return
        if state.disconnected_since is None:
            state.disconnected_since = now
            state.disconnected_at = utcnow()
            why = "the Ark server is unreachable" if reachable else "barkd is unreachable"
            await console.alerter.emit(
                "server_disconnected", why, auto_exit_after_s=settings.auto_exit_after_s, barkd_reachable=reachable
            )
        state.connected = False
        limit = settings.auto_exit_after_s
        if limit is None or state.auto_exit_started or not reachable:
            return
        if now - state.disconnected_since < limit:
            return
        state.auto_exit_started = True
        try:
            # Forced: with the server gone, a late exit is worse than one short of fee funds;
            # the alert says how much the on-chain wallet must receive.
            await exits.start(console, None, force=True, source="auto-exit")
        except ArkgateError as exc:
            await console.alerter.emit("exit_failed", f"automatic exit could not start: {exc.message}")

    async def _watch_solvency(self) -> None:
        console = self.console
        wallet = await wallet_view(console)
        if wallet["assets_sats"] is None:
            return
        liabilities = await console.rt.ledger.liabilities_sats()
        margin = wallet["assets_sats"] - liabilities
        low = margin < console.settings.solvency_alert_sats
        if low and not console.state.solvency_low:
            await console.alerter.emit(
                "solvency_low",
                f"the wallet holds {wallet['assets_sats']} sats against {liabilities} sats of liabilities",
                assets_sats=wallet["assets_sats"],
                liabilities_sats=liabilities,
                threshold_sats=console.settings.solvency_alert_sats,
            )
        console.state.solvency_low = low

    async def _watch_orphans(self) -> None:
        console = self.console
        async with console.rt.database.read() as conn:
            count = int(
                (await conn.execute(select(func.count()).where(t.payments.c.session_id.is_(None)))).scalar_one()
            )
        seen = console.state.orphans_seen
        if seen is not None and count > seen:
            await console.alerter.emit(
                "orphan_payment",
                f"{count - seen} payment(s) arrived that no session owns; see the admin overview",
                orphan_payments=count,
            )
        console.state.orphans_seen = count
