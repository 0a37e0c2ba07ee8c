"""The daemon's parts in one event loop: health, hung polls, `once`, feeds after a poll."""

from __future__ import annotations

import logging

import httpx

from feedbot.daemon import FAILED_POLLS_UNHEALTHY, Daemon
from feedbot.settings.config import parse_config
from tests.doubles.site import SampleSite


def config_for(site: SampleSite, tmp_path, **fetch):
    return parse_config({
        "state_dir": str(tmp_path / "state"),
        "web": {"listen": "127.0.0.1:0", "base_url": "http://feeds.test"},
        "fetch": {"delay": "0.01s", **fetch},
        "sources": [{"id": "hjb", "kind": "jekyll", "url": site.category_url, "interval": "1m", "backfill": "all"}],
    }, None, {})


async def test_healthz_turns_503_when_every_source_keeps_failing(tmp_path):
    async with SampleSite() as site:
        daemon = Daemon(config_for(site, tmp_path, timeout="2s"), {})
        await daemon.open()
        try:
            url = f"http://127.0.0.1:{daemon.web.port}/healthz"
            async with httpx.AsyncClient() as http:
                assert (await http.get(url)).status_code == 200
                site.fault("/category/zhongguohuanjingbao.html", "500")
                for _ in range(FAILED_POLLS_UNHEALTHY):
                    assert (await daemon.poll("hjb")).result == "failed"
                answer = await http.get(url)
                assert answer.status_code == 503
                assert "HTTP 500" in answer.text
                site.clear_faults()
                assert (await daemon.poll("hjb")).result == "ok"
                assert (await http.get(url)).status_code == 200
        finally:
            await daemon.close()


async def test_a_hung_poll_is_cut_off_by_its_deadline_and_recorded(tmp_path):
    async with SampleSite() as site:
        daemon = Daemon(config_for(site, tmp_path, timeout="30s", deadline="60s"), {})
        daemon.poll_deadline = 0.5
        await daemon.open(web=False)
        try:
            site.fault("/category/zhongguohuanjingbao.html", "hang")
            report = await daemon.poll("hjb")
            assert report.result == "failed" and "cut off" in report.error
            state = daemon.store.source_state("hjb")
            assert state.failures == 1 and "cut off" in state.last_error
        finally:
            await daemon.close()


async def test_once_polls_classifies_writes_feeds_and_prints_messages(tmp_path, capsys):
    async with SampleSite() as site:
        config = config_for(site, tmp_path)
        assert await Daemon(config, {}).run_once() == 0
        site.fault("/category/zhongguohuanjingbao.html", "500")
        assert await Daemon(config, {}).run_once() == 1  # every source failed: nothing could run
    out = capsys.readouterr().out
    assert "[would send to #carbon-market]" in out
    for topic in ("carbon-market", "adaptation-2035", "climate-finance", "carbon-manager", "all"):
        for ext in ("xml", "atom", "json"):
            assert (config.feeds_dir / f"{topic}.{ext}").stat().st_size > 0


async def test_once_with_nothing_new_skips_the_rebuild_unless_a_feed_is_missing_or_the_config_changed(tmp_path, caplog):
    skipped = "feeds: nothing changed since they were last written; not rebuilt"
    caplog.set_level(logging.DEBUG, logger="feedbot")
    async with SampleSite() as site:
        config = config_for(site, tmp_path)
        assert await Daemon(config, {}).run_once() == 0
        assert skipped not in caplog.text
        caplog.clear()
        assert await Daemon(config, {}).run_once() == 0  # the site answers as before: nothing new
        assert skipped in caplog.text
        # A feed file deleted by hand is written again, though nothing new came in.
        (config.feeds_dir / "carbon-market.atom").unlink()
        caplog.clear()
        assert await Daemon(config, {}).run_once() == 0
        assert skipped not in caplog.text
        assert b"<feed" in (config.feeds_dir / "carbon-market.atom").read_bytes()
        # A new base_url is in the links of the feeds at the next run, though nothing new came in.
        moved = parse_config({
            "state_dir": str(tmp_path / "state"), "web": {"listen": "127.0.0.1:0", "base_url": "http://moved.test"},
            "fetch": {"delay": "0.01s"},
            "sources": [{"id": "hjb", "kind": "jekyll", "url": site.category_url, "interval": "1m",
                         "backfill": "all"}]}, None, {})
        caplog.clear()
        assert await Daemon(moved, {}).run_once() == 0
        assert skipped not in caplog.text
        assert "http://moved.test" in (config.feeds_dir / "all.json").read_text(encoding="utf-8")
