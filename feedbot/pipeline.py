"""One poll of one source, end to end: entries → articles → store new/changed → classify → outbox rows."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from feedbot.clock import utcnow
from feedbot.dedupe import save_once
from feedbot.errors import FeedbotError, FetchError, StateError
from feedbot.model import Entry
from feedbot.prepare import Preparer, prepare, prepare_all
from feedbot.settings.config import SourceConfig
from feedbot.settings.secrets import redact
from feedbot.settings.topics import TopicRules
from feedbot.sources import Source
from feedbot.sources.edge import clean_entry, clean_key, clean_text
from feedbot.sources.schedule import next_check_failed, next_check_ok
from feedbot.store import Store
from feedbot.store.group import GroupCommit
from feedbot.store.sources import MAX_POST_FAILURES

log = logging.getLogger("feedbot.poll")


@dataclass(frozen=True)
class PollReport:
    """What one poll of one source did, for logs, metrics and the systemd status line."""

    source_id: str
    result: Literal["ok", "not_modified", "failed"]
    new: int = 0
    updated: int = 0
    deliveries: int = 0
    item_errors: int = 0
    quarantined: int = 0  # items that failed processing this poll (set aside, the rest went on)
    held_back: int = 0  # quarantined items whose next try is not due yet
    error: str | None = None
    next_check_at: datetime | None = None

    @property
    def changed(self) -> bool:
        """True when the feeds need a rebuild."""
        return bool(self.new or self.updated)

    def line(self) -> str:
        """One log line per poll result."""
        if self.result == "failed":
            retry = f" (next try {self.next_check_at:%H:%M:%S} UTC)" if self.next_check_at else ""
            return f"{self.source_id}: poll failed: {self.error}{retry}"
        if self.result == "not_modified":
            return f"{self.source_id}: not modified"
        extra = f", {self.item_errors} post(s) failed and will be retried" if self.item_errors else ""
        if self.quarantined or self.held_back:
            extra += f", {self.quarantined} item(s) quarantined, {self.held_back} held back"
        return (f"{self.source_id}: {self.new} new, {self.updated} updated, "
                f"{self.deliveries} message(s) queued{extra}")


async def poll_source(source: Source, config: SourceConfig, store: Store, topics: Mapping[str, TopicRules],
                      targets: Mapping[str, Sequence[str]], *, now: datetime | None = None,
                      rng: random.Random | None = None, preparer: Preparer | None = None,
                      committer: GroupCommit | None = None) -> PollReport:
    """Poll one source and store what it found; a failure is recorded on the source row, never raised.

    Everything a poll stores is one transaction: articles, classifications, deliveries, pages and,
    last, the source's validators. A crash mid-poll leaves nothing of it, so the next poll fetches the
    index again and stores it all; after a commit every article is recognized by its key and never
    stored twice. One item that fails is rolled back alone (a savepoint) and quarantined.
    """
    now = now or utcnow()
    state = store.source_state(config.id)
    failures = state.failures if state else 0
    in_quarantine = store.quarantined_keys(config.id)
    # A quarantined item not due for a retry counts as known: a source need not fetch it again.
    waiting = {key for key, retry_at in in_quarantine.items() if retry_at is not None and retry_at > now}
    known = store.known_keys(config.id)
    try:
        # Posts that failed before are retried explicitly (a source that can fetch them one by one).
        if getattr(source, "retries_failed_posts", False):
            result = await source.poll(state, set(known), page_validators=store.page_validators,
                                       retry=store.post_retries(config.id), skip=waiting)
        else:
            result = await source.poll(state, known | waiting, page_validators=store.page_validators)
    except StateError:
        raise
    except FeedbotError as exc:
        return record_failure(store, config, str(exc), failures, now, rng,
                       exc.retry_after if isinstance(exc, FetchError) else None)
    except Exception as exc:  # a bug in a parser must not stop the other sources
        log.exception("%s: unexpected error while polling", config.id)
        return record_failure(store, config, f"internal error: {type(exc).__name__}: {exc}", failures, now, rng)

    work: list[Entry] = []
    held_back = unclean = 0
    for raw in result.entries:
        if clean_key(raw.key) in waiting:
            held_back += 1
            continue
        try:
            # Validated at the edge, here: cheap next to what the workers do, and it keeps their core free.
            work.append(clean_entry(raw, now))
        except Exception as exc:  # one bad item must not stop the source: set it aside with its reason
            unclean += 1
            quarantine_item(store, config.id, raw, exc, now)
    # The CPU-heavy part runs off the loop once per poll (not per item: a hop costs more than a small item):
    # in a worker process when the App has a Preparer, else in a thread. The loop stays responsive.
    if preparer is not None:
        prepared = await preparer.run(work, now)
    else:
        prepared = await asyncio.to_thread(prepare_all, work, topics, now, cleaned=True) if work else []
    next_check = next_check_ok(now, config.interval, rng)

    def write() -> tuple[int, int, int, int]:
        """The poll's writes, without an await (the connection is shared by every coroutine): counts stored."""
        new = updated = queued = 0
        quarantined = unclean
        # Read once per poll, so an item needs no statement to learn it has no retry row to clear.
        retrying = store.retry_keys(config.id) if work else set()
        for entry, outcome in zip(work, prepared, strict=True):
            try:
                if isinstance(outcome, Exception):
                    raise outcome
                # A savepoint per item (all or nothing); a reprint of a story first seen elsewhere gets no deliveries.
                # A key the store did not hold when the poll began is inserted without a lookup first.
                article, classification, sig = outcome
                saved = save_once(store, article, classification, targets, now=now, sig=sig,
                                  new=article.key not in known, retried=article.key in retrying)
            except StateError:
                raise
            except Exception as exc:  # one bad item must not stop the source: set it aside with its reason
                quarantined += 1
                quarantine_item(store, config.id, entry, exc, now)
                continue
            if entry.key in in_quarantine:
                store.release(config.id, entry.key)
                log.info("%s: item %s is no longer quarantined", config.id, entry.key)
            known.add(article.key)  # the same key twice in one index: the second is an update or a repeat
            new += saved.status == "new"
            updated += saved.status == "updated"
            queued += saved.deliveries_added
        for page in result.pages:
            store.record_page(page.url, config.id, etag=page.etag, last_modified=page.last_modified,
                              content_hash=page.content_hash, fetched_at=now)
        if result.failed:
            urls = {key: (url, error) for key, url, error in result.failed}
            for key in store.record_post_failures(config.id, result.failed, now):
                # Given up on: set aside in the quarantine, where `feedbot status` lists it with its reason.
                url, error = urls[key]
                store.quarantine(config.id, key, url=url,
                                 reason=f"failed {MAX_POST_FAILURES} polls in a row: {error}", stage="fetch", now=now)
                log.error("%s: %s failed %d polls in a row; quarantined, no longer retried", config.id, key,
                          MAX_POST_FAILURES)
        # The validators last: until they are stored, the next poll fetches the index again.
        store.record_poll_ok(config.id, etag=result.etag, last_modified=result.last_modified, checked_at=now,
                             next_check_at=next_check)
        return new, updated, queued, quarantined

    # One transaction per poll: with a GroupCommit, shared with the polls that finish in the same turn of the
    # loop (one COMMIT for all, each poll still all or nothing in its savepoint). A poll that brought no item
    # writes bookkeeping only (when checked, the same validators): a power cut may lose it, costing one more
    # conditional GET, so it skips the fsync (~0.2 ms a poll, BENCHMARKS.md).
    if committer is not None:
        new, updated, queued, quarantined = await committer.run(write, durable=bool(work))
    else:
        with store.transaction(durable=bool(work)):
            new, updated, queued, quarantined = write()
    for warning in result.warnings:
        log.warning("%s: %s", config.id, warning)
    report = PollReport(config.id, "not_modified" if result.not_modified and not result.entries else "ok",
                        new=new, updated=updated, deliveries=queued, item_errors=len(result.errors),
                        quarantined=quarantined, held_back=held_back, next_check_at=next_check)
    # "not modified" is most polls of a daemon: a debug line, so the log shows what changed and what failed.
    log.log(logging.DEBUG if report.result == "not_modified" else logging.INFO, report.line())
    return report


