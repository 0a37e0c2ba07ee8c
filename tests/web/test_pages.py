"""Channel, article and search pages over HTTP on loopback: content, paging, validators, gzip, escaping."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urljoin

import aiohttp
import pytest
from lxml import html

from feedbot.model import Classification, Evidence, TopicMatch
from feedbot.publish import feeds
from feedbot.store import Store
from feedbot.web.channel import PAGE_SIZE
from feedbot.web.pages import render_index
from tests.feeds_helpers import (
    BAD_MARKERS,
    HOSTILE_TITLE,
    TOPICS,
    article,
    expected,
    feeds_config,
    fill_store,
    fixed_now,
    serving,
)

EXTRA = 2 * PAGE_SIZE + 3  # carbon-market gets three pages
KNOWN_TITLE = "全国温室气体自愿减排交易市场重启"
# 20:30 UTC on June 1 is 04:30 on June 2 in Shanghai: the page must show the Shanghai date.
KNOWN_AT = datetime(2024, 6, 1, 20, 30, tzinfo=UTC)
EVIDENCE = (Evidence("自愿减排", "title", 1, 4.0), Evidence("CCER", "body", 3, 2.5))


@pytest.fixture
def world(tmp_path: Path):
    config = feeds_config(tmp_path / "state")
    store = Store(config.db_path)
    now = fixed_now()
    items = fill_store(store, now)
    for n in range(EXTRA):
        when = now - timedelta(days=40 + n)
        art, cls = article(5000 + n, f"碳市场存档 第{n + 1:02d}篇", ("carbon-market",), when)
        store.save_article(art, cls, {}, now=when)
    art, _ = article(9000, KNOWN_TITLE, (), KNOWN_AT,
                     body_html="<p>CCER 重启后，首批方法学发布。</p><p>Voluntary carbon pricing returns.</p>",
                     outlet="经济日报")
    art = type(art)(**{**art.__dict__, "origin_url": "https://outlet.example.com/ccer.html"})
    cls = Classification((TopicMatch("carbon-market", 9.5, True, EVIDENCE, "CCER 重启后，首批方法学发布。"),
                          TopicMatch("climate-finance", 6.0, True, (), "碳定价与气候投融资。")))
    known_id = store.save_article(art, cls, {}, now=KNOWN_AT + timedelta(hours=1)).article_id
    feeds.rebuild_all(store, config)
    yield config, store, items, known_id
    store.close()


async def fetch(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[aiohttp.ClientResponse, str]:
    async with http.get(url, headers=headers) as resp:
        return resp, await resp.text()


async def test_a_channel_pages_walk_to_its_oldest_article(world):
    config, store, items, _ = world
    titles, urls = [], []
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        url = server.url + "/c/carbon-market/"
        while url:
            resp, body = await fetch(http, url)
            assert resp.status == 200, url
            tree = html.fromstring(body)
            urls.append(url)
            titles += [a.text_content() for a in tree.xpath("//ol[@class='items']/li/h3/a")]
            nxt = tree.xpath("//head/link[@rel='next']/@href")
            assert nxt == tree.xpath("//nav//a[@rel='next']/@href")
            if len(urls) > 1:
                assert tree.xpath("//head/link[@rel='prev']/@href")
            url = urljoin(url, nxt[0]) if nxt else None
        async with http.get(server.url + "/c/carbon-market/page/1", allow_redirects=False) as resp:
            assert resp.status == 301 and urljoin(resp.url.human_repr(), resp.headers["Location"]) == urls[0]
        async with http.get(server.url + "/c/carbon-market", allow_redirects=False) as resp:
            assert resp.status == 301 and resp.headers["Location"] == "carbon-market/"
        for missing in ("/c/carbon-market/page/4", "/c/nope/", "/c/carbon-market/page/0x2", "/a/99999"):
            async with http.get(server.url + missing) as resp:
                assert resp.status == 404, missing
    dated = [(i.published_at, i.title) for i in expected(items, "carbon-market")]
    dated.append((KNOWN_AT, KNOWN_TITLE))
    dated += [(fixed_now() - timedelta(days=40 + n), f"碳市场存档 第{n + 1:02d}篇") for n in range(EXTRA)]
    assert titles == [t for _, t in sorted(dated, reverse=True)]  # every article once, newest first
    assert urls == [urls[0], urls[0] + "page/2", urls[0] + "page/3"]


async def test_a_channel_page_shows_each_article_with_outlet_date_excerpt_and_original(world):
    config, store, _, known_id = world
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        _, body = await fetch(http, server.url + "/c/climate-finance/")
    tree = html.fromstring(body)
    assert tree.xpath("string(//h1)") == "气候投融资试点"
    alternates = {(link.get("type"), link.get("href")) for link in tree.xpath("//head/link[@rel='alternate']")}
    assert alternates == {("application/rss+xml", "../../feeds/climate-finance.xml"),
                          ("application/atom+xml", "../../feeds/climate-finance.atom"),
                          ("application/feed+json", "../../feeds/climate-finance.json")}
    known = tree.xpath(f"//li[@id='a{known_id}']")[0]
    assert known.xpath("string(h3/a)") == KNOWN_TITLE
    assert known.xpath("h3/a/@href") == ["https://outlet.example.com/ccer.html"]
    meta = known.xpath("string(p[@class='meta'])")
    assert "经济日报" in meta and "2024-06-02 04:30" in meta
    assert known.xpath("string(p[@class='excerpt'])") == "碳定价与气候投融资。"  # this channel's excerpt
    assert known.xpath("p[@class='meta']/a[text()='为何收录']/@href") == [f"../../a/{known_id}"]

    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        _, body = await fetch(http, server.url + "/c/carbon-market/")
    carbon = html.fromstring(body)
    assert carbon.xpath("//a[@class='tg']/@href") == ["https://t.me/my_carbon_market"]
    assert carbon.xpath(f"string(//li[@id='a{known_id}']/p[@class='excerpt'])") == "CCER 重启后，首批方法学发布。"


async def test_an_article_page_says_why_it_is_in_each_channel(world):
    config, store, _, known_id = world
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        resp, body = await fetch(http, f"{server.url}/a/{known_id}")
    assert resp.status == 200
    tree = html.fromstring(body)
    assert tree.xpath("string(//h1)") == KNOWN_TITLE
    facts = dict(zip(tree.xpath("//dl[@class='facts']/dt/text()"),
                     [d.text_content() for d in tree.xpath("//dl[@class='facts']/dd")], strict=True))
    assert facts["原文"] == "https://outlet.example.com/ccer.html"
    assert facts["读取自"] == "https://news.example.org/zhongguohuanjingbao/2024/NW9000.html"
    assert facts["首次收录"] == "2024-06-02 05:30" and facts["最后修改"] == "收录后未改动"
    assert "经济日报" in facts["来源"]
    carbon = tree.xpath("//section[@id='ch-carbon-market']")[0]
    assert carbon.xpath("h2/a/@href") == ["../c/carbon-market/"]
    assert carbon.xpath("string(blockquote)") == "CCER 重启后，首批方法学发布。"
    rows = [[td.text_content() for td in tr.xpath("td")] for tr in carbon.xpath(".//tbody/tr")]
    assert rows == [["自愿减排", "标题", "1 次", "4"], ["CCER", "正文", "3 次", "2.5"]]
    said = carbon.xpath("string(p)")
    assert "得分 9.5" in said and "「自愿减排」（标题，1 次）" in said
    finance = tree.xpath("//section[@id='ch-climate-finance']")[0]
    assert "没有保存匹配词" in finance.text_content()


async def test_search_finds_by_two_chinese_characters_and_by_an_english_word(world):
    config, store, _, known_id = world
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        for query in ("减排", "pricing", "方法学", "CCER 首批"):
            resp, body = await fetch(http, f"{server.url}/search?q={query}")
            tree = html.fromstring(body)
            assert resp.status == 200
            assert tree.xpath("//ol[@class='items']/li/@id") == [f"a{known_id}"], query
            assert tree.xpath("//input[@name='q']/@value")[0] == query
        _, body = await fetch(http, f"{server.url}/search?q=方法学")
        marks = html.fromstring(body).xpath("//p[@class='excerpt']/mark/text()")
        assert marks == ["方法学"]
        _, body = await fetch(http, f"{server.url}/search?q=方法学&channel=adaptation-2035")
        assert html.fromstring(body).xpath("//ol[@class='items']/li") == []
        _, body = await fetch(http, f"{server.url}/search?q=方法学&channel=climate-finance")
        assert html.fromstring(body).xpath("//ol[@class='items']/li/@id") == [f"a{known_id}"]


async def test_search_results_come_in_pages(world):
    config, store, _, _ = world
    seen: list[str] = []
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        url = f"{server.url}/search?q=碳市场存档"
        while url:
            _, body = await fetch(http, url)
            tree = html.fromstring(body)
            seen += [a.text_content() for a in tree.xpath("//ol[@class='items']/li/h3/a")]
            nxt = tree.xpath("//nav//a[@rel='next']/@href")
            url = urljoin(url, nxt[0]) if nxt else None
    assert sorted(seen) == sorted(f"碳市场存档 第{n + 1:02d}篇" for n in range(EXTRA))
    assert len(seen) == len(set(seen)) == EXTRA


async def test_hostile_content_and_queries_show_as_text_escaped_once(world):
    config, store, items, _ = world
    hostile = next(i for i in items if i.title == HOSTILE_TITLE)
    # Titles are plain text: the hostile one is stored (and searched) literally, markup and all.
    hostile_id = store.search("onerror=alert(1)>扩容").hits[0].article.id
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        for path in ("/c/carbon-market/", f"/a/{hostile_id}", "/search?q=扩容", "/c/all/"):
            _, body = await fetch(http, server.url + path)
            lowered = body.lower()
            for marker in BAD_MARKERS:
                assert marker not in lowered, (path, marker)
            assert "碳市场" in html.fromstring(body).text_content() and "&amp;lt;" not in body, path
        _, body = await fetch(http, f"{server.url}/a/{hostile_id}")
        assert html.fromstring(body).xpath("string(//h1)") == hostile.title
        _, body = await fetch(http, server.url + "/search?" + urlencode({"q": "<b>碳&amp;</b>"}))
    assert "&lt;b&gt;碳&amp;amp;&lt;/b&gt;" in body and "<b>碳" not in body  # the query, escaped exactly once
    assert html.fromstring(body).xpath("//input[@name='q']/@value") == ["<b>碳&amp;</b>"]


@pytest.mark.parametrize("path", ["/", "/c/carbon-market/", "/c/carbon-market/page/2", "/a/1", "/search?q=碳市场"])
async def test_every_page_answers_conditional_get_gzip_and_head(world, path):
    config, store, _, _ = world
    async with serving(config, store) as server, aiohttp.ClientSession(auto_decompress=False) as http:
        url = server.url + path
        async with http.get(url, headers={"Accept-Encoding": "identity"}) as resp:
            plain = await resp.read()
            etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
            assert resp.status == 200 and resp.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "form-action 'self'" in resp.headers["Content-Security-Policy"]
            assert "script-src" not in resp.headers["Content-Security-Policy"]
            assert re.fullmatch(r'"[0-9a-f]{32}"', etag) and modified.endswith(" GMT")
        async with http.get(url, headers={"Accept-Encoding": "identity", "If-None-Match": etag}) as resp:
            assert resp.status == 304 and await resp.read() == b""
        async with http.get(url, headers={"Accept-Encoding": "identity", "If-Modified-Since": modified}) as resp:
            assert resp.status == 304
        async with http.get(url, headers={"Accept-Encoding": "gzip"}) as resp:
            assert resp.headers["Content-Encoding"] == "gzip" and resp.headers["ETag"] != etag
            assert gzip.decompress(await resp.read()) == plain
        async with http.head(url, headers={"Accept-Encoding": "identity"}) as resp:
            assert resp.status == 200 and await resp.read() == b""
            assert int(resp.headers["Content-Length"]) == len(plain)

        # A new article changes the pages: the old validators no longer match.
        later = datetime.now(UTC) + timedelta(days=1)
        art, cls = article(7777, "新到的碳市场文章", ("carbon-market",), later)
        store.save_article(art, cls, {}, now=later)
        async with http.get(url, headers={"Accept-Encoding": "identity", "If-None-Match": etag}) as resp:
            if path != "/a/1":  # an article's own page does not change when another arrives
                assert resp.status == 200 and resp.headers["ETag"] != etag
        async with http.get(url, headers={"Accept-Encoding": "identity", "If-Modified-Since": modified}) as resp:
            assert resp.status == 200  # Last-Modified follows the store


def test_the_index_charts_a_quiet_channel_up_to_its_newest_article(tmp_path: Path):
    config = feeds_config(tmp_path / "state")
    store = Store(config.db_path)
    now = fixed_now()
    long_ago = now - timedelta(days=400)
    fill_store(store, long_ago, hostile=False)
    tree = html.fromstring(render_index(config, store, now=now))
    for cid in (*TOPICS, "all"):
        section = tree.xpath(f"//section[@id='{cid}']")[0]
        titles = section.xpath(".//svg/rect/title/text()")
        counts = [int(re.search(r"：(\d+) 篇", t).group(1)) for t in titles]
        assert len(counts) == 12 and sum(counts) > 0 and counts[-1] > 0, cid  # the last bar holds the newest
        assert "截至最新一篇" in section.xpath("string(.//figcaption)")
        assert "近 12 周 0 篇" not in section.xpath("string(.//h2)")
    carbon = tree.xpath("//section[@id='carbon-market']")[0]
    assert sum(int(re.search(r"：(\d+) 篇", t).group(1)) for t in carbon.xpath(".//svg/rect/title/text()")) == 7
    store.close()
