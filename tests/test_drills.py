"""Quick fault drills against the real `feedbot run` process (the full ones: tests/test_drills_long.py, make drill).

Every drill asserts outcomes (stored, in the feeds, delivered, duplicates, integrity), never timings; the
figures each drill measures go to $FEEDBOT_DRILL_REPORT when set (benchmarks/run_all.py puts them in
BENCHMARKS.md).
"""

from __future__ import annotations

import signal

import pytest

from tests.doubles.site import FAULT_KINDS
from tests.drill_harness import (
    bot_api_fault_drill,
    disk_full_drill,
    locked_database_drill,
    mount_tmpfs,
    record,
    signal_drill,
    source_faults_in_process,
    unmount,
)

# Faults that are errors at the HTTP level for both source kinds: the poll must fail and say why.
HTTP_FAILURES = ("500", "503", "404", "429", "hang", "endless", "huge", "huge-length", "gzip-bomb", "redirect-loop")


def assert_nothing_lost(result, figures) -> None:
    assert result.stored == result.posts and not result.missing_in_db, result
    assert not result.misrouted, result.misrouted
    assert not result.missing_in_feeds, result.missing_in_feeds[:5]
    assert not result.lost_messages, result.lost_messages[:5]
    assert result.statuses.keys() <= {"sent"}, result.statuses
    assert figures["final_exit_code"] == 0


async def test_sigkill_three_times_while_posts_arrive_loses_nothing(tmp_path):
    result, figures = await signal_drill(tmp_path, signum=signal.SIGKILL, stops=3, articles=30, seed=1,
                                         gap=(0.5, 3.0), timeout=90)
    record("quick: 3 SIGKILLs, 30 posts", figures)
    assert_nothing_lost(result, figures)
    assert result.duplicates <= 3, figures
    assert figures["integrity"] == "ok"
    assert not figures["token_in_log"]


async def test_sigterm_three_times_while_posts_arrive_duplicates_nothing(tmp_path):
    result, figures = await signal_drill(tmp_path, signum=signal.SIGTERM, stops=3, articles=30, seed=2,
                                         gap=(0.5, 3.0), timeout=90)
    record("quick: 3 SIGTERMs, 30 posts", figures)
    assert_nothing_lost(result, figures)
    assert result.duplicates == 0, figures
    assert figures["exit_codes_after_signal"] == {0: 3}, figures
    assert figures["integrity"] == "ok"


async def test_bot_api_failing_and_throttling_still_delivers_everything(tmp_path):
    result, figures = await bot_api_fault_drill(tmp_path, articles=16, fail_rate=0.1, per_chat=3, window=4.0,
                                                timeout=90)
    record("quick: Bot API 10 % 502 + tight 429 limits, 16 posts", figures)
    assert_nothing_lost(result, figures)
    assert result.duplicates == 0, figures
    assert figures["http_429"] > 0, "the drill must really throttle"
    # 502s are random: with ~18 sends at 10 % none may come; the long drill sends enough to be sure.


async def test_database_locked_by_another_process_for_5s_waits_and_goes_on(tmp_path):
    result, figures = await locked_database_drill(tmp_path, articles=12, hold=5.0)
    record("quick: database locked 5 s by another process, 12 posts", figures)
    assert_nothing_lost(result, figures)
    assert result.duplicates == 0
    assert figures["daemon_alive_after_lock"]
    assert figures["messages_sent_while_locked"] == 0, "nothing can be marked sending while the lock is held"


async def test_disk_full_gives_a_clear_error_no_corruption_and_recovers(tmp_path):
    mountpoint = tmp_path / "state"
    reason = mount_tmpfs(mountpoint, "3m")
    if reason:
        pytest.skip(f"disk-full drill needs a small tmpfs: {reason}")
    try:
        result, figures = await disk_full_drill(tmp_path, mountpoint, articles=12, full_for=5.0)
    finally:
        unmount(mountpoint)
    log_while_full = figures.pop("log_while_full")
    record("quick: state dir full (3 MiB tmpfs) for 5 s, 12 posts", figures)
    assert_nothing_lost(result, figures)
    assert figures["integrity"] == "ok"
    assert not figures["token_in_log"], log_while_full
    # One clear line per failed write (the store turns SQLITE_FULL into a StateError), no traceback.
    assert figures["clear_error_lines"] > 0, log_while_full
    assert figures["tracebacks"] == 0, log_while_full


async def test_every_source_fault_held_three_polls_then_healed_loses_nothing(tmp_path):
    rows = await source_faults_in_process(tmp_path, FAULT_KINDS)
    for row in rows:
        record(f"quick: source fault {row['kind']} (3 polls, then healed)", row)
    for row in rows:
        assert row["jekyll_has_post"] and row["feed_has_post"], row
        assert row["healed"] == ["ok", "ok"], row
        if row["kind"] in HTTP_FAILURES:
            assert row["jekyll_polls"] == ["failed"] * 3 and row["feed_polls"] == ["failed"] * 3, row
            assert row["jekyll_error"] and row["feed_error"], row
    last = rows[-1]
    assert last["stored_per_source"] == {"hjb": last["posts"], "rss": last["posts"]}, last
