"""Chat message formatting, pure: one article for one channel → Telegram HTML and a plain-text twin."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from feedbot.clock import in_shanghai
from feedbot.model import StoredArticle
from feedbot.sources.edge import plausible

TELEGRAM_LIMIT = 4096  # characters after entity parsing, counted in UTF-16 code units
TITLE_LIMIT = 300  # a title longer than this is an extraction error; don't let it eat the message
SENTENCE_ENDS = "。！？!?…"
LINK_TEXT = "原文链接"
STYLES = ("lead", "full", "headline")
LEAD_UNITS = 240  # the lead: the excerpt up to the last sentence end within this many characters
LEAD_SHORTEST = 80  # …unless that keeps less than this; then a plain cut (the rest follows in the quote)
ELLIPSIS = "…"
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Message:
    """One chat message in Telegram's HTML subset and as plain text (the can't-parse-entities fallback)."""

    html: str
    plain: str

    @property
    def units(self) -> int:
        """Length of the HTML version as Telegram counts it (after entity parsing, UTF-16)."""
        return visible_units(self.html)


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units, the way the Bot API counts message length."""
    return len(text.encode("utf-16-le")) // 2


def visible_text(markup: str) -> str:
    """The text Telegram shows for HTML we produced ourselves (every text part escaped, so tags are tags)."""
    return html.unescape(_TAG.sub("", markup))


def visible_units(markup: str) -> int:
    """UTF-16 length of the text after entity parsing."""
    return utf16_units(visible_text(markup))


def make_hashtag(tag: str | None, fallback: str = "") -> str:
    """'#碳 市场!' → '#碳市场': a hashtag holds only letters, digits and underscores."""
    raw = tag or fallback
    body = "".join(
        ch for ch in unicodedata.normalize("NFC", raw) if ch == "_" or unicodedata.category(ch)[0] in "LN"
    )
    if not body or body.isdigit():  # "#2035" alone is not a hashtag Telegram links
        return ""
    return "#" + body


def cut_units(text: str, limit: int) -> str:
    """The longest prefix of whole code points within ``limit`` UTF-16 units (never half a surrogate pair)."""
    if limit <= 0:
        return ""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return text[:index]
    return text


def trim_excerpt(text: str, limit: int) -> str:
    """Fit text into ``limit`` UTF-16 units, cutting after the last sentence end that fits.

    Falls back to a cut at a character boundary with an ellipsis when no sentence ends in range
    (or the last one would keep less than a third of the room).
    """
    text = text.strip()
    if utf16_units(text) <= limit:
        return text
    if limit <= 1:
        return ""
    prefix = cut_units(text, limit)
    end = max(prefix.rfind(mark) for mark in SENTENCE_ENDS)
    if end >= 0 and utf16_units(prefix[: end + 1]) >= limit // 3:
        # Keep a closing quote that belongs to the sentence (“……。”).
        cut = end + 1
        while cut < len(prefix) and prefix[cut] in "”’」』）)":
            cut += 1
        return prefix[:cut].rstrip()
    return cut_units(text, limit - 1).rstrip() + ELLIPSIS


def _meta_line(article: StoredArticle, outlet: str | None) -> str:
    parts = []
    if article.outlet or outlet:
        parts.append(article.outlet or outlet)
    # A date no source can mean (year 9999) reads as when feedbot first saw the article, never overflows.
    moment: datetime | None = plausible(article.published_at, article.first_seen_at) or article.first_seen_at
    if moment is not None:
        parts.append(in_shanghai(moment).strftime("%Y-%m-%d %H:%M"))
    return " · ".join(p for p in parts if p)


def _excerpt_source(article: StoredArticle, topic: str) -> str:
    excerpt = (article.excerpts.get(topic) or "").strip()
    if excerpt:
        return excerpt
    # No excerpt from the classifier: the lead paragraphs stand in for it.
    return article.text.strip()


def split_lead(text: str, size: int = LEAD_UNITS) -> tuple[str, str]:
    """(lead, rest): the text up to the last sentence end within ``size`` UTF-16 units, and what follows."""
    text = text.strip()
    if utf16_units(text) <= size:
        return text, ""
    prefix = cut_units(text, size)
    end = max(prefix.rfind(mark) for mark in SENTENCE_ENDS)
    cut = end + 1 if end >= 0 and utf16_units(prefix[: end + 1]) >= LEAD_SHORTEST else len(prefix)
    while end >= 0 and cut < len(text) and text[cut] in "”’」』）)":
        cut += 1
    return text[:cut].rstrip(), text[cut:].strip()


