"""What a news page says about itself: Chinese-format dates, and the article body without site chrome."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import lxml.html
from lxml import etree
from lxml.cssselect import CSSSelector
from readability import Document

from feedbot.clock import SHANGHAI
from feedbot.errors import ParseError

# 2024年3月28日, 2024-03-28, 2024/3/28, 2024.03.28, each optionally followed by 10:00 or 10:00:05
_FULL = re.compile(r"(\d{4})\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*日?"
                   r"(?:\s*(?:T|\s)?\s*(\d{1,2})\s*[:：时]\s*(\d{2})(?:\s*[:：分]\s*(\d{2}))?)?")
# 03-28, 3月28日, 03/28 (no year: lists of this year's news)
_SHORT = re.compile(r"(?<!\d)(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*日?(?!\d)")
# The label government pages put before the time of publication.
_LABELLED = re.compile(r"(?:发布时间|发布日期|发文日期|时间|日期)\s*[:：]\s*([^\s<]{0,4}\s*[\d年月日\-/.: ：]{6,})")
# <meta> names CMSs (TRS WCM, WordPress, Open Graph) use for the publication time.
_META_NAMES = ("PubDate", "pubdate", "publishdate", "article:published_time", "og:published_time", "OrgDate")


def parse_cn_datetime(text: str, today: date | None = None) -> datetime | None:
    """The first date in text, as Shanghai time (midnight when no time is given); a year-less `03-28` is
    the latest such day not after tomorrow (lists of the current year's news)."""
    if not text:
        return None
    labelled = _LABELLED.search(text)
    if labelled:
        text = labelled[1]
    full = _FULL.search(text)
    if full:
        year, month, day = int(full[1]), int(full[2]), int(full[3])
        hour, minute, second = int(full[4] or 0), int(full[5] or 0), int(full[6] or 0)
        try:
            return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)
        except ValueError:
            return None
    short = _SHORT.search(text)
    if not short:
        return None
    today = today or datetime.now(SHANGHAI).date()
    month, day = int(short[1]), int(short[2])
    for year in (today.year, today.year - 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today + timedelta(days=1):
            return datetime(candidate.year, candidate.month, candidate.day, tzinfo=SHANGHAI)
    return None


def compile_selector(css: str, what: str) -> CSSSelector:
    """A CSS selector, or a ParseError naming what it was for."""
    try:
        return CSSSelector(css)
    except Exception as exc:  # cssselect raises SelectorSyntaxError / ExpressionError
        raise ParseError(f"bad CSS selector for {what}: {css!r}: {exc}") from exc


def element_text(el: etree._Element) -> str:
    """An element's text with whitespace collapsed."""
    return " ".join("".join(el.itertext()).split())


def page_published(root: etree._Element, date_css: str | None = None, today: date | None = None) -> datetime | None:
    """A post page's publication time: the configured selector, a <meta> a CMS writes, or a `发布时间：` line."""
    if date_css:
        for el in compile_selector(date_css, "post date")(root):
            found = parse_cn_datetime(el.get("content") or element_text(el), today)
            if found:
                return found
    for meta in root.iter("meta"):
        if (meta.get("name") or meta.get("property") or "") in _META_NAMES:
            found = parse_cn_datetime(meta.get("content") or "", today)
            if found:
                return found
    body = root.find(".//body")
    text = element_text(body) if body is not None else ""
    labelled = _LABELLED.search(text)
    return parse_cn_datetime(labelled[0], today) if labelled else None


def page_title(root: etree._Element, title_css: str | None = None) -> str:
    """A post page's headline: the selector, meta ArticleTitle, the one <h1>, or <title> up to its site suffix."""
    if title_css:
        for el in compile_selector(title_css, "post title")(root):
            if element_text(el):
                return element_text(el)
    for meta in root.iter("meta"):
        named = meta.get("name") in ("ArticleTitle", "og:title") or meta.get("property") == "og:title"
        if named and (meta.get("content") or "").strip():
            return meta.get("content").strip()
    headings = [element_text(h) for h in root.iter("h1") if element_text(h)]
    if len(headings) == 1:
        return headings[0]
    title = root.find(".//title")
    text = element_text(title) if title is not None else ""
    return re.split(r"\s*[-_|｜—]\s*", text)[0] if text else ""


def extract_body(page: str, root: etree._Element, url: str, body_css: str | None = None) -> str:
    """The article's HTML: the configured selector's first non-empty match, else readability's main block."""
    if body_css:
        for el in compile_selector(body_css, "post body")(root):
            if element_text(el) or el.find(".//img") is not None:
                return lxml.html.tostring(el, encoding="unicode", with_tail=False)
        raise ParseError(f"the body selector {body_css!r} matches nothing with text at {url}")
    try:
        body = Document(page, url=url).summary(html_partial=True)
    except Exception as exc:  # readability raises its own Unparseable and lxml errors
        raise ParseError(f"no article found at {url}: {exc}") from exc
    if not element_text(lxml.html.fragment_fromstring(body, create_parent="div")):
        raise ParseError(f"no article text found at {url}")
    return body
