"""`feedbot probe URL`: what a page is (feed, Jekyll category page, news list page), what it would yield,
and the [[sources]] block that polls it."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from lxml import etree

from feedbot.errors import FeedbotError, ParseError
from feedbot.settings.secrets import strip_userinfo
from feedbot.settings.sourcekeys import ListSelectors
from feedbot.sources.extract import element_text, parse_cn_datetime
from feedbot.sources.feed import ACCEPT_FEED, parse_feed
from feedbot.sources.html import parse_article, parse_document, parse_list
from feedbot.sources.jekyll import parse_category, parse_post
from feedbot.sources.normalize import normalize

if TYPE_CHECKING:
    from feedbot.sources.http import Fetcher

SHOWN = 10  # items listed in the report
MIN_ITEMS = 3  # a repeated block needs this many members to count as a list
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json", "application/json")
_XML_START = re.compile(rb"^\s*(<\?xml|<rss|<feed|<rdf:RDF)", re.I)
_CLASS_OK = re.compile(r"^[A-Za-z_][\w-]*$")


@dataclass(frozen=True)
class ProbedItem:
    """One item as the source would read it."""

    title: str
    link: str
    published: datetime | None = None


@dataclass
class ProbeReport:
    """What a URL is and how feedbot would poll it."""

    url: str
    kind: str  # feed | jekyll | html
    what: str  # one line in words
    items: list[ProbedItem] = field(default_factory=list)
    first_body: str = ""  # the first item's article text (start of it), as feedbot would store it
    block: str = ""  # a ready [[sources]] block
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The report as printed by `feedbot probe`."""
        lines = [f"{self.url}: {self.what}", f"{len(self.items)} item(s) found; the first {SHOWN}:"]
        for item in self.items[:SHOWN]:
            day = f"{item.published:%Y-%m-%d %H:%M}" if item.published else "(no date)"
            lines.append(f"  {day}  {item.title}\n      {item.link}")
        if self.first_body:
            lines += ["", "the first item's text:", "  " + self.first_body]
        lines += [f"note: {n}" for n in self.notes]
        lines += ["", "add this to feedbot.toml:", "", self.block]
        return "\n".join(lines) + "\n"


def source_id_for(url: str) -> str:
    """A source id from a URL: host without www. and the last path segment, in [a-z0-9-]."""
    parts = urlsplit(url)
    host = parts.hostname or "source"
    host = host[4:] if host.startswith("www.") else host
    tail = [p for p in parts.path.split("/") if p]
    stem = re.sub(r"\.[a-z]+$", "", tail[-1]) if tail else ""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{host.split('.')[0]}-{stem}".lower()).strip("-")
    return slug or "source"


def toml_block(values: dict[str, object]) -> str:
    """A [[sources]] block; TOML basic strings take JSON's escapes."""
    out = ["[[sources]]"]
    for key, value in values.items():
        if value is None:
            continue
        out.append(f"{key} = {json.dumps(value, ensure_ascii=False) if isinstance(value, str) else value}")
    return "\n".join(out)


