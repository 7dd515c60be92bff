"""Tests for mlinfra.core.timeutil: aware UTC timestamps."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra.core.timeutil import format_utc, parse_utc, utc_now

UTC = dt.timezone.utc

offsets = st.builds(
    dt.timezone,
    st.timedeltas(min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23)),
)
aware = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),
    max_value=dt.datetime(2200, 1, 1),
    timezones=offsets,
)


def test_utc_now_is_aware_utc_and_current() -> None:
    before = dt.datetime.now(UTC)
    now = utc_now()
    after = dt.datetime.now(UTC)
    assert now.tzinfo is not None
    assert now.utcoffset() == dt.timedelta(0)
    assert before <= now <= after


def test_format_utc_converts_to_utc_with_z_and_microseconds() -> None:
    moment = dt.datetime(2024, 3, 1, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    assert format_utc(moment) == "2024-02-29T21:30:00.000000Z"


def test_format_utc_default_is_now() -> None:
    text = format_utc()
    assert text.endswith("Z")
    assert abs(parse_utc(text) - utc_now()) < dt.timedelta(minutes=5)


def test_format_utc_refuses_naive() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        format_utc(dt.datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123456Z", dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T05:04:05+02:00", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("  2024-01-02T03:04:05+00:00\n", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-01T23:00:00-01:30", dt.datetime(2024, 1, 2, 0, 30, tzinfo=UTC)),
    ],
)
def test_parse_utc_returns_aware_utc(text: str, expected: dt.datetime) -> None:
    value = parse_utc(text)
    assert value == expected
    assert value.tzinfo == UTC


@pytest.mark.parametrize("text", ["2024-01-02T03:04:05", "2024-01-02", "2024-01-02 03:04"])
def test_parse_utc_refuses_naive_timestamps(text: str) -> None:
    with pytest.raises(ValueError, match="without a time zone"):
        parse_utc(text)


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01T00:00:00Z"])
def test_parse_utc_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_utc(text)


@settings(deadline=None, database=None)
@given(moment=aware)
def test_format_then_parse_round_trips(moment: dt.datetime) -> None:
    text = format_utc(moment)
    assert text.endswith("Z")
    back = parse_utc(text)
    assert back == moment
    assert back.utcoffset() == dt.timedelta(0)
