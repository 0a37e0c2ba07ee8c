"""Issue 14 part B: the daemon keeps its loop free — feed rebuilds in a worker thread, a cheap status line."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta

import feedparser

from feedbot.daemon import Daemon
from feedbot.store import Store
from feedbot.store.bulk import bulk_load
from tests.feeds_helpers import article, feeds_config

START = datetime(2024, 6, 1, tzinfo=UTC)


def fill(config, count: int) -> None:
    store = Store(config.db_path)
    bulk_load(store, (article(n, f"碳市场条目{n}", ("carbon-market",), START + timedelta(minutes=n))
                      for n in range(count)), {})
    store.close()


async def test_the_loop_keeps_running_while_the_feeds_are_rebuilt(tmp_path):
    config = feeds_config(tmp_path / "state")
    fill(config, 300)
    daemon = Daemon(config, {})
    await daemon.open(web=False)
    try:
        rebuild = asyncio.create_task(daemon.rebuild_feeds(force=True))
        seen_while_rebuilding = []

        async def ticker() -> None:
            # Runs as soon as the loop gets control after the rebuild started: on the loop, the rebuild
            # would already be over by then (it never yields); in a worker thread, it is still going.
            await asyncio.sleep(0)
            seen_while_rebuilding.append(not rebuild.done())

        await asyncio.gather(rebuild, ticker())
        assert seen_while_rebuilding == [True]
        assert rebuild.result() > 0
        atom = feedparser.parse((config.feeds_dir / "carbon-market.atom").read_bytes())
        assert atom.bozo == 0 and atom.entries[0].title == "碳市场条目299"  # the newest first
        # Nothing changed since: the next rebuild compares the change token and writes nothing.
        assert await daemon.rebuild_feeds() == 0
    finally:
        await daemon.close()


async def test_an_article_the_feeds_cannot_render_is_set_aside_from_the_worker_thread(tmp_path):
    config = feeds_config(tmp_path / "state")
    fill(config, 3)
    store = Store(config.db_path)
    # What a foreign tool may write: bytes as a title (the rebuild leaves the article out and quarantines it).
    store.db.execute("UPDATE articles SET title = CAST(title AS BLOB) WHERE title = '碳市场条目1'")
    store.close()
    daemon = Daemon(config, {})
    await daemon.open(web=False)
    try:
        await daemon.rebuild_feeds(force=True)
        assert "feeds" not in daemon.task_errors
        [item] = daemon.store.quarantined()
        assert item.stage == "feeds" and "TypeError" in item.reason
        atom = feedparser.parse((config.feeds_dir / "carbon-market.atom").read_bytes())
        assert sorted(e.title for e in atom.entries) == ["碳市场条目0", "碳市场条目2"]
    finally:
        await daemon.close()


async def test_the_status_line_after_each_poll_does_not_count_the_outbox_each_time(tmp_path):
    from feedbot.pipeline import PollReport

    config = feeds_config(tmp_path / "state")
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # what `systemctl status` would show
    systemd.bind(str(tmp_path / "notify.sock"))
    systemd.settimeout(2)
    daemon = Daemon(config, {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    await daemon.open(web=False)
    statements: list[str] = []
    try:
        daemon.store.db.conn.set_trace_callback(statements.append)
        sent = []
        for n in range(200):
            daemon._account(PollReport(f"s{n % 20}", "failed" if n % 20 == 3 else "not_modified", error="x"))
            sent.append(systemd.recv(4096))  # one STATUS= per poll
        daemon.store.db.conn.set_trace_callback(None)
        counts = [s for s in statements if "FROM deliveries" in s]
        assert len(counts) == 1  # 200 polls in well under 5 s: one count of the outbox, not 200
        last = sent[-1]
        assert last.startswith(b"STATUS=polled 20 source(s) 200 time(s)") and last.endswith(b"; failing: s3")
        daemon._account(PollReport("s3", "ok"))
        assert "failing" not in daemon.status_line()
    finally:
        await daemon.close()
        systemd.close()


async def test_without_systemd_listening_a_poll_builds_no_status_line(tmp_path):
    from feedbot.pipeline import PollReport

    daemon = Daemon(feeds_config(tmp_path / "state"), {})  # `feedbot once`, or run outside systemd
    await daemon.open(web=False)
    statements: list[str] = []
    try:
        daemon.store.db.conn.set_trace_callback(statements.append)
        for n in range(20):
            daemon._account(PollReport(f"s{n}", "not_modified"))
        daemon.store.db.conn.set_trace_callback(None)
        assert [s for s in statements if "FROM deliveries" in s] == []
    finally:
        await daemon.close()
