"""The pages the web server renders: the index (latest per channel, weekly charts) and the OPML list."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from importlib import resources
from string import Template
from typing import Any
from xml.sax.saxutils import quoteattr

from feedbot import PROJECT_URL, __version__
from feedbot.clock import SHANGHAI, utcnow
from feedbot.publish import feeds
from feedbot.publish.channels import ALL, Channel
from feedbot.web.channel import channel_path
from feedbot.web.layout import ALTERNATE_TYPES, FORMAT_LABELS

CHART_WEEKS = 12
LATEST_PER_CHANNEL = 5


def render_opml(config: Any) -> bytes:
    """OPML 2.0 listing every channel's Atom and RSS feed, for one-click import into a reader."""
    base = config.web.base_url.rstrip("/")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "  <head>",
        "    <title>feedbot 频道</title>",
        f"    <ownerId>{escape(base + '/')}</ownerId>",
        "  </head>",
        "  <body>",
    ]
    for item in feeds.channels(config.topics, config.chats):
        lines.append(
            f'    <outline type="rss" version="RSS2" text={quoteattr(item.title)}'
            f" title={quoteattr(item.title)}"
            f' description={quoteattr(item.description)} language="zh-CN"'
            f" xmlUrl={quoteattr(feeds.feed_url(base, item.id, 'xml'))} htmlUrl={quoteattr(base + '/')}/>"
        )
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines).encode("utf-8")


# ---- the index page --------------------------------------------------------------------------------


def _template() -> Template:
    text = resources.files("feedbot").joinpath("data", "templates", "index.html").read_text(encoding="utf-8")
    return Template(text)


def chart_svg(counts: list[int], now: datetime, name: str, span: str = "") -> str:
    """Articles per week as a small bar chart in inline SVG (hover titles, no script)."""
    width, height, gap = 14, 40, 3
    peak = max(counts, default=0) or 1
    total = sum(counts)
    bars = []
    for index, count in enumerate(counts):
        start = (now - timedelta(weeks=len(counts) - index)).astimezone(SHANGHAI)
        bar = round(count / peak * (height - 2)) if count else 0
        x = index * (width + gap)
        label = f"{start:%m-%d} 起一周：{count} 篇"
        bars.append(
            f'<rect x="{x}" y="{height - max(bar, 1)}" width="{width}" height="{max(bar, 1)}" rx="2" '
            f'fill="{"#2f7d4f" if count else "#d5dbd6"}"><title>{escape(label)}</title></rect>'
        )
    total_width = len(counts) * (width + gap) - gap
    span = span or f"近 {len(counts)} 周"
    summary = f"{name}：{span}共 {total} 篇，单周最多 {max(counts, default=0)} 篇"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{height}" '
        f'viewBox="0 0 {total_width} {height}" role="img" aria-label="{escape(summary)}">'
        f"<title>{escape(summary)}</title>{''.join(bars)}</svg>"
    )


def chart_end(newest: datetime | None, now: datetime) -> datetime | None:
    """Where a channel's chart ends: now, or its newest article when that is older than the chart (else empty)."""
    if newest is None or newest >= now - timedelta(weeks=CHART_WEEKS):
        return None
    return newest


def _channel_html(item: Channel, store: Any, now: datetime) -> str:
    topic = None if item.id == ALL else item.id
    latest = store.articles(topic, LATEST_PER_CHANNEL)
    newest = (latest[0].published_at or latest[0].first_seen_at) if latest else None
    # A quiet channel would show twelve empty weeks; chart the twelve weeks up to its newest article instead.
    end = chart_end(newest, now)
    counts = store.weekly_counts(topic, CHART_WEEKS, now=end or now)
    span = ""
    if end is None:
        count_label, caption = f"近 {CHART_WEEKS} 周 {sum(counts)} 篇", f"每周文章数<br>（近 {CHART_WEEKS} 周）"
    else:
        day = end.astimezone(SHANGHAI).strftime("%Y-%m-%d")
        span = f"截至 {day} 的 {CHART_WEEKS} 周"
        count_label = f"{span} {sum(counts)} 篇"
        caption = f"每周文章数<br>（截至最新一篇 {day} 的 {CHART_WEEKS} 周；此后没有新文章）"
    entries = []
    for article in latest:
        title = feeds.plain_text(article.title) or "（无标题）"
        link = feeds.link_of(article)
        when = feeds.published(article)
        stamp = f'<time datetime="{escape(when.isoformat())}">{when:%Y-%m-%d}</time>'
        if link:
            entries.append(
                f'<li><a href="{escape(link)}" rel="noopener noreferrer">{escape(title)}</a>{stamp}</li>'
            )
        else:
            entries.append(f"<li>{escape(title)}{stamp}</li>")
    latest_html = (
        f'<ol class="latest">{"".join(entries)}</ol>' if entries else '<p class="empty">暂无文章。</p>'
    )
    links = [
        f'<li><a href="feeds/{escape(item.id)}.{ext}" type="{ALTERNATE_TYPES[ext]}" '
        f'class="feed">{label}</a></li>'
        for ext, label in FORMAT_LABELS.items()
    ]
    if item.telegram_url:
        links.append(
            f'<li><a href="{escape(item.telegram_url)}" class="tg" rel="noopener noreferrer">'
            f"Telegram {escape(item.chat or '')}</a></li>"
        )
    css = "channel all" if item.id == ALL else "channel"
    return (
        f'<section class="{css}" id="{escape(item.id)}">'
        f'<h2><a href="{escape(channel_path(item.id))}">{escape(item.name)}</a>'
        f'<span class="count">{count_label}</span></h2>'
        f'<p class="desc">{escape(item.description)}</p>'
        f'<figure class="chart">{chart_svg(counts, end or now, item.name, span)}'
        f"<figcaption>{caption}</figcaption></figure>"
        f"{latest_html}"
        f'<p class="more"><a href="{escape(channel_path(item.id))}">全部文章（存档）→</a></p>'
        f'<ul class="subscribe" aria-label="订阅 {escape(item.name)}">{"".join(links)}</ul>'
        f"</section>"
    )


def render_index(config: Any, store: Any, now: datetime | None = None) -> str:
    """The index page: every channel with its description, chart, latest entries and subscribe links."""
    now = now or utcnow()
    items = feeds.channels(config.topics, config.chats)
    alternates = []
    for item in items:
        for ext, label in FORMAT_LABELS.items():
            alternates.append(
                f'<link rel="alternate" type="{ALTERNATE_TYPES[ext]}" '
                f'title="{escape(item.title)}（{label}）" href="feeds/{escape(item.id)}.{ext}">'
            )
    return _template().substitute(
        title=escape("feedbot · 中国气候政策新闻频道"),
        heading=escape("中国气候政策新闻频道"),
        intro=escape(
            "feedbot 自动收集中国气候政策新闻，按主题分入频道，并以 RSS、Atom、JSON Feed 和 Telegram "
            "频道发布。选择一个频道订阅即可。"
        ),
        alternates="\n".join(alternates),
        channels="\n".join(_channel_html(item, store, now) for item in items),
        generator=f'由 <a href="{escape(PROJECT_URL)}">feedbot</a> {escape(__version__)} 生成',
    )


