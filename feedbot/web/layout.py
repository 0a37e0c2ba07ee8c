"""What every HTML page shares: the shell, escaping, dates, one article in a list, page navigation.

Every stored string reaches a page through ``text`` (markup stripped, then escaped) or ``attr`` (escaped for
an attribute), exactly once, right here at output; callers pass raw values and never escape themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from html import escape
from importlib import resources
from string import Template
from urllib.parse import urlencode

from feedbot import PROJECT_URL, __version__
from feedbot.clock import SHANGHAI
from feedbot.model import StoredArticle
from feedbot.publish import feeds
from feedbot.publish.channels import FEED_FORMATS, Channel

FORMAT_LABELS = {"xml": "RSS", "atom": "Atom", "json": "JSON Feed"}
ALTERNATE_TYPES = {"xml": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}
# No script, nothing from elsewhere; forms may only go back to this server (the search box).
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'"
)
LIST_EXCERPT_CHARS = 240  # a list shows the start of the excerpt; the article page shows all of it
WHERE_WORDS = {"title": "标题", "heading": "小标题", "body": "正文"}


def text(value: str | None) -> str:
    """A stored string as HTML text: any markup dropped (script content with it), then escaped once."""
    return escape(feeds.plain_text(value), quote=False)


def attr(value: str) -> str:
    """A value (URL, id) escaped for a double-quoted attribute."""
    return escape(value, quote=True)


def shanghai(moment: datetime) -> datetime:
    """A time in Asia/Shanghai."""
    return moment.astimezone(SHANGHAI)


def time_tag(moment: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """<time> in Asia/Shanghai."""
    local = shanghai(moment)
    return f'<time datetime="{attr(local.isoformat())}">{local.strftime(fmt)}</time>'


def clip(value: str, limit: int) -> str:
    """At most ``limit`` characters, with an ellipsis when cut."""
    return value if len(value) <= limit else value[:limit].rstrip() + "…"


@cache
def _shell() -> Template:
    source = resources.files("feedbot").joinpath("data", "templates", "page.html").read_text(encoding="utf-8")
    return Template(source)


def page(*, title: str, root: str, content: str, head: str = "", search_box: bool = True) -> str:
    """A whole page around ``content`` (already HTML); ``root`` is the relative way back to the site root."""
    box = (f'<form action="{attr(root + "search")}" method="get" role="search">'
           '<input type="search" name="q" placeholder="搜索文章（如：碳市场、CCER）" aria-label="搜索文章" required>'
           '<button type="submit">搜索</button></form>') if search_box else ""
    return _shell().substitute(
        title=escape(title, quote=False),
        head=head,
        root=attr(root),
        search_box=box,
        content=content,
        generator=f'由 <a href="{attr(PROJECT_URL)}">feedbot</a> {escape(__version__)} 生成',
    )


def feed_alternates(item: Channel, root: str) -> str:
    """Autodiscovery <link>s for one channel's feeds."""
    return "\n".join(
        f'<link rel="alternate" type="{ALTERNATE_TYPES[ext]}" title="{attr(item.title)}（{FORMAT_LABELS[ext]}）" '
        f'href="{attr(f"{root}feeds/{item.id}.{ext}")}">'
        for ext in FEED_FORMATS
    )


def subscribe_links(item: Channel, root: str) -> str:
    """The channel's feed links and its Telegram link."""
    links = [
        f'<li><a href="{attr(f"{root}feeds/{item.id}.{ext}")}" type="{ALTERNATE_TYPES[ext]}" '
        f'class="feed">{FORMAT_LABELS[ext]}</a></li>'
        for ext in FEED_FORMATS
    ]
    if item.telegram_url:
        links.append(f'<li><a href="{attr(item.telegram_url)}" class="tg" rel="noopener noreferrer">'
                     f"Telegram {escape(item.chat or '', quote=False)}</a></li>")
    return f'<ul class="subscribe" aria-label="订阅 {attr(item.name)}">{"".join(links)}</ul>'


def article_url(root: str, article_id: int) -> str:
    """The article page of one stored article."""
    return f"{root}a/{article_id}"


def byline(article: StoredArticle, root: str) -> str:
    """Outlet, date (Asia/Shanghai), the original link and the way to the article page."""
    parts = [escape(feeds.author_of(article), quote=False), time_tag(feeds.published(article))]
    if article.original_url:
        parts.append(f'<a href="{attr(article.original_url)}" rel="noopener noreferrer">原文</a>')
    parts.append(f'<a href="{attr(article_url(root, article.id))}">为何收录</a>')
    return f'<p class="meta">{" · ".join(parts)}</p>'


def article_item(article: StoredArticle, root: str, body_html: str) -> str:
    """One article in a list: its title (to the original, else its page), byline, and ``body_html``."""
    title = text(article.title) or "（无标题）"
    href = article.original_url or article_url(root, article.id)
    rel = ' rel="noopener noreferrer"' if article.original_url else ""
    return (f'<li id="a{article.id}"><h3><a href="{attr(href)}"{rel}>{title}</a></h3>'
            f"{byline(article, root)}{body_html}</li>")


@dataclass(frozen=True)
class Pager:
    """Where one page of a list sits: its number, whether more follow, how to link a page number."""

    number: int
    has_next: bool
    last: int | None = None  # known when the list is counted

    def nav(self, href) -> str:
        """Previous / position / next links (``href(n)`` gives page n's URL)."""
        parts = []
        if self.number > 1:
            parts.append(f'<a rel="prev" href="{attr(href(self.number - 1))}">← 较新</a>')
        where = f"第 {self.number} 页" + (f" / 共 {self.last} 页" if self.last else "")
        parts.append(f'<span class="at">{where}</span>')
        if self.has_next:
            parts.append(f'<a rel="next" href="{attr(href(self.number + 1))}">较早 →</a>')
        return f'<nav class="pages" aria-label="翻页">{"".join(parts)}</nav>'

    def head_links(self, href) -> str:
        """rel=prev/next in the head, for crawlers and readers that follow them."""
        links = []
        if self.number > 1:
            links.append(f'<link rel="prev" href="{attr(href(self.number - 1))}">')
        if self.has_next:
            links.append(f'<link rel="next" href="{attr(href(self.number + 1))}">')
        return "\n".join(links)


def query_string(**params: str | int | None) -> str:
    """?a=b&c=d from the params that have a value."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else ""
