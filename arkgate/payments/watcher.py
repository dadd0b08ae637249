"""The payment watcher: barkd's notifications in, exactly-once credits out.

It follows barkd's WebSocket (falling back to the ``/notifications/wait`` long poll for a
while, then trying the WebSocket again; polling history on barkd 0.1.x) and credits
successful receive movements the moment they arrive. Crediting is idempotent in the
ledger, so replays and concurrent watchers are harmless. What it adds to barkd
(BEHAVIOUR.md 2.3, 4, 5):

* **Sync.** barkd 0.6 learns of a payment from the Ark server's mailbox *push*; if that push
  is missed, or a receive stalls after the payer has the preimage, only ``wallet/sync`` (or
  a barkd restart) moves it on. While receives are pending the watcher asks barkd to sync
  and reads the pending invoices' status, on a schedule that grows with the number of
  pending receives (``sync_interval_for``), never with the number of sessions.
* **Catch-up.** A gap in the stream (a reconnect, ``channel-lagging``, a jump in movement
  ids) triggers a targeted catch-up at once: barkd's history filtered per pending invoice
  and per awaiting Ark address, so its cost is what is pending, not barkd's whole history.
* **Audit.** barkd's whole history is read only when this wallet has no stored cursor, or
  the last audit is older than ``audit_interval_s``; movements at or below the cursor are
  skipped.
* The periodic pass (targeted catch-up, audit when due, invoice expiry) runs each step on
  its own, logging failures, so one failing step never skips the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import stamina
import structlog
import websockets

from arkgate.payments.barkd import BarkdClient, BarkdError, Movement, Notification, parse_notification
from arkgate.payments.events import EventHub
from arkgate.payments.kinds import Rail, WatcherMode
from arkgate.payments.labels import label_credits
from arkgate.payments.ledger import (
    ArkEntry,
    Credit,
    CreditResult,
    Ledger,
    PendingInvoice,
    PendingReceives,
    ark_payment_key,
    lightning_payment_key,
)
from arkgate.timestamps import parse_instant

log = structlog.get_logger("arkgate.watcher")

RECEIVES_PER_SYNC = 20  # each sync tick reads at most this many invoice statuses, round robin
WEBSOCKET_RETRY_S = 30.0  # on the long poll because the WebSocket failed: try it again this often
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 10.0


class WalletNotReadyError(Exception):
    """barkd reports no wallet fingerprint yet: Ark payments cannot be keyed, so nothing is credited."""


class StreamClosedError(ConnectionError):
    """barkd closed an established notification stream; reconnect (the WebSocket first)."""


class PaymentWatcher:
    def __init__(
        self,
        barkd: BarkdClient,
        ledger: Ledger,
        events: EventHub,
        *,
        reconcile_interval_s: float = 60.0,
        poll_interval_s: float = 2.0,
        sync_interval_s: float = 1.0,
        sync_max_interval_s: float = 30.0,
        audit_interval_s: float = 3600.0,
        on_credit: Callable[[CreditResult, Rail], None] | None = None,
    ) -> None:
        self.barkd = barkd
        self.ledger = ledger
        self.events = events
        self.reconcile_interval_s = reconcile_interval_s
        self.poll_interval_s = poll_interval_s
        self.sync_interval_s = sync_interval_s
        self.sync_max_interval_s = sync_max_interval_s
        self.audit_interval_s = audit_interval_s
        self.on_credit = on_credit
        self.mode: WatcherMode = "starting"
        self.connected = False
        self.last_event_at: float | None = None
        self.last_sync_at: float | None = None
        self.wallet_id: str | None = None  # barkd's fingerprint; None until barkd reports one
        self.websocket_connections = 0
        self.syncs = 0
        self._known: set[str] = set()
        self._ready = asyncio.Event()
        self._reconcile_lock = asyncio.Lock()
        self._last_movement_id: int | None = None
        self._status_turn = 0
        self._started = False  # the start-up audit is done
        self._following = False  # connected: the next step follows barkd

    # --- lifecycle ------------------------------------------------------------------
    async def run(self) -> None:
        """Run until cancelled; barkd outages are retried with capped exponential backoff."""
        self._known = await self.ledger.known_payment_keys()
        helpers = [
            asyncio.create_task(self._periodic(), name="watcher-periodic"),
            asyncio.create_task(self._sync_loop(), name="watcher-sync"),
        ]
        try:
            while True:
                # A fresh schedule after each successful step, so the backoff restarts at its first wait
                # once barkd answers again (stamina: the project's one retry helper).
                async for attempt in stamina.retry_context(
                    on=Exception,  # barkd down, restarting, without a wallet, or misbehaving: retry
                    attempts=None,
                    timeout=None,
                    wait_initial=FIRST_BACKOFF_S,
                    wait_max=MAX_BACKOFF_S,
                    wait_jitter=0.0,
                ):
                    with attempt:
                        await self._connect_or_follow(retry_in_s=attempt.next_wait)
        finally:
            for task in helpers:
                task.cancel()
            for task in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _connect_or_follow(self, *, retry_in_s: float) -> None:
        """One step of ``run``: connect (fingerprint, and the start-up audit once), or follow barkd."""
        try:
            if self._following:
                self._following = False  # whatever ends the stream, the next step reconnects
                await self._follow()
                return
            self.wallet_id = await self._fingerprint()
            if not self._started:
                await self._audit_if_due()
                # The audit's cursor is where the event stream should continue; an event past
                # it (a payment while we were down) is a gap and gets a catch-up.
                baseline = (await self._read_cursor()).get("movement_id")
                if isinstance(baseline, int) and self._last_movement_id is None:
                    self._last_movement_id = baseline
                self._started = True
            self.connected = True
            self._following = True
        except StreamClosedError:
            log.info("watcher.stream_closed", retry_in_s=round(retry_in_s, 2))
            self.connected = False
            raise
        except Exception as exc:
            self.connected = False
            self.mode = "offline"
            log.warning("watcher.disconnected", error=repr(exc), retry_in_s=round(retry_in_s, 2))
            raise

    async def wait_ready(self, timeout_s: float = 10.0) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _fingerprint(self) -> str:
        """barkd's wallet fingerprint; never an invented stand-in (it is part of every Ark payment key)."""
        fingerprint = await self.barkd.wallet_fingerprint()
        if not fingerprint:
            raise WalletNotReadyError("barkd reports no wallet fingerprint yet")
        return fingerprint

    async def _periodic(self) -> None:
        """Targeted catch-up, the history audit when due, invoice expiry: each step on its own."""
        while True:
            await asyncio.sleep(self.reconcile_interval_s)
            if self.wallet_id is not None:
                try:
                    await self.reconcile()
                except Exception as exc:
                    log.warning("watcher.reconcile_failed", error=repr(exc))
                try:
                    await self._audit_if_due()
                except Exception as exc:
                    log.warning("watcher.audit_failed", error=repr(exc))
            try:
                await self.ledger.expire_invoices()
            except Exception as exc:
                log.warning("watcher.expiry_failed", error=repr(exc))

    # --- sync: what barkd does not do by itself -------------------------------------------
    def sync_interval_for(self, pending: int) -> float:
        """Seconds between syncs with ``pending`` receives: short, longer as more are pending, bounded."""
        steps = max(1, math.ceil(pending / RECEIVES_PER_SYNC))
        return min(self.sync_max_interval_s, self.sync_interval_s * steps)

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval_s)
            if not self.connected:
                continue  # barkd is down: the follow loop's backoff decides when to try again
            try:
                pending = await self.ledger.pending_receives()
                if not pending:
                    continue
                due = self.last_sync_at is None or (
                    time.monotonic() - self.last_sync_at >= self.sync_interval_for(len(pending))
                )
                if due:
                    await self.sync_pending(pending)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_sync_at = time.monotonic()  # wait a full interval before trying again
                log.warning("watcher.sync_failed", error=repr(exc))

    async def sync_pending(self, pending: PendingReceives) -> int:
        """Ask barkd to sync (mailbox, pending receives), then check some pending invoices; returns credits."""
        self.last_sync_at = time.monotonic()
        await self.barkd.sync()
        self.syncs += 1
        credited = 0
        invoices = pending.invoices
        if invoices:
            start = self._status_turn % len(invoices)
            turn = (invoices[start:] + invoices[:start])[:RECEIVES_PER_SYNC]
            self._status_turn = start + len(turn)
            for invoice in turn:
                status = await self.barkd.receive_status(invoice.payment_hash)
                if status.is_paid and lightning_payment_key(invoice.payment_hash) not in self._known:
                    credited += await self._catch_up_invoice(invoice)
        return credited

    # --- following barkd --------------------------------------------------------------
    async def _follow(self) -> None:
        """WebSocket first; if it cannot be opened, the long poll for a while, then the WebSocket again."""
        try:
            await self._follow_websocket()
        except StreamClosedError:
            raise  # it was open: reconnect to the WebSocket, do not settle for the long poll
        except (BarkdError, OSError, websockets.WebSocketException) as exc:
            log.info("watcher.websocket_unavailable", error=repr(exc))
        try:
            await self._follow_long_poll(until=time.monotonic() + WEBSOCKET_RETRY_S)
        except BarkdError as exc:
            if exc.http_status != 404:
                raise
            await self._poll_history()

    async def _follow_websocket(self) -> None:
        ticket = await self.barkd.ws_ticket()
        async with websockets.connect(self.barkd.ws_url(ticket), open_timeout=5, ping_interval=20) as socket:
            self.mode = "websocket"
            self.websocket_connections += 1
            try:
                # A (re)connection is a gap: catch up on what happened while we were not listening.
                await self.reconcile()
                self._ready.set()
                async for frame in socket:
                    await self.handle_notification(parse_notification(json.loads(frame)))
            except (OSError, websockets.WebSocketException) as exc:
                raise StreamClosedError(f"the notification stream broke: {exc!r}") from exc
        raise StreamClosedError("barkd closed the notification stream")

    async def _follow_long_poll(self, *, until: float) -> None:
        """The long poll, until ``until`` (monotonic); then back to the caller, which retries the WebSocket."""
        self.mode = "long-poll"
        since: str | None = None
        first = True
        while time.monotonic() < until:
            notifications, last = await self.barkd.wait_notifications(since)
            if first:
                await self.reconcile()
                self._ready.set()
                first = False
            for notification in notifications:
                await self.handle_notification(notification)
            since = last or since

    async def _poll_history(self) -> None:
        """barkd 0.1.x: no long poll and no history filter; read history past the cursor each time."""
        self.mode = "polling"
        self._ready.set()
        while True:
            await asyncio.sleep(self.poll_interval_s)
            await self.audit_history()

    # --- events -----------------------------------------------------------------------
    async def handle_notification(self, notification: Notification) -> None:
        kind = notification.type
        self.last_event_at = time.monotonic()
        log.debug("watcher.event", type=kind)
        if kind in ("movement-created", "movement-updated") and notification.movement is not None:
            movement = notification.movement
            gap = kind == "movement-created" and self._is_gap(movement.id)
            await self.handle_movement(movement)
            if gap:  # movement ids only grow by one: an event for the ones between went missing
                log.info("watcher.gap", movement_id=movement.id)
                await self.reconcile()
        elif kind == "channel-lagging":
            log.info("watcher.lagging")
            await self.reconcile()

    def _is_gap(self, movement_id: int) -> bool:
        last = self._last_movement_id
        if last is None or movement_id > last:
            self._last_movement_id = movement_id
        return last is not None and movement_id > last + 1

    async def handle_movement(self, movement: Movement) -> list[CreditResult]:
        if movement.status != "successful":
            return []
        if movement.is_ark_receive:
            return await self._credit_ark(movement)
        if movement.is_lightning_receive and movement.payment_hash:
            return await self._credit_lightning(movement)
        return []

    async def _credit_ark(self, movement: Movement) -> list[CreditResult]:
        if self.wallet_id is None:
            return []  # not keyable yet; the catch-up after barkd reports its fingerprint credits it
        per_address: dict[str, int] = {}
        for destination in movement.received_on:
            if destination.type == "ark":
                per_address[destination.value] = per_address.get(destination.value, 0) + destination.amount_sats
        keys = {ark_payment_key(self.wallet_id, movement.id, address) for address in per_address}
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
        assert movement.payment_hash is not None
        key = lightning_payment_key(movement.payment_hash)
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

    def _announce(self, result: CreditResult, rail: Rail) -> None:
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

    # --- catch-up and audit ---------------------------------------------------------------
    async def reconcile(self) -> int:
        """Targeted catch-up: barkd's history per pending invoice and awaiting address; returns credits made.

        barkd without history filters (0.1.x) gets the audit instead (history past the cursor).
        """
        if self.barkd.lacks_history_filter:
            return await self.audit_history()
        async with self._reconcile_lock:
            pending = await self.ledger.pending_receives()
            credited = 0
            for invoice in pending.invoices:
                credited += await self._catch_up_invoice(invoice)
            for address in pending.addresses:
                credited += await self._credit_all(await self.barkd.history(type_="ark", value=address))
        if credited:
            log.info("watcher.reconciled", credited=credited)
        return credited

    async def _catch_up_invoice(self, invoice: PendingInvoice) -> int:
        return await self._credit_all(await self.barkd.history(type_="invoice", value=invoice.bolt11))

    async def _credit_all(self, movements: list[Movement]) -> int:
        credited = 0
        for movement in sorted(movements, key=lambda m: m.id):
            credited += sum(1 for r in await self.handle_movement(movement) if r.credited)
        return credited

    def _cursor_name(self) -> str:
        return f"history:{self.wallet_id}"

    async def _audit_if_due(self) -> None:
        stored = await self._read_cursor()
        audited_at = stored.get("audited_at")
        if isinstance(audited_at, str):
            age_s = (datetime.now(UTC) - parse_instant(audited_at)).total_seconds()
            if age_s < self.audit_interval_s:
                return
        await self.audit_history()

    async def _read_cursor(self) -> dict[str, Any]:
        if self.wallet_id is None:
            return {}
        raw = await self.ledger.cursor(self._cursor_name())
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    async def audit_history(self) -> int:
        """Read barkd's whole history once and credit movements past the stored cursor; returns credits.

        The cursor stops below the oldest movement still pending, so a Lightning receive that
        settles later is read again.
        """
        if self.wallet_id is None:
            return 0
        async with self._reconcile_lock:
            cursor = int((await self._read_cursor()).get("movement_id") or 0)
            movements = [m for m in await self.barkd.history() if m.id > cursor]
            credited = await self._credit_all(movements)
            pending = [m.id for m in movements if m.status == "pending"]
            if pending:
                cursor = min(pending) - 1
            elif movements:
                cursor = max(m.id for m in movements)
            value = {"movement_id": cursor, "audited_at": datetime.now(UTC).isoformat()}
            await self.ledger.set_cursor(self._cursor_name(), json.dumps(value))
        if credited:
            log.info("watcher.audited", credited=credited, cursor=cursor)
        return credited
