"""Any RSS 0.9x/1.0/2.0, Atom or JSON feed, read from the bytes the Fetcher got (fastfeedparser, else feedparser)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from feedbot.errors import ParseError
from feedbot.model import Entry, SourceState
from feedbot.settings.config import SourceConfig
from feedbot.settings.secrets import strip_userinfo
from feedbot.sources.base import PageValidators, PollResult
from feedbot.sources.edge import clean_document
from feedbot.sources.feedparse import RawEntry, parse_fast, parse_slow

if TYPE_CHECKING:
    from feedbot.sources.http import Fetcher

log = logging.getLogger(__name__)

ACCEPT_FEED = ("application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.9, "
               "text/xml;q=0.8, */*;q=0.1")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.I)
_ENTITY = re.compile(rb"<!ENTITY", re.I)
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*(?:<!DOCTYPE\s+html|<html[\s>])", re.I | re.S)


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed: its title, entries (document order) and a warning when feedparser found it broken."""

    title: str
    version: str
    entries: tuple[Entry, ...]
    warning: str | None = None


def refuse_entity_declarations(content: bytes, url: str) -> None:
    """Refuse a DOCTYPE that declares entities (billion laughs, external entities) before any XML parser runs."""
    doctype = _DOCTYPE.search(content)
    if doctype and _ENTITY.search(content, doctype.end()):
        raise ParseError(f"refusing the feed at {url}: its DOCTYPE declares XML entities (<!ENTITY>), "
                         "the shape of a billion-laughs or external-entity attack")


def entry_key(item: Mapping[str, Any], title: str, body: str) -> str:
    """guid/id, else link, else a digest of title and content."""
    for field in ("id", "link"):
        value = (item.get(field) or "").strip()
        if value:
            return value
    return "sha256:" + hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()


def parse_feed(content: bytes, url: str, source_id: str, *, outlet: str | None = None,
               content_type: str | None = None) -> ParsedFeed:
    """Feed bytes → entries; an empty body, an HTML page, unreadable XML or entity tricks are ParseErrors.

    fastfeedparser reads the documents it reads exactly like feedparser; feedparser reads the rest.
    """
    if not content.strip():
        raise ParseError(f"empty body from {url}: expected an RSS or Atom feed")
    refuse_entity_declarations(content, url)
    content = clean_document(content)  # one bad character reference must not sink every item
    parsed = parse_fast(content, url, content_type) or parse_slow(content, url, content_type)
    items, version, problem = parsed.entries, parsed.version, parsed.problem
    if not items and not version:
        if _HTML_START.search(content[:4096]) or "html" in (content_type or "").lower():
            raise ParseError(f"expected an RSS or Atom feed from {url} but got an HTML page"
                             f"{f' ({content_type})' if content_type else ''}")
        reason = f": {problem}" if problem else ""
        raise ParseError(f"not an RSS or Atom feed at {url} (malformed XML, no entries){reason}")
    warning = None
    if problem is not None:
        if not items:
            raise ParseError(f"malformed feed at {url} with no readable entries: {problem}")
        warning = f"feed at {url} is not well-formed ({problem}); read {len(items)} entries anyway"
        log.warning("%s", warning)
    entries = tuple(make_entry(item, source_id, outlet or parsed.title or None) for item in items)
    return ParsedFeed(title=parsed.title, version=version, entries=entries, warning=warning)


def make_entry(item: RawEntry, source_id: str, outlet: str | None) -> Entry:
    """A parsed entry as feedbot's Entry: keyed, titled (from the body when untitled), dated."""
    body = item.body
    updated = item.updated
    published = item.published or updated
    return Entry(
        source_id=source_id,
        key=entry_key({"id": item.id, "link": item.link}, item.title, body),
        url=item.link,
        title=item.title or (body[:40] if body else "(untitled)"),
        body_html=body,
        published_at=published,
        updated_at=updated if updated and updated != published else None,
        outlet=outlet,
    )


class FeedSource:
    """Polls an RSS/Atom URL conditionally and returns its entries."""

    kind = "feed"

    def __init__(self, config: SourceConfig, fetcher: Fetcher):
        self.config = config
        self.fetcher = fetcher

    async def poll(self, state: SourceState | None, known: Set[str], *,
                   page_validators: PageValidators | None = None) -> PollResult:
        """Fetch the feed (304 → nothing parsed) and return its entries; the first poll is bounded by backfill."""
        result = await self.fetcher.get(self.config.url, etag=state.etag if state else None,
                                        last_modified=state.last_modified if state else None, accept=ACCEPT_FEED)
        if result.not_modified:
            etag, last_modified = (state.etag, state.last_modified) if state else (None, None)
            return PollResult(etag=etag, last_modified=last_modified, not_modified=True)
        # Relative links resolve against the public form of the URL: its credentials are for fetching only.
        feed = parse_feed(result.content, strip_userinfo(result.final_url), self.config.id, outlet=self.config.outlet,
                          content_type=result.content_type)
        entries = self.select(feed.entries, known, state)
        return PollResult(entries=entries, etag=result.etag, last_modified=result.last_modified,
                          warnings=(feed.warning,) if feed.warning else (), listed=len(feed.entries))

    def select(self, entries: tuple[Entry, ...], known: Set[str], state: SourceState | None) -> tuple[Entry, ...]:
        """Stored entries (edits become updates) and new ones; old unseen ones only within `backfill` on the first run.

        After the first run an unstored entry counts as new when it sits above the oldest stored entry in
        the feed, or is dated no earlier than a day before the last good poll.
        """
        first_run = state is None or state.last_ok_at is None
        if first_run and not known:
            return self._first_run(entries)
        positions = [i for i, e in enumerate(entries) if e.key in known]
        horizon = positions[-1] if positions else -1
        since = state.last_ok_at - timedelta(days=1) if state and state.last_ok_at else None
        return tuple(e for i, e in enumerate(entries)
                     if e.key in known or i < horizon or since is None
                     or e.published_at is None or e.published_at >= since)

    def _first_run(self, entries: tuple[Entry, ...]) -> tuple[Entry, ...]:
        bound = self.config.backfill
        if bound is None:
            return entries
        newest_first = sorted(entries, key=lambda e: e.published_at or datetime.min.replace(tzinfo=UTC),
                              reverse=True)
        if isinstance(bound, int):
            return tuple(newest_first[:bound])
        return tuple(e for e in newest_first if e.published_at is None or e.published_at.date() >= bound)
