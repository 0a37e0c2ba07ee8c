"""Quick fault drills against the real `feedbot run` process (the full ones: tests/test_drills_long.py, make drill)."""

from __future__ import annotations

import signal

from tests.drill_harness import record, signal_drill


async def test_sigkill_three_times_while_posts_arrive_loses_nothing(tmp_path):
    result, figures = await signal_drill(tmp_path, signum=signal.SIGKILL, stops=3, articles=30, seed=1,
                                         gap=(0.5, 3.0), timeout=90)
    record("quick: 3 SIGKILLs, 30 posts", figures)
    assert result.posts == 30 and result.stored == 30, result
    assert not result.missing_in_db and not result.misrouted, result
    assert not result.missing_in_feeds, result.missing_in_feeds
    assert not result.lost_messages, result.lost_messages
    assert result.statuses.keys() <= {"sent"}, result.statuses
    assert result.duplicates <= 3, figures
    assert figures["final_exit_code"] == 0 and figures["integrity"] == "ok"
    assert not figures["token_in_log"]
