"""Digests, forum topics and quiet hours against the Bot API double (issue 15).

Time is compressed twice: the flood limits with Limits/Pacing.scaled, and the digest schedule with an
explicit ``now`` (articles are stored at chosen moments, the planner is asked at chosen moments).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from feedbot.outbox import Pacing, digest_targets_for
from feedbot.publish.digests import DigestPlanner, format_digest, last_completed
from feedbot.publish.telegram import TelegramPublisher
from feedbot.settings.config import ChannelTelegram, Config
from feedbot.settings.values import DigestSchedule
from feedbot.store import Store
from tests.doubles.botapi import BotApiDouble, Limits, parse_html, utf16_len
from tests.telegram_helpers import CHATS, SCALE, TOPICS, make_article, save, telegram_config

SH = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 2, tzinfo=SH)  # a Monday, local midnight
DAILY = DigestSchedule("daily", 8 * 60)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local time ``day`` days after DAY."""
    return DAY + timedelta(days=day, hours=hour, minutes=minute)


def with_channels(config: Config, **settings) -> Config:
    """Every channel with the same Telegram settings."""
    return replace(config, channel_settings={t: ChannelTelegram(**settings) for t in TOPICS})


def digests_in(api: BotApiDouble, chat: str) -> list[str]:
    return [m.parsed_text for m in api.sent_to(chat) if "日报" in m.parsed_text.splitlines()[0]]


def instants_in(api: BotApiDouble, chat: str) -> list[str]:
    return [m.parsed_text for m in api.sent_to(chat) if "日报" not in m.parsed_text.splitlines()[0]]


@pytest.fixture
async def api():
    async with BotApiDouble(limits=Limits().scaled(SCALE)) as double:
        yield double


async def drain(config: Config, store: Store, now: datetime, *, budget: float | None = None) -> None:
    """One process's turn: plan the digests due at ``now``, drain everything, close (like a restart)."""
    DigestPlanner.for_config(config, store, digest_targets_for(config)).plan(now)
    pub = TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE), clock=lambda: now)
    try:
        await pub.drain(budget_seconds=budget)
    finally:
        await pub.close()


def store_day(store: Store, config: Config, day: int, count: int, first: int = 0) -> dict[str, list[str]]:
    """``count`` articles received during local day ``day`` (09:00 on), round-robin over the four channels."""
    titles: dict[str, list[str]] = {t: [] for t in TOPICS}
    for i in range(count):
        n = first + i
        topic = list(TOPICS)[n % 4]
        article = make_article(n)
        save_at = at(day, 9, 0) + timedelta(minutes=20 * i)
        store.save_article(article, _classification(topic, article.title), _targets(config), now=save_at)
        titles[topic].append(article.title)
    return titles


def _classification(topic: str, title: str):
    from feedbot.model import Classification, TopicMatch

    return Classification(matches=(TopicMatch(topic=topic, score=10.0, matched=True, excerpt=f"{title}的摘要。"),))


def _targets(config: Config):
    from feedbot.outbox import targets_for

    return targets_for(config)


# ---- a day in "both" mode --------------------------------------------------------------------


async def test_a_day_of_40_articles_in_both_mode_sends_each_once_and_one_digest_per_channel(api, store, tmp_path):
    config = with_channels(telegram_config(tmp_path, api, max_backlog=1000), mode="both", style="lead")
    titles = store_day(store, config, 0, 40)
    # Through the day the daemon drains repeatedly; the digest of day 0 is not due before 08:00 on day 1.
    await drain(config, store, at(0, 23, 0))
    await drain(config, store, at(1, 7, 59))
    assert all(digests_in(api, chat) == [] for chat in CHATS.values())
    await drain(config, store, at(1, 8, 0))
    await drain(config, store, at(1, 8, 30))  # a restart later the same day sends nothing again
    await drain(config, store, at(1, 20, 0))
    for topic, chat in CHATS.items():
        instants = instants_in(api, chat)
        assert [text.splitlines()[0] for text in instants] == titles[topic]  # each article once, in order
        [digest] = digests_in(api, chat)
        listed = [line for line in digest.splitlines() if line.startswith("• ")]
        assert [line[2:].split(" — ")[0] for line in listed] == titles[topic]
        assert f"共 {len(titles[topic])} 篇" in digest
    assert api.counts["429"] == 0
    assert not [k for k in api.counts if k.startswith("400")]
    assert api.counts["sent"] == 40 + 4
    print(f"day in both mode: {dict(api.counts)}")


