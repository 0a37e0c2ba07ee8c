"""An article's page: where it came from, and for each channel the passage and the evidence that put it there."""

from __future__ import annotations

from html import escape
from typing import Any

from feedbot.model import Evidence, StoredArticle, TopicMatch
from feedbot.publish import feeds
from feedbot.publish.channels import ALL
from feedbot.web import layout
from feedbot.web.channel import channel_path, find_channel


def _evidence_table(evidence: tuple[Evidence, ...]) -> str:
    if not evidence:
        return '<p class="empty">没有保存匹配词（例如由旧版本或批量导入写入）。</p>'
    rows = "".join(
        f"<tr><td>{escape(e.term, quote=False)}</td><td>{layout.WHERE_WORDS.get(e.where, escape(e.where))}</td>"
        f'<td class="num">{e.count} 次</td><td class="num">{e.weight:g}</td></tr>'
        for e in sorted(evidence, key=lambda e: -e.weight)
    )
    return ('<table class="evidence"><thead><tr><th>匹配词</th><th>位置</th>'
            '<th class="num">次数</th><th class="num">计分</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _in_words(match: TopicMatch, name: str, threshold: float | None) -> str:
    """The verdict as a sentence: score, the rule it passed, the strongest terms."""
    strongest = sorted(match.evidence, key=lambda e: -e.weight)[:3]
    terms = "、".join(
        f"「{escape(e.term, quote=False)}」（{layout.WHERE_WORDS.get(e.where, escape(e.where))}，{e.count} 次）"
        for e in strongest)
    rule = f"，达到现行收录门槛 {threshold:g}" if threshold is not None and match.score >= threshold else ""
    said = f"得分 {round(match.score, 1):g}{rule}。"
    if terms:
        said += f"分值主要来自 {terms}。"
    return f"<p>归入「{escape(name, quote=False)}」：{said}下面是本频道摘录的段落和全部匹配词。</p>"


def _name(config: Any, topic: str) -> str:
    item = find_channel(config, topic)
    return item.name if item else topic  # a topic since removed from the config keeps its id


def _channel_block(config: Any, match: TopicMatch, root: str) -> str:
    item = find_channel(config, match.topic)
    rules = config.topics.get(match.topic)
    name = _name(config, match.topic)
    heading = (f'<a href="{layout.attr(root + channel_path(item.id))}">{escape(name, quote=False)}</a>'
               if item else escape(name, quote=False))
    # Paragraph breaks carry meaning in a passage; plain_text would fold them into spaces.
    excerpt = "\n".join(filter(None, (feeds.plain_text(line) for line in match.excerpt.splitlines())))
    quoted = f"<blockquote>{escape(excerpt, quote=False)}</blockquote>" if excerpt else ""
    return (f'<section class="channel" id="ch-{layout.attr(match.topic)}"><h2>{heading}</h2>'
            f"{_in_words(match, name, getattr(rules, 'threshold', None))}{quoted}"
            f"{_evidence_table(match.evidence)}</section>")


def _story_rows(store: Any, article: StoredArticle, root: str) -> list[tuple[str, str]]:
    """The same story elsewhere: the first-seen article a reprint joins, or the reprints of this one."""
    if not hasattr(store, "original_of"):
        return []
    original = store.original_of(article.id)
    if original is not None:
        first = store.article(original)
        label = escape(feeds.author_of(first) if first else f"#{original}", quote=False)
        return [("首发", f'<a href="{layout.attr(f"{root}a/{original}")}">{label}</a>（此文为转载，不再单独推送）')]
    reprints = store.reprints_of([article.id]).get(article.id, [])
    if not reprints:
        return []
    links = []
    for reprint in reprints:
        outlet = escape(feeds.plain_text(reprint.outlet), quote=False)
        links.append(f'<a href="{layout.attr(f"{root}a/{reprint.article_id}")}">{outlet}</a>')
    return [("另见报道", "、".join(links))]


def _facts(article: StoredArticle, story: list[tuple[str, str]] | None = None) -> str:
    rows = [("来源", escape(f"{feeds.author_of(article)}（信息源 {article.source_id}）", quote=False))]
    if article.original_url:
        rows.append(("原文", f'<a href="{layout.attr(article.original_url)}" rel="noopener noreferrer">'
                             f"{escape(article.original_url, quote=False)}</a>"))
    if article.read_url and article.read_url != article.original_url:
        rows.append(("读取自", f'<a href="{layout.attr(article.read_url)}" rel="noopener noreferrer">'
                              f"{escape(article.read_url, quote=False)}</a>"))
    rows.append(("发布时间", layout.time_tag(feeds.published(article))))
    rows.append(("首次收录", layout.time_tag(article.first_seen_at)))
    changed = layout.time_tag(article.updated_at) if article.updated_at else "收录后未改动"
    rows.append(("最后修改", changed))
    rows += story or []
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def render_article(config: Any, store: Any, article_id: int, root: str) -> str | None:
    """The page of one stored article (None when there is no such article)."""
    article = store.article(article_id)
    if article is None:
        return None
    matches = store.classifications(article_id)
    title = feeds.plain_text(article.title) or "（无标题）"
    if matches:
        names = "、".join(escape(_name(config, m.topic), quote=False) for m in matches)
        summary = f"<p class=\"lead\">这篇文章归入 {len(matches)} 个频道：{names}。分类规则的判断依据如下。</p>"
        blocks = "".join(_channel_block(config, m, root) for m in matches)
    else:
        summary = '<p class="lead">这篇文章没有达到任何频道的收录条件，只在搜索中可见。</p>'
        blocks = ""
    everything = find_channel(config, ALL)
    back = (f'<p><a href="{layout.attr(root + channel_path(everything.id))}">← {escape(everything.name)}</a></p>'
            if everything else "")
    facts = _facts(article, _story_rows(store, article, root))
    content = f"{back}<h1>{escape(title, quote=False)}</h1>{facts}{summary}{blocks}"
    return layout.page(title=f"{title} · feedbot", root=root, content=content)
