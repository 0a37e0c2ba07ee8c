"""The web server on a loopback port: feeds with validators, gzip, HEAD, OPML, health, no traversal."""

from __future__ import annotations

import asyncio
import gzip
import re
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import feedparser
import pytest
from lxml import etree, html

from feedbot.errors import PublishError
from feedbot.publish import feeds
from feedbot.store import Store
from feedbot.web.listen import start_web
from feedbot.web.pages import render_index
from feedbot.web.server import create_app
from tests.feeds_helpers import (
    HOSTILE_TITLE,
    TOPICS,
    article,
    edited,
    feeds_config,
    fill_store,
    fixed_now,
    live_markup,
    serving,
)

CHANNELS = (*TOPICS, "all")
TYPES = {"xml": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture
def world(tmp_path: Path):
    config = feeds_config(tmp_path / "state")
    store = Store(config.db_path)
    items = fill_store(store, fixed_now())
    feeds.rebuild_all(store, config)
    yield config, store, items
    store.close()


async def raw_get(port: int, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send the request target byte for byte (no client-side normalization of '..')."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_feeds_are_served_with_types_and_validators(world):
    config, store, _ = world
    async with serving(config, store) as server, aiohttp.ClientSession(auto_decompress=False) as http:
        for cid in CHANNELS:
            for ext, mime in TYPES.items():
                async with http.get(f"{server.url}/feeds/{cid}.{ext}", headers=IDENTITY) as resp:
                    body = await resp.read()
                    assert resp.status == 200
                    assert resp.headers["Content-Type"] == f"{mime}; charset=utf-8"
                    assert "Content-Encoding" not in resp.headers
                    assert re.fullmatch(r'"[0-9a-f]{32}"', resp.headers["ETag"])  # strong
                    assert resp.headers["Last-Modified"].endswith(" GMT")
                    assert resp.headers["X-Content-Type-Options"] == "nosniff"
                    assert body == (config.feeds_dir / f"{cid}.{ext}").read_bytes()
                    if ext != "json":
                        assert feedparser.parse(body).bozo == 0


async def test_conditional_get_answers_304(world):
    config, store, items = world
    url_path = "/feeds/carbon-market.atom"
    async with serving(config, store) as server, aiohttp.ClientSession(auto_decompress=False) as http:
        url = server.url + url_path
        async with http.get(url, headers=IDENTITY) as first:
            etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
        async with http.get(url, headers={**IDENTITY, "If-None-Match": etag}) as resp:
            assert resp.status == 304 and await resp.read() == b""
            assert resp.headers["ETag"] == etag
        async with http.get(url, headers={**IDENTITY, "If-None-Match": f'"other", {etag}'}) as resp:
            assert resp.status == 304
        async with http.get(url, headers={**IDENTITY, "If-Modified-Since": last_modified}) as resp:
            assert resp.status == 304
        async with http.get(url, headers={**IDENTITY, "If-None-Match": '"stale"'}) as resp:
            assert resp.status == 200  # If-None-Match wins over If-Modified-Since
        older = format_datetime(parsedate_to_datetime(last_modified) - timedelta(days=1), usegmt=True)
        async with http.get(url, headers={**IDENTITY, "If-Modified-Since": older}) as resp:
            assert resp.status == 200 and await resp.read()

        # An edit rewrites the file: the old validator no longer matches.
        item = next(i for i in items if i.topics == ("carbon-market",))
        original, cls = article(item.serial, item.title, item.topics, item.published_at)
        assert store.save_article(edited(original, "改过的标题"), cls, {}).status == "updated"
        assert config.feeds_dir / "carbon-market.atom" in feeds.rebuild_all(store, config)
        async with http.get(url, headers={**IDENTITY, "If-None-Match": etag}) as resp:
            assert resp.status == 200
            assert resp.headers["ETag"] != etag
            assert "改过的标题" in (await resp.read()).decode()


async def test_gzip_when_accepted_and_head_without_body(world):
    config, store, _ = world
    async with serving(config, store) as server, aiohttp.ClientSession(auto_decompress=False) as http:
        url = f"{server.url}/feeds/all.xml"
        plain = (config.feeds_dir / "all.xml").read_bytes()
        async with http.get(url, headers={"Accept-Encoding": "gzip, deflate"}) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            assert resp.headers["Vary"] == "Accept, Accept-Encoding"
            zipped = await resp.read()
            gz_etag = resp.headers["ETag"]
        assert gzip.decompress(zipped) == plain and len(zipped) < len(plain)
        async with http.get(url, headers={"Accept-Encoding": "gzip;q=0"}) as resp:
            assert "Content-Encoding" not in resp.headers and await resp.read() == plain
            assert resp.headers["ETag"] != gz_etag
        async with http.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": gz_etag}) as resp:
            assert resp.status == 304
        async with http.head(url, headers=IDENTITY) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
            assert int(resp.headers["Content-Length"]) == len(plain)
            assert await resp.read() == b""
        # Byte-level check that HEAD really sends no body.
        status, body = await raw_get(server.port, "/feeds/all.json", method="HEAD")
        assert status == 200 and body == b""


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
SIMPLEPIE_ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, "
    "text/xml;q=0.8, text/html;q=0.7, unknown/unknown;q=0.1, application/unknown;q=0.1, */*;q=0.1"
)


async def test_a_browser_gets_the_channel_page_and_readers_get_feed_types(world):
    config, store, _ = world
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        for accept, want in [
            (BROWSER_ACCEPT, "text/html"),
            (SIMPLEPIE_ACCEPT, "application/rss+xml"),
            ("*/*", "application/rss+xml"),
            ("", "application/rss+xml"),
        ]:
            async with http.get(f"{server.url}/feeds/carbon-market.xml", headers={"Accept": accept}) as resp:
                assert resp.headers["Content-Type"] == f"{want}; charset=utf-8", accept
                body = await resp.read()
                etag = resp.headers["ETag"]
            if want == "text/html":
                page = html.fromstring(body)
                assert page.xpath("string(//h1)") == "碳市场"
                assert "https://feeds.example.org/feeds/carbon-market.xml" in page.xpath("string(//p[@class='notice'])")
            else:
                assert body == (config.feeds_dir / "carbon-market.xml").read_bytes()
            async with http.get(
                f"{server.url}/feeds/carbon-market.xml", headers={"Accept": accept, "If-None-Match": etag}
            ) as resp:
                assert resp.status == 304
        async with http.get(f"{server.url}/feeds/all.json", headers={"Accept": BROWSER_ACCEPT}) as resp:
            assert resp.headers["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    "target",
    [
        "/../state/feedbot.db",
        "/feeds/../feedbot.db",
        "/feeds/..%2ffeedbot.db",
        "/feeds/%2e%2e/feedbot.db",
        "/feeds/..%2F..%2Fstate%2Ffeedbot.db",
        "/feedbot.db",
        "/state/feedbot.db",
        "/feeds/",
        "/feeds",
        "/feeds/carbon-market.html",
        "/feeds/unknown.xml",
        "/feeds/secret.xml",
        "/feeds/.all.xml.tmp",
        "/feeds/all.xml/",
        "/index.html",
        "/admin",
        "//etc/passwd",
        "/feeds/%00.xml",
    ],
)
async def test_only_known_paths_are_served(world, target):
    config, store, _ = world
    (config.feeds_dir / "secret.xml").write_text("<secret/>")  # in the directory, but not a channel
    (config.feeds_dir / ".all.xml.tmp").write_text("<half-written/>")
    async with serving(config, store) as server:
        status, body = await raw_get(server.port, target)
    assert status == 404, (target, status)
    assert b"SQLite format" not in body and b"secret" not in body and b"half-written" not in body


async def test_opml_lists_every_channel_feed_and_each_resolves(world):
    config, store, _ = world
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/opml") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/x-opml")
            doc = etree.fromstring(await resp.read())
        assert doc.get("version") == "2.0"
        outlines = doc.findall("./body/outline")
        assert [o.get("title") for o in outlines] == [
            f"{feeds.channel(c, config.topics).name} · feedbot" for c in CHANNELS
        ]
        for outline in outlines:
            url = urlsplit(outline.get("xmlUrl"))
            assert url.netloc == "feeds.example.org"  # the configured public base URL
            async with http.get(server.url + url.path) as resp:  # ... whose paths this server answers
                parsed = feedparser.parse(await resp.read())
                assert parsed.bozo == 0 and parsed.feed.title == outline.get("title")