async def test_digest_only_channels_get_no_instant_messages_and_an_empty_period_sends_nothing(api, store, tmp_path):
    config = with_channels(telegram_config(tmp_path, api, max_backlog=1000), mode="digest")
    store_day(store, config, 0, 8)
    await drain(config, store, at(1, 8, 0))
    await drain(config, store, at(2, 8, 0))  # day 1 received nothing: no digest
    for chat in CHATS.values():
        assert len(api.sent_to(chat)) == 1 and len(digests_in(api, chat)) == 1
    statuses = sorted(d["status"] for d in store.digests(limit=100))
    assert statuses == ["empty"] * 4 + ["sent"] * 4


# ---- outages ---------------------------------------------------------------------------------


async def test_three_days_down_sends_one_digest_for_the_latest_period_only(api, store, tmp_path):
    config = with_channels(telegram_config(tmp_path, api, max_backlog=1000), mode="digest")
    store_day(store, config, 0, 4)
    await drain(config, store, at(1, 8, 0))
    # Down from day 1 08:00 to day 4 10:00; a cron `once` kept storing articles meanwhile.
    for day in (1, 2, 3):
        store_day(store, config, day, 4, first=100 * day)
    await drain(config, store, at(4, 10, 0))
    for chat in CHATS.values():
        digests = digests_in(api, chat)
        assert len(digests) == 2  # day 0's, then only the newest period (day 3 → day 4 08:00)
        assert "11-05 08:00 – 11-06 08:00" in digests[1]
    missed = [d for d in store.digests(limit=100) if d["status"] == "missed"]
    assert len(missed) == 4 * 2  # day 1 and day 2 periods, per channel: recorded, never sent