def quarantine_item(store: Store, source_id: str, entry: Entry, exc: BaseException, now: datetime,
                    stage: str = "poll") -> None:
    """Set one failed item aside with its reason, logged in one line (a traceback only the first time)."""
    key = clean_key(entry.key) or "(no key)"
    reason = clean_text(f"{type(exc).__name__}: {exc}")
    count = store.quarantine(source_id, key, url=clean_text(entry.url) or None, reason=reason, stage=stage,
                             now=now)
    if count == 1:
        log.warning("%s: item %s quarantined: %s", source_id, key, reason, exc_info=exc)
    else:
        log.warning("%s: item %s still fails (%d times), quarantined: %s", source_id, key, count, reason)


def record_failure(store: Store, config: SourceConfig, error: str, failures: int, now: datetime,
                   rng: random.Random | None = None, retry_after: float | None = None) -> PollReport:
    """Record a failed poll on the source row, with its backoff, and log one line."""
    # Error messages name the URL, and a source URL may carry credentials: store and show it without them.
    error = redact(error)
    next_check = next_check_failed(now, config.interval, failures + 1, retry_after, rng)
    store.record_poll_failure(config.id, error=error, checked_at=now, next_check_at=next_check)
    report = PollReport(config.id, "failed", error=error, next_check_at=next_check)
    log.warning(report.line())
    return report


