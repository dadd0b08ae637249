"""Group commit of charges on SQLite.

SQLite has one writer, so concurrent charges queue for it anyway. Instead of one
transaction (and several driver thread hops) per call, the batcher applies every
charge waiting at that moment in one transaction on a dedicated connection, in one
thread hop. Each charge keeps its own conditional UPDATE, so the money rules are the
same as the one-by-one path; only the commit is shared.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from arkgate.errors import ArkgateError, InsufficientBalanceError, InvalidTokenError, PaymentRequiredError

MAX_BATCH = 256


def sqlite_instant(instant: datetime) -> str:
    """The text form SQLAlchemy stores SQLite DateTime values in."""
    return instant.strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True, kw_only=True)
class ChargeRequest:
    token_hash: str
    endpoint_id: str
    amount_sats: int
    call_id: str
    now: datetime
    expires_at: datetime
    idempotency: tuple[str, str] | None
    idempotency_cutoff: datetime


class IdempotencyConflict(Exception):
    """Another request already claimed this Idempotency-Key."""


class SqliteChargeBatcher:
    def __init__(self, path: str, write_lock: asyncio.Lock) -> None:
        self._path = path
        self._lock = write_lock
        self._pending: list[tuple[ChargeRequest, asyncio.Future[tuple[int, int]]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None

    async def charge(self, request: ChargeRequest) -> tuple[int, int]:
        """(session id, balance after) once committed; raises the ledger's refusal errors."""
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                async with self._lock:
                    outcomes = await asyncio.to_thread(self._apply, [request for request, _ in batch])
            except BaseException as exc:  # the whole batch failed: nothing was committed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._conn = conn
        return self._conn

    def _apply(self, batch: list[ChargeRequest]) -> list[tuple[int, int] | BaseException]:
        conn = self._connection()
        outcomes: list[tuple[int, int] | BaseException] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for request in batch:
                outcomes.append(self._apply_one(conn, request))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return outcomes

    def _apply_one(self, conn: sqlite3.Connection, request: ChargeRequest) -> tuple[int, int] | BaseException:
        now = sqlite_instant(request.now)
        conn.execute("SAVEPOINT charge")
        row = conn.execute(
            "UPDATE sessions SET balance_sats = balance_sats - ?, last_call_at = ?, expires_at = ? "
            "WHERE token_hash = ? AND balance_sats >= ? RETURNING id, balance_sats",
            (request.amount_sats, now, sqlite_instant(request.expires_at), request.token_hash, request.amount_sats),
        ).fetchone()
        if row is None:
            conn.execute("RELEASE charge")
            return refusal(_fetch_session(conn, request.token_hash), request.amount_sats)
        session_id, balance = int(row[0]), int(row[1])
        if request.idempotency is not None:
            key, request_hash = request.idempotency
            conn.execute(  # a key older than the retention window may be reused
                "DELETE FROM idempotency_keys WHERE session_id = ? AND idem_key = ? AND created_at < ?",
                (session_id, key, sqlite_instant(request.idempotency_cutoff)),
            )
            try:
                conn.execute(
                    "INSERT INTO idempotency_keys (session_id, idem_key, request_hash, created_at) VALUES (?, ?, ?, ?)",
                    (session_id, key, request_hash, now),
                )
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK TO charge")
                conn.execute("RELEASE charge")
                return IdempotencyConflict(key)
        conn.execute(
            "INSERT INTO calls (call_id, session_id, endpoint_id, kind, amount_sats, created_at) "
            "VALUES (?, ?, ?, 'debit', ?, ?)",
            (request.call_id, session_id, request.endpoint_id, request.amount_sats, now),
        )
        conn.execute("RELEASE charge")
        return session_id, balance


def _fetch_session(conn: sqlite3.Connection, token_hash: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT balance_sats, status FROM sessions WHERE token_hash = ?", (token_hash,)).fetchone()
    return None if row is None else {"balance_sats": int(row[0]), "status": row[1]}


def refusal(session: dict[str, Any] | None, amount_sats: int) -> ArkgateError:
    """Why a charge was refused: unknown token, unfunded session, or not enough sats."""
    if session is None:
        return InvalidTokenError("invalid or unknown session token")
    details = {"price_sats": amount_sats, "balance_sats": session["balance_sats"]}
    if session["status"] == "awaiting_payment":
        return PaymentRequiredError(
            "this session is not funded yet: pay its Lightning invoice or send sats to its Ark address",
            details=details,
        )
    return InsufficientBalanceError(
        f"insufficient balance: this call costs {amount_sats} sats and the session has {session['balance_sats']}",
        details=details,
    )