async def test_telegram_down_for_three_days_then_back_sends_one_digest_not_a_burst(api, store, tmp_path):
    config = with_channels(telegram_config(tmp_path, api, max_backlog=1000), mode="digest")
    api.fail_rate = 1.0  # every send answered 502
    for day in (0, 1, 2):
        store_day(store, config, day, 4, first=100 * day)
        await drain(config, store, at(day + 1, 8, 0), budget=0.3)
    assert api.counts["sent"] == 0
    api.fail_rate = 0.0
    await drain(config, store, at(3, 9, 0))
    for chat in CHATS.values():
        [digest] = digests_in(api, chat)
        assert "11-04 08:00 – 11-05 08:00" in digest
    assert sorted({d["status"] for d in store.digests(limit=100)}) == ["dropped", "sent"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_a_digest_left_sending_by_a_killed_process_is_sent_once_on_restart(api, store, tmp_path):
    config = with_channels(telegram_config(tmp_path, api, max_backlog=1000), mode="digest")
    store_day(store, config, 0, 4)
    DigestPlanner.for_config(config, store, digest_targets_for(config)).plan(at(1, 8, 0))
    # The killed process had claimed one part (the request never reached Telegram) and then died.
    part = store.digest_parts(statuses=("pending",))[0]
    assert store.claim_digest_part(part.id, claimed_by=_dead_pid())
    assert os.getpid() != part.id
    await drain(config, store, at(1, 8, 1))
    await drain(config, store, at(1, 9, 0))
    for chat in CHATS.values():
        assert len(digests_in(api, chat)) == 1
    assert {d["status"] for d in store.digests(limit=100)} == {"sent"}


# ---- splitting -------------------------------------------------------------------------------


def test_a_digest_splits_between_lines_at_the_limit_and_lists_every_article_once(store, tmp_path):
    config = telegram_config(tmp_path, None)
    long_title = "全国碳排放权交易市场第二个履约周期配额分配与清缴工作安排" * 3
    for n in range(120):
        save(store, config, make_article(n, title=f"{n:03d} {long_title}"), ["carbon-market"])
    articles = store.articles("carbon-market", limit=500)
    period = last_completed(DAILY, SH, datetime.now(SH) + timedelta(days=1))
    messages = format_digest("碳市场", "#碳市场", period, sorted(articles, key=lambda a: a.id))
    assert len(messages) > 1
    seen = []
    for number, message in enumerate(messages, 1):
        shown, _ = parse_html(message.html)  # valid Telegram HTML
        assert utf16_len(shown) <= 4096 and utf16_len(message.plain) <= 4096
        assert shown.splitlines()[0] == f"碳市场 · 日报（{number}/{len(messages)}）"
        assert shown.rstrip().endswith("#碳市场")
        seen += [line[2:5] for line in shown.splitlines() if line.startswith("• ")]
    assert seen == [f"{n:03d}" for n in range(120)]


def test_a_weekly_digest_groups_by_the_day_received(store, tmp_path):
    config = telegram_config(tmp_path, None)
    for n in range(6):
        store.save_article(make_article(n), _classification("carbon-market", f"t{n}"), {}, now=at(n // 2, 10))
    weekly = DigestSchedule("weekly", 8 * 60, 0)
    period = last_completed(weekly, SH, at(7, 9))
    assert (period.start, period.end) == (at(0, 8), at(7, 8))
    articles = store.received_articles("carbon-market", period.start, period.end)
    [message] = format_digest("碳市场", "#碳市场", period, articles, weekly=True)
    shown, _ = parse_html(message.html)
    days = [line for line in shown.splitlines() if line.startswith("11-0")]
    assert days == ["11-02 周一", "11-03 周二", "11-04 周三"]
    del config


# ---- forum topics and quiet hours ------------------------------------------------------------


async def test_forum_topics_route_each_channel_into_its_thread_and_a_deleted_topic_blocks(api, store, tmp_path):
    group = "-1001111111111"
    chats = dict.fromkeys(TOPICS, group)
    config = telegram_config(tmp_path, api, max_backlog=1000, chats=chats)
    config = replace(config, channel_settings={t: ChannelTelegram(style="lead", thread=10 + i)
                                               for i, t in enumerate(TOPICS)})
    for i in range(4):
        api.create_forum_topic(group, 10 + i)
    api.delete_forum_topic(group, 13)  # carbon-manager's topic was deleted
    store_day(store, config, 0, 40)  # 30 go out to one group: its per-chat flood limit covers all topics
    await drain(config, store, at(0, 23))
    by_thread = {}
    for message in api.sent_to(group):
        by_thread.setdefault(message.thread_id, []).append(message.parsed_text.splitlines()[0])
    assert sorted(by_thread) == [10, 11, 12]
    assert all(len(v) == 10 for v in by_thread.values())
    assert api.counts["429"] == 0
    [blocked] = [s for s in store.target_states() if s.status == "blocked"]
    assert blocked.target.thread == 13 and "message thread not found" in blocked.last_error.lower()
    assert "telegram_thread" in blocked.last_error


async def test_quiet_hours_send_silently_instead_of_holding_back(api, store, tmp_path):
    config = with_channels(telegram_config(tmp_path, api, max_backlog=1000), quiet_hours=(23 * 60, 7 * 60))
    save(store, config, make_article(1), ["carbon-market"])
    await drain(config, store, at(0, 23, 30))
    save(store, config, make_article(2), ["carbon-market"])
    await drain(config, store, at(1, 6, 59))
    save(store, config, make_article(3), ["carbon-market"])
    await drain(config, store, at(1, 7, 0))
    assert [m.silent for m in api.sent_to(CHATS["carbon-market"])] == [True, True, False]


async def test_link_preview_small_above_reaches_the_bot_api(api, store, tmp_path):
    config = with_channels(telegram_config(tmp_path, api), link_preview="small-above")
    save(store, config, make_article(1), ["carbon-market"])
    await drain(config, store, at(0, 12))
    [message] = api.sent_to(CHATS["carbon-market"])
    assert message.preview["is_disabled"] is False
    assert message.preview["prefer_small_media"] is True and message.preview["show_above_text"] is True


@pytest.mark.parametrize("style", ["lead", "headline", "full"])
async def test_an_edited_article_edits_its_message_in_every_style(api, store, tmp_path, style):
    config = with_channels(telegram_config(tmp_path, api), style=style)
    save(store, config, make_article(1), ["carbon-market"])
    await drain(config, store, at(0, 12))
    save(store, config, make_article(1, title="第1篇 更正后的标题", version="v2"), ["carbon-market"])
    await drain(config, store, at(0, 13))
    [message] = api.sent_to(CHATS["carbon-market"])
    assert message.parsed_text.splitlines()[0] == "第1篇 碳市场新闻"
    assert [edit.splitlines()[0] for edit in message.edits] == ["第1篇 更正后的标题"]


async def test_digest_and_latest_commands_answer_within_telegram_limits(api, store, tmp_path):
    import asyncio

    config = with_channels(telegram_config(tmp_path, api), mode="digest")
    now = at(1, 12)
    store_day(store, config, 0, 8)  # yesterday's period (already a digest)
    for n in range(3):  # received today, before noon: the current period so far
        store.save_article(make_article(50 + n), _classification("carbon-market", "x"), {}, now=at(1, 9 + n))
    huge = "碳市场" * 40_000  # a title no page should have: /latest still answers in one message
    store.save_article(make_article(99, title=huge), _classification("climate-finance", "x"), {}, now=at(1, 10))
    pub = TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE), clock=lambda: now)
    await pub.start()
    stop = asyncio.Event()
    task = asyncio.create_task(pub.run_commands(stop, poll_timeout=1))
    try:
        api.push_command("/digest carbon-market")
        api.push_command("/digest 碳排放管理员")
        api.push_command("/latest climate-finance")
        for _ in range(200):
            if len(api.sent_to("4242")) == 3:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await pub.close()
    digest, empty, latest = (m.parsed_text for m in api.sent_to("4242"))
    listed = [line[2:].split(" — ")[0] for line in digest.splitlines() if line.startswith("• ")]
    assert listed == ["第50篇 碳市场新闻", "第51篇 碳市场新闻", "第52篇 碳市场新闻"]
    assert "11-03 08:00 – 11-04 08:00" in digest
    assert "还没有文章" in empty
    assert utf16_len(latest) <= 4096 and latest.count("\n") == 3  # the heading and all three articles


async def test_the_digest_feeds_have_one_entry_per_period_and_are_served(store, tmp_path):
    import feedparser
    from aiohttp.test_utils import TestClient, TestServer

    from feedbot.publish.digestfeeds import rebuild_digest_feeds
    from feedbot.web.server import create_app

    config = telegram_config(tmp_path, None)
    config = replace(config, state_dir=tmp_path / "state")
    store_day(store, config, 0, 8)
    store_day(store, config, 2, 4, first=50)  # day 1 received nothing
    written = rebuild_digest_feeds(store, config, "feeds.example.org", now=at(3, 9))
    assert len(written) == 4 * 3
    parsed = feedparser.parse((tmp_path / "state/feeds/carbon-market-digest.atom").read_bytes())
    prefix = "tag:feeds.example.org,2024:carbon-market/digest/daily:"
    assert [e.id for e in parsed.entries] == [prefix + "2026-11-05", prefix + "2026-11-03"]
    assert "（1 篇）" in parsed.entries[0].title and "（2 篇）" in parsed.entries[1].title
    assert rebuild_digest_feeds(store, config, "feeds.example.org", now=at(3, 10)) == []  # unchanged: no write
    async with TestClient(TestServer(create_app(config, store))) as client:
        for ext in ("xml", "atom", "json"):
            response = await client.get(f"/feeds/carbon-market-digest.{ext}")
            assert response.status == 200


def test_a_respelled_chat_keeps_its_digest_history(store, tmp_path):
    from feedbot.model import Target

    old, new = Target("telegram", "@old_name"), Target("telegram", "-100777")
    start, end = at(0, 8), at(1, 8)
    assert store.record_digest(old, "carbon-market", "daily:2026-11-03", start, end, parts=[("<b>x</b>", "x")])
    assert store.record_digest(old, "carbon-market", "daily:2026-11-04", end, at(2, 8), status="empty")
    assert store.record_digest(new, "carbon-market", "daily:2026-11-04", end, at(2, 8), status="empty")
    store.adopt_target(old, new)
    assert store.digest_periods(new) == {"daily:2026-11-03": "pending", "daily:2026-11-04": "empty"}
    assert store.digest_periods(old) == {}
    assert [p.target for p in store.digest_parts()] == [new]


async def test_status_lists_the_digests_of_each_target(api, store, tmp_path):
    from feedbot.ops.status import collect_status, render_status

    config = with_channels(telegram_config(tmp_path, api, max_backlog=1000), mode="digest")
    store_day(store, config, 0, 4)
    await drain(config, store, at(1, 8, 0))
    await drain(config, store, at(4, 8, 0))  # days 1-3 received nothing: day 3's period empty, 1 and 2 missed
    report = collect_status(store, config)
    [market] = [d for d in report["digests"] if d["topic"] == "carbon-market"]
    assert market["by_status"] == {"sent": 1, "missed": 2, "empty": 1}
    assert market["newest"] == "daily:2026-11-06"
    assert "DIGESTS" in render_status(report)
