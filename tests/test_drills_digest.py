"""SIGKILL in the middle of a digest (issue 15): a real `feedbot run`, the Bot API double, the real state file.

The articles are stored before the service starts, received during yesterday's period, so the first
drain makes the digest; the service is killed while a digest message is in flight and started again.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from feedbot.model import Classification, TopicMatch
from feedbot.store import Store
from tests.doubles.botapi import BotApiDouble
from tests.doubles.site import SampleSite
from tests.drill_harness import CHATS, DaemonProcess, write_config
from tests.telegram_helpers import TOPICS, make_article

SH = ZoneInfo("Asia/Shanghai")
_PART = re.compile(r"日报（(\d+)/(\d+)）")


async def test_sigkill_during_a_digest_send_sends_that_digest_once(tmp_path):
    boundary = (datetime.now(SH) - timedelta(minutes=5)).replace(second=0, microsecond=0)
    schedule = f"daily {boundary:%H:%M}"
    state = tmp_path / "state"
    state.mkdir()
    store = Store(state / "feedbot.db")
    long_title = "全国碳排放权交易市场第二个履约周期配额分配与清缴工作安排" * 3
    for n in range(160):  # 40 per channel, long titles: several messages per digest
        topic = list(TOPICS)[n % 4]
        match = TopicMatch(topic=topic, score=10.0, matched=True, excerpt="摘要。")
        store.save_article(make_article(n, title=f"{n:03d} {long_title}"), Classification(matches=(match,)), {},
                           now=boundary - timedelta(hours=12) + timedelta(minutes=n))
    store.close()
    async with SampleSite(posts=[]) as site, BotApiDouble(response_delay=0.3) as double:
        config = write_config(tmp_path, site, double, state_dir=state)
        text = config.read_text(encoding="utf-8")
        for chat in CHATS.values():
            text = text.replace(f'telegram_chat = "{chat}"',
                                f'telegram_chat = "{chat}"\nmode = "digest"\ndigest = "{schedule}"')
        config.write_text(text, encoding="utf-8")
        daemon = DaemonProcess(config, tmp_path, double.token)
        try:
            await daemon.start()
            for _ in range(600):  # killed while the second digest message is on its way
                if double.messages and len([r for r in double.requests if r[0] == "sendMessage"]) >= 2:
                    break
                await asyncio.sleep(0.02)
            await daemon.kill()
            killed_with = len(double.messages)
            await daemon.start()
            expected = {}
            for _ in range(1500):
                expected = {chat: _parts(double, chat) for chat in CHATS.values()}
                if all(p and set(p) == set(range(1, _total(double, chat) + 1)) for chat, p in expected.items()):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # a later drain must not make or send it again
            await daemon.terminate()
        finally:
            await daemon.ensure_stopped()
    store = Store(state / "feedbot.db")
    try:
        rows = store.digests(limit=100)
    finally:
        store.close()
    assert sorted(r["status"] for r in rows) == ["sent"] * 4  # one digest per channel, recorded once
    duplicates = 0
    for chat in CHATS.values():
        parts = Counter(_parts(double, chat))
        assert set(parts) == set(range(1, _total(double, chat) + 1)) and len(parts) > 1
        duplicates += sum(n - 1 for n in parts.values())
    total = sum(_total(double, chat) for chat in CHATS.values())
    assert 1 <= killed_with < total  # the kill did land in the middle of the digests
    # The message in flight at the kill may have landed before the process died: resent at most once.
    assert duplicates <= 1, (duplicates, killed_with)
    print(f"digest SIGKILL drill: {total} digest messages, {killed_with} delivered before the kill, "
          f"{duplicates} duplicate(s)")


def _parts(double: BotApiDouble, chat: str) -> list[int]:
    return [int(m.group(1)) for r in double.sent_to(chat) if (m := _PART.search(r.parsed_text.splitlines()[0]))]


def _total(double: BotApiDouble, chat: str) -> int:
    for r in double.sent_to(chat):
        if m := _PART.search(r.parsed_text.splitlines()[0]):
            return int(m.group(2))
    return 0
