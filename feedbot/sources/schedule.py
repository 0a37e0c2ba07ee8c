"""When to poll a source next: the interval with jitter, exponential backoff on failure, Retry-After."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

JITTER = 0.10  # ±10%: sources configured alike drift apart instead of polling in lockstep
MAX_BACKOFF = 6 * 3600.0  # seconds; a dead source is still tried four times a day
MAX_BACKOFF_INTERVALS = 12
MAX_RETRY_AFTER = 24 * 3600.0  # a server asking for more than a day is not taken literally


def jittered(seconds: float, rng: random.Random | None = None) -> float:
    """seconds ± 10%."""
    return seconds * (1 + (rng or random).uniform(-JITTER, JITTER))


def backoff_delay(interval: float, failures: int, retry_after: float | None = None) -> float:
    """Seconds to wait after `failures` consecutive failures (1 = the first): interval × 2^failures, capped.

    The cap is 12 intervals or 6 hours, whichever is less, but never below the interval itself.
    A server's Retry-After is honoured when it asks for longer (up to a day).
    """
    cap = max(interval, min(MAX_BACKOFF, MAX_BACKOFF_INTERVALS * interval))
    delay = min(cap, interval * 2 ** min(max(failures, 0), 32))
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, MAX_RETRY_AFTER)
    return delay


def next_check_ok(now: datetime, interval: float, rng: random.Random | None = None) -> datetime:
    """After a good poll: the interval with jitter (a recovered source is back on its interval)."""
    return now + timedelta(seconds=jittered(interval, rng))


def next_check_failed(now: datetime, interval: float, failures: int, retry_after: float | None = None,
                      rng: random.Random | None = None) -> datetime:
    """After a failed poll (failures counts this one): backoff with jitter, never before Retry-After."""
    delay = backoff_delay(interval, failures, retry_after)
    wait = jittered(delay, rng)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    return now + timedelta(seconds=wait)
