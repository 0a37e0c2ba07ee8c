"""The CPU stage of a poll: entries → (article, classification, signature), in worker processes when cores allow.

Normalizing, classifying and fingerprinting an article is pure CPU work in Python, so threads take turns
on one core (the GIL). With a spare core a ``Preparer`` sends each poll's batch to a process pool: the event
loop keeps fetching and storing while another core prepares, and a first cycle of thousands of articles
takes about half the wall time (BENCHMARKS.md, "cycle"). With ``workers = 0`` (or one core) the batch runs in
a thread of the daemon, as before.

A worker that dies (killed by the OOM killer, a crash in a C library on a hostile page) breaks the pool: the
batch is retried once in a fresh pool, and if that dies too, one item at a time, so the items that kill it
are told apart and quarantined while the others go on.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import select
import signal
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime

from feedbot.dedupe import signature
from feedbot.model import Article, Classification, Entry
from feedbot.settings.topics import TopicRules
from feedbot.sources.edge import clean_entry
from feedbot.workers import context, start_server, worker_nice

log = logging.getLogger("feedbot.prepare")

Prepared = tuple[Article, Classification, bytes | None]
Outcome = Prepared | Exception
# A batch whose items keep killing fresh workers stops being retried after this many deaths (the rest are
# quarantined and retried by the quarantine's own backoff).
MAX_DEATHS_PER_BATCH = 3


def prepare(entry: Entry, topics: Mapping[str, TopicRules], now: datetime, *,
            cleaned: bool = False) -> tuple[Article, Classification]:
    """Clean an entry at the edge (unless ``cleaned`` says the caller did: clean_entry), normalize and classify
    it (pure CPU work, bounded by normalize's caps)."""
    # Imported on first use: a daemon whose workers prepare never loads the classifier in its own process.
    from feedbot.classify.scoring import classify
    from feedbot.sources.normalize import normalize

    article = normalize(entry if cleaned else clean_entry(entry, now))
    return article, classify(article, topics)


def prepare_all(entries: Sequence[Entry], topics: Mapping[str, TopicRules], now: datetime, *,
                cleaned: bool = False) -> list[Outcome]:
    """``prepare`` for each entry; an item that fails gives its exception instead (quarantined by the caller)."""
    out: list[Outcome] = []
    for entry in entries:
        try:
            article, classification = prepare(entry, topics, now, cleaned=cleaned)
            out.append((article, classification, signature(article.text)))  # the story's MinHash, off the loop
        except Exception as exc:
            out.append(exc)
    return out


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
        self._starting: asyncio.Future[ProcessPoolExecutor] | None = None
        self._closed = False

    def warm_up(self) -> None:
        """Start the worker processes in the background now, so the first batch does not wait for them."""
        if self.workers > 0 and self._pool is None and self._starting is None and not self._closed:
            # The forkserver's imports then run on another core at once; the rest of the start (a fork,
            # a ping) is quick. Left to the thread, the server started only when that thread got the
            # GIL from a loop busy importing, fetching and parsing (0.36 s instead of 0.16 s, measured).
            # (`feedbot run` and a first `once` start it even sooner, before importing the daemon.)
            start_server(self.workers)
            # Handed to a thread now (run_in_executor submits at once; to_thread would wait for the loop's next
            # turn, after whatever synchronous start-up work, such as creating the database, follows).
            self._starting = asyncio.get_running_loop().run_in_executor(None, self._new_pool)
            # A failure is reported (and the thread path taken) by the run() that awaits it.
            self._starting.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def run(self, entries: Sequence[Entry], now: datetime) -> list[Outcome]:
        """Prepare a poll's entries, cleaned at the edge already (clean_entry); never raises for an item (its
        exception is its outcome)."""
        if not entries:
            return []
        if self.workers > 0:
            try:
                await self._ready()
            except Exception as exc:  # no processes here (a sandbox, a limit): the thread does the same work
                log.error("cannot start prepare worker processes (%s: %s): preparing in a thread instead",
                          type(exc).__name__, exc)
                self.workers = 0
        if self.workers <= 0:
            return await asyncio.to_thread(prepare_all, entries, self.topics, now, cleaned=True)
        for attempt in (1, 2):
            try:
                return await self._submit(entries, now)
            except BrokenProcessPool:
                self._discard_pool()
                log.warning("a prepare worker died while preparing %d item(s) of %s (attempt %d)%s", len(entries),
                            entries[0].source_id, attempt, "; retrying in a fresh worker" if attempt == 1
                            else "; retrying them one at a time")
        # Twice in a row: one of the items is likely what kills the worker. Find it, keep the others.
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
        pool = await self._ready()
        outcomes = await asyncio.get_running_loop().run_in_executor(pool, _prepare_in_worker, list(entries), now)
        return [outcome.exception() if isinstance(outcome, _Failed) else outcome for outcome in outcomes]

    async def _ready(self) -> ProcessPoolExecutor:
        """The pool, started once in a thread (shielded: a poll cut off meanwhile does not leak a half-started one)."""
        if self._pool is not None:
            return self._pool
        if self._starting is None:
            self._starting = asyncio.ensure_future(asyncio.to_thread(self._new_pool))
        starting = self._starting
        try:
            pool = await asyncio.shield(starting)
        finally:
            if starting.done() and self._starting is starting:
                self._starting = None
        if self._pool is None:
            self._pool = pool
        return self._pool

    def _new_pool(self) -> ProcessPoolExecutor:
        # forkserver: workers fork from a clean server process that imported this module and the classifier
        # once, never from the daemon itself (forking a process with threads and an event loop is unsafe).
        pool = ProcessPoolExecutor(self.workers, mp_context=context(), initializer=_init_worker,
                                   initargs=(self.topics, os.getpid(), worker_nice(self.workers)))
        try:
            for ping in [pool.submit(_ping) for _ in range(self.workers)]:  # spawns every worker here, not on the loop
                ping.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        if self._closed:  # closed while starting
            pool.shutdown(wait=True)
            raise RuntimeError("the preparer was closed")
        return pool

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Stop the worker processes (a batch still running is abandoned: its poll was cut off anyway)."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


_TOPICS: Mapping[str, TopicRules] | None = None  # a worker's rules, sent once when it starts
# Prepared once by a new worker before it counts as started: the rules compiled, the lazily built tables
# and imports loaded, so the first real batch (on a first cycle's critical path) does not pay for them.
_WARM_UP = Entry(source_id="warm-up", key="warm-up", url="https://example.org/warm-up", title="全国碳市场 warm-up",
                 body_html="<p>全国碳排放权交易市场，ＣＣＥＲ（自愿减排）。</p>")


def _init_worker(topics: Mapping[str, TopicRules], daemon_pid: int, nice: int = 0) -> None:
    global _TOPICS
    _TOPICS = topics
    if nice:
        try:
            os.nice(nice)  # below the loop: workers.worker_nice
        except OSError as exc:  # a sandbox may refuse it; the worker then runs as it is
            log.warning("prepare worker: cannot lower its priority: %s", exc)
    prepare_all([_WARM_UP], topics, datetime.now(UTC))
    gc.freeze()  # the rules, tables and modules live as long as the worker: the collector stops scanning them
    # Ctrl-C in a terminal reaches the whole process group: the daemon stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(daemon_pid,), name="feedbot-daemon-watch", daemon=True).start()


def _exit_with(pid: int) -> None:
    """End this worker when the daemon ends, however it ends: a pool worker would wait on its queue for ever.

    Its parent is the forkserver, not the daemon, and it holds the pipes that would tell either of them, so
    after a SIGKILL of the daemon nothing else ends it (nor the forkserver, which waits for its workers).
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # no pidfd (not Linux, or before 5.3): look every second instead
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass
    select.select([fd], [], [])  # readable once the process has ended
    os._exit(0)


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


def _ping() -> None:
    """Nothing: a worker that ran it has started."""


def _prepare_in_worker(entries: list[Entry], now: datetime) -> list[Outcome | _Failed]:
    assert _TOPICS is not None, "worker not initialized"
    return [_Failed(o) if isinstance(o, Exception) else o for o in prepare_all(entries, _TOPICS, now, cleaned=True)]
