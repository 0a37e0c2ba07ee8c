"""feedbot probe: a feed, a page that links one, a Jekyll category page and news list pages (UTF-8 and GBK)
are recognized, their items shown, and the printed [[sources]] block polls the page successfully."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
import tomllib

import pytest

from feedbot.errors import ParseError
from feedbot.pipeline import poll_source
from feedbot.settings.config import FetchConfig, parse_config
from feedbot.sources import make_source
from feedbot.sources.http import Fetcher
from feedbot.sources.probe import probe
from feedbot.store import Store
from tests.doubles.pages import PageSite, saved
from tests.doubles.site import FEED_SIZE, SampleSite


@pytest.fixture
async def fetcher():
    async with Fetcher(FetchConfig(timeout=1, deadline=3, delay=0)) as client:
        yield client


async def works(block: str, tmp_path, fetcher) -> int:
    """Poll once with the printed block; the number of articles stored."""
    config = parse_config({**tomllib.loads(block), "fetch": {"delay": "0.01s"}}, None, {})
    source = config.sources[0]
    store = Store(tmp_path / f"{source.id}.db")
    try:
        report = await poll_source(make_source(source, fetcher), source, store, config.topics, {},
                                   rng=random.Random(1))
    finally:
        store.close()
    assert report.result == "ok", report.error
    return report.new


def zcwj_site(site: PageSite) -> None:
    site.put("/zcwj/", saved("mee-zcwj.html"))
    for path in ("/zcwj/bwj/202403/t20240330_1069300.html", "/zcwj/bgtwj/202403/t20240321_1068500.html"):
        site.put(path, saved("mee-post.html"))


async def test_probe_a_feed(fetcher, tmp_path):
    async with SampleSite() as site:
        report = await probe(fetcher, site.feed_url)
        assert report.kind == "feed" and len(report.items) == min(FEED_SIZE, len(site.posts))
        assert 'kind = "feed"' in report.block and f'url = "{site.feed_url}"' in report.block
        assert await works(report.block, tmp_path, fetcher) > 0


async def test_probe_a_jekyll_category_page_prefers_it_over_the_site_feed(fetcher, tmp_path):
    async with SampleSite() as site:
        report = await probe(fetcher, site.category_url)
        assert report.kind == "jekyll"
        assert report.items[0].title == site.category_posts()[0].title
        assert report.first_body  # the first post's text
        assert await works(report.block, tmp_path, fetcher) > 0


async def test_probe_a_page_that_links_a_feed(fetcher, tmp_path):
    async with SampleSite() as feeds, PageSite() as site:
        site.put("/", f'<html><head><link rel="alternate" type="application/atom+xml" href="{feeds.feed_url}">'
                      "</head><body><p>首页</p></body></html>")
        report = await probe(fetcher, site.url("/"))
        assert report.kind == "feed" and f'url = "{feeds.feed_url}"' in report.block
        assert await works(report.block, tmp_path, fetcher) > 0


async def test_probe_a_list_page_guesses_selectors_that_work(fetcher, tmp_path):
    async with PageSite() as site:
        zcwj_site(site)
        report = await probe(fetcher, site.url("/zcwj/"))
        assert report.kind == "html"
        # the first item is shown as stored: title and time from its post page (here the saved mee post)
        assert [i.title for i in report.items][:2] == ["生态环境部召开全国碳市场扩围专题会议",
                                                      "关于印发《碳排放权交易管理暂行条例》配套文件的通知"]
        # the first item's date comes from its post page (meta PubDate), the others from the list
        assert report.items[1].published.date().isoformat() == "2024-03-21"
        assert report.first_body.startswith("3月27日，生态环境部")
        block = tomllib.loads(report.block)["sources"][0]
        assert block["kind"] == "html" and block["date"]
        # the page's menu (two short links) is not taken for the list
        assert all(i.title != "中央有关文件" for i in report.items)
        # the third item links gov.cn (not served here): backfill = 2 keeps the first poll to the two served
        assert await works(report.block.replace('interval = "10m"', 'backfill = 2'), tmp_path, fetcher) == 2


async def test_probe_a_gbk_list_page(fetcher, tmp_path):
    async with PageSite() as site:
        site.put("/gzdt/", saved("province-list.gbk.html"), "text/html")
        for path in ("/gzdt/202403/t20240328_88001.html", "/gzdt/202403/t20240327_88000.html",
                     "/gzdt/t20240326_87990.html"):
            site.put(path, saved("province-post.gbk.html"), "text/html")
        report = await probe(fetcher, site.url("/gzdt/"))
        assert report.kind == "html"
        assert [i.title for i in report.items][1:] == ["我省启动气候适应型城市建设试点申报",
                                                      "省厅举办碳排放管理员职业技能培训班"]
        assert report.items[1].published.date().isoformat() == "2024-03-27"
        assert await works(report.block, tmp_path, fetcher) == 3


async def test_probe_a_page_with_no_list_says_so(fetcher):
    async with PageSite() as site:
        site.put("/x", "<html><body><h1>关于我们</h1><p>本网站介绍。</p></body></html>")
        with pytest.raises(ParseError, match="no repeated list of links"):
            await probe(fetcher, site.url("/x"))


def test_probe_command_prints_the_block(tmp_path):
    """The CLI end to end, in a subprocess, against a loopback list page served from another thread."""
    ready, stop = threading.Event(), threading.Event()
    holder: dict[str, str] = {}

    def serve() -> None:
        async def main() -> None:
            async with PageSite() as site:
                zcwj_site(site)
                holder["url"] = site.url("/zcwj/")
                ready.set()
                while not stop.is_set():
                    await asyncio.sleep(0.05)
        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        done = subprocess.run([sys.executable, "-m", "feedbot", "probe", holder["url"]], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)
    finally:
        stop.set()
        thread.join(10)
    assert done.returncode == 0, done.stderr
    assert "a news list page" in done.stdout and "[[sources]]" in done.stdout
    block = done.stdout[done.stdout.index("[[sources]]"):]
    assert parse_config(tomllib.loads(block), None, {}).sources[0].kind == "html"
