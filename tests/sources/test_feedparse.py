"""The fast feed path (fastfeedparser) against the fallback (feedparser): the same entries, or a refusal.

For every document the fast path accepts, both paths must give the same key, link, title, dates and —
after normalize(), which is what gets stored — the same text, content hash and link targets: a feed that
flips between the paths (say it breaks for a day) must not turn its stored articles into "updated" ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest

from feedbot.sources.feed import make_entry, parse_feed
from feedbot.sources.feedparse import parse_fast, parse_slow, resolve_links
from feedbot.sources.normalize import normalize

FEEDS = Path(__file__).parent / "feeds"
BASE = "https://mirror.example.net/feeds/climate.xml"
CONTENT_TYPES = {".xml": "application/rss+xml", ".json": "application/feed+json"}


def read(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def stored(raw, source: str = "s"):
    """What the store keeps of a parsed entry (Entry → normalize → Article)."""
    return normalize(make_entry(raw, source, None))


def link_targets(html: str) -> list[str]:
    if not html.strip():
        return []
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    return [el.get("href") or el.get("src") for el in root.iter("a", "img")]


@pytest.mark.parametrize("name", ["rss2.xml", "rdf.xml", "atom.xml", "gbk.xml"])
def test_fast_path_reads_like_feedparser(name):
    content = read(name)
    fast = parse_fast(content, BASE, "application/xml")
    slow = parse_slow(content, BASE, "application/xml")
    assert fast is not None, f"{name}: the fast path declined a document it should read"
    assert fast.parser == "fastfeedparser" and slow.problem is None
    assert fast.title == slow.title and fast.version == slow.version
    assert len(fast.entries) == len(slow.entries) > 0
    for quick, careful in zip(fast.entries, slow.entries, strict=True):
        a, b = stored(quick), stored(careful)
        assert (a.key, a.url, a.title) == (b.key, b.url, b.title)
        assert (a.published_at, a.updated_at) == (b.published_at, b.updated_at), a.key
        assert a.text == b.text and a.content_hash == b.content_hash, a.key
        assert link_targets(a.body_html) == link_targets(b.body_html), a.key


def test_rss2_entries_reasoned_out():
    feed = parse_feed(read("rss2.xml"), BASE, "s", content_type="application/rss+xml")
    first, tagged, dc_dated, undated, naive = feed.entries
    assert feed.title == "碳市场观察 & 评论" and first.outlet == "碳市场观察 & 评论"
    assert first.key == first.url == "https://news.example.org/2024/05/01/a.html"
    assert first.title == "全国碳市场扩容 & 配额分配方案征求意见"
    assert first.published_at == datetime(2024, 5, 1, 0, 30, tzinfo=UTC)  # 08:30 +0800
    article = normalize(first)
    assert "<script" not in article.body_html and "alert" not in article.text  # content:encoded, sanitized
    assert link_targets(article.body_html) == ["https://mirror.example.net/policy/2024-05.html",
                                               "https://mirror.example.net/feeds/img/chart.png"]
    assert tagged.key == "tag:news.example.org,2024:b" and tagged.url == "https://news.example.org/2024/04/30/b.html"
    assert normalize(tagged).paragraphs == ("温室气体自愿减排交易市场 首批项目", "第二段")
    assert dc_dated.title == "气候投融资试点 中国" and dc_dated.key == dc_dated.url  # no guid: the link
    assert dc_dated.published_at == datetime(2024, 4, 29, 1, 15, tzinfo=UTC)
    assert undated.published_at is None and undated.updated_at is None
    assert link_targets(normalize(undated).body_html) == ["https://mirror.example.net/feeds/climate.xml#note",
                                                          "https://cdn.example.org/x.pdf"]
    assert naive.published_at == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)  # no zone: read as UTC


def test_atom_entries_reasoned_out():
    feed = parse_feed(read("atom.xml"), BASE, "s")
    edited, relative, unnamed = feed.entries
    # an HTML-typed title, read as text
    assert edited.key == "tag:atom.example.org,2024:1" and edited.title == "碳排放管理员 职业"
    assert edited.published_at == datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    assert edited.updated_at == datetime(2024, 3, 2, 1, 30, tzinfo=UTC)
    assert edited.body_html.startswith("<p>人社部发布")  # the content, not the summary
    assert relative.url == "https://mirror.example.net/feeds/posts/2.html"
    assert relative.published_at == datetime(2024, 2, 28, tzinfo=UTC) and relative.updated_at is None
    assert unnamed.key == unnamed.url == "https://atom.example.org/posts/3.html"


def test_gbk_feed_reads_as_the_utf8_one():
    utf8, gbk = (parse_feed(read(name), BASE, "s") for name in ("rss2.xml", "gbk.xml"))
    assert [e.title for e in gbk.entries] == [e.title for e in utf8.entries]
    assert [normalize(e).text for e in gbk.entries] == [normalize(e).text for e in utf8.entries]


@pytest.mark.parametrize("name", ["atom-xhtml.xml", "rdf-encoded.xml", "rss2-bare.xml", "malformed.xml",
                                  "truncated.xml"])
def test_documents_the_fast_path_declines_still_parse(name):
    content = read(name)
    assert parse_fast(content, BASE, "application/xml") is None
    feed = parse_feed(content, BASE, "s", content_type="application/xml")
    slow = parse_slow(content, BASE, "application/xml")
    assert [e.key for e in feed.entries] == [stored(e).key for e in slow.entries] and feed.entries


def test_malformed_feed_keeps_every_entry_feedparser_finds():
    feed = parse_feed(read("malformed.xml"), BASE, "s", content_type="application/rss+xml")
    assert [e.key for e in feed.entries] == ["http://bad.example.org/g1", "http://bad.example.org/g2"]
    assert feed.warning and "not well-formed" in feed.warning


def test_relative_guid_and_link_go_to_feedparser():
    feed = parse_feed(read("rss2-bare.xml"), BASE, "s", content_type="application/rss+xml")
    linked, guided, untitled, empty = feed.entries
    assert linked.key == linked.url == "https://mirror.example.net/posts/1.html"
    assert guided.key == "https://mirror.example.net/feeds/posts/2.html"
    assert untitled.key.startswith("sha256:") and untitled.title == untitled.body_html[:40]  # the body's start
    assert empty.title == "空条目" and empty.body_html == ""


def test_json_feed_is_read_by_the_fast_path_only():
    content = read("feed.json")
    assert parse_slow(content, BASE).entries == ()  # feedparser 6 has no JSON Feed support
    feed = parse_feed(content, BASE, "s", content_type="application/feed+json")
    first, plain = feed.entries
    assert feed.title == "JSON 频道" and feed.version == "json"
    assert (first.key, first.url, first.title) == ("j1", "https://json.example.org/j1.html", "碳市场 JSON 条目")
    assert first.published_at == datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    assert first.updated_at == datetime(2024, 3, 2, 0, 0, tzinfo=UTC)
    assert link_targets(first.body_html) == ["https://mirror.example.net/more"]
    assert (plain.key, plain.body_html, plain.published_at) == ("j2", "只有文本。", None)


def test_header_charset_contradicting_the_document_goes_to_feedparser():
    assert parse_fast(read("gbk.xml"), BASE, "application/xml; charset=utf-8") is None
    assert parse_fast(read("gbk.xml"), BASE, "application/xml; charset=GB2312") is not None


def test_resolve_links_leaves_absolute_and_other_attributes_alone():
    html = '<a href="mailto:x@y.org">m</a><a title="/not-a-link" href=" /a ">a</a><img src=\'b.png\'>'
    assert resolve_links(html, "https://h.org/d/f.xml") == (
        '<a href="mailto:x@y.org">m</a><a title="/not-a-link" href="https://h.org/a">a</a>'
        "<img src='https://h.org/d/b.png'>")