async def test_healthz_metrics_and_stylesheet(world):
    config, store, _ = world
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/healthz") as resp:
            assert resp.status == 200 and await resp.json() == {"status": "ok"}
        async with http.get(f"{server.url}/metrics") as resp:
            assert resp.status == 404  # no hook given: not served
        async with http.get(f"{server.url}/feeds/feed.xsl") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/xsl")
            etree.XSLT(etree.fromstring(await resp.read()))

    state = {"ok": True}
    hooks = {
        "health": lambda: (state["ok"], {"sources": {"zhongguohuanjingbao": "failing"}}),
        "metrics": lambda: "feedbot_articles_total 13\n",
    }
    async with serving(config, store, **hooks) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        state["ok"] = False
        async with http.get(f"{server.url}/healthz") as resp:
            assert resp.status == 503
            assert await resp.json() == {"status": "unhealthy", "sources": {"zhongguohuanjingbao": "failing"}}
        async with http.get(f"{server.url}/metrics") as resp:
            assert resp.status == 200 and await resp.text() == "feedbot_articles_total 13\n"
            assert resp.headers["Content-Type"].startswith("text/plain")


async def test_index_lists_channels_with_autodiscovery_and_no_hostile_markup(world):
    config, store, _ = world
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        async with http.get(server.url + "/") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "script-src" not in resp.headers["Content-Security-Policy"]  # default-src 'none' covers it
            page = await resp.text()
        async with http.head(server.url + "/") as resp:
            assert resp.status == 200 and await resp.read() == b""
    assert live_markup(page) == []
    tree = html.fromstring(page)
    alternates = {
        (link.get("type"), link.get("href")) for link in tree.xpath("//head/link[@rel='alternate']")
    }
    for cid in CHANNELS:
        for ext, mime in TYPES.items():
            assert (mime, f"feeds/{cid}.{ext}") in alternates
        section = tree.xpath(f"//section[@id='{cid}']")[0]
        assert section.xpath("string(.//h2)").startswith(feeds.channel(cid, config.topics).name)
        assert len(section.xpath(".//svg//rect")) == 12
    carbon = tree.xpath("//section[@id='carbon-market']")[0]
    assert carbon.xpath(".//a[@class='tg']/@href") == ["https://t.me/my_carbon_market"]
    assert (
        tree.xpath("//section[@id='climate-finance']//a[@class='tg']") == []
    )  # numeric chat: no public link
    # The hostile title is plain text: shown literally, escaped once, inert.
    assert HOSTILE_TITLE in carbon.xpath("string(.//ol)")
    assert all(h.startswith(("https://", "feeds/", "opml", "c/")) for h in tree.xpath("//a/@href"))
    assert tree.xpath("//section[@id='carbon-market']/h2/a/@href") == ["c/carbon-market/"]


