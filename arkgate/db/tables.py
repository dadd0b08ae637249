"""The ledger's tables (SQLAlchemy Core). Amounts are integer sats; instants are stored naive UTC
and read back aware UTC (``db.types.UTCDateTime``).

A session's ``balance_sats`` is a cached figure that always equals
``sum(payments) - sum(call debits) + sum(call refunds)`` for that session; the
ledger is the only writer and changes both in one transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

from arkgate.db.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Every instant column: naive UTC on disk (DATETIME(6) on MariaDB), aware UTC in Python.
Instant = UTCDateTime()

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("status", String(20), nullable=False),  # awaiting_payment | active
    Column("balance_sats", BigInteger, nullable=False, default=0),
    Column("requested_sats", BigInteger, nullable=False, default=0),
    Column("ark_address", String(255), nullable=True, unique=True),
    Column("source", String(16), nullable=False, default="api"),  # api | l402 | free
    Column("created_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Column("funded_at", Instant, nullable=True),
    Column("last_call_at", Instant, nullable=True),
)

invoices = Table(
    "invoices",
    metadata,
    Column("payment_hash", String(64), primary_key=True),
    Column("session_id", Integer, ForeignKey("sessions.id"), nullable=True, index=True),
    Column("bolt11", Text, nullable=False),
    Column("amount_sats", BigInteger, nullable=False),
    Column("purpose", String(16), nullable=False),  # funding | topup | l402
    Column("status", String(16), nullable=False),  # pending | paid | canceled | expired
    Column("created_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Column("paid_at", Instant, nullable=True),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # NULL: an orphan payment (no session owns the invoice or address); shown to the operator.
    Column("session_id", Integer, ForeignKey("sessions.id"), nullable=True, index=True),
    Column("rail", String(16), nullable=False),  # lightning | ark | free
    # barkd's payment identity (BEHAVIOUR.md 3.5); the unique key makes crediting idempotent.
    Column("payment_key", String(400), nullable=False, unique=True),
    Column("amount_sats", BigInteger, nullable=False),
    Column("fee_sats", BigInteger, nullable=False, default=0),
    Column("payment_hash", String(64), nullable=True),
    Column("movement_id", BigInteger, nullable=True),
    Column("ark_address", String(255), nullable=True),
    Column("is_late", Boolean, nullable=False, default=False),
    Column("created_at", Instant, nullable=False),
)

payment_vtxos = Table(
    "payment_vtxos",
    metadata,
    # A VTXO can be received only once: pre-0.3.0 barkd could record one arkoor receive twice.
    Column("vtxo_id", String(80), primary_key=True),
    Column("payment_id", Integer, ForeignKey("payments.id"), nullable=False),
)

calls = Table(
    "calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(32), nullable=False, index=True),
    Column("session_id", Integer, ForeignKey("sessions.id"), nullable=False),
    Column("endpoint_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # debit | refund
    Column("amount_sats", BigInteger, nullable=False),
    Column("reason", String(64), nullable=True),  # why a refund happened
    Column("created_at", Instant, nullable=False),
    Index("ix_calls_session_id_id", "session_id", "id"),
)
# The sub-key (``session_keys.key_id``) that spent it; NULL for the session's own token (issue 17).
calls.append_column(Column("key_id", String(32), nullable=True))

# A paid call between its debit and its settlement (issue 13). The row is written in the debit's
# transaction and deleted by the one settlement that refunds; what is left after a crash is swept.
calls_in_flight = Table(
    "calls_in_flight",
    metadata,
    Column("call_id", String(32), primary_key=True),
    Column("session_id", Integer, ForeignKey("sessions.id"), nullable=False),
    Column("endpoint_id", String(64), nullable=False),
    Column("debit_sats", BigInteger, nullable=False),
    Column("idem_key", String(255), nullable=True),  # released when the call is refunded
    Column("instance_id", String(64), nullable=False),  # the gateway instance running it
    Column("started_at", Instant, nullable=False),
    Column("deadline_at", Instant, nullable=False, index=True),  # any instance may sweep it after this
)
# The sub-key whose counters a refund gives back to (issue 17).
calls_in_flight.append_column(Column("key_id", String(32), nullable=True))

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", Integer, ForeignKey("sessions.id"), nullable=False),
    Column("idem_key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),  # NULL while the first request runs
    Column("body", Text, nullable=True),
    Column("created_at", Instant, nullable=False),
    UniqueConstraint("session_id", "idem_key", name="uq_idempotency_keys_session_key"),
)

watcher_cursors = Table(
    "watcher_cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

operator_log = Table(
    "operator_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False, index=True),  # refresh | sweep | exit | alert | ...
    Column("status", String(32), nullable=False),
    Column("amount_sats", BigInteger, nullable=True),
    Column("detail", Text, nullable=True),  # JSON
    Column("created_at", Instant, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(255), nullable=True),
    Column("created_at", Instant, nullable=False),
    Column("delivered_at", Instant, nullable=True),
    # Which instance is delivering it and until when (several instances share one database).
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", Instant, nullable=True),
    # Customer webhooks (issue 17): the session it goes to (NULL: the operator), the Standard
    # Webhooks message id (``webhook-id``, the same on every attempt), and what makes one event
    # one row however many instances notice it.
    Column("session_id", Integer, nullable=True, index=True),
    Column("message_id", String(64), nullable=True),
    Column("dedupe_key", String(191), nullable=True, unique=True),
)

# A session's callback URL and its signing secret (``whsec_...``, needed to sign, so not hashed).
session_webhooks = Table(
    "session_webhooks",
    metadata,
    Column("session_id", Integer, ForeignKey("sessions.id"), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("low_balance_sats", BigInteger, nullable=True),
    Column("low_notified", Boolean, nullable=False, default=False),  # balance.low sent for this crossing
    Column("expiring_notified_for", Instant, nullable=True),  # the expiry session.expiring announced
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
)

# --- several instances on one database (issue 15) -------------------------------------------

# Named leases: the holder of "leader" runs the operator monitor and other leader-only jobs.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("term", BigInteger, nullable=False, default=1),  # +1 on each change of holder
    Column("expires_at", Instant, nullable=False),
    Column("acquired_at", Instant, nullable=False),
)

# Secrets every instance must share (the L402 root key), generated once by whichever starts first.
shared_keys = Table(
    "shared_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),  # hex
    Column("created_at", Instant, nullable=False),
)

# Single-use live-stream tickets (only their hash), redeemable on any instance.
stream_tickets = Table(
    "stream_tickets",
    metadata,
    Column("ticket_hash", String(64), primary_key=True),
    # No foreign key: a minute-long ticket must never stand in the way of pruning a session.
    Column("session_id", Integer, nullable=False),
    Column("expires_at", Instant, nullable=False, index=True),
)

# Hosted downloads when the database is a server shared by several instances.
Blob = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
downloads = Table(
    "downloads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("mime", String(100), nullable=False),
    Column("data", Blob, nullable=False),
    Column("expires_at", Instant, nullable=False, index=True),
)

# Session events for instances that cannot use LISTEN/NOTIFY or Redis (SQLite workers, MariaDB).
session_events = Table(
    "session_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", String(64), nullable=False),
    Column("session_id", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Instant, nullable=False, index=True),
)

# Keys arkgate made barkd derive, in order (barkd's addresses and invoices share one HD index
# space): a seed recovery stops after barkd's gap limit of unused keys, so the gap after the
# last used key is kept below ``address_gap_limit``. Pooled addresses serve anonymous 402
# challenges and go back to the pool when their session lapses unpaid.
wallet_keys = Table(
    "wallet_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # address | invoice | refresh
    Column("value", String(255), nullable=False, unique=True),  # Ark address, payment hash or round id
    Column("pooled", Boolean, nullable=False, default=False),
    Column("session_id", Integer, ForeignKey("sessions.id"), nullable=True, index=True),
    Column("used", Boolean, nullable=False, default=False),
    Column("created_at", Instant, nullable=False),
)

# The address book asks "did this address or invoice receive a payment?" for a few keys at a time.
Index("ix_payments_ark_address", payments.c.ark_address)
Index("ix_payments_payment_hash", payments.c.payment_hash)

# Which client opened a session (SHA-256 of its IP, never the address itself), so the number of
# unfunded sessions one client holds can be bounded (``max_unfunded_sessions_per_ip``).
session_origins = Table(
    "session_origins",
    metadata,
    Column("session_id", Integer, ForeignKey("sessions.id"), primary_key=True),
    Column("client_key", String(64), nullable=False, index=True),
    Column("created_at", Instant, nullable=False),
)

# Sub-keys (issue 17): child tokens that spend from their session's balance within caps. The
# counters are written by the charge's own transaction (``payments/charging.py``): one
# conditional UPDATE adds the price only while ``spent_sats`` and today's ``day_spent_sats``
# stay within the caps; a refund gives back to the day the debit was made.
session_keys = Table(
    "session_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),  # public id, e.g. key_3f2a...
    Column("session_id", Integer, ForeignKey("sessions.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(100), nullable=False, default=""),
    Column("cap_sats", BigInteger, nullable=True),  # NULL: no total cap
    Column("daily_cap_sats", BigInteger, nullable=True),  # NULL: no per-day cap
    Column("allowed", Text, nullable=True),  # JSON list of endpoint ids or categories; NULL: all
    Column("spent_sats", BigInteger, nullable=False, default=0),
    Column("day", String(10), nullable=False, default=""),  # UTC day of day_spent_sats, YYYY-MM-DD
    Column("day_spent_sats", BigInteger, nullable=False, default=0),
    Column("created_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=True),
    Column("revoked_at", Instant, nullable=True),
)

# Withdrawals of a session's balance through barkd (issue 17). Recorded and debited (a ``calls``
# debit with endpoint ``withdraw`` and ``call_id`` = ``payout_id``) in one transaction *before*
# the send; settled once from barkd's answer or history: ``completed``, or ``failed`` and refunded.
payouts = Table(
    "payouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payout_id", String(32), nullable=False, unique=True),
    Column("session_id", Integer, ForeignKey("sessions.id"), nullable=False, index=True),
    Column("rail", String(16), nullable=False),  # lightning | ark
    Column("destination", Text, nullable=False),  # what barkd was asked to pay
    Column("amount_sats", BigInteger, nullable=False),  # taken from the balance
    Column("fee_sats", BigInteger, nullable=False),  # stated fee, part of amount_sats
    Column("net_sats", BigInteger, nullable=False),  # what the destination receives
    Column("payment_hash", String(64), nullable=True),  # Lightning: known before the send
    # barkd's movement for this send, once matched; unique so one movement settles one payout.
    Column("movement_id", BigInteger, nullable=True, unique=True),
    Column("state", String(16), nullable=False, index=True),  # pending | completed | failed
    Column("reason", String(255), nullable=True),  # why it failed
    Column("purpose", String(16), nullable=False),  # withdraw | close | refund_to
    Column("instance_id", String(64), nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("deadline_at", Instant, nullable=False),  # barkd's answer is overdue after this
    Column("settled_at", Instant, nullable=True),
)

# Where a session's remainder goes when it expires (issue 17). No foreign key: a preference must
# never stand in the way of pruning a never-funded session.
session_payout_prefs = Table(
    "session_payout_prefs",
    metadata,
    Column("session_id", Integer, primary_key=True),
    Column("refund_to", Text, nullable=True),
    Column("updated_at", Instant, nullable=False),
)
