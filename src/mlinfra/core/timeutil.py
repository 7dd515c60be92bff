"""UTC time: every timestamp mlinfra writes is aware and in UTC."""

from __future__ import annotations

import datetime as _dt

__all__ = ["format_utc", "parse_utc", "utc_now"]


def utc_now() -> _dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return _dt.datetime.now(_dt.timezone.utc)


def format_utc(moment: _dt.datetime | None = None) -> str:
    """Return ``moment`` (default: now) as ISO-8601 UTC with a ``Z`` suffix.

    Raises:
        ValueError: ``moment`` is naive, so its zone is unknown.
    """
    moment = utc_now() if moment is None else moment
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime (for example utc_now())")
    return (
        moment.astimezone(_dt.timezone.utc)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


def parse_utc(text: str) -> _dt.datetime:
    """Parse an ISO-8601 timestamp into an aware UTC datetime.

    A timestamp without a zone is refused rather than guessed.
    """
    value = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return value.astimezone(_dt.timezone.utc)
