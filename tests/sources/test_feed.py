"""RSS/Atom sources via feedparser on fetched bytes: dialects, keys, 304, broken and hostile feeds."""

from __future__ import annotations

import resource
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from feedbot.clock import utcnow
from feedbot.errors import ParseError
from feedbot.model import SourceState
from feedbot.settings.config import FetchConfig, SourceConfig
from feedbot.sources.feed import FeedSource, entry_key, parse_feed
from feedbot.sources.http import Fetcher
from tests.doubles.site import BILLION_LAUGHS

RSS_091 = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
 "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>旧式频道</title><link>http://example.org/</link>
<description>d</description><language>zh-cn</language>
<item><title>碳市场周报</title><link>http://example.org/a1.html</link><description>第一期。</description></item>
<item><title>气候投融资动态</title><link>http://example.org/a2.html</link><description>第二期。</description></item>
</channel></rss>"""
RSS_10 = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="http://example.org/"><title>RDF 频道</title><link>http://example.org/</link>
<description>d</description></channel>
<item rdf:about="http://example.org/r1"><title>适应气候变化</title><link>http://example.org/r1</link>
<description>正文一。</description><dc:date>2024-03-01T08:00:00+08:00</dc:date></item>
</rdf:RDF>"""
ATOM_NO_IDS = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>无编号</title><updated>2024-03-02T00:00:00Z</updated>
<entry><title>有链接</title><link href="/posts/1.html"/><updated>2024-03-02T00:00:00Z</updated>
<content type="html">&lt;p&gt;全文&lt;/p&gt;</content></entry>
<entry><title>什么都没有</title><updated>2024-03-01T00:00:00Z</updated><summary>只有摘要。</summary></entry>
</feed>"""
BOZO_WITH_ENTRIES = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>有瑕疵</title>
<item><title>第一条&nbsp;未定义实体</title><guid>g1</guid></item>
<item><title>第二条</title><guid>g2</guid></item>
</channel></rss>"""


@pytest.fixture
async def fetcher():
    async with Fetcher(FetchConfig(timeout=1, deadline=3)) as client:
        yield client


def feed_source(url: str, fetcher: Fetcher, backfill=None, outlet=None) -> FeedSource:
    return FeedSource(SourceConfig(id="rss", kind="feed", url=url, backfill=backfill, outlet=outlet), fetcher)


def state_after(result) -> SourceState:
    return SourceState(id="rss", kind="feed", url="", etag=result.etag, last_modified=result.last_modified,
                       last_ok_at=utcnow())


async def test_rss2_entries_are_keyed_by_guid(site, fetcher):
    result = await feed_source(site.rss_url, fetcher).poll(None, set())
    posts = site.category_posts()
    assert [e.key for e in result.entries] == [site.url(p.path) for p in posts]
    first = result.entries[0]
    assert first.title == posts[0].title and first.url == site.url(posts[0].path)
    assert first.published_at == posts[0].time.astimezone(UTC)
    assert posts[0].paragraphs[0] in first.body_html
    assert first.outlet == "中国环境报新闻"  # the feed's title when the source names no outlet


async def test_site_atom_feed_holds_only_the_newest_ten(site, fetcher):
    site.add_other_posts(4)
    result = await feed_source(site.feed_url, fetcher).poll(None, set())
    assert len(result.entries) == 10
    assert result.entries[0].key == site.url(max(site.posts.values(), key=lambda p: p.time).path)


async def test_unchanged_feed_is_304_and_not_parsed(site, fetcher):
    source = feed_source(site.rss_url, fetcher)
    first = await source.poll(None, set())
    second = await source.poll(state_after(first), {e.key for e in first.entries})
    assert second.not_modified and second.entries == ()
    assert second.etag == first.etag


async def test_older_dialects_parse_with_link_keys(site, fetcher):
    old = await feed_source(site.put("/rss091.xml", RSS_091), fetcher).poll(None, set())
    assert [e.key for e in old.entries] == ["http://example.org/a1.html", "http://example.org/a2.html"]
    rdf = await feed_source(site.put("/rdf.xml", RSS_10), fetcher).poll(None, set())
    assert [e.key for e in rdf.entries] == ["http://example.org/r1"]
    assert rdf.entries[0].published_at == datetime(2024, 3, 1, 0, 0, tzinfo=UTC)


