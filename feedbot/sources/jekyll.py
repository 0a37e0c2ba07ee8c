"""The Jekyll news site: the category page is the index, each post page holds one article."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Set
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from feedbot.errors import FetchError, ParseError
from feedbot.model import Entry, SourceState
from feedbot.settings.config import SourceConfig
from feedbot.settings.secrets import strip_userinfo
from feedbot.sources.base import PageRecord, PageValidators, PollResult, body_digest
from feedbot.sources.jekyll_pages import (  # noqa: F401 - re-exported: the source's page vocabulary
    ACCEPT_HTML,
    CST,
    EMPTY_LISTING,
    PostLink,
    parse_category,
    parse_post,
    post_day,
    post_key,
)

if TYPE_CHECKING:
    from feedbot.sources.http import Fetcher, FetchResult

log = logging.getLogger(__name__)

class _Pacer:
    """Spaces request starts at least `delay` seconds apart (politeness towards one site)."""

    def __init__(self, delay: float):
        self.delay = delay
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if self.delay <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
            self._next = max(now, self._next) + self.delay


@dataclass
class BackfillReport:
    """What a backfill did."""

    planned: int
    saved: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _PostOutcome:
    link: PostLink
    entry: Entry | None = None
    page: PageRecord | None = None
    error: str | None = None
    failure: Exception | None = None


class JekyllSource:
    """Polls a Jekyll category page and fetches the post pages it has not stored yet."""

    kind = "jekyll"

    retries_failed_posts = True  # poll() takes `retry` (posts that failed before) and `skip` (see pipeline)

    def __init__(self, config: SourceConfig, fetcher: Fetcher, *, recheck: int = 5, rotate: int | None = None,
                 concurrency: int | None = None, delay: float = 0.0):
        self.config = config
        self.fetcher = fetcher
        # Edits: each poll re-checks (conditional GET) the newest `recheck` stored posts, where edits
        # happen, plus a window of `rotate` older ones that moves on every poll, so every stored post is
        # re-checked now and then at a bounded cost (recheck + rotate requests, mostly 304s, per poll).
        self.recheck = recheck
        self.rotate = recheck if rotate is None else rotate
        self._rotation = 0
        self.concurrency = concurrency or fetcher.config.per_host
        self.delay = delay  # between post-page requests in a poll; backfill uses fetcher.config.delay

    async def fetch_index(self, state: SourceState | None = None) -> tuple[FetchResult, list[PostLink]]:
        """The category page (conditionally) and its post links; no links parsed on a 304."""
        result = await self.fetcher.get(self.config.url, etag=state.etag if state else None,
                                        last_modified=state.last_modified if state else None, accept=ACCEPT_HTML)
        if result.not_modified:
            return result, []
        links = parse_category(result.text, result.final_url)
        if not links and EMPTY_LISTING.search(result.text):
            return result, []  # the right layout with zero posts: a successful poll (a new category)
        if not links:
            raise ParseError(f"no post links on {self.config.url}: expected a Jekyll category page "
                             f'with <li><a href="/…/YYYY/MM/DD/….html"> items')
        return result, links

    def select_new(self, links: list[PostLink], known: Set[str], state: SourceState | None) -> list[PostLink]:
        """Listed posts not stored yet, above the oldest stored one; the first run is bounded by `backfill`."""
        positions = [i for i, link in enumerate(links) if link.key in known]
        if positions:
            return [link for link in links[:positions[-1]] if link.key not in known]
        fresh = [link for link in links if link.key not in known]
        if state is not None and state.last_ok_at is not None:
            # Polled before but nothing stored (backfill = 0): take what appeared since that poll.
            since = state.last_ok_at.astimezone(CST).date() - timedelta(days=1)
            return [link for link in fresh if (link.day or since) >= since]
        bound = self.config.backfill
        if bound is None:
            return fresh
        if isinstance(bound, int):
            return fresh[:bound]
        return [link for link in fresh if link.day is None or link.day >= bound]

    def recheck_links(self, links: list[PostLink], known: Set[str]) -> list[PostLink]:
        """Stored posts to re-check for edits: the newest `recheck`, plus the next `rotate` of the older ones."""
        if links:
            stored = [link for link in links if link.key in known]
        else:  # a 304: the stored keys, newest first
            base = self.config.url
            dated = sorted((k for k in known if post_day(k)), key=lambda k: (post_day(k), k), reverse=True)
            stored = [PostLink(url=urljoin(base, key), title="") for key in dated]
        newest, older = stored[:self.recheck], stored[self.recheck:]
        if not older or not self.rotate:
            return newest
        start = self._rotation % len(older)
        self._rotation = start + self.rotate
        return newest + (older[start:] + older[:start])[:min(self.rotate, len(older))]

    def link_of_key(self, key: str) -> PostLink:
        """A post known only by its stored key (a retry of a post no longer listed)."""
        return PostLink(url=urljoin(self.config.url, key), title="")

    async def poll(self, state: SourceState | None, known: Set[str], *,
                   page_validators: PageValidators | None = None, retry: Set[str] = frozenset(),
                   skip: Set[str] = frozenset()) -> PollResult:
        """One poll: category page (conditional), new posts, posts that failed before, edits of stored posts."""
        index, links = await self.fetch_index(state)
        # Quarantined posts (skip) are not fetched as new, and not re-checked as stored either.
        new = self.select_new(links, known | skip, state) if links else []
        # Failed before (wherever listed, e.g. below the oldest stored post): fetched again explicitly.
        listed = {link.key: link for link in links}
        planned = {link.key for link in new}
        again = [listed.get(key) or self.link_of_key(key)
                 for key in sorted(retry) if key not in known and key not in skip and key not in planned]
        # Without stored validators a re-check could not tell an edit from a repeat: skip it.
        recheck = self.recheck_links(links, known) if self.recheck and page_validators else []
        outcomes = await self._fetch_all(new, page_validators=None)
        retried = await self._fetch_all(again, page_validators=None)
        checks = await self._fetch_all(recheck, page_validators=page_validators)
        failed = [o for o in outcomes if o.error]
        if new and len(failed) == len(new):
            first = failed[0].failure
            raise first if isinstance(first, FetchError) else FetchError(
                f"every new post of {self.config.url} failed; first: {failed[0].error}", url=self.config.url)
        everything = (*outcomes, *retried, *checks)
        entries = tuple(o.entry for o in everything if o.entry is not None)
        pages = tuple(o.page for o in everything if o.page is not None)
        errors = tuple(o.error for o in everything if o.error)
        to_retry = tuple((o.link.key, o.link.url, o.error) for o in (*outcomes, *retried) if o.error)
        keep_validators = not failed  # a failed new post is also found again by a full index fetch
        if index.not_modified:
            etag, last_modified = (state.etag, state.last_modified) if state else (None, None)
        else:
            etag, last_modified = index.etag, index.last_modified
        if not keep_validators:
            etag = last_modified = None
        for error in errors:
            log.warning("%s: %s", self.config.id, error)
        return PollResult(entries=entries, etag=etag, last_modified=last_modified,
                          not_modified=index.not_modified, pages=pages, errors=errors, listed=len(links),
                          failed=to_retry)

    async def _fetch_all(self, links: list[PostLink], *, page_validators: PageValidators | None,
                         pacer: _Pacer | None = None) -> list[_PostOutcome]:
        if not links:
            return []
        slots = asyncio.Semaphore(self.concurrency)
        pacer = pacer or _Pacer(self.delay)

        async def one(link: PostLink) -> _PostOutcome:
            async with slots:
                await pacer.wait()
                return await self.fetch_post(link, page_validators)

        return list(await asyncio.gather(*(one(link) for link in links)))

    async def fetch_post(self, link: PostLink, page_validators: PageValidators | None = None) -> _PostOutcome:
        """Fetch and parse one post page; with validators, a 304 or an identical page yields no entry."""
        stored = page_validators(link.url) if page_validators else None
        try:
            result = await self.fetcher.get(link.url, etag=stored.etag if stored else None,
                                            last_modified=stored.last_modified if stored else None,
                                            accept=ACCEPT_HTML)
            if result.not_modified:
                return _PostOutcome(link)
            digest = body_digest(result.content)
            page = PageRecord(url=link.url, etag=result.etag, last_modified=result.last_modified,
                              content_hash=digest)
            if stored and stored.content_hash == digest:
                return _PostOutcome(link, page=page)
            # The article's public URL: credentials of the source URL are for fetching, never for readers.
            entry = self.parse_page(result.text, strip_userinfo(link.url), link)
            return _PostOutcome(link, entry=entry, page=page)
        except Exception as exc:  # FetchError, ParseError; a parser bug must not stop the other posts
            if not isinstance(exc, (FetchError, ParseError)):
                exc = ParseError(f"cannot read {link.url}: {type(exc).__name__}: {exc}")
            return _PostOutcome(link, error=str(exc), failure=exc)

    def parse_page(self, page: str, url: str, link: PostLink) -> Entry:
        """A fetched post page as an Entry (a list-page source reads its pages its own way)."""
        return parse_post(page, url, self.config.id, self.config.outlet)

    # ---- backfill: older posts on demand -------------------------------------------------------

    async def backfill_plan(self, since: date, known: Set[str]) -> list[PostLink]:
        """Listed posts older than the oldest stored one, published on or after `since` (oldest first).

        Newer posts are the polls' business: they bring their chat messages, which a backfill never does.
        """
        _, links = await self.fetch_index(None)
        positions = [i for i, link in enumerate(links) if link.key in known]
        older = links[positions[-1] + 1:] if positions else links
        wanted = [link for link in older if link.key not in known and (link.day is None or link.day >= since)]
        return list(reversed(wanted))

    async def backfill(self, since: date, known: Set[str], save: Callable[[Entry], str], *,
                       on_plan: Callable[[int], None] | None = None,
                       on_post: Callable[[PostLink, str | None], None] | None = None,
                       delay: float | None = None) -> BackfillReport:
        """Fetch every listed post since `since` not stored yet; `save(entry)` stores one and returns its status."""
        plan = await self.backfill_plan(since, known)
        if on_plan:
            on_plan(len(plan))
        report = BackfillReport(planned=len(plan))
        async for link, entry, error in self.fetch_posts(plan, delay=delay):
            if entry is not None:
                status = save(entry)
                report.saved += status in ("new", "updated")
            else:
                report.errors.append(error or f"nothing read from {link.url}")
            if on_post:
                on_post(link, error)
        return report

    async def fetch_posts(self, links: Iterable[PostLink], *, delay: float | None = None
                          ) -> AsyncIterator[tuple[PostLink, Entry | None, str | None]]:
        """Fetch posts politely (concurrency limit, `delay` between starts), yielding each as it completes."""
        slots = asyncio.Semaphore(self.concurrency)
        pacer = _Pacer(self.fetcher.config.delay if delay is None else delay)

        async def one(link: PostLink) -> _PostOutcome:
            async with slots:
                await pacer.wait()
                return await self.fetch_post(link)

        tasks = [asyncio.ensure_future(one(link)) for link in links]
        try:
            for next_done in asyncio.as_completed(tasks):
                outcome = await next_done
                yield outcome.link, outcome.entry, outcome.error
        finally:
            for task in tasks:
                task.cancel()