def format_article(
    article: StoredArticle,
    topic: str,
    hashtag: str = "",
    *,
    outlet: str | None = None,
    limit: int = TELEGRAM_LIMIT,
    style: str = "full",
) -> Message:
    """The message for one article in one channel in a style, at most ``limit`` UTF-16 units after parsing.

    ``full``: title, outlet · date, the whole excerpt, the 原文链接 link, the hashtag.
    ``lead``: the title linked, outlet · date, a lead of two or three sentences, the rest of the excerpt
    in an expandable quote (Bot API 7.4), the hashtag. ``headline``: the title linked, outlet · date, hashtag.
    """
    if style == "full":
        return _format_full(article, topic, hashtag, outlet=outlet, limit=limit)
    title = trim_excerpt(" ".join(article.title.split()), TITLE_LIMIT) or "(无标题)"
    meta = _meta_line(article, outlet)
    link = article.original_url
    tag = make_hashtag(hashtag)
    lead, rest = split_lead(_excerpt_source(article, topic)) if style == "lead" else ("", "")
    esc = html.escape

    def build(lead: str, rest: str) -> Message:
        head = f"<b>{esc(title, quote=False)}</b>"
        if link:
            head = f'<a href="{esc(link, quote=True)}">{head}</a>'
        html_parts, plain_parts = [head], [title]
        if meta:
            html_parts.append(esc(meta, quote=False))
            plain_parts.append(meta)
        if lead:
            html_parts += ["", esc(lead, quote=False)]
            plain_parts += ["", lead]
        if rest:
            html_parts.append(f"<blockquote expandable>{esc(rest, quote=False)}</blockquote>")
            plain_parts += ["", rest]
        if link:
            plain_parts += ["", f"{LINK_TEXT}: {link}"]
        if tag:
            # A quote is a block of its own: the tag follows it directly, else after a blank line.
            html_parts += [tag] if rest else ["", tag]
            plain_parts += [tag] if link else ["", tag]
        return Message(html="\n".join(html_parts), plain="\n".join(plain_parts))

    def size(message: Message) -> int:
        return max(message.units, utf16_units(message.plain))

    message = build(lead, rest)
    if size(message) > limit:  # the quote gives way first, then the lead
        room = limit - size(build(lead, "")) - 2
        rest = trim_excerpt(rest, room) if room > 1 else ""
        message = build(lead, rest)
        while size(message) > limit and (lead or rest):
            if rest:
                rest = trim_excerpt(rest, utf16_units(rest) - 1)
            else:
                lead = trim_excerpt(lead, utf16_units(lead) - 1)
            message = build(lead, rest)
    return message


def _format_full(
    article: StoredArticle,
    topic: str,
    hashtag: str = "",
    *,
    outlet: str | None = None,
    limit: int = TELEGRAM_LIMIT,
) -> Message:
    """Today's message: the channel's whole excerpt under the title, trimmed to ``limit``."""
    title = trim_excerpt(" ".join(article.title.split()), TITLE_LIMIT) or "(无标题)"
    meta = _meta_line(article, outlet)
    link = article.original_url
    tag = make_hashtag(hashtag)
    excerpt = _excerpt_source(article, topic)

    def build(body: str) -> Message:
        esc = html.escape
        html_parts = [f"<b>{esc(title, quote=False)}</b>"]
        plain_parts = [title]
        if meta:
            html_parts.append(esc(meta, quote=False))
            plain_parts.append(meta)
        if body:
            html_parts.append("")
            html_parts.append(esc(body, quote=False))
            plain_parts += ["", body]
        tail_html, tail_plain = [], []
        if link:
            tail_html.append(f'<a href="{esc(link, quote=True)}">{LINK_TEXT}</a>')
            tail_plain.append(f"{LINK_TEXT}: {link}")
        if tag:
            tail_html.append(tag)
            tail_plain.append(tag)
        if tail_html:
            html_parts += ["", *tail_html]
            plain_parts += ["", *tail_plain]
        return Message(html="\n".join(html_parts), plain="\n".join(plain_parts))

    skeleton = build("")
    # Both versions must fit: the plain one shows the URL, so it is the longer frame.
    frame = max(visible_units(skeleton.html), utf16_units(skeleton.plain)) + 2  # +2: the blank line
    body = trim_excerpt(excerpt, max(limit - frame, 0))
    message = build(body)
    while body and max(message.units, utf16_units(message.plain)) > limit:  # defensive; frame math is exact
        body = trim_excerpt(body, utf16_units(body) - 1)
        message = build(body)
    return message
