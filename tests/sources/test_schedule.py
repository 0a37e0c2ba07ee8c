"""When a source is polled next: jittered interval, capped exponential backoff, Retry-After, recovery."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from feedbot.sources.schedule import backoff_delay, jittered, next_check_failed, next_check_ok

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_jitter_stays_within_ten_percent_and_varies():
    rng = random.Random(7)
    values = [jittered(600, rng) for _ in range(500)]
    assert min(values) >= 540 and max(values) <= 660
    assert max(values) - min(values) > 60  # sources do drift apart


def test_backoff_doubles_and_is_capped():
    assert [backoff_delay(600, n) for n in range(1, 6)] == [1200, 2400, 4800, 7200, 7200]  # 12 intervals
    assert backoff_delay(3600, 10) == 6 * 3600  # 6 h when that is less than 12 intervals
    assert backoff_delay(86400, 3) == 86400  # never below the interval itself
    assert backoff_delay(600, 10_000) == 7200  # no overflow


def test_retry_after_is_honoured_when_longer():
    assert backoff_delay(60, 1, retry_after=3600) == 3600
    assert backoff_delay(600, 1, retry_after=5) == 1200
    assert backoff_delay(600, 0) == 600  # no failures: the interval
    assert backoff_delay(60, 1, retry_after=10 * 86400) == 86400  # a day at most
    rng = random.Random(1)
    for _ in range(100):
        assert next_check_failed(NOW, 60, 1, retry_after=3600, rng=rng) >= NOW + timedelta(seconds=3600)


def test_failures_push_the_next_check_out_and_recovery_returns_to_the_interval():
    rng = random.Random(3)
    waits = [(next_check_failed(NOW, 600, n, rng=rng) - NOW).total_seconds() for n in (1, 2, 3)]
    assert 1080 <= waits[0] <= 1320 and 2160 <= waits[1] <= 2640 and 4320 <= waits[2] <= 5280
    recovered = (next_check_ok(NOW, 600, rng) - NOW).total_seconds()
    assert 540 <= recovered <= 660