async def test_atom_without_ids_keys_by_link_then_hash(site, fetcher):
    url = site.put("/noids.atom", ATOM_NO_IDS)
    result = await feed_source(url, fetcher).poll(None, set())
    linked, bare = result.entries
    assert linked.key == site.url("/posts/1.html") and linked.body_html == "<p>全文</p>"
    assert bare.key.startswith("sha256:") and len(bare.key) == 7 + 64
    again = parse_feed(ATOM_NO_IDS.encode(), url, "rss")
    assert again.entries[1].key == bare.key  # stable between polls


def test_hash_key_changes_with_content():
    assert entry_key({}, "题", "正文") != entry_key({}, "题", "正文改")
    assert entry_key({"id": "tag:x", "link": "http://l"}, "t", "b") == "tag:x"


async def test_feed_with_bozo_but_entries_is_accepted_with_a_warning(site, fetcher):
    result = await feed_source(site.put("/bozo.xml", BOZO_WITH_ENTRIES), fetcher).poll(None, set())
    assert [e.key for e in result.entries] == [site.url("/g1"), site.url("/g2")]  # relative guids resolved
    assert len(result.warnings) == 1 and "not well-formed" in result.warnings[0]


@pytest.mark.parametrize(("kind", "words"), [
    ("malformed-xml", "malformed feed at {url} with no readable entries: "),
    ("html", "expected an RSS or Atom feed from {url} but got an HTML page (text/html; charset=utf-8)"),
    ("empty", "empty body from {url}: expected an RSS or Atom feed"),
    ("billion-laughs", "refusing the feed at {url}: its DOCTYPE declares XML entities"),
])
async def test_broken_feeds_are_clear_parse_errors(site, fetcher, kind, words):
    site.fault("/feed.xml", kind)
    with pytest.raises(ParseError) as caught:
        await feed_source(site.feed_url, fetcher).poll(None, set())
    assert str(caught.value).startswith(words.format(url=site.feed_url))


def test_billion_laughs_is_refused_before_any_parser_expands_it():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(50):
        with pytest.raises(ParseError, match="declares XML entities"):
            parse_feed(BILLION_LAUGHS, "http://x/feed.xml", "s")
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50 * 1024  # expanding &lol9; once would need ~3 GB


def test_a_plain_doctype_without_entities_is_fine():
    assert len(parse_feed(RSS_091.encode(), "http://x/f.xml", "s").entries) == 2


async def test_gbk_encoded_feed_is_decoded(site, fetcher):
    body = BOZO_WITH_ENTRIES.replace("&nbsp;", "").replace('encoding="utf-8"', 'encoding="gbk"').encode("gbk")
    result = await feed_source(site.put("/gbk.xml", body, "text/xml"), fetcher).poll(None, set())
    assert [e.title for e in result.entries] == ["第一条未定义实体", "第二条"] and not result.warnings


async def test_first_poll_bounded_by_count_and_date(site, fetcher):
    by_count = await feed_source(site.rss_url, fetcher, backfill=2).poll(None, set())
    assert [e.key for e in by_count.entries] == [site.url(p.path) for p in site.category_posts()[:2]]
    by_date = await feed_source(site.rss_url, fetcher, backfill=date(2022, 4, 3)).poll(None, set())
    assert len(by_date.entries) == 2


async def test_later_polls_return_new_and_stored_entries_not_old_unseen_ones(site, fetcher):
    source = feed_source(site.rss_url, fetcher, backfill=2)
    first = await source.poll(None, set())
    known = {e.key for e in first.entries}
    fresh = site.add_post("新发布的文章", ["正文。"], when=datetime.now(UTC))
    second = await source.poll(state_after(first), known)
    keys = [e.key for e in second.entries]
    assert keys == [site.url(fresh.path), *[e.key for e in first.entries]]  # stored ones: checked for edits


async def test_feed_source_outlet_from_config(site, fetcher):
    result = await feed_source(site.rss_url, fetcher, outlet="中国环境报").poll(None, set())
    assert {e.outlet for e in result.entries} == {"中国环境报"}


def test_state_helper_shape():
    state = replace(SourceState(id="a", kind="feed", url="u"), failures=2)
    assert state.failures == 2
