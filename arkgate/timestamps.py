"""Instants: aware UTC inside arkgate, naive UTC in the database, one wire format.

A leaf module (imports nothing from arkgate) so every package may use it. Every instant the
application holds is an aware ``datetime`` in UTC; the tables keep naive UTC columns
(``db.types.UTCDateTime`` converts at the boundary), and every response, webhook body and header
that carries an instant writes it with ``format_instant``: RFC 3339, whole seconds, ``Z``
(``2026-12-07T12:49:46Z``), the form ArkAPI's clients and the ``/v1`` routes always had.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_instant", "format_optional", "from_naive_utc", "parse_instant", "to_naive_utc", "utcnow"]


def utcnow() -> datetime:
    """Now, aware UTC."""
    return datetime.now(UTC)


def format_instant(instant: datetime) -> str:
    """The wire form of an aware instant: RFC 3339 in UTC, whole seconds, ``Z``."""
    if instant.tzinfo is None:
        # A naive value here is a bug upstream: guessing its zone would shift it silently.
        raise ValueError("naive datetime: arkgate's instants are aware UTC")
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_optional(instant: datetime | None) -> str | None:
    """``format_instant``, with None passed through (an unset ``*_at`` field)."""
    return None if instant is None else format_instant(instant)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 string with ``Z`` or an offset, as aware UTC (a string without one is taken as UTC)."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_naive_utc(instant: datetime) -> datetime:
    """The database form of an aware instant: naive, in UTC (what raw driver statements must bind)."""
    if instant.tzinfo is UTC:  # nearly always: arkgate's own instants are made in UTC
        return instant.replace(tzinfo=None)
    if instant.tzinfo is None:
        raise ValueError("naive datetime: arkgate's instants are aware UTC")
    return instant.astimezone(UTC).replace(tzinfo=None)


def from_naive_utc(value: datetime) -> datetime:
    """A naive UTC value read from a table (or from a raw driver row), as aware UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
