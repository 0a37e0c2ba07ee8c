"""The outbox: restart safety (real SIGKILL/SIGTERM), stop mid-drain, backlog guard, console, pacing."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedbot.model import Target
from feedbot.ops.status import collect_status
from feedbot.outbox import Pacing, targets_for
from feedbot.outbox.pacing import Window
from feedbot.publish.console import ConsolePublisher
from feedbot.publish.telegram import TelegramPublisher
from feedbot.store import Store
from tests.doubles.botapi import BotApiDouble, Limits
from tests.telegram_helpers import CHATS, SCALE, TOPICS, make_article, save, telegram_config

ROOT = Path(__file__).resolve().parents[2]


def child_main() -> None:
    """A drain in its own process (argv: state_dir base_url token), stopping cleanly on SIGTERM."""
    state_dir, base_url, token = sys.argv[1:4]

    class _Api:  # what telegram_config needs to know about the double
        pass

    api = _Api()
    api.base_url, api.token = base_url, token
    config = telegram_config(Path(state_dir), api, max_backlog=1000)  # type: ignore[arg-type]

    async def run() -> None:
        store = Store(config.db_path)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        pub = TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE))
        try:
            await pub.drain(stop)
        finally:
            await pub.close()
            store.close()

    asyncio.run(run())


def fill(store: Store, config, count: int) -> dict[str, list[str]]:
    """``count`` articles spread over the four channels; returns chat → expected titles in order."""
    expected: dict[str, list[str]] = {chat: [] for chat in CHATS.values()}
    for n in range(count):
        topic = list(TOPICS)[n % 4]
        save(store, config, make_article(n), [topic])
        expected[CHATS[topic]].append(make_article(n).title)
    return expected


async def _drain_in_child(api: BotApiDouble, tmp_path: Path, sig: int, after: int) -> int:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from tests.outbox.test_drain import child_main; child_main()",
        str(tmp_path),
        api.base_url,
        api.token,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    for _ in range(1000):
        if len(api.messages) >= after:
            break
        await asyncio.sleep(0.005)
    # Let the child get its next request in flight (the double holds each for response_delay).
    await asyncio.sleep(api.response_delay / 2)
    child.send_signal(sig)
    return await asyncio.wait_for(child.wait(), 20)


async def _finish_in_process(api: BotApiDouble, config, store: Store) -> None:
    pub = TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE))
    try:
        stats = await pub.drain()
    finally:
        await pub.close()
    assert stats.failed == 0


async def test_sigkill_mid_drain_then_restart_delivers_everything_with_at_most_one_duplicate(tmp_path):
    async with BotApiDouble(limits=Limits().scaled(SCALE), response_delay=0.1) as api:
        config = telegram_config(tmp_path, api, max_backlog=1000)
        store = Store(config.db_path)
        expected = fill(store, config, 24)
        code = await _drain_in_child(api, tmp_path, signal.SIGKILL, after=6)
        assert code == -signal.SIGKILL
        in_flight = store.deliveries(statuses=("sending",))
        assert len(in_flight) <= 1  # one request at a time over all chats
        before = len(api.messages)
        await _finish_in_process(api, config, store)
        store.close()
    duplicates = 0
    for chat, titles in expected.items():
        got = [m.parsed_text.splitlines()[0] for m in api.sent_to(chat)]
        assert sorted(set(got)) == sorted(titles)
        duplicates += len(got) - len(set(got))
        # Order holds apart from a re-sent message: dedupe keeps the first copy in place.
        assert list(dict.fromkeys(got)) == titles
    print(f"\nkilled after {before} messages, {len(in_flight)} in flight, {duplicates} duplicate(s)")
    assert 6 <= before < 24
    assert duplicates <= len(in_flight) <= 1  # only the message in flight at the kill can go out twice


async def test_sigterm_mid_drain_finishes_the_send_in_flight_and_never_duplicates(tmp_path):
    async with BotApiDouble(limits=Limits().scaled(SCALE), response_delay=0.1) as api:
        config = telegram_config(tmp_path, api, max_backlog=1000)
        store = Store(config.db_path)
        expected = fill(store, config, 24)
        code = await _drain_in_child(api, tmp_path, signal.SIGTERM, after=6)
        assert code == 0
        assert store.deliveries(statuses=("sending",)) == []
        sent_rows = store.deliveries(statuses=("sent",))
        assert len(sent_rows) == len(api.messages) < 24  # every message the server took is recorded
        await _finish_in_process(api, config, store)
        store.close()
    for chat, titles in expected.items():
        assert [m.parsed_text.splitlines()[0] for m in api.sent_to(chat)] == titles


async def test_stop_event_mid_drain_returns_after_the_message_in_flight(tmp_path):
    async with BotApiDouble(limits=Limits().scaled(SCALE), response_delay=0.05) as api:
        config = telegram_config(tmp_path, api, max_backlog=1000)
        store = Store(config.db_path)
        expected = fill(store, config, 16)
        pub = TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE))
        stop = asyncio.Event()
        task = asyncio.create_task(pub.drain(stop))
        while len(api.messages) < 3:
            await asyncio.sleep(0.005)
        stop.set()
        stats = await asyncio.wait_for(task, 5)
        assert stats.stopped and stats.sent == len(api.messages) < 16
        assert store.deliveries(statuses=("sending",)) == []
        stats = await pub.drain()
        await pub.close()
        store.close()
    for chat, titles in expected.items():
        assert [m.parsed_text.splitlines()[0] for m in api.sent_to(chat)] == titles


async def test_cancelled_drain_still_records_the_send_in_flight(tmp_path):
    async with BotApiDouble(limits=Limits().scaled(SCALE), response_delay=0.1) as api:
        config = telegram_config(tmp_path, api, max_backlog=1000)
        store = Store(config.db_path)
        fill(store, config, 4)
        pub = TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE))
        await pub.start()
        task = asyncio.create_task(pub.drain())
        while not store.deliveries(statuses=("sending",)):
            await asyncio.sleep(0.002)
        task.cancel()
        await asyncio.sleep(0.3)  # the shielded sends finish and are booked
        assert task.cancelled()
        assert store.deliveries(statuses=("sending",)) == []
        assert len(store.deliveries(statuses=("sent",))) == len(api.messages) >= 1
        await pub.close()
        store.close()


async def test_backlog_guard_on_first_start_keeps_the_newest_and_says_why(tmp_path):
    async with BotApiDouble(limits=Limits().scaled(SCALE)) as api:
        config = telegram_config(tmp_path, api, chats={"carbon-market": "@carbon_market_test"})
        store = Store(config.db_path)
        for n in range(12):
            save(store, config, make_article(n), ["carbon-market"])
        pub = TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE))
        stats = await pub.drain()
        assert stats.dropped == 7 and stats.sent == 5
        assert [m.parsed_text.splitlines()[0] for m in api.messages] == [
            make_article(n).title for n in range(7, 12)
        ]
        dropped = store.deliveries(statuses=("dropped",))
        assert [d.article_id for d in dropped] == list(range(1, 8))
        assert {d.last_error for d in dropped} == {
            "backlog: older than the newest 5 on first start of telegram:@carbon_market_test"
        }
        report = collect_status(store, config)["deliveries"]["telegram:@carbon_market_test"]
        assert report["by_status"] == {"dropped": 7, "sent": 5}

        # Running normally: a burst of 8 new articles all go out.
        for n in range(12, 20):
            save(store, config, make_article(n), ["carbon-market"])
        assert (await pub.drain()).sent == 8

        # After an outage (nothing sent for longer than outage_after): only the newest 5 again.
        store.mark_healthy("telegram:@carbon_market_test", datetime.now(UTC) - timedelta(hours=3))
        for n in range(20, 28):
            save(store, config, make_article(n), ["carbon-market"])
        stats = await pub.drain()
        await pub.close()
        assert stats.dropped == 3 and stats.sent == 5
        assert store.deliveries(statuses=("dropped",))[-1].last_error.startswith(
            "backlog: older than the newest 5 after 3.0 h without sending"
        )
        store.close()


async def test_newly_configured_chat_gets_the_newest_articles_of_its_channel(tmp_path):
    async with BotApiDouble(limits=Limits().scaled(SCALE)) as api:
        old = telegram_config(tmp_path, api, chats={})
        store = Store(old.db_path)
        for n in range(9):
            save(store, old, make_article(n), ["climate-finance"])
        assert store.deliveries(statuses=("pending",)) == []  # no chat, no deliveries
        config = telegram_config(tmp_path, api, chats={"climate-finance": "@climate_finance_test"})
        pub = TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE))
        stats = await pub.drain()
        again = await pub.drain()
        await pub.close()
        store.close()
    assert stats.seeded == 5 and stats.sent == 5 and again.seeded == 0
    assert [m.parsed_text.splitlines()[0] for m in api.messages] == [
        make_article(n).title for n in range(4, 9)
    ]


def test_targets_for_telegram_and_console(tmp_path):
    with_token = telegram_config(
        tmp_path, None, token="123:abc", chats={"carbon-market": "@c", "climate-finance": "-100"}
    )
    assert targets_for(with_token) == {"carbon-market": [Target("telegram", "@c")],
                                       "climate-finance": [Target("telegram", "-100")]}
    without = telegram_config(tmp_path, None, chats={"carbon-market": "@c"})
    assert targets_for(without) == {t: [Target("console", t)] for t in TOPICS}


async def test_console_publisher_prints_each_message_once(tmp_path):
    config = telegram_config(tmp_path, None)
    store = Store(config.db_path)
    for n in range(3):
        save(store, config, make_article(n, title=f"标题<b>{n}</b>"), ["carbon-market", "carbon-manager"])
    out = io.StringIO()
    pub = ConsolePublisher(config, store, stream=out)
    stats = await pub.drain()
    assert (await pub.drain()).sent == 0
    store.close()
    text = out.getvalue()
    assert stats.sent == 6
    assert text.count("[would send to @carbon_market_test]") == 3
    assert text.count("[would send to -1009876543210]") == 3
    assert "标题<b>2</b>\n中国环境报 · 2022-03-01 08:02" in text and "#碳排放管理员" in text


def test_store_requeues_sending_rows_and_lists_edits(tmp_path):
    config = telegram_config(tmp_path, None, token="123:abc")
    store = Store(config.db_path)
    save(store, config, make_article(1), ["carbon-market"])
    save(store, config, make_article(2), ["carbon-market"])
    first, second = store.deliveries()
    assert store.claim_for_sending(first.id, claimed_by=4242)
    assert not store.claim_for_sending(first.id), "only one claimer wins the compare-and-set"
    assert store.sending_claims(["telegram:@carbon_market_test"]) == [(first.id, 4242)]
    assert store.requeue_sending([first.id]) == 1
    assert store.delivery(first.id).status == "pending" and store.delivery(first.id).attempts == 1
    store.mark_sent(first.id, message_id=10, content_hash="1-v1")
    store.mark_sent(
        second.id, message_id=11, content_hash="2-v1", sent_at=datetime.now(UTC) - timedelta(days=3)
    )
    save(store, config, make_article(1, version="v2"), ["carbon-market"])
    save(store, config, make_article(2, version="v2"), ["carbon-market"])
    due = store.edits_due(["telegram:@carbon_market_test"], datetime.now(UTC) - timedelta(hours=48))
    assert [d.id for d in due] == [first.id]  # the other one is older than the window
    store.mark_edited(first.id, content_hash="1-v2")
    assert store.edits_due(["telegram:@carbon_market_test"], datetime.now(UTC) - timedelta(hours=48)) == []
    store.set_target_state("telegram:@x", "blocked", error="403", retry_at=datetime.now(UTC))
    first_seen = store.target_state("telegram:@x").first_seen_at
    store.set_target_state("telegram:@x", "ok")
    assert store.target_state("telegram:@x").first_seen_at == first_seen
    assert {str(t.target): t.status for t in store.target_states()}["telegram:@x"] == "ok"
    store.close()


def test_sliding_window_never_allows_more_than_the_limit():
    window = Window(limit=3, window=10.0, margin=0.0)
    times = []
    now = 0.0
    for _ in range(10):
        now = window.next_free(now)
        window.record(now)
        times.append(now)
    assert times == [0, 0, 0, 10, 10, 10, 20, 20, 20, 30]
    for t in times:
        assert sum(1 for u in times if t - 10 < u <= t) <= 3


def test_pacing_scales_every_duration():
    p = Pacing().scaled(0.5)
    assert (p.per_chat_window, p.min_gap, p.overall_window, p.blocked_retry) == (30.0, 0.5, 0.5, 3 * 3600.0)
    assert (p.per_chat, p.overall) == (20, 30)
    assert json.dumps(Counter(a=1)) == '{"a": 1}'
