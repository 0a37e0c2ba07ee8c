"""Time in one place: the store's UTC clock, the channels' time zone, HTTP dates for client and server."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the sources' and the channels' local time (GMT+8, no DST)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP-date (RFC 9110: IMF-fixdate, RFC 850, asctime) as aware UTC, or None when unreadable."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_http_date(moment: datetime) -> str:
    """An aware datetime as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT")."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


# The widest aware range every conversion can reach: a datetime near year 1 or 9999 overflows at +08:00.
_SAFE_LATEST = datetime(9999, 12, 30, tzinfo=UTC)
_SAFE_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)


def in_shanghai(moment: datetime) -> datetime:
    """A time at +08:00, clamped into the representable range instead of overflowing (year 9999 stays 9999)."""
    try:
        return moment.astimezone(SHANGHAI)
    except (OverflowError, ValueError):
        return (_SAFE_LATEST if moment.year > 5000 else _SAFE_EARLIEST).astimezone(SHANGHAI)
