"""The composition root: every long-lived resource built once from a Config, and the operations on them.

The CLI and the daemon both go through ``App``: ``async with App(config, env) as app: ...``. Resources
are built on first use, so a command that needs no database (``classify``) opens none.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedbot import __version__
from feedbot.clock import utcnow
from feedbot.errors import FeedbotError, StateError
from feedbot.model import Classification, Entry, Target
from feedbot.outbox import CONSOLE, DrainStats, digest_targets_for, targets_for
from feedbot.outbox.targets import find_targets
from feedbot.pipeline import PollReport, backfill, poll_source, reclassify_stored, record_failure
from feedbot.prepare import Preparer
from feedbot.publish.channels import all_written
from feedbot.settings.config import Config, SourceConfig
from feedbot.sources import Source, make_source
from feedbot.store import Store
from feedbot.store.group import GroupCommit
from feedbot.store.lock import StateDirLock
from feedbot.workers import worker_count

# What only some commands use is imported where it is used: `feedbot once` on unchanged sources loads no
# classifier, and commands that touch no network (status, classify) load no HTTP client.
if TYPE_CHECKING:
    from feedbot.sources.http import Fetcher
    from feedbot.sources.jekyll import BackfillReport, PostLink
    from feedbot.sources.probe import ProbeReport

log = logging.getLogger("feedbot")
TAG_AUTHORITY_KEY = "feeds.tag_authority"
FEEDS_BUILT_KEY = "feeds.built"  # the token of the last rebuild, so a `once` with nothing new skips it
READER_CLOSE_WAIT = 5.0  # seconds a close waits for a feed rebuild thread to let go of its connection
LOOP_WRITE_WAIT = 10.0  # seconds a rebuild thread waits for the loop to make its write


class App:
    """Store, HTTP client, sources, rules and publisher for one configuration, closed together."""

    def __init__(self, config: Config, env: Mapping[str, str] | None = None, *, read_only: bool = False,
                 exclusive: bool = True, clock: Callable[[], datetime] = utcnow):
        self.config = config
        self.clock = clock  # digest schedules and quiet hours (tests compress a day with it)
        self.env = dict(env or {})
        self.read_only = read_only  # `status`: never migrate or write
        # One writer per state dir (polls, drains, migrations); `unblock` writes one row beside a running service.
        self.exclusive = exclusive and not read_only
        self._lock = StateDirLock(config.state_dir)
        self.source_configs: dict[str, SourceConfig] = {s.id: s for s in config.sources}
        self.targets: dict[str, list[Target]] = targets_for(config)
        self.digest_targets: dict[str, list[Target]] = digest_targets_for(config)
        self._store: Store | None = None
        self._fetcher: Fetcher | None = None
        self._preparer: Preparer | None = None
        self._committer: GroupCommit | None = None
        self._sources: dict[str, Source] | None = None
        self._publisher: Any = None  # TelegramPublisher | ConsolePublisher | None, built on first drain
        self._publisher_built = False
        self.last_plan: Any = None  # what the last drain's digest planning recorded (PlanStats)
        self._reader: Store | None = None  # the feed rebuild thread's own connection
        self._feeds_fingerprint: str | None = None
        self._reader_lock = threading.Lock()

    async def __aenter__(self) -> App:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __enter__(self) -> App:
        """For state-only commands that need no event loop (status, reclassify)."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fetcher is not None or self._publisher is not None:
            raise RuntimeError("the App opened network resources: use `async with App(...)`")
        self._close_store()

    def _close_store(self) -> None:
        # A rebuild thread still running (its task was cancelled at a stop) holds the lock; it may wait on
        # the loop for a write, so never block on it for long: the process is ending, its connection with it.
        if self._reader_lock.acquire(timeout=READER_CLOSE_WAIT):
            try:
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
            finally:
                self._reader_lock.release()
        else:
            log.warning("a feed rebuild was still running at the stop; its read connection was left to close")
        if self._store is not None:
            self._store.close()
            self._store = None
        self._committer = None
        self._lock.release()

    async def close(self) -> None:
        """Release everything that was opened, database last."""
        if self._publisher is not None:
            await self._publisher.close()
            self._publisher = None
        if self._fetcher is not None:
            await self._fetcher.aclose()
            self._fetcher = None
        if self._preparer is not None:
            await asyncio.to_thread(self._preparer.close)  # joins the worker processes: not on the loop
            self._preparer = None
        self._close_store()

    # ---- resources, built once on first use -----------------------------------------------------

    @property
    def store(self) -> Store:
        """The state database (migrated, sources synced) — or read as it is for `status`."""
        if self._store is None:
            if self.read_only:
                self._store = Store(self.config.db_path, migrate=False, read_only=True)
            else:
                if self.exclusive:
                    self._lock.acquire()  # before the migration: two fresh starts never race it
                try:
                    self._store = Store(self.config.db_path)
                    self._store.sync_sources((s.id, s.kind, s.url) for s in self.config.sources)
                except BaseException:
                    if self._store is not None:
                        self._store.close()
                        self._store = None
                    self._lock.release()
                    raise
        return self._store

    @property
    def committer(self) -> GroupCommit:
        """The polls' group commit on the store: polls that finish together share one COMMIT."""
        if self._committer is None:
            self._committer = GroupCommit(self.store)
        return self._committer

    @property
    def fetcher(self) -> Fetcher:
        """The one HTTP client of the process."""
        if self._fetcher is None:
            from feedbot.sources.http import Fetcher

            self._fetcher = Fetcher(self.config.fetch)
        return self._fetcher

    @property
    def preparer(self) -> Preparer:
        """Where polls normalize and classify: worker processes on spare cores, else a thread."""
        if self._preparer is None:
            self._preparer = Preparer(self.config.topics, worker_count(self.config.pipeline.workers))
        return self._preparer

    @property
    def sources(self) -> dict[str, Source]:
        """Every configured source, by id."""
        if self._sources is None:
            self._sources = {s.id: make_source(s, self.fetcher) for s in self.config.sources}
        return self._sources

    @property
    def publisher(self) -> Any:
        """The chat publisher: Telegram with a token, the console without, None when no topic has a chat."""
        if not self._publisher_built:
            self._publisher_built = True
            self._publisher = self._build_publisher()
        return self._publisher

    def _build_publisher(self) -> Any:
        if not any(self.targets.values()) and not any(self.digest_targets.values()):
            log.info("no topic has a Telegram chat configured: publishing feeds only")
            return None
        if self.config.telegram.token is not None:
            from feedbot.publish.telegram import TelegramPublisher  # imports python-telegram-bot: only when used

            dropped = self.store.drop_pending_of_kind(CONSOLE, reason="console output replaced by Telegram")
            if dropped:
                log.info("dropped %d console message(s) queued before the Telegram token was set", dropped)
            return TelegramPublisher(self.config, self.store, clock=self.clock)
        from feedbot.publish.console import ConsolePublisher

        log.info("no Telegram token (FEEDBOT_TELEGRAM_TOKEN): messages are printed to the console instead")
        return ConsolePublisher(self.config, self.store)

    async def stop_publisher(self) -> None:
        """Close the chat publisher for good (its token was rejected); feeds go on."""
        if self._publisher is not None:
            await self._publisher.close()
        self._publisher = None

    # ---- operations -------------------------------------------------------------------------------

    async def poll(self, source_id: str, *, deadline: float) -> PollReport:
        """Poll one source within ``deadline`` seconds; a failure is recorded and reported, never raised."""
        config = self.source_configs[source_id]
        try:
            async with asyncio.timeout(deadline):
                return await poll_source(self.sources[source_id], config, self.store, self.config.topics,
                                         self.targets, preparer=self.preparer, committer=self.committer)
        except TimeoutError:
            state = self.store.source_state(config.id)
            return record_failure(self.store, config, f"poll did not finish within {deadline:.0f}s and was cut off",
                                  state.failures if state else 0, utcnow())
        except StateError as exc:  # disk full, database locked too long: nothing stored, the next poll retries
            log.error("%s: poll not stored: %s", source_id, exc)
            return PollReport(source_id, "failed", error=str(exc))

    def rebuild_feeds(self) -> list:
        """Rewrite every channel's feed files (and digest feeds) whose content changed; returns the files written."""
        from feedbot.publish.digestfeeds import rebuild_digest_feeds

        authority = self.tag_authority()
        from feedbot.publish import feeds  # feedgen and lxml: imported when feeds are built

        changed = feeds.rebuild_all(self.store, self.config, authority)
        return changed + rebuild_digest_feeds(self.store, self.config, authority, self.clock())

    def open_reader(self) -> Store:
        """A second connection to the state database, for reading in a worker thread (the caller closes it).

        SQLite connections are not to be shared across threads: the loop's connection stays the loop's.
        WAL mode lets this one read committed data while the loop writes.
        """
        self.store  # noqa: B018 — migrated (and locked) by the main connection first
        return Store(self.config.db_path, migrate=False, read_only=True)

    async def rebuild_feeds_off_loop(self, *, skip_if: str | None = None) -> tuple[str, list | None]:
        """``rebuild_feeds`` in a worker thread over its own connection, so polls and the watchdog go on.

        Returns the store's change token and the files written, or None for the files when the token
        equals ``skip_if`` (nothing changed since the last rebuild). The rare write of a rebuild (an
        article set aside) runs back on the loop's connection.
        """
        authority = self.tag_authority()  # may write once: on the loop's connection
        fingerprint = self.feeds_fingerprint()
        loop = asyncio.get_running_loop()

        def work() -> tuple[str, list | None]:
            with self._reader_lock:
                if self._reader is None:
                    self._reader = self.open_reader()
                token = f"{self._reader.last_change()}|{fingerprint}"
                if token == skip_if:
                    return token, None
                from feedbot.publish import feeds  # feedgen and lxml: imported when feeds are built

                return token, feeds.rebuild_all(_ReadHereWriteOnLoop(self._reader, self.store, loop),
                                                self.config, authority)

        return await asyncio.to_thread(work)

    def feeds_fingerprint(self) -> str:
        """What decides the feed files besides the stored articles: this feedbot, its configuration, the rules."""
        if self._feeds_fingerprint is None:
            settings = json.dumps(self.config.as_dict(), sort_keys=True, ensure_ascii=False, default=str)
            rules = repr(sorted(self.config.topics.items()))  # tuples and frozen dataclasses: a stable repr
            self._feeds_fingerprint = hashlib.sha256(f"{__version__}\0{settings}\0{rules}".encode()).hexdigest()[:16]
        return self._feeds_fingerprint

    def built_feeds_token(self) -> str | None:
        """The recorded token of the last rebuild, if every file it wrote is still there (else None: rebuild)."""
        token = self.store.get_meta(FEEDS_BUILT_KEY)
        return token if token is not None and all_written(self.config) else None

    def record_feeds_built(self, token: str) -> None:
        """Record the token a rebuild wrote the feeds at (a later run with the same token need not rebuild)."""
        if self.store.get_meta(FEEDS_BUILT_KEY) != token:
            self.store.set_meta(FEEDS_BUILT_KEY, token)

    def tag_authority(self) -> str:
        """The authority of every feed entry id, fixed the first time feeds are built (ids survive a new base_url).

        An install from before it was stored keeps the authority its written feeds already use.
        """
        authority = self.store.get_meta(TAG_AUTHORITY_KEY)
        if authority is None:
            from feedbot.publish import feeds

            authority = (feeds.published_tag_authority(self.config.feeds_dir)
                         or feeds.tag_authority_of(self.config.web.base_url))
            self.store.set_meta(TAG_AUTHORITY_KEY, authority)
        return authority

    def unblock(self, target: str | None = None) -> list[Target]:
        """Clear a blocked chat (or every blocked one) so the next drain tries it now; returns those cleared."""
        if target is None:
            return self.store.unblock_targets(None)
        wanted = list(dict.fromkeys(find_targets(self.targets, target)))
        if not wanted:
            known = sorted({str(t) for ts in self.targets.values() for t in ts})
            raise FeedbotError(f"no configured target {target!r} (have: {', '.join(known) or 'none'})")
        return self.store.unblock_targets(wanted)

    async def drain(self, stop: asyncio.Event | None, budget: float | None) -> DrainStats | None:
        """Send what is due through the publisher (None when there is none)."""
        publisher = self.publisher
        if publisher is None:
            return None
        self.last_plan = self.plan_digests()
        return await publisher.drain(stop, budget_seconds=budget)

    def plan_digests(self, now: datetime | None = None) -> Any:
        """Record the digests due by now (each period once); the next drain sends them. None without digests."""
        if not any(self.digest_targets.values()):
            return None
        from feedbot.publish.digests import DigestPlanner

        return DigestPlanner.for_config(self.config, self.store, self.digest_targets).plan(now or self.clock())

    def pending(self) -> int:
        """Messages waiting in the outbox (pending or sending)."""
        return sum(c.count for c in self.store.delivery_counts() if c.status in ("pending", "sending"))

    async def backfill(self, source_id: str, since: date, *, on_plan: Callable[[int], None] | None = None,
                       on_post: Callable[[PostLink, str | None], None] | None = None) -> BackfillReport:
        """Fetch a Jekyll source's older posts since a day into the store and the feeds (no chat messages)."""
        return await backfill(self.sources[source_id], self.source_configs[source_id], self.store,
                              self.config.topics, since, on_plan=on_plan, on_post=on_post)

    def reclassify(self) -> tuple[int, int, int]:
        """Classify every stored article with the current rules, rebuild the feeds and the search index.

        Returns (articles, changed, feed files written).
        """
        total, changed = reclassify_stored(self.store, self.config.topics)
        self.store.rebuild_search_index()
        return total, changed, len(self.rebuild_feeds())

    def status(self) -> dict[str, Any]:
        """Sources, articles per topic and the outbox, as data."""
        from feedbot.ops.status import collect_status

        return collect_status(self.store, self.config)

    # ---- the classifier on its own (no state) -------------------------------------------------------

    def classify_lines(self, lines: Iterable[str], name: str) -> Iterator[dict[str, Any]]:
        """`feedbot classify`: one record per JSON-lines article."""
        from feedbot.classify import articles
        from feedbot.classify.scoring import classify
        from feedbot.sources.normalize import normalize

        for entry in articles.read_articles(lines, name):
            yield articles.classification_record(entry.key, classify(normalize(entry), self.config.topics))

    def classify_entry(self, entry: Entry) -> Classification:
        """The verdict on one entry."""
        from feedbot.classify.scoring import classify
        from feedbot.sources.normalize import normalize

        return classify(normalize(entry), self.config.topics)

    def evaluate(self, corpora: Iterable[str], *, as_json: bool = False, errors: bool = False) -> str:
        """`feedbot eval`: precision, recall and F1 per topic on labelled corpora, as text or JSON."""
        from feedbot.classify import evaluate

        return evaluate.run_eval(corpora, self.config.topics, as_json=as_json, errors=errors)

    async def explain(self, target: str, article_id: str | None = None, *, as_json: bool = False) -> str:
        """`feedbot explain`: each topic's score, evidence and excerpt for one article (URL or file)."""
        from feedbot.classify import articles
        from feedbot.classify.scoring import explain
        from feedbot.sources.normalize import normalize

        entry = await self._entry_from(target, article_id)
        article = normalize(entry)
        scores = explain(article, self.config.topics)
        if as_json:
            return json.dumps(articles.explanation_dict(article, scores), ensure_ascii=False, indent=2) + "\n"
        return articles.format_explanation(article, scores)

    async def probe(self, url: str) -> ProbeReport:
        """`feedbot probe`: what a page is, what it would yield, and a ready [[sources]] block."""
        from feedbot.sources.probe import probe

        return await probe(self.fetcher, url)

    def import_opml(self, path: str) -> list[str]:
        """`feedbot sources import`: a [[sources]] block per feed of an OPML file not configured yet."""
        from feedbot.sources.opml import read_opml, source_blocks

        try:
            content = Path(path).read_bytes()
        except OSError as exc:
            raise FeedbotError(f"{path}: cannot read: {exc.strerror or exc}") from None
        found = read_opml(content, path)
        return source_blocks(found, self.source_configs, [s.url for s in self.config.sources])

    async def _entry_from(self, target: str, article_id: str | None) -> Entry:
        """A URL (a Jekyll post, else any page's h1 and p) or a file (.html, .json, .jsonl)."""
        from feedbot.classify import articles
        from feedbot.sources.jekyll import parse_post

        if not target.startswith(("http://", "https://")):
            return articles.entry_from_file(target, article_id)
        page = await self.fetcher.get(target)
        try:
            return parse_post(page.text, page.final_url, "explain")
        except FeedbotError:
            return articles.entry_from_html(page.text, page.final_url)


class _ReadHereWriteOnLoop:
    """What a feed rebuild needs of the store: reads on the worker thread's connection, writes on the loop's."""

    def __init__(self, reader: Store, store: Store, loop: asyncio.AbstractEventLoop):
        self.reader, self.store, self.loop = reader, store, loop

    def articles(self, topic: str | None = None, limit: int = 50) -> list:
        return self.reader.articles(topic, limit)

    def quarantine(self, *args: Any, **kwargs: Any) -> int:
        async def write() -> int:
            return self.store.quarantine(*args, **kwargs)

        # Bounded: a loop that is closing never runs it; the rebuild then logs the article as not recorded.
        return asyncio.run_coroutine_threadsafe(write(), self.loop).result(timeout=LOOP_WRITE_WAIT)
