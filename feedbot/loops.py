"""The daemon's background loops (drain, feeds, search index, watchdog, bot commands): supervised, they end
only at stop.

A failed round is logged in one line (a traceback once per streak for a bug), counted in
``feedbot_task_failures_total{task}``, makes ``/healthz`` answer 503 with the reason, and is retried with
backoff; the next good round clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from feedbot.errors import FeedbotError, PublisherUnauthorized

log = logging.getLogger("feedbot")

DRAIN_EVERY = 30.0  # seconds between outbox checks when nothing new arrived (retries come due)
DRAIN_BUDGET = 60.0  # one drain round never holds newer items back longer than this
FEEDS_MIN_GAP = 5.0
STALL_AFTER = 120.0  # no heartbeat for this long: /healthz answers 503, the watchdog stops pinging
TASK_RETRY_FIRST = 1.0
TASK_RETRY_MAX = 60.0
# The search index is filled from its queue in batches on the loop's own connection (a transaction never
# spans an await). Indexing costs about 1 µs per character: 500 feed items of 165 characters take 10-60 ms,
# 500 articles of 5,000 characters 2-4 s. So batches start small, double while quick, and one that held the
# loop past INDEX_BATCH_SECONDS makes the next one as much smaller.
INDEX_BATCH = 500
INDEX_BATCH_FIRST = 20
INDEX_BATCH_MIN = 5
INDEX_BATCH_SECONDS = 0.05
INDEX_EVERY = 60.0  # seconds between looks at the queue when no poll said it stored something


class BackgroundLoops:
    """The loops of ``Daemon`` (mixed in: they share its events, app, metrics and notifier)."""

    stop_event: asyncio.Event
    kick: asyncio.Event
    feeds_dirty: asyncio.Event
    index_dirty: asyncio.Event
    first_polls_done: asyncio.Event
    task_errors: dict[str, tuple[str, int]]
    metrics: Any
    notifier: Any
    app: Any
    poll_deadline: float
    last_heartbeat: float

    # ---- background rounds: a failure is logged, counted, shown by /healthz and retried, never fatal ----

    def task_failed(self, task: str, exc: BaseException) -> float:
        """Record a failed round of a background task; returns how long to wait before the next try."""
        reason = f"{type(exc).__name__}: {exc}"[:300]
        streak = self.task_errors.get(task, ("", 0))[1] + 1
        self.task_errors[task] = (reason, streak)
        if self.metrics is not None:
            self.metrics.task_failures.labels(task).inc()
        # Our own errors say everything in one line; anything else is a bug: its traceback once per streak.
        trace = exc if streak == 1 and not isinstance(exc, FeedbotError) else None
        log.error("%s task: round failed (%d in a row), retrying: %s", task, streak, reason, exc_info=trace)
        return min(TASK_RETRY_FIRST * 2 ** (streak - 1), TASK_RETRY_MAX)

    def task_ok(self, task: str) -> None:
        """A round of a background task went through: it is healthy again."""
        failed = self.task_errors.pop(task, None)
        if failed is not None:
            log.info("%s task: working again after %d failed round(s)", task, failed[1])

    async def _drain_loop(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_deadline):
                await first_of(self.first_polls_done, self.stop_event)
        while not self.stop_event.is_set():
            wait = DRAIN_EVERY
            try:
                await self.drain(budget=DRAIN_BUDGET)
            except Exception as exc:  # the drain never dies: the next round retries what is due
                wait = self.task_failed("drain", exc)
            else:
                self.task_ok("drain")
            self.kick.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await first_of(self.kick, self.stop_event)

    async def _feeds_loop(self) -> None:
        while not self.stop_event.is_set():
            if "feeds" in self.task_errors:  # the last rebuild failed: retry after a pause, dirty or not
                _, streak = self.task_errors["feeds"]
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(TASK_RETRY_FIRST * 2 ** (streak - 1), TASK_RETRY_MAX)):
                        await self.stop_event.wait()
            else:
                await first_of(self.feeds_dirty, self.stop_event)
            if self.stop_event.is_set():
                break
            self.feeds_dirty.clear()
            await self.rebuild_feeds()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FEEDS_MIN_GAP):
                    await self.stop_event.wait()
        if self.feeds_dirty.is_set():  # what arrived during the last gap still reaches the feeds
            await self.rebuild_feeds()

    async def _index_loop(self) -> None:
        # After the first polls, as the drain: they go first, and search scans what is queued meanwhile.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_deadline):
                await first_of(self.first_polls_done, self.stop_event)
        batch = INDEX_BATCH_FIRST
        while not self.stop_event.is_set():
            wait = INDEX_EVERY
            self.index_dirty.clear()  # set again by a poll during this round: the next round starts at once
            try:
                while not self.stop_event.is_set():
                    started = time.monotonic()
                    if not self.app.store.index_pending(batch):  # one short transaction, nothing awaited inside
                        break
                    batch = next_index_batch(batch, time.monotonic() - started)
                    await asyncio.sleep(0)  # polls, the drain and the web server run between batches
            except Exception as exc:  # e.g. the disk is full: the queue keeps the ids, search still scans them
                wait = self.task_failed("search-index", exc)
            else:
                self.task_ok("search-index")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await first_of(self.index_dirty, self.stop_event)

    async def _watchdog_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                # A stalled scheduler is a hung daemon: stop pinging and let systemd restart us.
                if time.monotonic() - self.last_heartbeat <= STALL_AFTER:
                    self.notifier.watchdog()
            except Exception as exc:  # a failed ping must not end the pings
                self.task_failed("watchdog", exc)
            else:
                self.task_ok("watchdog")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.notifier.watchdog_interval):
                    await self.stop_event.wait()

    async def _commands_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                await self.app.publisher.run_commands(self.stop_event)
                return
            except PublisherUnauthorized as exc:  # the token was rejected: no retry can help
                log.error("bot commands stopped: %s", exc)
                return
            except Exception as exc:  # a bad update or a network fault: answer commands again after a pause
                wait = self.task_failed("bot-commands", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.stop_event.wait()


def next_index_batch(batch: int, took: float) -> int:
    """The next indexing batch: scaled so it holds the loop about INDEX_BATCH_SECONDS, at most doubled."""
    fitting = int(batch * INDEX_BATCH_SECONDS / took) if took > 0 else INDEX_BATCH
    return max(INDEX_BATCH_MIN, min(INDEX_BATCH, batch * 2, fitting))


async def first_of(*events: asyncio.Event) -> None:
    """Wait until any of the events is set."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
