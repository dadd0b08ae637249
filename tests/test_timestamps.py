"""The one wire form of an instant, and the conversions at the database boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from arkgate.timestamps import (
    format_instant,
    format_optional,
    from_naive_utc,
    parse_instant,
    to_naive_utc,
    utcnow,
)

MOMENT = datetime(2026, 12, 7, 12, 49, 46, 987654, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "wire"),
    [
        (MOMENT, "2026-12-07T12:49:46Z"),  # whole seconds: the fraction is dropped, not rounded
        (MOMENT.replace(microsecond=0), "2026-12-07T12:49:46Z"),
        (MOMENT.astimezone(timezone(timedelta(hours=-5))), "2026-12-07T12:49:46Z"),  # always UTC
    ],
)
def test_format_instant_writes_rfc3339_utc_whole_seconds(instant: datetime, wire: str) -> None:
    assert format_instant(instant) == wire


def test_format_optional_passes_none_through() -> None:
    assert format_optional(None) is None
    assert format_optional(MOMENT) == "2026-12-07T12:49:46Z"


def test_a_naive_datetime_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_instant(MOMENT.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive"):
        to_naive_utc(MOMENT.replace(tzinfo=None))


def test_parse_instant_reads_z_offsets_and_the_wire_form_back() -> None:
    assert parse_instant("2026-12-07T12:49:46Z") == MOMENT.replace(microsecond=0)
    assert parse_instant("2026-12-07T07:49:46-05:00") == MOMENT.replace(microsecond=0)
    assert parse_instant(format_instant(MOMENT)).tzinfo is UTC


def test_database_form_round_trips() -> None:
    naive = to_naive_utc(MOMENT.astimezone(timezone(timedelta(hours=2))))
    assert naive.tzinfo is None and naive == MOMENT.replace(tzinfo=None)
    assert from_naive_utc(naive) == MOMENT and from_naive_utc(naive).tzinfo is UTC


def test_utcnow_is_aware_utc() -> None:
    assert utcnow().tzinfo is UTC
