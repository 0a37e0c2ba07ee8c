"""Message formatting: escaping, sentence trimming, UTF-16 limits, hashtags, the plain twin."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedbot.model import StoredArticle
from feedbot.publish.format import (
    TELEGRAM_LIMIT,
    cut_units,
    format_article,
    make_hashtag,
    trim_excerpt,
    utf16_units,
)
from tests.doubles.botapi import parse_html, utf16_len


def article(**overrides) -> StoredArticle:
    values = dict(
        id=1,
        source_id="zhongguohuanjingbao",
        key="k",
        url="https://finews.example.org/p/NW1.html",
        title="全国碳市场第二个履约周期启动",
        body_html="",
        text="第一段。第二段。",
        content_hash="h",
        published_at=datetime(2022, 3, 27, 23, 19, 21, tzinfo=UTC),
        updated_at=None,
        first_seen_at=datetime(2022, 3, 28, tzinfo=UTC),
        outlet="中国环境报",
        origin_url=None,
        excerpts={"carbon-market": "全国碳市场运行平稳。配额清缴完成率99.5%。"},
    )
    values.update(overrides)
    return StoredArticle(**values)


def test_layout_has_bold_title_outlet_shanghai_time_excerpt_link_and_hashtag():
    message = format_article(article(), "carbon-market", "#碳市场")
    text, entities = parse_html(message.html)
    assert text.splitlines() == [
        "全国碳市场第二个履约周期启动",
        "中国环境报 · 2022-03-28 07:19",  # 23:19 UTC is 07:19 the next morning in Shanghai
        "",
        "全国碳市场运行平稳。配额清缴完成率99.5%。",
        "",
        "原文链接",
        "#碳市场",
    ]
    assert {"type": "bold", "offset": 0, "length": 14} in entities
    assert {
        "type": "text_link",
        "offset": text.index("原文链接"),
        "length": 4,
        "url": "https://finews.example.org/p/NW1.html",
    } in entities
    assert "原文链接: https://finews.example.org/p/NW1.html" in message.plain


def test_excerpt_is_the_one_for_this_channel_and_falls_back_to_the_text():
    a = article(excerpts={"carbon-market": "碳市场的那一段。", "climate-finance": "投融资的那一段。"})
    assert "投融资的那一段。" in parse_html(format_article(a, "climate-finance", "#气候投融资试点").html)[0]
    assert "碳市场的那一段" not in parse_html(format_article(a, "climate-finance", "").html)[0]
    assert "第一段。第二段。" in parse_html(format_article(a, "carbon-manager", "").html)[0]


def test_hostile_title_and_url_are_shown_literally():
    a = article(
        title='<script>alert(1)</script> & <b>粗体</b> "引号"',
        origin_url='https://example.org/a?x=1&y="2"><b>',
        excerpts={"carbon-market": "a < b && c > d; &amp; 不是实体。"},
    )
    message = format_article(a, "carbon-market", "#碳市场")
    text, entities = parse_html(message.html)  # raises if Telegram would refuse it
    assert text.startswith('<script>alert(1)</script> & <b>粗体</b> "引号"\n')
    assert "a < b && c > d; &amp; 不是实体。" in text
    link = next(e for e in entities if e["type"] == "text_link")
    assert link["url"] == 'https://example.org/a?x=1&y="2"><b>'


def test_a_10000_character_excerpt_becomes_a_valid_message_cut_at_a_sentence_end():
    sentence = "全国碳排放权交易市场扩大覆盖范围，纳入钢铁、水泥和铝冶炼行业。"
    a = article(excerpts={"carbon-market": sentence * 400})  # ≈ 12,800 characters
    message = format_article(a, "carbon-market", "#碳市场")
    text, _ = parse_html(message.html)
    assert utf16_len(text) <= TELEGRAM_LIMIT
    assert utf16_len(message.plain) <= TELEGRAM_LIMIT
    body = text.split("\n\n")[1]
    assert body.endswith("。") and len(body) > 3000
    assert text.endswith("#碳市场")


def test_limit_counts_utf16_units_and_never_splits_a_surrogate_pair():
    emoji_text = "🌏" * 3000  # 6000 UTF-16 units, no sentence end anywhere
    message = format_article(article(excerpts={"carbon-market": emoji_text}), "carbon-market", "#碳市场")
    text, _ = parse_html(message.html)
    assert utf16_len(text) <= TELEGRAM_LIMIT
    body = text.split("\n\n")[1]
    assert body.endswith("…") and set(body[:-1]) == {"🌏"}
    assert cut_units("a🌏b", 2) == "a"
    assert cut_units("a🌏b", 3) == "a🌏"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("第一句。第二句！第三句？", 100, "第一句。第二句！第三句？"),
        ("第一句。第二句！第三句？", 9, "第一句。第二句！"),
        ("他说：“好。”然后走了。", 8, "他说：“好。”"),
        ("没有句号的一整段文字没有句号", 6, "没有句号的…"),
    ],
)
def test_trim_excerpt_prefers_sentence_ends(text, limit, expected):
    assert trim_excerpt(text, limit) == expected
    assert utf16_units(trim_excerpt(text, limit)) <= limit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("#碳市场", "#碳市场"),
        ("碳 市场", "#碳市场"),
        ("#适应气候变化战略2035", "#适应气候变化战略2035"),
        ("#carbon-market!", "#carbonmarket"),
        ("#2035", ""),
        ("", ""),
        ("#碳排放管理员·职业", "#碳排放管理员职业"),
    ],
)
def test_hashtags_keep_only_letters_digits_and_underscores(raw, expected):
    assert make_hashtag(raw) == expected


def test_missing_link_time_and_outlet_are_left_out():
    a = article(url=None, origin_url="javascript:alert(1)", outlet=None, published_at=None)
    message = format_article(a, "carbon-market", "")
    text, entities = parse_html(message.html)
    assert "原文链接" not in text and not any(e["type"] == "text_link" for e in entities)
    assert text.splitlines()[1] == "2022-03-28 08:00"  # first_seen_at stands in for the publication time


def test_huge_title_is_capped():
    message = format_article(article(title="标题很长。" * 1000), "carbon-market", "#碳市场")
    text, _ = parse_html(message.html)
    assert utf16_len(text.splitlines()[0]) <= 300
    assert utf16_len(text) <= TELEGRAM_LIMIT
