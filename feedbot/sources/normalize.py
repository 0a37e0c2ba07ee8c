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

# Bounds on the work one article may cost (a hostile or broken page must not hold the event loop for
# seconds): only the first MAX_BODY_CHARS of a body are read, elements nested deeper than MAX_DEPTH lose
# their tags (their text stays), and the first MAX_PARAGRAPHS paragraphs in at most MAX_SECTIONS sections
# are kept. A real article is far inside every cap (the longest in the corpora: ~40k characters, 300
# paragraphs, 30 sections).
MAX_BODY_CHARS = 300_000
MAX_DEPTH = 64
MAX_PARAGRAPHS = 2_000
MAX_SECTIONS = 100
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
             "track", "wbr"}
# HTML closes these implicitly when a sibling of the same name opens (<p>a<p>b is two paragraphs).
_SELF_ENDING = {"p", "li", "dt", "dd", "tr", "td", "th", "option"}
_TAG_TOKEN = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)(?:\s[^>]*)?(/?)>")


def bound_body(html: str) -> str:
    """The body cut to MAX_BODY_CHARS (at a tag start when one is near) and nested at most MAX_DEPTH deep."""
    if len(html) > MAX_BODY_CHARS:
        cut = html.rfind("<", MAX_BODY_CHARS - 2000, MAX_BODY_CHARS)
        html = html[:cut if cut > 0 else MAX_BODY_CHARS]
    if html.count("<") <= MAX_DEPTH:
        return html  # cannot be nested deeper than it has tags
    return _flatten_deep(html)


def _flatten_deep(html: str) -> str:
    """Drop the tags of elements nested deeper than MAX_DEPTH, keeping their text; linear in the input."""
    stack: list[tuple[str, bool]] = []  # (tag, kept)
    open_count: dict[str, int] = {}
    pieces: list[str] = []
    last = 0
    for match in _TAG_TOKEN.finditer(html):
        closing, name, self_closing = match[1], match[2].lower(), match[3]
        if name in VOID_TAGS or self_closing:
            continue
        if not closing:
            if name in _SELF_ENDING and stack and stack[-1][0] == name:
                stack.pop()
                open_count[name] -= 1
            keep = len(stack) < MAX_DEPTH
            stack.append((name, keep))
            open_count[name] = open_count.get(name, 0) + 1
        elif open_count.get(name):
            while True:  # close up to the matching open tag; each tag is popped once: linear overall
                top, keep = stack.pop()
                open_count[top] -= 1
                if top == name:
                    break
        else:
            keep = True  # a stray close tag: harmless, the sanitizer drops it
        if not keep:
            pieces.append(html[last:match.start()])
            last = match.end()
    if last == 0:
        return html
    pieces.append(html[last:])
    return "".join(pieces)


_SANITIZER_OPTIONS = {
    "tags": ALLOWED_TAGS,
    "clean_content_tags": DROP_WITH_CONTENT,
    "attributes": ALLOWED_ATTRIBUTES,
    "url_schemes": URL_SCHEMES,
    "link_rel": "noopener noreferrer",
}
# nh3.clean turns these options into a sanitizer on every call, which took ~4/5 of its time on a short
# article; an nh3.Cleaner is that sanitizer, built once (an nh3 too old to have one keeps nh3.clean).
_CLEANER = nh3.Cleaner(**_SANITIZER_OPTIONS) if hasattr(nh3, "Cleaner") else None


def sanitize_html(html: str) -> str:
    """Return HTML safe to republish: no scripts, styles, event handlers or javascript: URLs."""
    if _CLEANER is None:
        return nh3.clean(html, **_SANITIZER_OPTIONS)
    return _CLEANER.clean(html)


def clean_line(text: str) -> str:
    """Collapse runs of spaces (including ideographic and no-break spaces) and trim."""
    return _SPACE.sub(" ", text).strip()


def html_paragraphs(html: str) -> list[tuple[str, bool]]:
    """Split HTML into (text, is_heading_tag) paragraphs in document order."""
    if not html.strip():
        return []
    if "<" not in html:  # plain text bodies (some feeds, pasted excerpts)
        return [(line, False) for line in (clean_line(x) for x in html.splitlines()) if line]
    fragment = _fragment(html)
    if fragment is None:
        try:
            root = lxml.html.fragment_fromstring(html, create_parent="div")
        except (etree.ParserError, ValueError):
            return [(clean_line(html), False)] if clean_line(html) else []
        for bad in root.iter(*DROP_WITH_CONTENT):
            bad.drop_tree() if bad.getparent() is not None else None
        fragment = root.text, root
    out: list[tuple[str, bool]] = []
    buf: list[str] = []

    def flush(is_heading: bool = False) -> None:
        if buf:  # most calls come with nothing gathered (a block right after a block)
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

    # The fragment's parent is a block of its own: its text leads, its end ends the last paragraph.
    text, parent = fragment
    if text:
        buf.append(text)
    for child in parent:
        walk(child)
    flush()
    return out


# lxml.html's parser without lxml.html's element classes: the same tree, but no Python call to choose the
# class of every element the walk touches.
_PLAIN_HTML = etree.HTMLParser()
_WHOLE_DOCUMENT = re.compile(r"^\s*<(?:html|!doctype)", re.I)  # as lxml.html.fragments_fromstring tests it


def _fragment(html: str) -> tuple[str | None, etree._Element] | None:
    """(leading text, parent of the elements) of html as lxml.html.fragment_fromstring(html, create_parent=True)
    reads it, a few times faster; None for what only that function reads exactly (a whole document, a tree
    with elements to drop with their content, a parser error), which html_paragraphs then gives it."""
    if _WHOLE_DOCUMENT.match(html):
        return None
    try:
        doc = etree.fromstring(f"<html><body>{html}</body></html>", _PLAIN_HTML)
    except Exception:
        return None
    if doc is None or doc.tag != "html":
        return None
    bodies = [el for el in doc if el.tag == "body"]
    if len(bodies) != 1 or next(bodies[0].iter(*DROP_WITH_CONTENT), None) is not None:
        return None
    body = bodies[0]
    # fragment_fromstring keeps the body's text only when it is more than white space.
    return (body.text if body.text and body.text.strip() else None), body


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
        room = len(sections) < MAX_SECTIONS - 1  # past the cap, headings stay lines of the last section
        if (is_heading_tag or looks_like_heading(text)) and index > 0 and has_body_after and room:
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
    safe_html = sanitize_html(bound_body(entry.body_html))
    paragraphs = html_paragraphs(safe_html)[:MAX_PARAGRAPHS]
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
