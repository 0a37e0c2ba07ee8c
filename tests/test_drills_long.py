"""The full fault drills of issue 8 (`make drill`, i.e. `pytest -m drill`; excluded from `make test`).

Same drills as tests/test_drills.py at full size: 20 SIGKILLs / 20 SIGTERMs over 200 posts and 4 chats at
Telegram's real pacing, the Bot API double failing 10 % of sends and throttling, the database locked by
another process, the state directory full, and every source fault held for three poll intervals under the
real scheduler. Figures go to $FEEDBOT_DRILL_REPORT (benchmarks/run_all.py --drills puts them in BENCHMARKS.md).
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
    source_faults_daemon,
    unmount,
)
from tests.test_drills import HTTP_FAILURES, assert_nothing_lost

pytestmark = pytest.mark.drill


async def test_twenty_sigkills_over_200_posts_to_4_chats(tmp_path):
    result, figures = await signal_drill(tmp_path, signum=signal.SIGKILL, stops=20, articles=200, seed=20,
                                         gap=(1.0, 8.0), timeout=420)
    record("20 SIGKILLs, 200 posts, 4 chats", figures)
    assert result.posts == 200
    assert_nothing_lost(result, figures)
    assert result.duplicates <= 20, figures
    assert figures["integrity"] == "ok" and not figures["token_in_log"]


async def test_twenty_sigterms_over_200_posts_to_4_chats(tmp_path):
    result, figures = await signal_drill(tmp_path, signum=signal.SIGTERM, stops=20, articles=200, seed=21,
                                         gap=(1.0, 8.0), timeout=420)
    record("20 SIGTERMs, 200 posts, 4 chats", figures)
    assert result.posts == 200
    assert_nothing_lost(result, figures)
    assert result.duplicates == 0, figures
    assert figures["exit_codes_after_signal"] == {0: 20}, figures
    assert figures["integrity"] == "ok"


async def test_bot_api_10_percent_502_and_429_throttling_delivers_everything(tmp_path):
    result, figures = await bot_api_fault_drill(tmp_path, articles=100, fail_rate=0.1, per_chat=8, window=12.0,
                                                timeout=400)
    record("Bot API: 10 % of sends 502, 8 per 12 s per chat (429s), 100 posts", figures)
    assert_nothing_lost(result, figures)
    assert result.duplicates == 0, figures
    assert figures["http_502"] > 0 and figures["http_429"] > 0, figures


async def test_database_locked_5s_by_another_process(tmp_path):
    result, figures = await locked_database_drill(tmp_path, articles=40, hold=5.0)
    record("database locked 5 s (BEGIN EXCLUSIVE in another process), 40 posts", figures)
    assert_nothing_lost(result, figures)
    assert result.duplicates == 0 and figures["daemon_alive_after_lock"]
    assert figures["locked_errors_logged"] == 0, "busy_timeout (10 s) covers a 5 s lock"


async def test_disk_full_for_20s_then_space_returns(tmp_path):
    mountpoint = tmp_path / "state"
    reason = mount_tmpfs(mountpoint, "4m")
    if reason:
        pytest.skip(f"disk-full drill needs a small tmpfs: {reason}")
    try:
        result, figures = await disk_full_drill(tmp_path, mountpoint, articles=40, full_for=20.0, timeout=180)
    finally:
        unmount(mountpoint)
    log_while_full = figures.pop("log_while_full")
    record("state dir full (4 MiB tmpfs) for 20 s, 40 posts", figures)
    assert_nothing_lost(result, figures)
    assert figures["integrity"] == "ok" and not figures["token_in_log"], log_while_full
    assert figures["clear_error_lines"] > 0, log_while_full
    assert figures["tracebacks"] == 0, log_while_full


async def test_every_source_fault_held_three_intervals_under_the_scheduler(tmp_path):
    rows = await source_faults_daemon(tmp_path, FAULT_KINDS, intervals=3, interval=1.0, timeout=90)
    for row in rows:
        record(f"source fault {row['kind']}: held 3 intervals (1 s) under the real scheduler, then healed", row)
    exit_row = rows.pop()
    assert exit_row["final_exit_code"] == 0
    assert [r["kind"] for r in rows] == list(FAULT_KINDS)  # each one healed and its post stored (else it raised)
    for row in rows:
        if row["kind"] in HTTP_FAILURES:
            assert row["jekyll_failures"] >= 1 and row["feed_failures"] >= 1, row
            assert row["jekyll_error"] and row["feed_error"], row
