"""The payment watcher: barkd's notifications in, exactly-once credits out.

It follows barkd's WebSocket (falling back to the ``/notifications/wait`` long poll,
then to polling history on barkd 0.1.x), credits successful receive movements the
moment they arrive, and reconciles from history at start-up, after
``channel-lagging``, after every reconnect and periodically, since events can be
missed. Its cost grows with barkd's events, never with the number of unpaid sessions.
Crediting is idempotent in the ledger, so replays and concurrent watchers are harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import structlog
import websockets

from arkgate.payments.barkd import BarkdClient, BarkdError, Movement, parse_movement
from arkgate.payments.events import EventHub
from arkgate.payments.labels import label_credits
from arkgate.payments.ledger import ArkEntry, Credit, CreditResult, Ledger

log = structlog.get_logger("arkgate.watcher")


class PaymentWatcher:
    def __init__(
        self,
        barkd: BarkdClient,
        ledger: Ledger,
        events: EventHub,
        *,
        reconcile_interval_s: float = 60.0,
        poll_interval_s: float = 2.0,
        on_credit: Callable[[CreditResult, str], None] | None = None,
    ) -> None:
        self.barkd = barkd
        self.ledger = ledger
        self.events = events
        self.reconcile_interval_s = reconcile_interval_s
        self.poll_interval_s = poll_interval_s
        self.on_credit = on_credit
        self.mode = "starting"  # websocket | long-poll | polling | offline
        self.connected = False
        self.last_event_at: float | None = None
        self.last_reconcile_at: float | None = None
        self.wallet_id = "wallet"
        self._known: set[str] = set()
        self._ready = asyncio.Event()
        self._reconcile_lock = asyncio.Lock()

    # --- lifecycle ------------------------------------------------------------------
    async def run(self) -> None:
        """Run until cancelled; barkd outages are retried with capped exponential backoff."""
        self._known = await self.ledger.known_payment_keys()
        periodic = asyncio.create_task(self._periodic_reconcile())
        backoff = 0.2
        try:
            while True:
                try:
                    fingerprint = await self.barkd.wallet_fingerprint()
                    self.wallet_id = fingerprint or "wallet"
                    await self.reconcile()
                    self.connected = True
                    backoff = 0.2
                    await self._follow()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # barkd down, restarting, or misbehaving: retry
                    self.connected = False
                    self.mode = "offline"
                    log.warning("watcher.disconnected", error=type(exc).__name__, retry_in_s=round(backoff, 2))
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await periodic

    async def wait_ready(self, timeout_s: float = 10.0) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _periodic_reconcile(self) -> None:
        while True:
            await asyncio.sleep(self.reconcile_interval_s)
            with contextlib.suppress(Exception):
                await self.reconcile()
                await self.ledger.expire_invoices()

    # --- following barkd --------------------------------------------------------------
    async def _follow(self) -> None:
        """WebSocket first; any failure other than barkd being unreachable falls back to the long poll."""
        try:
            await self._follow_websocket()
            return
        except (BarkdError, OSError, websockets.WebSocketException) as exc:
            log.info("watcher.websocket_unavailable", error=type(exc).__name__)
        try:
            await self._follow_long_poll()
        except BarkdError as exc:
            if exc.http_status != 404:
                raise
            await self._poll_history()

    async def _follow_websocket(self) -> None:
        ticket = await self.barkd.ws_ticket()
        async with websockets.connect(self.barkd.ws_url(ticket), open_timeout=5, ping_interval=20) as socket:
            self.mode = "websocket"
            # Events between the last reconcile and this connection would be missed otherwise.
            await self.reconcile()
            self._ready.set()
            async for frame in socket:
                await self.handle_notification(json.loads(frame))
        raise ConnectionError("barkd closed the notification stream")

    async def _follow_long_poll(self) -> None:
        self.mode = "long-poll"
        since: str | None = None
        first = True
        while True:
            notifications, last = await self.barkd.wait_notifications(since)
            if first:
                await self.reconcile()
                self._ready.set()
                first = False
            for notification in notifications:
                await self.handle_notification(notification)
            since = last or since

    async def _poll_history(self) -> None:
        """barkd 0.1.x: no long poll; history is cheap to re-read, and crediting is idempotent."""
        self.mode = "polling"
        self._ready.set()
        while True:
            await asyncio.sleep(self.poll_interval_s)
            await self.reconcile()

    # --- events -----------------------------------------------------------------------
    async def handle_notification(self, notification: dict[str, Any]) -> None:
        kind = notification.get("type")
        self.last_event_at = time.monotonic()
        log.debug("watcher.event", type=kind)
        if kind in ("movement-created", "movement-updated") and isinstance(notification.get("movement"), dict):
            await self.handle_movement(parse_movement(notification["movement"]))
        elif kind == "channel-lagging":
            log.info("watcher.lagging")
            await self.reconcile()

    async def handle_movement(self, movement: Movement) -> list[CreditResult]:
        if movement.status != "successful":
            return []
        if movement.is_ark_receive:
            return await self._credit_ark(movement)
        if movement.is_lightning_receive and movement.payment_hash:
            return await self._credit_lightning(movement)
        return []

    async def _credit_ark(self, movement: Movement) -> list[CreditResult]:
        per_address: dict[str, int] = {}
        for destination in movement.received_on:
            if destination.type == "ark":
                per_address[destination.value] = per_address.get(destination.value, 0) + destination.amount_sats
        keys = {f"ark:{self.wallet_id}:{movement.id}:{address}" for address in per_address}
        if not per_address or keys <= self._known:
            return []
        results = await self.ledger.credit_ark_movement(
            wallet_id=self.wallet_id,
            movement_id=movement.id,
            entries=[ArkEntry(address=a, amount_sats=n) for a, n in per_address.items()],
            vtxo_ids=movement.output_vtxos,
        )
        self._known |= keys
        for result in results:
            self._announce(result, "ark")
        await label_credits(self.barkd, movement, results, "ark")
        return results

    async def _credit_lightning(self, movement: Movement) -> list[CreditResult]:
        key = f"ln:{movement.payment_hash}"
        if key in self._known:
            return []
        # What the payer paid: the invoice amount (gross); barkd's receive fee is the merchant's cost.
        gross = movement.intended_sats or sum(d.amount_sats for d in movement.received_on)
        result = await self.ledger.credit_lightning(
            Credit(
                rail="lightning",
                payment_key=key,
                amount_sats=gross,
                fee_sats=movement.offchain_fee_sats,
                payment_hash=movement.payment_hash,
                movement_id=movement.id,
            )
        )
        self._known.add(key)
        self._announce(result, "lightning")
        await label_credits(self.barkd, movement, [result], "lightning")
        return [result]

    def _announce(self, result: CreditResult, rail: str) -> None:
        if not result.credited:
            return
        log.info(
            "payment.credited",
            rail=rail,
            session_id=result.session_id,
            amount_sats=result.amount_sats,
            is_late=result.is_late,
        )
        if self.on_credit is not None:
            self.on_credit(result, rail)
        if result.session_id is not None:
            self.events.publish(
                result.session_id,
                {
                    "type": "payment",
                    "rail": rail,
                    "amount_sats": result.amount_sats,
                    "balance_sats": result.balance_sats,
                    "status": "active",
                },
            )

    # --- reconcile ----------------------------------------------------------------------
    async def reconcile(self) -> int:
        """Re-read barkd's history once and credit whatever was missed; returns credits made."""
        async with self._reconcile_lock:
            credited = 0
            movements = await self.barkd.history()
            for movement in sorted(movements, key=lambda m: m.id):
                results = await self.handle_movement(movement)
                credited += sum(1 for r in results if r.credited)
            self.last_reconcile_at = time.monotonic()
            if credited:
                log.info("watcher.reconciled", credited=credited)
            return credited
