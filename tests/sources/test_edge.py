"""The source edge: URLs, dates and text validated and clamped once, before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedbot.model import Entry
from feedbot.sources.edge import clean_document, clean_entry, clean_url, entry_title, plausible
from feedbot.sources.feed import parse_feed

NOW = datetime(2024, 6, 3, 4, 0, tzinfo=UTC)


def test_urls_are_http_with_a_host_and_carry_no_control_characters():
    assert clean_url("http://host/a\x01b") == "http://host/a%01b"
    assert clean_url("  https://host/a b\\c\x7f ") == "https://host/a%20b%5Cc%7F"
    assert clean_url("http://host/中文?q=碳") == "http://host/中文?q=碳"  # an IRI is fine; only controls go
    for bad in ("javascript:alert(1)", "ftp://host/x", "/relative/path", "http://", "http://ho\x01st/x",
                "http://host:99999/x", "mailto:a@b.c", "", None, "http://[::1/x"):
        assert clean_url(bad) is None, bad


def test_dates_after_two_days_from_now_or_before_1990_are_not_believed():
    assert plausible(NOW + timedelta(days=1), NOW) == NOW + timedelta(days=1)
    assert plausible(datetime(1990, 1, 1, tzinfo=UTC), NOW) is not None
    assert plausible(NOW + timedelta(days=2, seconds=1), NOW) is None
    assert plausible(datetime(9999, 12, 31, 23, tzinfo=UTC), NOW) is None
    assert plausible(datetime(1970, 1, 1, tzinfo=UTC), NOW) is None
    assert plausible(datetime(1, 1, 1, tzinfo=UTC), NOW) is None


def test_clean_entry_clamps_every_field():
    entry = Entry(source_id="s", key="k\ud800\x01", url="http://host/a\x01b", title=" 标题\x00 \n 二 ",
                  body_html="<p>正文\x08\udfff</p>", published_at=datetime(9999, 12, 31, 23, tzinfo=UTC),
                  updated_at=datetime(1970, 1, 1, tzinfo=UTC), outlet="报\x1b社", origin_url="javascript:x")
    clean = clean_entry(entry, NOW)
    assert clean.key == "k\ufffd"
    assert clean.url == "http://host/a%01b"
    assert clean.title == "标题 二"
    assert clean.body_html == "<p>正文\ufffd</p>"
    assert clean.published_at is None and clean.updated_at is None
    assert clean.outlet == "报社" and clean.origin_url is None


def test_a_lone_surrogate_reference_no_longer_sinks_the_whole_feed():
    doc = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>c</title>'
           '<item><title>坏 &#xD800; 条目</title><guid>bad</guid><description>x &#55296; y &#x1; z</description></item>'
           '<item><title>好条目</title><guid>good</guid><description>正文</description></item>'
           '</channel></rss>').encode()
    feed = parse_feed(doc, "http://h/rss.xml", "rss")
    assert [e.title for e in feed.entries] == ["坏 \ufffd 条目", "好条目"]
    assert "&#xFFFD;" in clean_document(doc).decode()
    # A UTF-8 encoded surrogate (invalid UTF-8 some encoders write) and a raw control byte as well.
    raw = doc.replace(b"&#xD800;", b"\xed\xa0\x80\x01")
    assert [e.title for e in parse_feed(raw, "http://h/rss.xml", "rss").entries] == ["坏 \ufffd 条目", "好条目"]


def test_a_feed_title_marked_html_is_decoded_once_into_plain_text():
    assert entry_title({"title": "A &amp; B <b>粗</b> a&lt;b", "title_detail": {"type": "text/html"}}) \
        == "A & B 粗 a<b"
    assert entry_title({"title": "a<b & <script>", "title_detail": {"type": "text/plain"}}) == "a<b & <script>"
