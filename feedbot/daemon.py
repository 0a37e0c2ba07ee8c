"""The composition root: builds every long-lived resource once, schedules polls, drains, serves, stops cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from feedbot.app import App
from feedbot.clock import utcnow
from feedbot.errors import PublishError, PublisherUnauthorized, StateError
from feedbot.loops import STALL_AFTER, BackgroundLoops
from feedbot.ops.notify import Notifier
from feedbot.pipeline import PollReport
from feedbot.settings.config import Config

if TYPE_CHECKING:  # imported where used: `feedbot once` needs neither the scheduler, the web server nor metrics
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from feedbot.ops.metrics import Metrics
    from feedbot.web.listen import WebServer

log = logging.getLogger("feedbot")

# Feeds are rebuilt at most this often: with many sources, one rebuild per poll would starve the loop.
HEARTBEAT_EVERY = 15.0  # the scheduler proves it is alive this often
FAILED_POLLS_UNHEALTHY = 3  # every source failed this many times in a row: unhealthy
STOP_GRACE = 10.0  # seconds for in-flight polls to finish after SIGTERM
# A send in flight at SIGTERM is waited for up to the Bot API request timeout (publish/telegram.py
# REQUEST_TIMEOUT = 20 s) plus a margin, still inside the unit's TimeoutStopSec=30: cutting it off would
# leave a message Telegram may have delivered. One that is still unanswered stays 'sending' (outbox/drain.py).
SEND_GRACE = 25.0
ONCE_DRAIN_BUDGET = 30.0  # `feedbot once` sends what the rate limits allow within this many seconds
# A background round that failed is retried after 1 s, 2 s, 4 s … at most a minute apart.
# The status line's outbox count is a GROUP BY over every delivery: refreshed at most this often, not per poll.
STATUS_PENDING_EVERY = 5.0
# Polls running at once. More would only queue inside the fetcher and the worker threads with their deadline
# already running: 10,000 sources due together (a first start) were cut off by the thousands.
POLL_CONCURRENCY = 100
POLL_LATE_WARNING = 5.0  # a poll starting this many seconds after its scheduled time: the loop is overloaded


@dataclass
class CycleTotals:
    """Running totals for the systemd status line."""

    polls: int = 0
    new: int = 0
    updated: int = 0
    failed: int = 0
    last: dict[str, PollReport] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)  # sources whose last poll failed, kept per poll


class Daemon(BackgroundLoops):
    """One process: scheduler, pipeline, publishers and web server around one store, one fetcher, one bot."""

    def __init__(self, config: Config, env: Mapping[str, str], *, notifier: Notifier | None = None):
        self.config = config
        self.env = env
        self.notifier = notifier or Notifier(env)
        self.stop_event = asyncio.Event()
        self.kick = asyncio.Event()  # something new to publish
        self.feeds_dirty = asyncio.Event()  # something new for the feeds
        self.index_dirty = asyncio.Event()  # something new queued for the search index
        # The first drain waits for the first poll of every due source: the backlog guard must see
        # a whole first run, not half a backfill.
        self.first_polls_done = asyncio.Event()
        self._awaiting_first_poll: set[str] = set()
        self.totals = CycleTotals()
        self.app = App(config, env)
        self.metrics: Metrics | None = None  # built in open() with the web server, which alone shows them
        self.web: WebServer | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.last_heartbeat = time.monotonic()
        # A poll that hangs past this is cut off, so it cannot hold up the next ones.
        self.poll_deadline = max(config.fetch.deadline * 3, 60.0)
        self._feeds_token: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._pending_seen: tuple[float, int | str] | None = None  # (monotonic time, count) for the status line
        self._poll_slots = asyncio.Semaphore(POLL_CONCURRENCY)
        self._scheduled_at: dict[str, datetime] = {}  # source → when its running poll job was due
        self._polls_in_flight: set[asyncio.Task] = set()
        # Background task → (why its last round failed, failed rounds in a row); absent while it is fine.
        self.task_errors: dict[str, tuple[str, int]] = {}

    # ---- building and closing ------------------------------------------------------------------

    @property
    def store(self):
        """The App's state database."""
        return self.app.store

    async def open(self, *, web: bool = True) -> None:
        """Open the database and start the web server (the App builds the rest on first use)."""
        # Open and migrate now: a bad state dir fails at start, not mid-run.
        store = self.app.store
        if web and self.config.web.enabled:
            from feedbot.ops.metrics import Metrics
            from feedbot.web.listen import start_web
            from feedbot.web.server import create_app

            self.metrics = Metrics(store)
            app = create_app(self.config, self.store, metrics=lambda: self.metrics.render().decode(),
                             health=self.health)
            self.web = await start_web(app, self.config.web.host, self.config.web.port)
            log.info("web server on http://%s:%d/ (public URL %s)", self.config.web.host, self.web.port,
                     self.config.web.base_url)

    async def close(self) -> None:
        """Release everything: web server, then the App's resources (database last)."""
        if self.web is not None:
            await self.web.close()
        await self.app.close()
        self.notifier.close()

    # ---- the work ------------------------------------------------------------------------------

    async def poll(self, source_id: str) -> PollReport:
        """Poll one source within its deadline, so a hung poll cannot block the next ones."""
        async with self._poll_slots:  # the deadline starts when the poll does, not while it waits its turn
            report = await self.app.poll(source_id, deadline=self.poll_deadline)
        self._account(report)
        return report

    def _account(self, report: PollReport) -> None:
        t = self.totals
        t.polls += 1
        t.new += report.new
        t.updated += report.updated
        t.failed += report.result == "failed"
        t.last[report.source_id] = report
        if report.result == "failed":
            t.failing.add(report.source_id)
        else:
            t.failing.discard(report.source_id)
        self._awaiting_first_poll.discard(report.source_id)
        if not self._awaiting_first_poll:
            self.first_polls_done.set()
        if self.metrics is not None:
            self.metrics.polls.labels(report.source_id, report.result).inc()
            if report.new:
                self.metrics.articles_seen.labels(report.source_id, "new").inc(report.new)
            if report.updated:
                self.metrics.articles_seen.labels(report.source_id, "updated").inc(report.updated)
        if report.changed:
            self.feeds_dirty.set()
            self.index_dirty.set()
            self.kick.set()
        if self.notifier.enabled:  # the line counts the outbox (a query): only when systemd listens
            self.notifier.status(self.status_line())

    async def rebuild_feeds(self, *, force: bool = False, since_recorded: bool = False) -> int:
        """Rewrite the feed files whose content changed, in a worker thread (polls and the watchdog go on);
        a failure is recorded (task_failed), never raised.

        Skipped when nothing changed since the last rebuild of this process, or with ``since_recorded``
        since the last one recorded in the store (by any run); ``force`` always rebuilds.
        """
        if force or "feeds" in self.task_errors:
            skip_if = None
        elif since_recorded:
            skip_if = self.app.built_feeds_token()
        else:
            skip_if = self._feeds_token
        try:
            token, changed = await self.app.rebuild_feeds_off_loop(skip_if=skip_if)
        except Exception as exc:  # e.g. the disk is full: keep the old feeds, retry later
            self.task_failed("feeds", exc)
            return 0
        self._feeds_token = token
        if changed is None:
            log.debug("feeds: nothing changed since they were last written; not rebuilt")
            self.task_ok("feeds")
            return 0
        try:
            self.app.record_feeds_built(token)
        except StateError as exc:  # the feeds are written; the next `once` merely rebuilds them again
            log.warning("feeds: rebuilt, but not recorded as such: %s", exc)
        self.task_ok("feeds")
        if changed:
            log.info("feeds: %d file(s) rewritten in %s", len(changed), self.config.feeds_dir)
        return len(changed)

    async def drain(self, budget: float | None = None) -> None:
        """Send what is due; a rejected token stops the publisher, the feeds go on."""
        try:
            if self.app.publisher is None:
                return
            name = self.app.publisher.outbox.name
            stats = await self.app.drain(self.stop_event, budget)
            plan = self.app.last_plan
            if plan is not None and (plan.made or plan.empty or plan.missed):
                self.feeds_dirty.set()  # a period ended: the digest feeds gain an entry
        except PublisherUnauthorized as exc:
            log.error("chat publisher stopped: %s", exc)
            await self.app.stop_publisher()
            return
        except PublishError as exc:  # e.g. the Bot API unreachable at start: try again next round
            log.warning("chat publisher: %s", exc)
            return
        if self.metrics is not None and stats is not None:
            for outcome in ("sent", "edited", "digests", "failed", "dropped", "retried"):
                value = getattr(stats, outcome, 0)
                if value:
                    self.metrics.deliveries.labels(name, outcome).inc(value)
            if stats.rate_limited:
                self.metrics.rate_limited.inc(stats.rate_limited)
        self._pending_seen = None  # the drain changed the outbox: count it again now
        if self.notifier.enabled:
            self.notifier.status(self.status_line())

    def pending(self) -> int | str:
        """Messages waiting in the outbox ("?" while the database cannot be read)."""
        try:
            return self.app.pending()
        except StateError:
            return "?"

    def status_line(self) -> str:
        """The STATUS= line systemctl shows (cheap: it is sent after every poll)."""
        t = self.totals
        now = time.monotonic()
        if self._pending_seen is None or now - self._pending_seen[0] >= STATUS_PENDING_EVERY:
            self._pending_seen = (now, self.pending())
        line = (f"polled {len(t.last)} source(s) {t.polls} time(s), {t.new} new and {t.updated} updated "
                f"article(s), {self._pending_seen[1]} pending")
        failing = sorted(t.failing)
        shown = ", ".join(failing[:10]) + (f" and {len(failing) - 10} more" if len(failing) > 10 else "")
        return line + (f"; failing: {shown}" if failing else "")

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Unhealthy when the scheduler stalled, every source has failed for several polls, or the last round
        of a background task (feeds, drain, search index, bot commands) failed. Quarantined items alone are not
        a fault."""
        stalled = time.monotonic() - self.last_heartbeat > STALL_AFTER
        states = self.store.source_states()
        all_failing = bool(states) and all(s.failures >= FAILED_POLLS_UNHEALTHY for s in states)
        tasks = {name: {"state": "failing", "failed_rounds": streak, "error": reason}
                 for name, (reason, streak) in sorted(self.task_errors.items())}
        for task in self._tasks:  # a loop that died of an error anyway (a bug in the supervision itself)
            if task.done() and not task.cancelled() and task.exception() is not None:
                tasks[task.get_name()] = {"state": "dead", "error": f"{type(task.exception()).__name__}: "
                                                                    f"{task.exception()}"}
        detail = {
            "scheduler": "stalled" if stalled else "running",
            "sources": {s.id: {"failures": s.failures, "last_error": s.last_error} for s in states},
            "tasks": tasks,
            "pending": self.pending(),
            "quarantined": self.store.quarantine_count(),
            "search_queue": self.store.search_queue_length(),  # articles not yet indexed (found by a scan)
        }
        reasons = (["scheduler stalled"] if stalled else []) + (["every source failing"] if all_failing else []) \
            + [f"{name} task {info['state']}: {info['error']}" for name, info in tasks.items()]
        if reasons:
            detail["reason"] = "; ".join(reasons)
        return not reasons, detail

    # ---- modes ---------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Poll every source, publish feeds, drain what the limits allow; exit 1 only when nothing could run."""
        try:
            # Entries are coming (a new state directory, or a source never polled): start the workers now, so
            # they start while the database is created and the fetches run.
            if not self.config.db_path.exists():
                self.app.preparer.warm_up()
            await self.open(web=False)
            if self.app.store.never_polled():
                self.app.preparer.warm_up()
            reports = await asyncio.gather(*(self.poll(sid) for sid in self.app.source_configs))
            # Nothing new since the feeds were last written (by any run): the files are already right.
            await self.rebuild_feeds(since_recorded=True)
            try:
                await self.drain(budget=ONCE_DRAIN_BUDGET)
            except Exception as exc:  # logged and counted like the daemon's rounds; the next run retries
                self.task_failed("drain", exc)
            failed = [r for r in reports if r.result == "failed"]
            if reports and len(failed) == len(reports):
                log.error("every source failed; nothing new was fetched")
                return 1
            return 0
        finally:
            await self.close()

    async def run_forever(self) -> int:
        """The daemon: returns 0 after SIGTERM/SIGINT once in-flight work is done."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signum)
        try:
            self.app.preparer.warm_up()  # a daemon prepares entries sooner or later: start its workers now
            await self.open()
            await self.rebuild_feeds(force=True)  # a failure is recorded and retried by the feeds task, never fatal
            self._start_scheduler()
            self._tasks.append(asyncio.create_task(self._drain_loop(), name="drain"))
            self._tasks.append(asyncio.create_task(self._feeds_loop(), name="feeds"))
            self._tasks.append(asyncio.create_task(self._index_loop(), name="search-index"))
            if self.notifier.watchdog_interval:
                self._tasks.append(asyncio.create_task(self._watchdog_loop(), name="watchdog"))
            if self.config.telegram.token is not None and self.config.telegram.commands and self.app.publisher:
                self._tasks.append(asyncio.create_task(self._commands_loop(), name="bot-commands"))
            self.notifier.ready(self.status_line())
            log.info("feedbot running: %d source(s), %d topic(s); SIGTERM to stop", len(self.app.source_configs),
                     len(self.config.topics))
            await self.stop_event.wait()
            await self._shutdown()
            return 0
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            await self.close()

    def request_stop(self, signum: int | None = None) -> None:
        """Signal handler: stop scheduling and let in-flight work finish."""
        if not self.stop_event.is_set():
            log.info("%s received: finishing in-flight work", signal.Signals(signum).name if signum else "stop")
            self.notifier.stopping()
            self.stop_event.set()

    def _start_scheduler(self) -> None:
        from apscheduler.events import EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        self.scheduler = AsyncIOScheduler(timezone="UTC")
        now = utcnow()
        states = {s.id: s for s in self.store.source_states()}  # one query, not one per source
        for sid, config in self.app.source_configs.items():
            state = states.get(sid)
            first = now
            if state and state.next_check_at and state.next_check_at > now:
                first = state.next_check_at  # restarted during an interval or a backoff: keep it
            else:
                self._awaiting_first_poll.add(sid)
            self.scheduler.add_job(
                self._poll_job, IntervalTrigger(seconds=config.interval, jitter=config.interval * 0.1),
                args=[sid], id=f"poll:{sid}", name=f"poll {sid}", next_run_time=first, max_instances=1,
                coalesce=True, misfire_grace_time=max(30, int(config.interval / 2)))
        self.scheduler.add_listener(self._job_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED)
        self.scheduler.add_job(self._heartbeat, IntervalTrigger(seconds=HEARTBEAT_EVERY), id="heartbeat",
                               max_instances=1, coalesce=True, next_run_time=now,
                               misfire_grace_time=int(HEARTBEAT_EVERY))  # adding 10,000 jobs takes a moment
        if not self._awaiting_first_poll:
            self.first_polls_done.set()
        self.scheduler.start()

    def _job_event(self, event: Any) -> None:
        """Remember when a poll job was due (its lateness is logged when it starts); a missed run is a warning."""
        if not event.job_id.startswith("poll:"):
            return
        source_id = event.job_id[len("poll:"):]
        if hasattr(event, "scheduled_run_times"):
            self._scheduled_at[source_id] = max(event.scheduled_run_times)
        else:
            log.warning("poll %s skipped: it was due at %s and the scheduler could not run it in time", source_id,
                        f"{event.scheduled_run_time:%H:%M:%S}")

    async def _heartbeat(self) -> None:
        self.last_heartbeat = time.monotonic()

    async def _poll_job(self, source_id: str) -> None:
        due = self._scheduled_at.pop(source_id, None)
        if due is not None:  # how far the loop lets polls slip (benchmarks/bench_scale.py reads these lines)
            late = (utcnow() - due).total_seconds()
            log.log(logging.WARNING if late > POLL_LATE_WARNING else logging.DEBUG,
                    "poll %s started %.3f s after its scheduled time", source_id, late)
        if self.stop_event.is_set():
            return
        state = self.store.source_state(source_id)
        # Failing sources back off beyond their interval: skip the ticks until the backoff is over.
        if state and state.failures and state.next_check_at and state.next_check_at > utcnow() + timedelta(seconds=1):
            return
        task = asyncio.current_task()
        self._polls_in_flight.add(task)
        try:
            await self.poll(source_id)
        except asyncio.CancelledError:
            if not self.stop_event.is_set():
                raise
            # The scheduler's shutdown cancels a running poll: expected at a stop, one line, no traceback.
            # Nothing is lost: the validators are stored last, so the next start polls this source again.
            log.info("poll %s cut off by the stop; the next start polls it again", source_id)
        finally:
            self._polls_in_flight.discard(task)

    async def _shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        began = time.monotonic()
        polls = list(self._polls_in_flight)
        if polls:
            _, late = await asyncio.wait(polls, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
        # The drain returns after the message in flight (up to SEND_GRACE); the others only wait on the stop event.
        done: set[asyncio.Task] = set()
        drains = [t for t in self._tasks if t.get_name() == "drain"]
        others = [t for t in self._tasks if t.get_name() != "drain"]
        for tasks, grace in ((drains, SEND_GRACE), (others, STOP_GRACE)):
            if not tasks:
                continue
            finished, late = await asyncio.wait(tasks, timeout=max(0.0, grace - (time.monotonic() - began)))
            done |= finished
            for task in late:
                log.warning("%s did not finish within %.0f s of the stop; cut off", task.get_name(), grace)
                task.cancel()
        for task in done:
            if not task.cancelled() and task.exception():
                log.error("%s ended with an error: %s", task.get_name(), task.exception())
        log.info("stopped")
