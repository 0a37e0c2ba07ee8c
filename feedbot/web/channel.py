"""A channel's archive page: every article, newest first, 20 a page, with its feeds and Telegram link."""

from __future__ import annotations

from html import escape
from typing import Any

from feedbot.publish import feeds
from feedbot.publish.channels import ALL, Channel, channels
from feedbot.web import layout

# A constant, not a config key: twenty items read well on a phone and keep a page under ~40 KB.
PAGE_SIZE = 20


def find_channel(config: Any, channel_id: str) -> Channel | None:
    """The catalogue's channel of this id, or None."""
    return next((c for c in channels(config.topics, config.chats) if c.id == channel_id), None)


def channel_path(channel_id: str, number: int = 1) -> str:
    """The path of page ``number`` below the site root (page 1 is the channel's own URL)."""
    return f"c/{channel_id}/" if number <= 1 else f"c/{channel_id}/page/{number}"


def _story_notes(store: Any, articles: list, root: str) -> dict[int, str]:
    """Per listed article: the outlets that reprinted it, or the first-seen article it reprints."""
    if not hasattr(store, "reprints_of"):
        return {}
    ids = [a.id for a in articles]
    notes = {}
    for original, reprints in store.reprints_of(ids).items():
        outlets = "、".join(f'<a href="{layout.attr(f"{root}a/{r.article_id}")}">{escape(r.outlet, quote=False)}</a>'
                           for r in reprints)
        notes[original] = f'<p class="also-reported">另见报道：{outlets}</p>'
    for reprint, original in store.originals_of(ids).items():
        link = layout.attr(f"{root}a/{original}")
        notes[reprint] = f'<p class="also-reported">转载，首发见 <a href="{link}">此文</a></p>'
    return notes


def render_channel(config: Any, store: Any, item: Channel, number: int, root: str, feed_ext: str = "") -> str | None:
    """Page ``number`` of the channel (None past its last page); ``feed_ext`` when answering a feed URL."""
    topic = None if item.id == ALL else item.id
    total = store.count_articles(topic)
    last = max(1, -(-total // PAGE_SIZE))
    if number < 1 or number > last:
        return None
    articles = store.articles(topic, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    pager = layout.Pager(number, number < last, last)

    def href(n: int) -> str:
        return root + channel_path(item.id, n)

    entries = []
    story = _story_notes(store, articles, root)
    for article in articles:
        excerpt = layout.clip(feeds.summary_of(article, item.id), layout.LIST_EXCERPT_CHARS)
        extra = story.get(article.id, "")
        entries.append(layout.article_item(article, root, f'<p class="excerpt">{escape(excerpt)}</p>{extra}'))
    listing = f'<ol class="items">{"".join(entries)}</ol>' if entries else '<p class="empty">暂无文章。</p>'
    notice = ""
    if feed_ext:
        feed_url = feeds.feed_url(config.web.base_url, item.id, feed_ext)
        notice = (f'<p class="notice">这是「{escape(item.name)}」的 {layout.FORMAT_LABELS[feed_ext]} 订阅源。'
                  f"把这个地址粘贴到 RSS 阅读器即可订阅：<br><code>{escape(feed_url)}</code></p>")
    content = (
        f'<h1>{escape(item.name)}</h1>'
        f'<p class="lead">{escape(item.description)}（共 {total} 篇）</p>'
        f"{notice}{layout.subscribe_links(item, root)}"
        f"{listing}{pager.nav(href) if last > 1 else ''}"
    )
    head = "\n".join(filter(None, [layout.feed_alternates(item, root), pager.head_links(href)]))
    suffix = f" · 第 {number} 页" if number > 1 else ""
    return layout.page(title=f"{item.name}{suffix} · feedbot", root=root, content=content, head=head)
