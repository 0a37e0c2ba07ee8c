"""Normalize: HTML → sanitized HTML, plain text, paragraphs and sections."""

from __future__ import annotations

import hashlib
import re

import lxml.html
import nh3
from lxml import etree

from feedbot.model import Article, Entry, Section

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt",
    "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol",
    "p", "pre", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Their content is never text a reader should see.
DROP_WITH_CONTENT = {"script", "style", "noscript", "iframe", "object", "embed", "template", "svg", "math"}

BLOCK_TAGS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "td", "th", "dd", "dt",
              "figcaption", "div", "section", "article", "tr", "table", "ul", "ol", "dl", "figure"}
HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# A heading paragraph in these articles is a short line with no sentence-ending punctuation.
MAX_HEADING_CHARS = 40
SENTENCE_END = tuple("。！？；…：:.!?;，,")
_SPACE = re.compile(r"[ \t\r\n\f\v\u00a0\u3000\u200b]+")  # a newline inside <p> is a space


def sanitize_html(html: str) -> str:
    """Return HTML safe to republish: no scripts, styles, event handlers or javascript: URLs."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags=DROP_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    )


def clean_line(text: str) -> str:
    """Collapse runs of spaces (including ideographic and no-break spaces) and trim."""
    return _SPACE.sub(" ", text).strip()


def html_paragraphs(html: str) -> list[tuple[str, bool]]:
    """Split HTML into (text, is_heading_tag) paragraphs in document order."""
    if not html.strip():
        return []
    if "<" not in html:  # plain text bodies (some feeds, pasted excerpts)
        return [(line, False) for line in (clean_line(x) for x in html.splitlines()) if line]
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return [(clean_line(html), False)] if clean_line(html) else []
    for bad in root.iter(*DROP_WITH_CONTENT):
        bad.drop_tree() if bad.getparent() is not None else None
    out: list[tuple[str, bool]] = []
    buf: list[str] = []

    def flush(is_heading: bool = False) -> None:
        text = clean_line("".join(buf))
        buf.clear()
        if text:
            out.append((text, is_heading))

    def walk(el) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in BLOCK_TAGS:
            flush()
        if tag == "br":
            flush()
        elif el.text and tag:
            buf.append(el.text)
        for child in el:
            walk(child)
        if tag in BLOCK_TAGS:
            flush(tag in HEADING_TAGS)
        if el.tail:
            buf.append(el.tail)

    walk(root)
    flush()
    return out


def looks_like_heading(text: str) -> bool:
    """A stand-alone short line without sentence punctuation reads as a section heading."""
    if len(text) > MAX_HEADING_CHARS or len(text) < 4:
        return False
    return not (text.endswith(SENTENCE_END) or text.startswith(("（", "(", "【", "[")))


def split_sections(paragraphs: list[tuple[str, bool]]) -> tuple[Section, ...]:
    """Group paragraphs into sections; a heading starts a new one, the lead has heading None."""
    sections: list[Section] = []
    heading: str | None = None
    body: list[str] = []
    for index, (text, is_heading_tag) in enumerate(paragraphs):
        has_body_after = index + 1 < len(paragraphs) and not paragraphs[index + 1][1]
        if (is_heading_tag or looks_like_heading(text)) and index > 0 and has_body_after:
            if heading is not None or body:
                sections.append(Section(heading, tuple(body)))
            heading, body = text, []
        else:
            body.append(text)
    if heading is not None or body:
        sections.append(Section(heading, tuple(body)))
    return tuple(sections)


def content_hash(title: str, text: str) -> str:
    """A digest of what a reader sees; a change means the article was edited."""
    return hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()


def normalize(entry: Entry) -> Article:
    """Turn a fetched entry into an article: sanitized HTML, text, paragraphs and sections."""
    title = clean_line(entry.title)
    safe_html = sanitize_html(entry.body_html)
    paragraphs = html_paragraphs(safe_html)
    texts = tuple(text for text, _ in paragraphs)
    text = "\n".join(texts)
    return Article(
        source_id=entry.source_id,
        key=entry.key,
        url=entry.url,
        title=title,
        body_html=safe_html,
        text=text,
        paragraphs=texts,
        sections=split_sections(paragraphs),
        content_hash=content_hash(title, text),
        published_at=entry.published_at,
        updated_at=entry.updated_at,
        outlet=entry.outlet,
        origin_url=entry.origin_url,
    )
