"""The CPU stage of a poll: entries → (article, classification, signature), in worker processes when cores allow.

Normalizing, classifying and fingerprinting an article is pure CPU work in Python, so threads take turns
on one core (the GIL). With a spare core a ``Preparer`` sends each poll's batch to a process pool: the event
loop keeps fetching and storing while another core prepares, and a first cycle of thousands of articles
takes about half the wall time (BENCHMARKS.md, "cycle"). With ``workers = 0`` (or one core) the batch runs in
a thread of the daemon, as before.

A worker that dies (killed by the OOM killer, a crash in a C library on a hostile page) breaks the pool: the
batch is then retried one item at a time in a fresh pool, so the items that kill it are told apart and
quarantined, the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

from feedbot.dedupe import signature
from feedbot.model import Article, Classification, Entry
from feedbot.settings.topics import TopicRules
from feedbot.sources.edge import clean_entry

log = logging.getLogger("feedbot.prepare")

Prepared = tuple[Article, Classification, bytes | None]
Outcome = Prepared | Exception
# A batch whose items keep killing fresh workers stops being retried after this many deaths (the rest are
# quarantined and retried by the quarantine's own backoff).
MAX_DEATHS_PER_BATCH = 3
MAX_AUTO_WORKERS = 4


def prepare(entry: Entry, topics: Mapping[str, TopicRules], now: datetime) -> tuple[Article, Classification]:
    """Clean an entry at the edge, normalize and classify it (pure CPU work, bounded by normalize's caps)."""
    # Imported on first use: a daemon whose workers prepare never loads the classifier in its own process.
    from feedbot.classify.scoring import classify
    from feedbot.sources.normalize import normalize

    article = normalize(clean_entry(entry, now))
    return article, classify(article, topics)


def prepare_all(entries: Sequence[Entry], topics: Mapping[str, TopicRules], now: datetime) -> list[Outcome]:
    """``prepare`` for each entry; an item that fails gives its exception instead (quarantined by the caller)."""
    out: list[Outcome] = []
    for entry in entries:
        try:
            article, classification = prepare(entry, topics, now)
            out.append((article, classification, signature(article.text)))  # the story's MinHash, off the loop
        except Exception as exc:
            out.append(exc)
    return out


def auto_workers(cpus: int | None = None) -> int:
    """Worker processes for ``workers = "auto"``: one per core beyond the event loop's, at most four."""
    cpus = cpus if cpus is not None else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return max(0, min(cpus - 1, MAX_AUTO_WORKERS))


class WorkerDied(Exception):
    """The worker process preparing this item died (it is quarantined and retried later)."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process, kept as its cause so logs show where."""

    def __str__(self) -> str:
        return "\n" + "".join(self.args)


class Preparer:
    """Runs ``prepare_all`` off the event loop: in a pool of worker processes, or in a thread when workers = 0."""

    def __init__(self, topics: Mapping[str, TopicRules], workers: int):
        self.topics = topics
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, entries: Sequence[Entry], now: datetime) -> list[Outcome]:
        """Prepare a poll's entries; never raises for an item (its exception is its outcome)."""
        if not entries:
            return []
        if self.workers <= 0:
            return await asyncio.to_thread(prepare_all, entries, self.topics, now)
        try:
            return await self._submit(entries, now)
        except BrokenProcessPool:
            log.warning("a prepare worker died while preparing %d item(s) of %s; retrying them one at a time",
                        len(entries), entries[0].source_id)
            self._discard_pool()
        return await self._one_by_one(entries, now)

    async def _one_by_one(self, entries: Sequence[Entry], now: datetime) -> list[Outcome]:
        out: list[Outcome] = []
        deaths = 0
        for entry in entries:
            if deaths >= MAX_DEATHS_PER_BATCH:
                out.append(WorkerDied(f"not prepared: {deaths} worker processes died on this poll's items"))
                continue
            try:
                out.extend(await self._submit([entry], now))
            except BrokenProcessPool:
                deaths += 1
                self._discard_pool()
                log.error("%s: item %s killed a prepare worker", entry.source_id, entry.key)
                out.append(WorkerDied("the worker process preparing this item died (killed, or crashed on it)"))
        return out

    async def _submit(self, entries: Sequence[Entry], now: datetime) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        outcomes = await loop.run_in_executor(self._ensure_pool(), _prepare_in_worker, list(entries), now)
        return [outcome.exception() if isinstance(outcome, _Failed) else outcome for outcome in outcomes]

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers fork from a clean server process that imported this module and the classifier
            # once, never from the daemon itself (forking a process with threads and an event loop is unsafe).
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__, "feedbot.classify.scoring", "feedbot.sources.normalize"])
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                             initargs=(self.topics,))
        return self._pool

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Stop the worker processes (a batch still running is abandoned: its poll was cut off anyway)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


_TOPICS: Mapping[str, TopicRules] | None = None  # a worker's rules, sent once when it starts


def _init_worker(topics: Mapping[str, TopicRules]) -> None:
    global _TOPICS
    _TOPICS = topics


class _Failed:
    """An item's exception on its way back from a worker: picklable, with the worker's traceback as text."""

    def __init__(self, exc: Exception):
        self.traceback = "".join(traceback.format_exception(exc))
        try:
            self.error: Exception = pickle.loads(pickle.dumps(exc))
        except Exception:  # an exception class that does not survive pickling: keep its name and message
            self.error = RuntimeError(f"{type(exc).__name__}: {exc}")

    def exception(self) -> Exception:
        """The exception in the daemon, its cause the worker's traceback (a pickled exception loses it)."""
        self.error.__cause__ = RemoteTraceback(self.traceback)
        return self.error


def _prepare_in_worker(entries: list[Entry], now: datetime) -> list[Outcome | _Failed]:
    assert _TOPICS is not None, "worker not initialized"
    return [_Failed(o) if isinstance(o, Exception) else o for o in prepare_all(entries, _TOPICS, now)]
