"""The Jekyll site's pages: the category page lists the posts, a post page holds one article."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from feedbot.clock import SHANGHAI
from feedbot.errors import ParseError
from feedbot.model import Entry

CST = SHANGHAI  # the site writes Asia/Shanghai times
# <li><a href="/zhongguohuanjingbao/2022/03/28/NW202203282324189380.html">title</a></li>
_POST_LINK = re.compile(r'<li>\s*<a\s[^>]*?href="([^"]*?/\d{4}/\d{2}/\d{2}/[^"/]+\.html)"[^>]*>(.*?)</a>', re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_POST_PATH = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/[^/]+\.html$")
# <small>(GMT+8, Asia/Shanghai, CST) 2022-03-28 07:19:21</small>
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2}(?::\d{2})?)")
_GMT_OFFSET = re.compile(r"GMT\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?", re.I)
_SOURCE_NOTE = re.compile(r"[（(]\s*文章来源[:：]\s*(.+?)\s*[）)]")
_NAV_PREFIX = "返回"
# The theme's category page with no post yet: the category heading and an empty list inside <section>.
EMPTY_LISTING = re.compile(r"<section[^>]*>\s*<h2[^>]*>[^<]*</h2>\s*<ul[^>]*>\s*</ul>", re.I)
ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"


@dataclass(frozen=True)
class PostLink:
    """One post as the category page lists it."""

    url: str
    title: str

    @property
    def key(self) -> str:
        """The post's identity: its URL path (stable across http/https and host moves)."""
        return post_key(self.url)

    @property
    def day(self) -> date | None:
        """The publication day in the URL (/YYYY/MM/DD/)."""
        return post_day(self.url)


def post_key(url: str) -> str:
    """Stable key of a post URL: the path."""
    return urlsplit(url).path


def post_day(url: str) -> date | None:
    """The /YYYY/MM/DD/ day of a post URL or key."""
    match = _POST_PATH.search(urlsplit(url).path)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def parse_category(page: str, base_url: str) -> list[PostLink]:
    """Post links of a category page, in page order (newest first)."""
    start = page.find("<section")
    body = page[start:] if start >= 0 else page  # the header's site link is not a post
    base = urlsplit(base_url)
    origin = f"{base.scheme}://{base.netloc}"
    links = []
    seen = set()
    # Thousands of links per page: skip urljoin/unescape for the common site-relative, entity-free case.
    for href, title in _POST_LINK.findall(body):
        if "&" in href:
            href = html.unescape(href)
        url = origin + href if href.startswith("/") and not href.startswith("//") else urljoin(base_url, href)
        if url in seen:
            continue
        seen.add(url)
        if "<" in title:
            title = _TAG.sub("", title)
        if "&" in title:
            title = html.unescape(title)
        links.append(PostLink(url, title.strip()))
    return links


def _text(el: etree._Element) -> str:
    return " ".join("".join(el.itertext()).split())


def _only_links(el: etree._Element) -> list[etree._Element]:
    """The <a> children of a paragraph whose whole text is inside those links (else [])."""
    anchors = el.findall(".//a")
    if not anchors:
        return []
    outside = (el.text or "") + "".join((a.tail or "") for a in anchors if a.getparent() is el)
    return anchors if outside.strip(" \n\t|｜") == "" else []


def _published(section: etree._Element) -> datetime | None:
    for small in section.iter("small"):
        text = _text(small)
        stamp = _STAMP.search(text)
        if not stamp:
            continue
        clock = stamp[2] if stamp[2].count(":") == 2 else stamp[2] + ":00"
        naive = datetime.strptime(f"{stamp[1]} {clock}", "%Y-%m-%d %H:%M:%S")
        offset = _GMT_OFFSET.search(text)
        if offset:
            minutes = int(offset[2]) * 60 + int(offset[3] or 0)
            tz = timezone(timedelta(minutes=minutes if offset[1] == "+" else -minutes))
        else:
            tz = CST  # the site writes Asia/Shanghai times
        return naive.replace(tzinfo=tz)
    return None


def parse_post(page: str, url: str, source_id: str, outlet: str | None = None) -> Entry:
    """A post page → Entry: title, CST time, article paragraphs and the original-source link; no site chrome."""
    try:
        root = lxml.html.document_fromstring(page)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"not an HTML page at {url}: {exc}") from exc
    section = root.find(".//section")
    if section is None:
        section = root.find(".//body")
    if section is None:
        raise ParseError(f"no page body at {url}: not a post page of the Jekyll site")
    heading = section.find(".//h1")
    if heading is None or not _text(heading):
        raise ParseError(f"no <h1> title in the article at {url}: not a post page of the Jekyll site")
    title = _text(heading)
    published = _published(section)
    body_parts: list[str] = []
    origin_url: str | None = None
    page_outlet: str | None = None
    after_title = False
    for el in section:
        if not isinstance(el.tag, str):
            continue  # comments, processing instructions
        if el is heading or heading in el.iterancestors():
            after_title = True
            continue
        if not after_title or el.tag == "small":
            continue  # the timestamp above the title, the tags line below the article
        text = _text(el)
        if (el.tag == "p" and "em_media" in (el.get("class") or "")) or _SOURCE_NOTE.fullmatch(text or ""):
            note = _SOURCE_NOTE.search(text)
            page_outlet = note[1] if note else page_outlet
            continue
        anchors = _only_links(el) if el.tag == "p" else []
        if anchors and any(_text(a).startswith(_NAV_PREFIX) for a in anchors):
            break  # 返回… navigation: the article is over
        if len(anchors) == 1 and origin_url is None:
            href = (anchors[0].get("href") or "").strip()
            label = _text(anchors[0])
            if href and (label == href or label.startswith(("http://", "https://"))):
                origin_url = urljoin(url, href)
                continue
        if not text and el.find(".//img") is None:
            continue
        body_parts.append(lxml.html.tostring(el, encoding="unicode", with_tail=False))
    if not body_parts:
        raise ParseError(f"no article paragraphs after the title at {url}")
    return Entry(source_id=source_id, key=post_key(url), url=url, title=title, body_html="\n".join(body_parts),
                 published_at=published, outlet=outlet or page_outlet, origin_url=origin_url)
