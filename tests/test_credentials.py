"""Issue 12 case 12: a source URL with credentials never shows its user or password — not in logs, status,
check-config, /healthz, the stored last_error or the published feeds — yet fetching still uses them."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from feedbot.app import App
from feedbot.cli import cli
from feedbot.daemon import Daemon
from feedbot.settings.config import load_config, parse_config
from tests.doubles.site import SampleSite

USER = "feedreader-alice"
PASSWORD = "hunter2-Very-Secret"
CATEGORY = "/category/zhongguohuanjingbao.html"


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@", 1)


def write_config(tmp_path: Path, site: SampleSite) -> Path:
    path = tmp_path / "feedbot.toml"
    path.write_text(f"""
state_dir = "state"
[web]
listen = "127.0.0.1:0"
base_url = "http://feeds.test"
[fetch]
delay = "0.01s"
timeout = "2s"
[[sources]]
id = "hjb"
kind = "jekyll"
url = "{with_credentials(site.category_url)}"
interval = "1m"
backfill = "all"
[topics.carbon-market]
telegram_chat = "@cm_chan"
""", encoding="utf-8")
    return path


def assert_hidden(text: str, where: str) -> None:
    assert PASSWORD not in text, f"password shown in {where}"
    assert USER not in text, f"user shown in {where}"


async def feedbot(config: Path, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")
           and k not in ("CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "JOURNAL_STREAM")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feedbot", "--config", str(config), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, output.decode()


def cli_output(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], env={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def test_credentials_are_used_for_fetching_and_shown_nowhere(tmp_path):
    async with SampleSite() as site:
        config = write_config(tmp_path, site)
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

        code, output = await feedbot(config, "once")
        assert code == 0, output
        assert site.request_headers[CATEGORY].get("Authorization") == expected
        post_paths = [p for p in site.request_headers if p.startswith("/zhongguohuanjingbao/")]
        assert post_paths and all(site.request_headers[p].get("Authorization") == expected for p in post_paths)
        assert_hidden(output, "the log and console messages of `once`")
        feeds = list((tmp_path / "state" / "feeds").iterdir())
        assert feeds
        for feed in feeds:
            assert_hidden(feed.read_text(encoding="utf-8"), feed.name)
        # The published links are the public form of the post URLs: same host and path, no userinfo.
        everything = (tmp_path / "state" / "feeds" / "all.xml").read_text(encoding="utf-8")
        assert any(f"<link>{site.base_url}{path}</link>" in everything for path in post_paths)

        site.fault(CATEGORY, "500")
        code, output = await feedbot(config, "once")
        assert code == 1, output
        assert_hidden(output, "the log of a failed poll")
        assert "http://***@127.0.0.1" in output  # the URL is still named, without its userinfo

        with sqlite3.connect(tmp_path / "state" / "feedbot.db") as db:
            (last_error,) = db.execute("SELECT last_error FROM sources WHERE id = 'hjb'").fetchone()
        assert "HTTP 500" in last_error and "http://***@127.0.0.1" in last_error
        assert_hidden(last_error, "sources.last_error")

        # A row written before this fix (password in last_error) is still redacted on display.
        with sqlite3.connect(tmp_path / "state" / "feedbot.db") as db:
            db.execute("UPDATE sources SET last_error = ? WHERE id = 'hjb'",
                       (f"HTTP 500 from {with_credentials(site.category_url)}",))
        for args in (("status",), ("status", "--json"), ("check-config",), ("check-config", "--json")):
            text = cli_output(config, *args)
            assert_hidden(text, " ".join(args))
            assert "http://***@127.0.0.1" in text, args
        report = json.loads(cli_output(config, "status", "--json"))
        assert report["sources"][0]["url"] == f"http://***@{site.category_url.removeprefix('http://')}"


async def test_healthz_shows_no_credentials(tmp_path):
    async with SampleSite() as site:
        config = load_config(write_config(tmp_path, site), {})
        assert config.sources[0].url == with_credentials(site.category_url)  # the real URL is kept for fetching
        daemon = Daemon(config, {})
        await daemon.open()
        try:
            site.fault(CATEGORY, "500")
            assert (await daemon.poll("hjb")).result == "failed"
            async with httpx.AsyncClient() as http:
                url = f"http://127.0.0.1:{daemon.web.port}/healthz"
                answer = (await http.get(url)).text
                assert "HTTP 500" in answer and "http://***@127.0.0.1" in answer
                assert_hidden(answer, "/healthz")
                with sqlite3.connect(config.db_path) as db:
                    db.execute("UPDATE sources SET last_error = ? WHERE id = 'hjb'",
                               (f"cannot connect to {with_credentials(site.category_url)}",))
                answer = (await http.get(url)).text
                assert "cannot connect to http://***@127.0.0.1" in answer
                assert_hidden(answer, "/healthz (an old row)")
        finally:
            await daemon.close()


RELATIVE_RSS = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title><link>/</link>
<item><title>全国碳市场扩容</title><link>/news/a.html</link><guid isPermaLink="false">g1</guid>
<description>&lt;p&gt;全国碳市场配额清缴工作启动。&lt;/p&gt;</description></item></channel></rss>"""


async def test_relative_feed_links_resolve_without_the_credentials(tmp_path):
    async with SampleSite() as site:
        site.put("/relative.xml", RELATIVE_RSS, "application/rss+xml")
        config = parse_config({"state_dir": str(tmp_path / "state"), "sources": [
            {"id": "f", "kind": "feed", "url": with_credentials(site.url("/relative.xml"))}]}, None, {})
        async with App(config) as app:
            assert (await app.poll("f", deadline=30)).new == 1
            [article_id] = app.store.article_ids()
            assert app.store.article(article_id).url == site.url("/news/a.html")
        assert site.request_headers["/relative.xml"].get("Authorization", "").startswith("Basic ")
