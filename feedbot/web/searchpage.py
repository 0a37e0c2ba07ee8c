"""The search page: a query over every stored article, optionally one channel's, with marked snippets."""

from __future__ import annotations

from html import escape
from typing import Any

from feedbot.publish.channels import ALL, channels
from feedbot.store.search import MARK_CLOSE, MARK_OPEN, search_terms
from feedbot.web import layout

RESULTS_PER_PAGE = 20
MAX_QUERY_CHARS = 200


def marked(snippet: str) -> str:
    """A plain-text snippet escaped once, its match markers turned into <mark>."""
    return escape(snippet, quote=False).replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>")


def _form(config: Any, query: str, channel_id: str, root: str) -> str:
    options = ['<option value="">全部文章</option>']
    for item in channels(config.topics, config.chats):
        if item.id == ALL:
            continue
        chosen = " selected" if item.id == channel_id else ""
        options.append(f'<option value="{layout.attr(item.id)}"{chosen}>{escape(item.name, quote=False)}</option>')
    return (f'<form class="search" action="{layout.attr(root + "search")}" method="get" role="search">'
            f'<input type="search" name="q" value="{layout.attr(query)}" aria-label="搜索词" required>'
            f'<select name="channel" aria-label="频道">{"".join(options)}</select>'
            '<button type="submit">搜索</button></form>')


def render_search(config: Any, store: Any, query: str, channel_id: str, number: int, root: str) -> str:
    """Page ``number`` of the results for ``query`` (an unknown channel searches everything)."""
    query = query.strip()[:MAX_QUERY_CHARS]
    known = {c.id: c for c in channels(config.topics, config.chats) if c.id != ALL}
    item = known.get(channel_id)
    channel_id = item.id if item else ""
    parts = ["<h1>搜索</h1>", _form(config, query, channel_id, root)]
    head = ""
    if search_terms(query):
        results = store.search(query, item.id if item else None, RESULTS_PER_PAGE, (number - 1) * RESULTS_PER_PAGE)
        pager = layout.Pager(number, results.has_more)

        def href(n: int) -> str:
            return root + "search" + layout.query_string(q=query, channel=channel_id, page=n if n > 1 else None)

        scope = f"「{escape(item.name, quote=False)}」频道中" if item else "全部文章中"
        how = "" if results.indexed else "（词语少于三个字，逐篇查找）"
        if results.hits:
            listed = "".join(
                layout.article_item(hit.article, root, f'<p class="excerpt">{marked(hit.snippet)}</p>')
                for hit in results.hits)
            parts.append(f'<p class="lead">{scope}包含「{escape(query, quote=False)}」的文章，最新收录的在前'
                         f"{how}：</p><ol class=\"items\">{listed}</ol>")
        else:
            parts.append(f'<p class="empty">{scope}没有找到包含「{escape(query, quote=False)}」的文章'
                         f'{"（本页之前还有结果）" if number > 1 else ""}。</p>')
        if number > 1 or results.has_more:
            parts.append(pager.nav(href))
            head = pager.head_links(href)
    else:
        parts.append('<p class="lead">输入词语搜索已收录的全部文章：中文至少一个字，'
                     '多个词用空格分开（须全部出现）。</p>')
    title = f"搜索：{query} · feedbot" if query else "搜索 · feedbot"
    return layout.page(title=title, root=root, content="".join(parts), head=head, search_box=False)
