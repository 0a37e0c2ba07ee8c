"""The search-index loop: `run` indexes the queue in batches between other work, `once` leaves it to the scan."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from datetime import UTC, datetime

import httpx

from feedbot import loops
from feedbot.daemon import Daemon
from feedbot.store import Store
from tests.doubles.site import SampleSite
from tests.store.test_store import make_article, verdict
from tests.test_daemon_supervision import config_for, wait_until

NOW = datetime(2024, 6, 3, 4, tzinfo=UTC)
QUEUED = 1200  # more than two full batches


def queue_articles(config, count: int) -> None:
    """Articles stored before the daemon starts (as `feedbot once` leaves them): all still queued."""
    store = Store(config.db_path)
    with store.transaction():
        for n in range(count):
            store.write_article(make_article(f"q{n}", title=f"排队文章{n} 碳市场扩容"), verdict("carbon-market"), {},
                                NOW)
    assert store.search_queue_length() == count
    store.close()


def test_a_slow_batch_makes_the_next_one_smaller_and_quick_ones_let_it_grow_back():
    assert loops.next_index_batch(loops.INDEX_BATCH_FIRST, 0.001) == loops.INDEX_BATCH_FIRST * 2  # quick: doubles
    assert loops.next_index_batch(400, loops.INDEX_BATCH_SECONDS / 5) == loops.INDEX_BATCH  # up to the most
    assert loops.next_index_batch(500, loops.INDEX_BATCH_SECONDS * 4) == 125  # four times too long
    assert loops.next_index_batch(20, loops.INDEX_BATCH_SECONDS * 100) == loops.INDEX_BATCH_MIN
    assert loops.next_index_batch(125, 0.0) == 250


async def test_the_daemon_indexes_the_queue_in_batches_and_the_loop_runs_between_them(tmp_path):
    async with SampleSite() as site:
        config = config_for(site, tmp_path)
        queue_articles(config, QUEUED)
        daemon = Daemon(config, {})
        run = asyncio.create_task(daemon.run_forever())
        seen: list[int] = []
        try:
            await wait_until(lambda: daemon.web is not None and daemon._tasks)

            async def watch() -> None:  # another coroutine on the loop: it runs only between batches
                while not seen or seen[-1]:
                    seen.append(daemon.store.search_queue_length())
                    await asyncio.sleep(0)

            await asyncio.wait_for(watch(), 30)
            assert "search-index" not in daemon.task_errors
            between = [n for n in seen if 0 < n < QUEUED]
            assert between, seen[:5]  # it yielded mid-way, not one long transaction
            steps = [a - b for a, b in itertools.pairwise(seen) if a > b]
            assert max(steps) <= loops.INDEX_BATCH  # never more than a batch between two turns of the loop
            async with httpx.AsyncClient() as http:
                health = (await http.get(f"http://127.0.0.1:{daemon.web.port}/healthz")).json()
            assert health["search_queue"] == 0
            found = daemon.store.search("排队文章1199")
            assert found.indexed and len(found.hits) == 1
        finally:
            daemon.request_stop()
            assert await asyncio.wait_for(run, 30) == 0


async def test_a_failing_index_round_is_unhealthy_retried_and_recovers(tmp_path):
    async with SampleSite() as site:
        config = config_for(site, tmp_path)
        queue_articles(config, 3)
        with sqlite3.connect(config.db_path) as conn:  # a real write failure (as a full disk would give)
            conn.execute("CREATE TRIGGER boom BEFORE DELETE ON search_queue BEGIN SELECT RAISE(ABORT, 'no room'); END")
        daemon = Daemon(config, {})
        run = asyncio.create_task(daemon.run_forever())
        try:
            await wait_until(lambda: "search-index" in daemon.task_errors)
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"http://127.0.0.1:{daemon.web.port}/healthz")
            assert answer.status_code == 503
            assert answer.json()["tasks"]["search-index"]["state"] == "failing"
            assert answer.json()["search_queue"] >= 3  # nothing lost: the ids wait in the queue
            assert len(daemon.store.search("排队文章2").hits) == 1  # and search still finds them
            with sqlite3.connect(config.db_path) as conn:
                conn.execute("DROP TRIGGER boom")
            await wait_until(lambda: "search-index" not in daemon.task_errors, timeout=30)
            assert daemon.store.search_queue_length() == 0
        finally:
            daemon.request_stop()
            assert await asyncio.wait_for(run, 30) == 0


async def test_once_leaves_the_queue_and_search_finds_what_it_stored(tmp_path):
    async with SampleSite() as site:
        config = config_for(site, tmp_path)
        assert await Daemon(config, {}).run_once() == 0
    store = Store(config.db_path)
    try:
        queued = store.search_queue_length()
        assert queued == store.article_counts()["all"] > 0  # not drained: `once` stays short
        title = store.article(store.article_ids()[-1]).title
        found = store.search(title[:6])
        assert found.indexed and store.article_ids()[-1] in [h.article.id for h in found.hits]
    finally:
        store.close()
