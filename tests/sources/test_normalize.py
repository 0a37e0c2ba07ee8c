"""Normalization: sanitized HTML, paragraphs, sections (the seed's lead + headed sections), hashes."""

from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone

from feedbot.model import Entry
from feedbot.sources.normalize import (
    content_hash,
    html_paragraphs,
    looks_like_heading,
    normalize,
    sanitize_html,
    split_sections,
)
from tests.doubles.site import fixture_posts

CST = timezone(timedelta(hours=8))


def seed_like_html() -> tuple[str, tuple[str, ...]]:
    post = next(p for p in fixture_posts() if p.time == datetime(2022, 3, 28, 7, 19, 21, tzinfo=CST))
    return "\n ".join(f"<p>{html.escape(p)}</p>" for p in post.paragraphs), post.paragraphs


def entry(body: str, title: str = "标题") -> Entry:
    return Entry(source_id="s", key="k", url="http://example.org/a.html", title=title, body_html=body)


def test_scripts_styles_and_their_content_are_removed():
    clean = sanitize_html("<p>正文<script>alert('x')</script><style>p{color:red}</style>"
                          "<noscript>nojs</noscript><iframe src='//evil'>frame</iframe></p>")
    assert clean == "<p>正文</p>"


def test_event_handlers_and_javascript_urls_are_removed():
    clean = sanitize_html('<p onclick="steal()">a<img src="https://e.org/x.png" onerror="alert(1)">'
                          '<a href="javascript:alert(1)">j</a><a href=" JaVaScRiPt:alert(1)">k</a>'
                          '<a href="data:text/html,<script>x</script>">d</a></p>')
    assert "onclick" not in clean and "onerror" not in clean
    assert "javascript" not in clean.lower() and "data:" not in clean
    assert '<img src="https://e.org/x.png">' in clean


def test_safe_markup_and_links_survive_with_rel():
    clean = sanitize_html('<p><strong>重点</strong> <a href="https://e.org/a" target="_blank">原文</a></p>'
                          "<table><tr><td colspan=\"2\">表</td></tr></table>")
    assert "<strong>重点</strong>" in clean
    assert '<a href="https://e.org/a" rel="noopener noreferrer">原文</a>' in clean
    assert '<td colspan="2">表</td>' in clean


def test_plain_text_bodies_become_paragraphs():
    article = normalize(entry("第一段，说明情况。\n\n  第二段　继续说明。  \n"))
    assert article.paragraphs == ("第一段，说明情况。", "第二段 继续说明。")
    assert article.text == "第一段，说明情况。\n第二段 继续说明。"
    assert len(article.sections) == 1 and article.sections[0].heading is None


def test_paragraph_splitting_on_blocks_and_line_breaks():
    assert html_paragraphs("<p>甲<br>乙</p><h2>小标题</h2><div>丙<span>丁</span></div>") == [
        ("甲", False), ("乙", False), ("小标题", True), ("丙丁", False)]
    assert html_paragraphs("") == [] and html_paragraphs("   ") == []


def test_seed_style_article_has_a_lead_and_five_headed_sections():
    body, paragraphs = seed_like_html()
    article = normalize(entry(body, title=" 落实“1+N”政策体系，健全减污降碳激励约束机制 "))
    assert article.title == "落实“1+N”政策体系，健全减污降碳激励约束机制"
    assert article.paragraphs == paragraphs
    headings = [s.heading for s in article.sections]
    assert headings[0] is None and len(headings) == 6
    assert headings[1:] == [p for p in paragraphs if looks_like_heading(p)]
    assert article.sections[0].paragraphs == paragraphs[:1]
    assert article.sections[-1].paragraphs == paragraphs[-1:]
    assert article.sections[2].text.startswith("增强气候韧性，实施适应气候变化战略\n气候变化带来")


def test_what_is_not_a_heading():
    assert not looks_like_heading("这是一句完整的话。")  # sentence punctuation
    assert not looks_like_heading("（记者 张三）")  # bylines in brackets
    assert not looks_like_heading("短")  # too short
    assert not looks_like_heading("很" * 41)  # too long
    # a short last line has nothing under it: it stays body text
    sections = split_sections([("导语。", False), ("正文一段", False)])
    assert [s.heading for s in sections] == [None] and sections[0].paragraphs == ("导语。", "正文一段")


def test_heading_tags_start_sections():
    sections = split_sections(html_paragraphs("<p>导语。</p><h3>一、市场建设。</h3><p>内容。</p>"))
    assert [s.heading for s in sections] == [None, "一、市场建设。"]


def test_content_hash_follows_what_a_reader_sees():
    body, _ = seed_like_html()
    a = normalize(entry(body))
    assert a.content_hash == content_hash(a.title, a.text)
    assert normalize(entry(body + "<script>tracking()</script>")).content_hash == a.content_hash
    assert normalize(entry(body + "<p>更正。</p>")).content_hash != a.content_hash
    assert normalize(entry(body, title="新标题")).content_hash != a.content_hash


def test_entry_fields_are_carried_over():
    when = datetime(2022, 3, 28, 7, 19, 21, tzinfo=CST)
    e = Entry(source_id="s", key="/a.html", url="http://x/a.html", title="t", body_html="<p>b。</p>",
              published_at=when, outlet="中国环境报", origin_url="http://o/1")
    a = normalize(e)
    assert (a.source_id, a.key, a.url, a.published_at, a.outlet, a.origin_url) == (
        "s", "/a.html", "http://x/a.html", when, "中国环境报", "http://o/1")
