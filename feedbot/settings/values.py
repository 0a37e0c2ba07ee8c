"""Value parsers for the configuration: each checks one TOML value and names the file and key when it refuses.

Durations are finite and within a range per key (DURATION_RANGES, documented in the README), so nothing
downstream (the scheduler, timeouts, timedelta arithmetic) can overflow or spin.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedbot.errors import ConfigError
from feedbot.settings.secrets import redact_url

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
# key → (shortest, longest) in seconds; the README's configuration table lists the same ranges.
DURATION_RANGES: dict[str, tuple[float, float]] = {
    "interval": (1.0, 30 * DAY),
    "fetch.timeout": (0.1, 10 * MINUTE),
    "fetch.deadline": (0.1, HOUR),
    "fetch.delay": (0.001, HOUR),
    "telegram.edit_window": (1.0, 365 * DAY),
}
DEFAULT_RANGE = (0.001, 365 * DAY)
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]+$")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")  # whitespace and control characters never belong in a URL


class Where:
    """Builds error messages that name the file and the key."""

    def __init__(self, path: Path | None):
        self.file = str(path) if path else "<built-in defaults>"

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError naming the file and the key."""
        return ConfigError(f"{self.file}: {key}: {message}")


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean "x"?)' for a close match, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: Where, prefix: str) -> None:
    """Refuse the first unknown key, suggesting the closest known one."""
    for key in table:
        if key not in allowed:
            raise where.error(f"{prefix}{key}", f"unknown key{suggest(key, allowed)}")


