"""Background tasks never die: a failed round is logged, counted, shown by /healthz (503) and retried."""

from __future__ import annotations

import asyncio
import shutil

import httpx

from feedbot.daemon import Daemon
from feedbot.settings.config import parse_config
from tests.doubles.site import SampleSite
from tests.store.test_store import make_article, verdict


def config_for(site: SampleSite, tmp_path):
    return parse_config({
        "state_dir": str(tmp_path / "state"),
        "web": {"listen": "127.0.0.1:0", "base_url": "http://feeds.test"},
        "fetch": {"delay": "0.01s"},
        "sources": [{"id": "hjb", "kind": "jekyll", "url": site.category_url, "interval": "1m", "backfill": "all"}],
    }, None, {})


async def wait_until(check, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_a_failing_feed_rebuild_is_unhealthy_counted_retried_and_recovers(tmp_path, caplog):
    async with SampleSite() as site:
        config = config_for(site, tmp_path)
        daemon = Daemon(config, {})
        run = asyncio.create_task(daemon.run_forever())
        try:
            await wait_until(lambda: daemon.web is not None and daemon.notifier is not None and daemon._tasks)
            url = f"http://127.0.0.1:{daemon.web.port}"
            async with httpx.AsyncClient() as http:
                await wait_until(lambda: (config.feeds_dir / "all.atom").exists())
                # The first poll's rebuild is done: no rebuild thread writes while the directory goes.
                await wait_until(lambda: daemon.first_polls_done.is_set()
                                 and daemon._feeds_token == f"{daemon.store.last_change()}|"
                                                            f"{daemon.app.feeds_fingerprint()}")
                # A file where the feeds directory should be: every rebuild fails until it is removed.
                shutil.rmtree(config.feeds_dir)
                config.feeds_dir.write_text("not a directory")
                # Something to rebuild for (an unchanged store skips the rebuild, however dirty the flag).
                daemon.store.save_article(make_article("late"), verdict("carbon-market"), {})
                daemon.feeds_dirty.set()
                await wait_until(lambda: "feeds" in daemon.task_errors)
                answer = await http.get(url + "/healthz")
                assert answer.status_code == 503
                body = answer.json()
                assert body["tasks"]["feeds"]["state"] == "failing"
                assert "feeds task failing" in body["reason"] and "cannot" in body["reason"]
                await wait_until(lambda: daemon.task_errors.get("feeds", ("", 0))[1] >= 2)  # retried, not dirty
                metrics = (await http.get(url + "/metrics")).text
                assert 'feedbot_task_failures_total{task="feeds"}' in metrics
                config.feeds_dir.unlink()
                await wait_until(lambda: "feeds" not in daemon.task_errors, timeout=30)
                assert (config.feeds_dir / "all.atom").exists()
                answer = await http.get(url + "/healthz")
                assert answer.status_code == 200, answer.text
                assert answer.json()["tasks"] == {} and answer.json()["quarantined"] == 0
            assert not run.done()  # the task never ended
        finally:
            daemon.request_stop()
            assert await asyncio.wait_for(run, 30) == 0
    assert sum("feeds task: round failed" in r.getMessage() for r in caplog.records) >= 2
    assert sum(r.exc_info is not None for r in caplog.records) == 0  # our own error: one line, no traceback
