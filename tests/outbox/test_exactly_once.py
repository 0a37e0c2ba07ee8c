"""Exactly once when the operator errs: two drains on one database, respelled chats, blocked chats (issue 12)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from click.testing import CliRunner

from feedbot.cli import cli
from feedbot.errors import PublishError
from feedbot.outbox import Pacing
from feedbot.publish.telegram import TelegramPublisher
from feedbot.store import Store
from tests.doubles.botapi import BotApiDouble
from tests.telegram_helpers import SCALE, make_article, save, telegram_config

CM = "carbon-market"


def one_chat(chat: str) -> dict[str, str]:
    return {CM: chat}


async def drain_once(config, store: Store) -> None:
    async with TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE)) as pub:
        await pub.drain()


async def test_two_drains_on_one_database_send_each_message_once(tmp_path):
    async with BotApiDouble(response_delay=0.05) as api:
        config = telegram_config(tmp_path, api, max_backlog=100)
        stores = [Store(config.db_path), Store(config.db_path)]  # two connections, as two processes have
        for n in range(12):
            save(stores[0], config, make_article(n), [["carbon-market", "climate-finance"][n % 2]])
        pubs = [TelegramPublisher(config, s, pacing=Pacing().scaled(SCALE)) for s in stores]
        try:
            await asyncio.gather(*(p.drain() for p in pubs))
        finally:
            for p in pubs:
                await p.close()
        per_text = Counter((m.chat_id, m.parsed_text.splitlines()[0]) for m in api.messages)
        assert len(per_text) == 12 and set(per_text.values()) == {1}, per_text
        assert {c.status for c in stores[0].delivery_counts()} == {"sent"}
        for s in stores:
            s.close()


@pytest.mark.parametrize(("before", "after"), [("@Chan_Test", "@chan_test"), ("@chan_test", "-1001111111111")])
async def test_respelling_a_chat_resends_nothing_and_keeps_its_rows(tmp_path, before, after):
    async with BotApiDouble() as api:
        api.register_chat("@chan_test", -1001111111111)
        store = Store(tmp_path / "feedbot.db")
        old = telegram_config(tmp_path, api, chats=one_chat(before))
        for n in range(3):
            save(store, old, make_article(n), [CM])
        await drain_once(old, store)
        assert len(api.messages) == 3
        new = telegram_config(tmp_path, api, chats=one_chat(after))
        await drain_once(new, store)
        assert len(api.messages) == 3, "the same chat under a new spelling got the newest articles again"
        save(store, new, make_article(3), [CM])
        await drain_once(new, store)
        assert len(api.delivered_to("@chan_test")) == 4 and len(api.messages) == 4
        counts = {(str(c.target), c.status): c.count for c in store.delivery_counts()}
        key = "telegram:" + after.lower()
        assert counts == {(key, "sent"): 4}, counts  # no orphaned rows under the old spelling
        store.close()


async def test_a_migrated_group_is_adopted_under_its_supergroup_id(tmp_path):
    async with BotApiDouble() as api:
        store = Store(tmp_path / "feedbot.db")
        group = telegram_config(tmp_path, api, chats=one_chat("-4242"))
        for n in range(2):
            save(store, group, make_article(n), [CM])
        await drain_once(group, store)
        api.migrated_chats["-4242"] = -1004242424242  # Telegram: "group chat was upgraded to a supergroup"
        supergroup = telegram_config(tmp_path, api, chats=one_chat("-1004242424242"))
        await drain_once(supergroup, store)
        assert len(api.messages) == 2
        counts = {(str(c.target), c.status): c.count for c in store.delivery_counts()}
        assert counts == {("telegram:-1004242424242", "sent"): 2}, counts
        store.close()


async def test_a_chat_blocked_at_first_start_is_tried_again_when_feedbot_restarts(tmp_path):
    async with BotApiDouble(forbidden_chats=("@chan_test",)) as api:
        config = telegram_config(tmp_path, api, chats=one_chat("@chan_test"))
        store = Store(config.db_path)
        save(store, config, make_article(1), [CM])
        async with TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE)) as pub:
            first = await pub.drain()
            assert first.blocked and store.target_state("telegram:@chan_test").status == "blocked"
            api.forbidden_chats.clear()  # the operator makes the bot an admin
            again = await pub.drain()  # the same process keeps to the retry time
            assert again.blocked and not api.messages
        await drain_once(config, store)  # systemctl restart feedbot
        assert len(api.messages) == 1
        assert store.target_state("telegram:@chan_test").status == "ok"
        store.close()


def test_unblock_command_and_status_say_when_the_next_try_is(tmp_path, clean_env):
    from datetime import UTC, datetime, timedelta

    path = tmp_path / "feedbot.toml"
    path.write_text(f'state_dir = "{tmp_path}"\n[web]\nenabled = false\n[topics.carbon-market]\n'
                    'telegram_chat = "@Chan_Test"\n', encoding="utf-8")
    env = {**clean_env, "FEEDBOT_TELEGRAM_TOKEN": "123:abc"}
    store = Store(tmp_path / "feedbot.db")
    store.set_target_state("telegram:@chan_test", "blocked", error="403 Forbidden: bot is not a member",
                           retry_at=datetime.now(UTC) + timedelta(hours=6))
    store.close()
    runner = CliRunner()
    status = runner.invoke(cli, ["--config", str(path), "status"], env=env)
    assert status.exit_code == 0, status.output
    assert "blocked: 403 Forbidden: bot is not a member; next try" in status.output and "(in 6h)" in status.output
    unknown = runner.invoke(cli, ["--config", str(path), "unblock", "@other"], env=env)
    assert unknown.exit_code == 1 and "no configured target '@other'" in unknown.output
    done = runner.invoke(cli, ["--config", str(path), "unblock", "@CHAN_test"], env=env)
    assert done.exit_code == 0 and "telegram:@chan_test: unblocked" in done.output, done.output
    store = Store(tmp_path / "feedbot.db")
    state = store.target_state("telegram:@chan_test")
    assert (state.status, state.retry_at) == ("ok", None)
    store.close()


async def test_a_malformed_getme_answer_is_a_publish_error_and_the_daemon_goes_on(tmp_path):
    from feedbot.daemon import Daemon

    async with BotApiDouble() as api:
        api.getme_result = {"id": "not a user"}
        config = telegram_config(tmp_path, api, chats=one_chat("@chan_test"))
        store = Store(config.db_path)
        save(store, config, make_article(1), [CM])
        pub = TelegramPublisher(config, store, pacing=Pacing().scaled(SCALE))
        with pytest.raises(PublishError, match="getMe"):
            await pub.drain()
        await pub.close()
        store.close()
        daemon = Daemon(config, {})
        await daemon.open(web=False)
        try:
            await daemon.drain(budget=5)  # logged, retried next round; never kills the drain task
            api.getme_result = {"id": 7000000001, "is_bot": True, "first_name": "bot", "username": "b_bot"}
            await daemon.drain(budget=5)
        finally:
            await daemon.close()
        assert len(api.messages) == 1