def _excerpt(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


async def probe(fetcher: Fetcher, url: str) -> ProbeReport:
    """Fetch a URL and say what it is, what it yields and how to poll it; ParseError when it is none of them."""
    page = await fetcher.get(url, accept=f"{ACCEPT_FEED},text/html;q=0.8")
    public = strip_userinfo(page.final_url)
    kind = (page.content_type or "").split(";")[0].strip().lower()
    if _XML_START.match(page.content[:200]) or kind in _FEED_TYPES or kind.endswith("+xml"):
        return _feed_report(page.content, public, page.content_type, url)
    text = page.text
    jekyll = await _jekyll_report(fetcher, text, public, url)
    if jekyll is not None:
        return jekyll
    feeds = discovered_feeds(text, public)
    if feeds:
        found = await fetcher.get(feeds[0], accept=ACCEPT_FEED)
        report = _feed_report(found.content, strip_userinfo(found.final_url), found.content_type, feeds[0])
        report.what = f"an HTML page that links a feed ({feeds[0]}); polling the feed"
        report.notes += [f"the page also links {f}" for f in feeds[1:]]
        report.notes.append("a feed may hold only the newest entries: if it misses posts, probe the list page "
                            "with kind html instead")
        return report
    return await _list_report(fetcher, text, public, url)


def _feed_report(content: bytes, url: str, content_type: str | None, given: str) -> ProbeReport:
    feed = parse_feed(content, url, "probe", content_type=content_type)
    items = [ProbedItem(e.title, e.url or e.key, e.published_at) for e in feed.entries]
    body = _excerpt(normalize(feed.entries[0]).text) if feed.entries else ""
    report = ProbeReport(url=given, kind="feed", what=f"an RSS/Atom feed with {len(items)} entries", items=items,
                         first_body=body)
    report.block = toml_block({"id": source_id_for(given), "kind": "feed", "url": given, "interval": "10m"})
    if feed.warning:
        report.notes.append(feed.warning)
    return report


async def _jekyll_report(fetcher: Fetcher, text: str, url: str, given: str) -> ProbeReport | None:
    links = parse_category(text, url)
    if not links:
        return None
    items = [ProbedItem(link.title, link.url, datetime(*link.day.timetuple()[:3]) if link.day else None)
             for link in links]
    report = ProbeReport(url=given, kind="jekyll", items=items,
                         what=f"a Jekyll category page listing {len(links)} posts (the full index of the category)")
    try:
        post = await fetcher.get(links[0].url)
        entry = parse_post(post.text, links[0].url, "probe")
        report.first_body = _excerpt(normalize(entry).text)
        if entry.published_at:
            report.items[0] = ProbedItem(entry.title, links[0].url, entry.published_at)
    except FeedbotError as exc:
        report.notes.append(f"the first post could not be read: {exc}")
    report.block = toml_block({"id": source_id_for(given), "kind": "jekyll", "url": given, "interval": "10m"})
    return report


def discovered_feeds(text: str, url: str) -> list[str]:
    """Feeds a page names with <link rel="alternate" type="application/rss+xml|atom+xml" href>."""
    try:
        root = parse_document(text, url)
    except ParseError:
        return []
    found = []
    for link in root.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        if "alternate" in rel and (link.get("type") or "").lower() in _FEED_TYPES and link.get("href"):
            found.append(urljoin(url, link.get("href").strip()))
    return list(dict.fromkeys(found))


# ---- list pages: repeated link blocks with dates ---------------------------------------------------

def _simple(el: etree._Element) -> str:
    """tag.class selector of an element (classes that are plain CSS identifiers only)."""
    classes = [c for c in (el.get("class") or "").split() if _CLASS_OK.match(c)]
    return el.tag + "".join(f".{c}" for c in classes[:2])


def _path(el: etree._Element) -> str:
    """A selector for a container: up to an ancestor with an id, at most four steps."""
    steps = []
    node = el
    while node is not None and isinstance(node.tag, str) and node.tag not in ("html", "body") and len(steps) < 4:
        ident = node.get("id")
        if ident and _CLASS_OK.match(ident):
            steps.append(f"#{ident}")
            break
        steps.append(_simple(node))
        node = node.getparent()
    return " > ".join(reversed(steps)) or "body"


def guess_selectors(text: str, url: str) -> tuple[ListSelectors, int] | None:
    """The most list-like repeated block of a page (siblings of one kind, each with a link, many dated)."""
    root = parse_document(text, url)
    # keyed by the parent element itself (kept alive by the key: an id() of an lxml proxy can be reused)
    groups: dict[tuple[etree._Element, str], list[etree._Element]] = defaultdict(list)
    for anchor in root.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:")) or len(element_text(anchor)) < 4:
            continue
        # the anchor itself and its ancestors up to three levels are candidate "items"
        node = anchor
        for _ in range(4):
            parent = node.getparent()
            if parent is None or not isinstance(parent.tag, str) or parent.tag in ("html", "body"):
                break
            groups[(parent, _simple(node))].append(node)
            node = parent
    best, best_score = None, 0.0
    for (_, simple), members in groups.items():
        members = list(dict.fromkeys(members))
        if len(members) < MIN_ITEMS:
            continue
        dated = sum(1 for m in members if _date_child(m) is not None)
        length = sum(len(element_text(m)) for m in members) / len(members)
        # lists of news: many members, most dated, titles of some length (menus have short labels)
        score = len(members) * (1 + 2 * dated / len(members)) * min(length, 40)
        if score > best_score:
            best, best_score = (members, simple), score
    if best is None:
        return None
    members, simple = best
    container = members[0].getparent()
    item = f"{_path(container)} > {simple}"
    date_el = next((d for d in (_date_child(m) for m in members) if d is not None), None)
    date = _simple(date_el) if date_el is not None and date_el is not members[0] else None
    return ListSelectors(item=item, link="a", date=date), len(members)


def _date_child(el: etree._Element) -> etree._Element | None:
    """The deepest element inside el whose own text is a date (2024-03-28, 2024年3月28日, 03-28)."""
    for child in el.iter():
        if not isinstance(child.tag, str) or child.tag == "a":
            continue
        own = (child.text or "").strip()
        if own and len(own) <= 24 and parse_cn_datetime(own) is not None:
            return child
    return None


async def _list_report(fetcher: Fetcher, text: str, url: str, given: str) -> ProbeReport:
    guessed = guess_selectors(text, url)
    if guessed is None:
        raise ParseError(f"{given}: not a feed, no Jekyll category and no repeated list of links found; "
                         "write the selectors by hand (docs/sources.md)")
    selectors, _ = guessed
    listed = parse_list(text, url, selectors)
    items = [ProbedItem(i.title, i.url, parse_cn_datetime(i.listed.isoformat()) if i.listed else None)
             for i in listed]
    report = ProbeReport(url=given, kind="html", items=items,
                         what=f"a news list page: {len(items)} repeated link blocks ({selectors.item})")
    if listed:
        try:
            post = await fetcher.get(listed[0].url)
            entry = parse_article(post.text, strip_userinfo(post.final_url), selectors, "probe", listed=listed[0])
            report.first_body = _excerpt(normalize(entry).text)
            report.items[0] = ProbedItem(entry.title, listed[0].url, entry.published_at or items[0].published)
        except FeedbotError as exc:
            report.notes.append(f"the first post could not be read: {exc}")
    report.notes.append("the body comes from readability's main-block guess; if it holds site chrome, add "
                        "body = \"<CSS selector of the article>\"")
    report.block = toml_block({"id": source_id_for(given), "kind": "html", "url": given, "interval": "10m",
                               "item": selectors.item, "link": selectors.link, "date": selectors.date})
    return report