async def backfill(source: Any, config: SourceConfig, store: Store, topics: Mapping[str, TopicRules], since: date,
                   *, on_plan: Callable[[int], None] | None = None,
                   on_post: Callable[[Any, str | None], None] | None = None) -> Any:
    """Fetch a source's older posts since a day, politely, into the store and the feeds.

    Only sources with a full index (Jekyll category pages) can do this. Old posts get no chat
    deliveries: a channel must not receive a burst of old messages.
    """
    if not hasattr(source, "backfill"):
        raise FeedbotError(f"source {config.id!r} ({config.kind}) holds only its current entries: no backfill")

    def save(entry: Entry) -> str:
        now = utcnow()
        try:
            article, classification = prepare(entry, topics, now)
            return store.save_article(article, classification, {}, now=now).status
        except StateError:
            raise
        except Exception as exc:
            quarantine_item(store, config.id, entry, exc, now, stage="backfill")
            return "quarantined"

    return await source.backfill(since, store.known_keys(config.id), save, on_plan=on_plan, on_post=on_post)


def reclassify_stored(store: Store, topics: Mapping[str, TopicRules]) -> tuple[int, int]:
    """Classify every stored article again with the current rules; returns (articles, changed).

    Only the feeds follow: an article that joins a channel now sends no chat message for old news.
    """
    # The classifier is imported where it runs (here, or in prepare.py): a poll that finds nothing new needs
    # none, and a daemon that prepares in worker processes loads it in those only.
    from feedbot.classify.scoring import classify
    from feedbot.sources.normalize import normalize

    changed = 0
    ids = store.article_ids()
    for article_id in ids:
        stored = store.article(article_id)
        entry = Entry(source_id=stored.source_id, key=stored.key, url=stored.url, title=stored.title,
                      body_html=stored.body_html, published_at=stored.published_at, outlet=stored.outlet,
                      origin_url=stored.origin_url)
        try:
            changed += store.reclassify(article_id, classify(normalize(entry), topics))
        except StateError:
            raise
        except Exception as exc:  # one article the classifier cannot read keeps its old topics
            log.warning("article %d (%s %s) not reclassified: %s: %s", article_id, stored.source_id, stored.key,
                        type(exc).__name__, exc)
    return len(ids), changed