def _type_name(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def expect(value: Any, kind: type | tuple[type, ...], key: str, where: Where, what: str) -> Any:
    """The value when it has the expected type, else an error saying what was expected."""
    # bool is an int subclass in Python, but `max_backlog = true` is a mistake, not a 1.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise where.error(key, f"expected {what}, got {_type_name(value)} ({value!r})")
    if not isinstance(value, kind):
        raise where.error(key, f"expected {what}, got {_type_name(value)} ({value!r})")
    return value


def _span(seconds: float) -> str:
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def parse_duration(value: Any, key: str = "duration", where: Where | None = None,
                   limits: tuple[float, float] | None = None) -> float:
    """'10m' → 600.0 seconds; accepts s, m, h, d suffixes, or a bare number of seconds, within the key's range."""
    where = where or Where(None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise where.error(key, f'bad duration {value!r}: use a number with s, m, h or d, e.g. "10m"')
    if math.isnan(seconds) or math.isinf(seconds):
        raise where.error(key, f"bad duration {value!r}: must be a finite number of seconds")
    if seconds <= 0:
        raise where.error(key, f"bad duration {value!r}: must be more than zero")
    shortest, longest = limits or DURATION_RANGES.get(key, DEFAULT_RANGE)
    if not shortest <= seconds <= longest:
        raise where.error(key, f"duration {value!r} out of range: expected {_span(shortest)} to {_span(longest)}")
    return seconds


def http_url(value: Any, key: str, where: Where) -> str:
    """An absolute http(s) URL with a host and a valid port; errors never repeat its credentials."""
    expect(value, str, key, where, "a URL string")
    shown = redact_url(value)
    if _URL_FORBIDDEN.search(value):
        raise where.error(key, f"bad URL {shown!r}: spaces and control characters must be percent-encoded")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise where.error(key, f"bad URL {shown!r}: expected an absolute http:// or https:// URL")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise where.error(key, f"bad URL {shown!r}: the port must be 1 to 65535")
    return value


def header_text(value: Any, key: str, where: Where, longest: int = 512) -> str:
    """A string safe in an HTTP header: printable ASCII, no line breaks, not too long."""
    expect(value, str, key, where, "a string")
    if not _PRINTABLE_ASCII.match(value):
        bad = next((ch for ch in value if not " " <= ch <= "~"), "")
        raise where.error(key, f"{bad!r} cannot be sent in an HTTP header: use printable ASCII only")
    if len(value) > longest:
        raise where.error(key, f"too long ({len(value)} characters, at most {longest})")
    return value


def bounded_int(value: Any, key: str, where: Where, minimum: int = 0, maximum: int = 1_000_000) -> int:
    """An integer within [minimum, maximum]."""
    expect(value, int, key, where, "an integer")
    if value < minimum:
        raise where.error(key, f"must be at least {minimum}, got {value}")
    if value > maximum:
        raise where.error(key, f"must be at most {maximum}, got {value}")
    return value


def listen(value: Any, key: str, where: Where) -> tuple[str, int]:
    """'host:port' → (host, port); an empty host means every interface (0.0.0.0)."""
    expect(value, str, key, where, 'a "host:port" string')
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port (tests)
        raise where.error(key, f'bad listen address {value!r}: expected "host:port", e.g. "127.0.0.1:8080"')
    if host not in ("localhost", "") and not re.match(r"^[A-Za-z0-9.-]+$", host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise where.error(key, f"bad listen host {host!r}") from None
    return host or "0.0.0.0", int(port)


def backfill(value: Any, key: str, where: Where) -> int | date | None:
    """A number of posts, a first day, or everything (None)."""
    if value is False or value == "all":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1_000_000:
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise where.error(key, f'expected a number of posts (0 to 1000000), a date (2024-01-31) or "all", '
                      f"got {value!r}")


# ---- Telegram channel presentation and schedules ----------------------------------------------

STYLES = ("lead", "full", "headline")
MODES = ("instant", "digest", "both")
LINK_PREVIEWS = ("off", "small", "large", "small-above", "large-above")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class DigestSchedule:
    """When a channel's digest goes out: every day, or one weekday, at a local time."""

    every: str  # "daily" | "weekly"
    minute_of_day: int  # local time
    weekday: int = 0  # 0 = Monday (weekly only)

    def __str__(self) -> str:
        at = f"{self.minute_of_day // 60:02d}:{self.minute_of_day % 60:02d}"
        return f"daily {at}" if self.every == "daily" else f"weekly {WEEKDAYS[self.weekday]} {at}"


def choice(value: Any, choices: tuple[str, ...], key: str, where: Where) -> str:
    """One of a fixed set of words."""
    expect(value, str, key, where, "a string")
    if value not in choices:
        raise where.error(key, f"unknown value {value!r}: expected one of {', '.join(choices)}"
                          f"{suggest(value, choices)}")
    return value


def clock_minutes(text: str, key: str, where: Where) -> int:
    """'08:00' → 480 minutes after local midnight."""
    match = _CLOCK.match(text.strip())
    if not match:
        raise where.error(key, f'bad time {text!r}: expected HH:MM, e.g. "08:00"')
    return int(match.group(1)) * 60 + int(match.group(2))


def digest_schedule(value: Any, key: str, where: Where) -> DigestSchedule:
    """'daily 08:00' or 'weekly mon 08:00'."""
    expect(value, str, key, where, 'a schedule string ("daily 08:00" or "weekly mon 08:00")')
    words = value.lower().split()
    if len(words) == 2 and words[0] == "daily":
        return DigestSchedule("daily", clock_minutes(words[1], key, where))
    if len(words) == 3 and words[0] == "weekly":
        if words[1] not in WEEKDAYS:
            raise where.error(key, f"bad weekday {words[1]!r}: expected one of {', '.join(WEEKDAYS)}")
        return DigestSchedule("weekly", clock_minutes(words[2], key, where), WEEKDAYS.index(words[1]))
    raise where.error(key, f'bad schedule {value!r}: expected "daily HH:MM" or "weekly mon HH:MM"')


def quiet_hours(value: Any, key: str, where: Where) -> tuple[int, int] | None:
    """'23:00-07:00' → (1380, 420) local minutes (the window may wrap midnight); "" or "off" → None."""
    expect(value, str, key, where, 'a time window string ("23:00-07:00")')
    if value.strip().lower() in ("", "off"):
        return None
    start, sep, end = value.partition("-")
    if not sep:
        raise where.error(key, f'bad window {value!r}: expected "HH:MM-HH:MM", e.g. "23:00-07:00"')
    window = clock_minutes(start, key, where), clock_minutes(end, key, where)
    if window[0] == window[1]:
        raise where.error(key, f"empty window {value!r}: start and end are the same time")
    return window


def timezone_name(value: Any, key: str, where: Where) -> str:
    """An IANA time zone name (Asia/Shanghai)."""
    expect(value, str, key, where, 'a time zone name (e.g. "Asia/Shanghai")')
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise where.error(key, f"unknown time zone {value!r} (expected an IANA name like Asia/Shanghai)") from None
    return value


def link_preview(value: Any, key: str, where: Where) -> str:
    """true/false (the old boolean: large/off) or one of LINK_PREVIEWS."""
    if isinstance(value, bool):
        return "large" if value else "off"
    return choice(value, LINK_PREVIEWS, key, where)


def thread_id(value: Any, key: str, where: Where) -> int:
    """A forum topic id (message_thread_id): a positive integer."""
    return bounded_int(value, key, where, 1, 2**31 - 1)