def test_chart_counts_articles_per_week(tmp_path: Path):
    config = feeds_config(tmp_path / "state")
    store = Store(config.db_path)
    now = fixed_now()
    fill_store(store, now, per_topic={"carbon-market": 5}, hostile=False)
    tree = html.fromstring(render_index(config, store, now=now))
    titles = tree.xpath("//section[@id='carbon-market']//svg/rect/title/text()")
    counts = [int(re.search(r"：(\d+) 篇", t).group(1)) for t in titles]
    assert counts == store.weekly_counts("carbon-market", 12, now=now)
    assert sum(counts) == 6  # five of its own and the one filed under every channel
    store.close()


async def test_binds_loopback_by_default(world):
    config, store, _ = world
    assert config.web.host == "127.0.0.1"
    async with serving(config, store) as server:
        assert server.site.name.startswith("http://127.0.0.1:")
        status, _ = await raw_get(server.port, "/healthz")
        assert status == 200


async def test_index_survives_an_empty_store(tmp_path: Path):
    config = feeds_config(tmp_path / "state")
    store = Store(config.db_path)
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        async with http.get(server.url + "/") as resp:
            page = await resp.text()
            assert resp.status == 200 and page.count("暂无文章") == 5
        async with http.get(server.url + "/feeds/all.atom") as resp:
            assert resp.status == 404  # not written yet
    store.close()


async def test_a_failing_health_check_is_503_and_a_busy_port_a_clear_error(world):
    config, store, _ = world

    def broken() -> tuple[bool, dict]:
        raise RuntimeError("database is locked")

    async with serving(config, store, health=broken) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/healthz") as resp:
            assert resp.status == 503
            assert await resp.json() == {"status": "unhealthy", "error": "health check failed: RuntimeError"}
        with pytest.raises(PublishError, match=f"web.listen: cannot listen on 127.0.0.1:{server.port}"):
            await start_web(create_app(config, store), "127.0.0.1", server.port)
