"""Time helpers shared by upstream adapters."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_from_ts(ts: float | int | str | None) -> datetime | None:
    """An aware UTC datetime from a Unix timestamp (seconds), or None when absent or unreadable."""
    if ts is None or ts == "":
        return None
    try:
        return datetime.fromtimestamp(float(ts), UTC).replace(microsecond=0)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def parse_iso(text: str | None) -> datetime | None:
    """Parse an ISO 8601 timestamp (``Z`` or offset, or naive meaning UTC) into aware UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
