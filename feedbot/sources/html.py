"""Any news list page as a source: CSS selectors pick the items of the index page; each post page is one article.

It reuses the Jekyll source's poll (conditional index GET, only new posts fetched, retries of failed
posts, re-checks of stored ones, per-host politeness through the shared Fetcher); only the index and
post parsing differ, and a listing that has scrolled past every stored post is followed to its next
pages (`next` selector) until a stored post shows up again.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from feedbot.errors import ParseError
from feedbot.model import Entry, SourceState
from feedbot.settings.config import ListSelectors, SourceConfig
from feedbot.settings.secrets import strip_userinfo
from feedbot.sources.base import PageValidators, PollResult
from feedbot.sources.extract import (
    compile_selector,
    element_text,
    extract_body,
    page_published,
    page_title,
    parse_cn_datetime,
)
from feedbot.sources.jekyll import ACCEPT_HTML, JekyllSource, PostLink

if TYPE_CHECKING:
    from feedbot.sources.http import Fetcher, FetchResult


@dataclass(frozen=True)
class ListedPost(PostLink):
    """One item of a list page: its link, title and (when the list shows one) its day."""

    listed: date | None = None

    @property
    def key(self) -> str:
        """Path and query: list pages of CMSs often tell posts apart only by ?id=."""
        return html_key(self.url)

    @property
    def day(self) -> date | None:
        return self.listed


def html_key(url: str) -> str:
    """A list-page post's stable key: the URL without scheme, host and fragment."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def parse_document(text: str, url: str) -> etree._Element:
    """An HTML page as an lxml tree, or a ParseError naming the URL."""
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"not an HTML page at {url}: {exc}") from exc


def parse_list(text: str, base_url: str, selectors: ListSelectors, today: date | None = None) -> list[ListedPost]:
    """The items of a list page, in page order; relative links resolved against the page (or its <base>)."""
    root = parse_document(text, base_url)
    base = root.find(".//base")
    if base is not None and base.get("href"):
        base_url = urljoin(base_url, base.get("href"))
    items = compile_selector(selectors.item, "item")(root)
    link_css = compile_selector(selectors.link, "link")
    title_css = compile_selector(selectors.title, "title") if selectors.title else None
    date_css = compile_selector(selectors.date, "date") if selectors.date else None
    out: list[ListedPost] = []
    seen: set[str] = set()
    for item in items:
        anchors = [item] if item.tag == "a" and not link_css(item) else link_css(item)
        href = next((a.get("href") for a in anchors if (a.get("href") or "").strip()), None)
        if not href or href.strip().lower().startswith(("javascript:", "mailto:", "#")):
            continue
        url = urljoin(base_url, href.strip())
        if url in seen:
            continue
        seen.add(url)
        title_el = (title_css(item) or [None])[0] if title_css else anchors[0]
        title = ""
        if title_el is not None:
            title = (title_el.get("title") or "").strip() or element_text(title_el)
        day = None
        if date_css:
            found = date_css(item)
            stamp = parse_cn_datetime(element_text(found[0]), today) if found else None
            day = stamp.date() if stamp else None
        out.append(ListedPost(url=url, title=title, listed=day))
    return out


def next_page(text: str, base_url: str, css: str) -> str | None:
    """The URL of the list's next page, by the `next` selector."""
    root = parse_document(text, base_url)
    for el in compile_selector(css, "next")(root):
        if (el.get("href") or "").strip():
            return urljoin(base_url, el.get("href").strip())
    return None


def parse_article(text: str, url: str, selectors: ListSelectors, source_id: str, *, listed: ListedPost | None = None,
                  outlet: str | None = None) -> Entry:
    """A post page → Entry: title, time (page, else the list's day) and body (selector, else readability)."""
    root = parse_document(text, url)
    title = page_title(root, selectors.post_title) or (listed.title if listed else "")
    if not title:
        raise ParseError(f"no title at {url}")
    published = page_published(root, selectors.post_date)
    if published is None and listed is not None and listed.listed is not None:
        published = parse_cn_datetime(listed.listed.isoformat())
    body = extract_body(text, root, url, selectors.body)
    return Entry(source_id=source_id, key=html_key(url), url=url, title=title, body_html=body,
                 published_at=published, outlet=outlet)


class HtmlSource(JekyllSource):
    """Polls a news list page by CSS selectors and fetches the post pages it has not stored yet."""

    kind = "html"

    def __init__(self, config: SourceConfig, fetcher: Fetcher, **kwargs):
        if config.selectors is None:
            raise ValueError(f"source {config.id!r}: kind html needs selectors (item, link, …) or a preset")
        super().__init__(config, fetcher, **kwargs)
        self.selectors = config.selectors
        self._known: Set[str] = frozenset()

    async def poll(self, state: SourceState | None, known: Set[str], *,
                   page_validators: PageValidators | None = None, retry: Set[str] = frozenset(),
                   skip: Set[str] = frozenset()) -> PollResult:
        """As the Jekyll source; the stored keys also tell the index when to stop following `next` pages."""
        self._known = known | skip
        return await super().poll(state, known, page_validators=page_validators, retry=retry, skip=skip)

    async def fetch_index(self, state: SourceState | None = None) -> tuple[FetchResult, list[PostLink]]:
        """The list page (conditionally) and its items; later pages while none of the items is stored yet."""
        first = await self.fetcher.get(self.config.url, etag=state.etag if state else None,
                                       last_modified=state.last_modified if state else None, accept=ACCEPT_HTML)
        if first.not_modified:
            return first, []
        links = parse_list(first.text, strip_userinfo(first.final_url), self.selectors)
        if not links:
            # A list page that lists nothing is a changed layout (or a block page), never "nothing new".
            raise ParseError(f"no items on {self.config.display_url} for the item selector "
                             f"{self.selectors.item!r}: has the page layout changed? (check with feedbot probe)")
        page, pages = first, 1
        # A burst longer than one page: follow `next` until a stored post is listed (bounded by max_pages).
        while (self.selectors.next and self._known and pages < self.selectors.max_pages
               and not any(link.key in self._known for link in links)):
            url = next_page(page.text, page.final_url, self.selectors.next)
            if not url:
                break
            page = await self.fetcher.get(url, accept=ACCEPT_HTML)
            pages += 1
            more = [link for link in parse_list(page.text, strip_userinfo(page.final_url), self.selectors)
                    if link.url not in {seen.url for seen in links}]
            if not more:
                break
            links.extend(more)
        return first, links

    def link_of_key(self, key: str) -> PostLink:
        """A post known only by its key (path and query)."""
        return ListedPost(url=urljoin(self.config.url, key), title="")

    def recheck_links(self, links: list[PostLink], known: Set[str]) -> list[PostLink]:
        """Stored posts to re-check: those the list shows (a 304 leaves no dated keys to go by)."""
        if not links:
            return []
        return super().recheck_links(links, known)

    def parse_page(self, page: str, url: str, link: PostLink) -> Entry:
        """A post page read with the source's selectors (or readability), with what the list showed of it."""
        listed = link if isinstance(link, ListedPost) else None
        return parse_article(page, url, self.selectors, self.config.id, listed=listed, outlet=self.config.outlet)
