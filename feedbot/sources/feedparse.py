"""Feed bytes → raw entries, two ways: fastfeedparser (lxml, ~60× faster) and feedparser (the fallback).

The fast path reads only documents it reads exactly like feedparser: well-formed XML (checked by a strict
lxml parse that expands no entities and keeps libxml2's size limits) of RSS 2.0, RSS 1.0 or Atom 1.0, or
a JSON Feed. Anything else — malformed XML, xml:base, XHTML content, a relative guid, a guid without a
link, RSS 0.9x, RSS 1.0 with content:encoded, a header charset the document contradicts — is declined
and goes to feedparser, so nothing that parsed before stops parsing and an entry's key, link, title,
dates and text do not depend on the path.
"""

from __future__ import annotations

import calendar
import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from feedbot.sources.charset import canonical_encoding, header_charset, sniff_charset
from feedbot.sources.edge import entry_title, html_to_text

log = logging.getLogger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_URL_ATTRIBUTE = re.compile(r"""(\s(?:href|src)\s*=\s*)(["'])(.*?)\2""", re.I | re.S)
# Markup feedparser reads its own way (xml:base, XHTML content, namespaced edit dates); declined up front.
# Plain substring tests (memchr speed): a false alarm only costs the slow path.
_DECLINE = (b"xml:base", b"xhtml", b":updated", b":modified")


@functools.cache
def _strict() -> Any:
    """The strict XML parser of the version check (lxml is imported by a feed that changed only)."""
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, huge_tree=False, no_network=True, load_dtd=False,
                           recover=False, remove_comments=True, collect_ids=False)

_HTML_TITLE = re.compile(rb"<title[^>]*\btype\s*=\s*[\"'](?:html|xhtml)[\"']")


@dataclass(frozen=True)
class RawEntry:
    """One entry as a parser read it: id (guid) or None, link, title, body HTML, dates (UTC)."""

    id: str | None
    link: str | None
    title: str
    body: str
    published: datetime | None
    updated: datetime | None


@dataclass(frozen=True)
class RawFeed:
    """A parsed document: feed title, version, entries, and the parser's complaint when it was broken."""

    title: str
    version: str
    entries: tuple[RawEntry, ...]
    problem: Exception | None = None
    parser: str = "feedparser"


# ---- the fast path ------------------------------------------------------------------------------


def parse_fast(content: bytes, url: str, content_type: str | None = None) -> RawFeed | None:
    """The document through fastfeedparser, or None when it is not one the fast path reads exactly."""
    head = content[:64].lstrip()
    if head.startswith(b"{"):
        version = "json"
    else:
        version = _xml_version(content, content_type)
        if version is None:
            return None
    import fastfeedparser  # imported on first parse: an unchanged feed (a 304) parses nothing

    try:
        parsed = fastfeedparser.parse(content)
    except Exception as exc:  # any failure of the fast parser means: let feedparser read it
        log.debug("%s: fastfeedparser declined: %s", url, exc)
        return None
    items = parsed.get("entries") or []
    if not items:
        return None  # feedparser words the empty and the not-a-feed cases
    entries = []
    # Titles are plain text from here on. Atom marks HTML titles (type="html"), which fastfeedparser hands
    # over as markup: read those as text, as the feedparser path does with title_detail.
    html_titles = version == "atom10" and _HTML_TITLE.search(content) is not None
    for item in items:
        entry = _fast_entry(item, url, json=version == "json")
        if entry is None:
            return None
        if html_titles and ("<" in entry.title or "&" in entry.title):
            entry = replace(entry, title=html_to_text(entry.title))
        entries.append(entry)
    title = ((parsed.get("feed") or {}).get("title") or "").strip()
    return RawFeed(title=title, version=version, entries=tuple(entries), parser="fastfeedparser")


def _xml_version(content: bytes, content_type: str | None) -> str | None:
    if any(marker in content for marker in _DECLINE):
        return None
    declared = canonical_encoding(header_charset(content_type))
    if declared and declared != (sniff_charset(content) or "utf-8"):
        return None  # feedparser follows the header, lxml the document
    from lxml import etree

    try:
        root = etree.fromstring(content, _strict())
    except (etree.XMLSyntaxError, ValueError):
        return None
    name = etree.QName(root)
    if name.localname == "rss" and not name.namespace and root.get("version") == "2.0":
        return "rss20"
    if name.localname == "RDF" and name.namespace == RDF_NS:
        return None if b":encoded" in content else "rss10"  # fastfeedparser skips RDF's content:encoded
    if name.localname == "feed" and name.namespace == ATOM_NS:
        return "atom10"
    return None


def _fast_entry(item: Mapping[str, Any], base: str, *, json: bool = False) -> RawEntry | None:
    guid = (item.get("id") or "").strip() or None
    link = (item.get("link") or "").strip() or None
    if not json and guid is not None and (link is None or not _SCHEME.match(guid)):
        return None  # feedparser resolves a relative guid and may take a link from it: its reading decides
    if link is not None and not _SCHEME.match(link):
        link = urljoin(base, link)
    contents = item.get("content") or []
    body = max((c.get("value") or "" for c in contents), key=len, default="") or item.get("description") or ""
    return RawEntry(id=guid, link=link, title=(item.get("title") or "").strip(), body=resolve_links(body, base),
                    published=_iso(item.get("published")), updated=_iso(item.get("updated")))


def _iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def resolve_links(html: str, base: str) -> str:
    """href and src values made absolute against the document's URL, as feedparser does."""
    if "href" not in html and "src" not in html:
        return html

    def absolute(match: re.Match[str]) -> str:
        value = match.group(3)
        if _SCHEME.match(value.strip()):
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{urljoin(base, value.strip())}{match.group(2)}"

    return _URL_ATTRIBUTE.sub(absolute, html)


# ---- the fallback -------------------------------------------------------------------------------


def parse_slow(content: bytes, url: str, content_type: str | None = None) -> RawFeed:
    """The document through feedparser (sanitizing, resolving relative URIs, forgiving broken XML)."""
    import feedparser  # imported on first need: a process whose feeds are all well-formed never pays for it

    headers = {"content-location": url}
    if content_type:
        # RFC 3023 makes text/xml without a charset US-ASCII; servers mean "see the XML declaration".
        if content_type.split(";")[0].strip().lower() == "text/xml" and "charset" not in content_type.lower():
            content_type = "application/xml"
        headers["content-type"] = content_type
    parsed = feedparser.parse(content, response_headers=headers, sanitize_html=True, resolve_relative_uris=True)
    entries = []
    for item in parsed.get("entries") or []:
        contents = item.get("content") or []
        body = max((c.get("value") or "" for c in contents), key=len, default="") or item.get("summary") or ""
        entries.append(RawEntry(
            id=(item.get("id") or "").strip() or None,
            link=item.get("link") or None,
            title=entry_title(item),  # plain text from here on: an HTML-typed title is decoded once, here
            body=body,
            # dict.get: FeedParserDict.get would quietly answer updated_parsed with published_parsed
            published=_struct(dict.get(item, "published_parsed")),
            updated=_struct(dict.get(item, "updated_parsed")),
        ))
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    return RawFeed(title=(parsed.get("feed") or {}).get("title") or "", version=parsed.get("version") or "",
                   entries=tuple(entries), problem=problem)


def _struct(parsed: Any) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, TypeError):
        return None
