"""Channel, article and search pages in headless Chromium: rendered, links resolve, paging, search, escaping.

Screenshots (390 px phone, desktop) land in test-artifacts/ to be looked at.
"""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import aiohttp
import pytest
from lxml import html

from feedbot.model import Classification, Evidence, TopicMatch
from feedbot.publish import feeds
from feedbot.store import Store
from feedbot.web.channel import PAGE_SIZE
from tests.conftest import require_program
from tests.feeds_helpers import BAD_MARKERS, HOSTILE_TITLE, article, expected, feeds_config, fill_store, serving
from tests.web.test_chromium import chromium

KNOWN_TITLE = "全国温室气体自愿减排交易市场重启"
EXTRA = PAGE_SIZE + 5  # carbon-market spans two pages


@pytest.fixture
def world(tmp_path: Path):
    config = feeds_config(tmp_path / "state")
    store = Store(config.db_path)
    now = datetime.now(UTC)
    items = fill_store(store, now)
    for n in range(EXTRA):
        when = now - timedelta(days=60 + n)
        art, cls = article(5000 + n, f"碳市场存档 第{n + 1:02d}篇", ("carbon-market",), when)
        store.save_article(art, cls, {}, now=when)
    art, _ = article(9000, KNOWN_TITLE, (), now - timedelta(days=5),
                     body_html="<p>CCER 重启后，首批方法学发布，覆盖林业碳汇等领域。</p>"
                               "<p>Voluntary carbon pricing returns to China.</p>", outlet="经济日报")
    evidence = (Evidence("自愿减排", "title", 1, 4.0), Evidence("CCER", "body", 1, 2.5),
                Evidence("方法学", "body", 1, 1.5))
    cls = Classification((TopicMatch("carbon-market", 9.5, True, evidence, "CCER 重启后，首批方法学发布。"),))
    known_id = store.save_article(art, cls, {}, now=now - timedelta(days=5)).article_id
    feeds.rebuild_all(store, config)
    yield config, store, items, known_id
    store.close()


async def look(program: str, profile: Path, url: str, shots: dict[str, tuple[int, int]]) -> str:
    """The DOM Chromium builds for ``url``, and a screenshot per name → (width, height)."""
    runs = [chromium(program, profile / "dom", "--dump-dom", url)]
    for name, (width, height) in shots.items():
        size = f"--window-size={width},{height}"
        runs.append(chromium(program, profile / Path(name).stem, f"--screenshot={name}", size, url))
    dom, *_ = await asyncio.gather(*runs)
    for name, size in shots.items():
        png = Path(name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == size, name
    return dom


def internal_links(dom: str, base: str, server_url: str) -> set[str]:
    tree = html.fromstring(dom)
    hrefs = tree.xpath("//a/@href | //link[@rel='alternate' or @rel='next' or @rel='prev']/@href")
    return {urljoin(base, h) for h in hrefs if urljoin(base, h).startswith(server_url)}


async def test_pages_render_link_page_and_search_in_chromium(world, tmp_path: Path, artifacts_dir: Path):
    program = require_program("chromium", "renders the pages as a browser would")
    config, store, items, known_id = world
    phone, desktop = (390, 1400), (1280, 1200)
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        channel_url = server.url + "/c/carbon-market/"
        article_url = f"{server.url}/a/{known_id}"
        short_url = f"{server.url}/search?q={quote('减排')}"
        english_url = f"{server.url}/search?q=pricing"
        channel_dom, article_dom, short_dom, english_dom = await asyncio.gather(
            look(program, tmp_path / "c", channel_url, {
                str(artifacts_dir / "channel-phone.png"): phone, str(artifacts_dir / "channel-desktop.png"): desktop}),
            look(program, tmp_path / "a", article_url, {
                str(artifacts_dir / "article-phone.png"): phone, str(artifacts_dir / "article-desktop.png"): desktop}),
            look(program, tmp_path / "s", short_url, {str(artifacts_dir / "search-phone.png"): phone}),
            look(program, tmp_path / "e", english_url, {}),
        )

        # Pages render with their CJK text, and hostile content shows as text, never as markup.
        channel = html.fromstring(channel_dom)
        assert channel.xpath("string(//h1)") == "碳市场"
        for dom in (channel_dom, article_dom, short_dom, english_dom):
            lowered = dom.lower()
            for marker in BAD_MARKERS:
                assert marker not in lowered, marker
        # The hostile title is plain text: shown literally, inert.
        assert HOSTILE_TITLE in [a.text_content() for a in channel.xpath("//ol[@class='items']/li/h3/a")]
        article_page = html.fromstring(article_dom)
        assert article_page.xpath("string(//h1)") == KNOWN_TITLE
        assert "自愿减排" in article_page.xpath("string(//table[@class='evidence'])")

        # Search finds the known article by a two-character Chinese term and by an English word.
        for dom in (short_dom, english_dom):
            assert html.fromstring(dom).xpath("//ol[@class='items']/li/@id") == [f"a{known_id}"]
        assert html.fromstring(english_dom).xpath("//p[@class='excerpt']/mark/text()") == ["pricing"]

        # Pagination, as Chromium sees it, walks to the channel's oldest article.
        titles = [a.text_content() for a in channel.xpath("//ol[@class='items']/li/h3/a")]
        url, doms = channel_url, [channel_dom]
        while True:
            nxt = html.fromstring(doms[-1]).xpath("//a[@rel='next']/@href")
            if not nxt:
                break
            url = urljoin(url, nxt[0])
            doms.append(await chromium(program, tmp_path / f"p{len(doms)}", "--dump-dom", url))
            titles += [a.text_content() for a in html.fromstring(doms[-1]).xpath("//ol[@class='items']/li/h3/a")]
        assert len(doms) == 2 and urlsplit(url).path == "/c/carbon-market/page/2"
        want = [i.title for i in expected(items, "carbon-market")] + [KNOWN_TITLE]
        want += [f"碳市场存档 第{n + 1:02d}篇" for n in range(EXTRA)]
        assert sorted(titles) == sorted(want) and titles[-1] == f"碳市场存档 第{EXTRA:02d}篇"

        # Every link on these pages that stays on this server resolves.
        links = set()
        for base, dom in ((channel_url, channel_dom), (article_url, article_dom), (short_url, short_dom),
                          (url, doms[-1])):
            links |= internal_links(dom, base, server.url)
        assert any("/a/" in link for link in links) and any("/feeds/" in link for link in links)
        for link in sorted(links):
            async with http.get(link) as resp:
                assert resp.status == 200, link
