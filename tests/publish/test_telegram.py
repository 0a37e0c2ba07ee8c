"""The Telegram publisher against the Bot API double: pacing, errors, edits, commands, token hygiene."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from feedbot.ops.status import collect_status
from feedbot.outbox import Pacing
from feedbot.publish.telegram import TelegramPublisher, TelegramUnauthorized
from feedbot.settings.config import Config
from feedbot.store import Store
from tests.doubles.botapi import BotApiDouble, Limits, utf16_len
from tests.telegram_helpers import CHATS, SCALE, TOPICS, make_article, save, telegram_config


def titles(api: BotApiDouble, chat: str) -> list[str]:
    return [m.parsed_text.splitlines()[0] for m in api.sent_to(chat)]


@pytest.fixture
async def api():
    async with BotApiDouble(limits=Limits().scaled(SCALE)) as double:
        yield double


async def publisher(config: Config, store: Store, pacing: Pacing | None = None) -> TelegramPublisher:
    pub = TelegramPublisher(config, store, pacing=pacing or Pacing().scaled(SCALE))
    await pub.start()
    return pub


async def test_60_articles_over_4_chats_arrive_once_each_in_order(api, store, tmp_path):
    config = telegram_config(tmp_path, api, max_backlog=1000)
    topic_ids = list(TOPICS)
    expected: dict[str, list[str]] = {chat: [] for chat in CHATS.values()}
    for n in range(60):
        chosen = [topic_ids[n % 4], topic_ids[(n + 1) % 4]]  # two channels each: 30 messages per chat
        article = make_article(n)
        save(store, config, article, chosen)
        for topic in chosen:
            expected[CHATS[topic]].append(article.title)
    pub = await publisher(config, store)
    try:
        stats = await pub.drain()
    finally:
        await pub.close()
    for chat, wanted in expected.items():
        assert titles(api, chat) == wanted  # exactly once each, oldest first
    assert not any(key.startswith("400") for key in api.counts), api.counts
    assert stats.sent == 120 and stats.failed == 0
    assert stats.rate_limited == api.counts["429"]  # our report matches what the server did
    print(f"\n429s: {api.counts['429']} over {stats.sent} messages in {stats.seconds:.2f} s")
    rows = store.deliveries(statuses=("sent",))
    assert len(rows) == 120
    by_chat_ids = {(m.chat_id, m.message_id) for m in api.messages}
    assert {(r.target.address, r.message_id) for r in rows} == by_chat_ids
    assert all(m.parse_mode == "HTML" and m.preview_disabled is True for m in api.messages)


async def test_429_waits_for_that_chat_only(api, store, tmp_path):
    # Our pacing believes the chat may take 40 per window; the server allows 20: 429s must happen,
    # be waited out for that chat, and nothing may be lost or reordered.
    config = telegram_config(
        tmp_path,
        api,
        max_backlog=1000,
        chats={"carbon-market": "@busy_chan", "climate-finance": "@quiet_chan"},
    )
    for n in range(30):
        save(store, config, make_article(n), ["carbon-market"] + (["climate-finance"] if n < 5 else []))
    pub = await publisher(config, store, Pacing(per_chat=40, min_gap=0.0).scaled(SCALE))
    try:
        stats = await pub.drain()
    finally:
        await pub.close()
    assert api.counts["429"] >= 1 and stats.rate_limited == api.counts["429"]
    assert titles(api, "@busy_chan") == [make_article(n).title for n in range(30)]
    assert titles(api, "@quiet_chan") == [make_article(n).title for n in range(5)]
    quiet_done = max(m.at for m in api.sent_to("@quiet_chan"))
    first_429_wait_end = api.sent_to("@busy_chan")[20].at
    assert quiet_done < first_429_wait_end  # the quiet chat did not wait for the busy one's flood control


async def test_hostile_title_is_shown_literally(api, store, tmp_path):
    config = telegram_config(tmp_path, api)
    title = '<script>alert("x")</script> 碳市场 & <b>加粗</b> &amp;'
    save(store, config, make_article(1, title=title), ["carbon-market"], excerpt="A&B <i>不是斜体</i>。")
    pub = await publisher(config, store)
    try:
        await pub.drain()
    finally:
        await pub.close()
    [message] = api.sent_to(CHATS["carbon-market"])
    assert message.parse_mode == "HTML"
    lines = message.parsed_text.splitlines()
    assert lines[0] == title
    assert "A&B <i>不是斜体</i>。" in lines


async def test_a_10000_character_excerpt_is_sent_as_one_valid_message(api, store, tmp_path):
    config = telegram_config(tmp_path, api)
    excerpt = "全国碳市场扩大覆盖范围至钢铁、水泥、铝冶炼行业，配额分配方案同步发布。" * 300
    assert len(excerpt) > 10_000
    save(store, config, make_article(1), ["carbon-market"], excerpt=excerpt)
    pub = await publisher(config, store)
    try:
        stats = await pub.drain()
    finally:
        await pub.close()
    [message] = api.sent_to(CHATS["carbon-market"])
    assert stats.shortened == 0
    assert 3500 < utf16_len(message.parsed_text) <= 4096
    assert message.parsed_text.split("\n\n")[1].endswith("。")


async def test_server_saying_too_long_makes_us_shorten_and_resend(api, store, tmp_path):
    api.max_text = 3500  # the server counts differently from us: we must still get through
    config = telegram_config(tmp_path, api)
    save(store, config, make_article(1), ["carbon-market"], excerpt="很长的一句话。" * 1000)
    pub = await publisher(config, store)
    try:
        stats = await pub.drain()
    finally:
        await pub.close()
    [message] = api.sent_to(CHATS["carbon-market"])
    assert utf16_len(message.parsed_text) <= 3000
    assert stats.shortened == 1 and api.counts["400 too long"] == 1
    [row] = store.deliveries(statuses=("sent",))
    assert "shortened" in row.last_error


async def test_cant_parse_entities_falls_back_to_plain_text_once(api, store, tmp_path):
    api.refuse_html = True
    config = telegram_config(tmp_path, api)
    save(store, config, make_article(1, title="标题 <b>&"), ["carbon-market"])
    pub = await publisher(config, store)
    try:
        stats = await pub.drain()
    finally:
        await pub.close()
    [message] = api.sent_to(CHATS["carbon-market"])
    assert message.parse_mode is None
    assert message.text.startswith("标题 <b>&\n")
    assert "原文链接: https://x.example.org/NW0001.html" in message.text
    assert stats.plain_fallbacks == 1 and api.counts["400 parse"] == 1
    [row] = store.deliveries(statuses=("sent",))
    assert row.last_error.lower().startswith("sent as plain text: 400 can't parse entities")


async def test_an_edited_article_edits_its_message(api, store, tmp_path):
    config = telegram_config(tmp_path, api)
    save(store, config, make_article(1), ["carbon-market", "climate-finance"])
    pub = await publisher(config, store)
    try:
        await pub.drain()
        result = save(
            store,
            config,
            make_article(1, title="第1篇 碳市场新闻（更新）", version="v2"),
            ["carbon-market", "climate-finance"],
        )
        assert result.status == "updated"
        stats = await pub.drain()
        assert stats.edited == 2 and stats.sent == 0
        # Same visible text, new hash (e.g. a body change outside the excerpt): "not modified" is fine.
        save(
            store,
            config,
            make_article(1, title="第1篇 碳市场新闻（更新）", version="v3"),
            ["carbon-market", "climate-finance"],
        )
        stats = await pub.drain()
        assert stats.edited == 2 and stats.failed == 0
        assert (await pub.drain()).edited == 0  # nothing left to edit
    finally:
        await pub.close()
    for chat in (CHATS["carbon-market"], CHATS["climate-finance"]):
        [message] = api.sent_to(chat)
        assert [e.splitlines()[0] for e in message.edits] == ["第1篇 碳市场新闻（更新）"]
    assert api.counts["400 not modified"] == 2
    assert {r.content_hash for r in store.deliveries(statuses=("sent",))} == {"1-v3"}


async def test_edits_stop_after_the_edit_window(api, store, tmp_path):
    config = telegram_config(tmp_path, api, edit_window=3600.0)
    save(store, config, make_article(1), ["carbon-market"])
    pub = await publisher(config, store)
    try:
        await pub.drain()
        [row] = store.deliveries(statuses=("sent",))
        store.mark_sent(
            row.id,
            message_id=row.message_id,
            content_hash=row.content_hash,
            sent_at=datetime.now(UTC) - timedelta(hours=2),
        )
        save(store, config, make_article(1, title="改过的标题", version="v2"), ["carbon-market"])
        stats = await pub.drain()
    finally:
        await pub.close()
    assert stats.edited == 0
    assert api.sent_to(CHATS["carbon-market"])[0].edits == []


async def test_403_blocks_the_target_keeps_items_pending_and_recovers(api, store, tmp_path):
    api.forbidden_chats.add(CHATS["climate-finance"])
    config = telegram_config(tmp_path, api)
    for n in range(3):
        save(store, config, make_article(n), ["carbon-market", "climate-finance"])
    # The store keeps whole seconds: 2 s is the shortest retry that is surely still ahead on the second drain.
    pub = await publisher(config, store, replace(Pacing().scaled(SCALE), blocked_retry=2.0))
    try:
        stats = await pub.drain()
        assert [str(t) for t in stats.blocked] == ["telegram:@climate_finance_test"]
        assert len(api.sent_to(CHATS["carbon-market"])) == 3
        assert api.counts["403"] == 1  # one probe, not one per message
        pending = store.deliveries(target="telegram:@climate_finance_test", statuses=("pending",))
        assert len(pending) == 3
        report = collect_status(store, config)
        blocked = report["deliveries"]["telegram:@climate_finance_test"]
        assert blocked["state"] == "blocked" and "bot is not a member" in blocked["last_error"]
        assert [str(t) for t in (await pub.drain()).blocked] == [
            "telegram:@climate_finance_test"
        ]  # not retried before retry_at
        assert api.counts["403"] == 1
        api.forbidden_chats.clear()  # someone adds the bot back
        await asyncio.sleep(2.1)
        await pub.drain()
    finally:
        await pub.close()
    assert titles(api, CHATS["climate-finance"]) == [make_article(n).title for n in range(3)]
    assert store.target_state("telegram:@climate_finance_test").status == "ok"


async def test_401_stops_the_publisher_with_a_clear_error_and_sends_nothing(api, store, tmp_path, caplog):
    wrong = "987654321:WRONGtokenWRONGtokenWRONGtokenWRONGto"
    config = telegram_config(tmp_path, api, token=wrong)
    save(store, config, make_article(1), ["carbon-market"])
    pub = TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE))
    with pytest.raises(TelegramUnauthorized) as caught:
        await pub.drain()
    await pub.close()
    message = str(caught.value)
    assert "401" in message and "token" in message and wrong not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # PTB's message has the token
    assert api.messages == []
    assert store.deliveries(statuses=("pending",))[0].article_id == 1


async def test_401_mid_drain_marks_targets_unauthorized(api, store, tmp_path):
    config = telegram_config(tmp_path, api)
    save(store, config, make_article(1), ["carbon-market"])
    pub = await publisher(config, store)
    api.token = "111111111:revokedREVOKEDrevokedREVOKEDrevoked"  # the token was revoked while running
    try:
        with pytest.raises(TelegramUnauthorized):
            await pub.drain()
    finally:
        await pub.close()
    assert store.deliveries(statuses=("pending",))[0].article_id == 1
    report = collect_status(store, config)
    assert report["deliveries"]["telegram:@carbon_market_test"]["state"] == "unauthorized"


async def test_random_502s_still_deliver_everything_exactly_once(api, store, tmp_path):
    api.fail_rate = 0.3
    config = telegram_config(tmp_path, api, max_backlog=1000)
    for n in range(20):
        save(store, config, make_article(n), [list(TOPICS)[n % 4]])
    pub = await publisher(config, store, replace(Pacing().scaled(SCALE), backoff_base=0.02, backoff_cap=0.2))
    try:
        stats = await pub.drain()
    finally:
        await pub.close()
    assert api.counts["502"] >= 3 and stats.retried == api.counts["502"]
    for i, topic in enumerate(TOPICS):
        assert titles(api, CHATS[topic]) == [make_article(n).title for n in range(20) if n % 4 == i]


async def test_link_previews_follow_the_config(api, store, tmp_path):
    config = telegram_config(tmp_path, api, link_preview=True)
    save(store, config, make_article(1), ["carbon-market"])
    pub = await publisher(config, store)
    try:
        await pub.drain()
    finally:
        await pub.close()
    assert api.messages[0].preview_disabled is False


async def test_the_token_never_reaches_logs_or_errors(api, store, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    config = telegram_config(tmp_path, api)
    api.fail_rate = 0.3
    api.forbidden_chats.add(CHATS["carbon-manager"])
    for n in range(8):
        save(store, config, make_article(n), list(TOPICS))
    pub = TelegramPublisher(
        config, store, pacing=replace(Pacing().scaled(SCALE), backoff_base=0.01, backoff_cap=0.05)
    )
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING  # building the bot quieted it
    caplog.set_level(logging.DEBUG, logger="httpx")  # someone turns it up anyway: the filter still scrubs
    try:
        await pub.drain()
        save(store, config, make_article(99), ["carbon-market"])
        api.token = "000000001:anotherTOKENanotherTOKENanotherTOK"
        with pytest.raises(TelegramUnauthorized) as caught:
            await pub.drain()
    finally:
        await pub.close()
    token = config.telegram.token.reveal()
    assert any(r.name == "httpx" for r in caplog.records)  # httpx did log its request lines …
    for record in caplog.records:  # … with the token scrubbed
        assert token not in record.getMessage()
        assert token not in caplog.text
    error: BaseException | None = caught.value
    while error is not None:
        assert token not in str(error)
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    for row in store.deliveries(statuses=("pending", "sent", "failed")):
        assert token not in (row.last_error or "")


async def test_private_chat_commands(api, store, tmp_path):
    config = telegram_config(tmp_path, api)
    for n in range(7):
        save(store, config, make_article(n), ["carbon-market"])
    pub = await publisher(config, store)
    stop = asyncio.Event()
    task = asyncio.create_task(pub.run_commands(stop, poll_timeout=1))
    try:
        api.push_command("/start")
        api.push_command("/topics")
        api.push_command("/latest carbon-market")
        api.push_command("/latest 碳市场", chat_type="supergroup", chat_id=-100555)  # groups are ignored
        api.push_command("/latest nope")
        for _ in range(200):
            if len(api.sent_to("4242")) == 4:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await pub.close()
    start, topics, latest, unknown = (m.parsed_text for m in api.sent_to("4242"))
    assert "/topics" in start and "/latest" in start
    assert "https://feeds.example.org/feeds/carbon-market.atom" in topics and "@carbon_market_test" in topics
    assert latest.splitlines()[1:] == [
        f"{i}. 第{n}篇 碳市场新闻 03-01" for i, n in enumerate(range(6, 1, -1), 1)
    ]
    assert "用法" in unknown
    assert api.sent_to("-100555") == []
    assert [c["command"] for c in api.my_commands] == ["start", "help", "topics", "latest", "digest"]
    assert api.snapshot()["pending_updates"] == 0  # answered updates were confirmed
