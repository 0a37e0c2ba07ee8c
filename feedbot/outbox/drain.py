"""The outbox drain: oldest first per chat, paced under flood limits, restart-safe, with a backlog guard.

Publisher-agnostic: a Sender (publish/telegram.py, publish/console.py) turns one delivery into one
message and raises the PublishError subclasses of feedbot.errors; this module decides when to send,
what to retry, and what the store records.

The backlog guard and the recovery of rows a dead process left 'sending' run before each drain
(outbox/startup.py).

Exactly once across processes: a row is claimed with a compare-and-set (``sending`` only from
``pending``, with the claiming pid), so two processes on one database never send one row twice; a
start re-queues only the 'sending' rows whose pid is gone. A send cut off by our own shutdown (the
publisher closed while the request was unanswered) stays 'sending': Telegram may have delivered it,
and the next start resolves it as it resolves a crash. The daemon waits for an unanswered send up to
the request timeout before closing, so a slow Bot API normally ends in 'sent' (see daemon.SEND_GRACE).

A blocked target (403) is retried once when a process starts, whatever its retry time: the usual fix
(make the bot an admin, then restart) must not wait 6 hours. `feedbot unblock` clears it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from feedbot.clock import utcnow
from feedbot.errors import (
    DeliveryRejected,
    FloodWait,
    PublishError,
    PublisherUnauthorized,
    TargetBlocked,
    TransientPublishError,
)
from feedbot.model import Delivery, DigestPart, Target
from feedbot.outbox.contract import DrainStats, Sender, Sent
from feedbot.outbox.pacing import Lane, Pacing, Window
from feedbot.outbox.startup import IN_FLIGHT, guard_backlog, requeue_dead_claims
from feedbot.outbox.targets import digest_targets_for, targets_for
from feedbot.settings.config import Config
from feedbot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    kind: str  # "send" | "edit" | "digest"
    delivery: Delivery | DigestPart


class Outbox:
    """Drains the deliveries of a set of targets through one Sender."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        targets: Mapping[str, list[Target]],
        *,
        max_backlog: int = 5,
        edit_window: float = 48 * 3600.0,
        pacing: Pacing | None = None,
        name: str = "outbox",
        digest_targets: Mapping[str, list[Target]] | None = None,
    ):
        self.store = store
        self.sender = sender
        self.topic_of = {t: topic for topic, ts in targets.items() for t in ts}
        # Targets that get digests (their messages are digest_parts rows, drained in the same lanes).
        self.digest_topic_of = {t: topic for topic, ts in (digest_targets or {}).items() for t in ts}
        self.max_backlog = max_backlog
        self.edit_window = edit_window
        self.pacing = pacing or Pacing()
        self.name = name
        self._lanes: dict[str, Lane] = {}  # per chat
        self._overall = Window(self.pacing.overall, self.pacing.overall_window, self.pacing.margin)
        self._recovered = False
        self._rng = random.Random()
        self._in_flight = asyncio.Semaphore(self.pacing.in_flight)
        self.closing = False  # set by the publisher's close(): an interrupted send is left 'sending'

    @classmethod
    def for_kind(cls, config: Config, store: Store, sender: Sender, kind: str, *,
                 pacing: Pacing | None = None) -> Outbox:
        """The outbox of one publisher kind: the configured targets of that kind, the [telegram] guard settings."""
        targets = {topic: [t for t in ts if t.kind == kind] for topic, ts in targets_for(config).items()}
        digests = {topic: [t for t in ts if t.kind == kind] for topic, ts in digest_targets_for(config).items()}
        return cls(store, sender, {topic: ts for topic, ts in targets.items() if ts},
                   max_backlog=config.telegram.max_backlog, edit_window=config.telegram.edit_window,
                   pacing=pacing, name=kind, digest_targets={topic: ts for topic, ts in digests.items() if ts})

    @property
    def targets(self) -> list[Target]:
        """Every target this outbox drains (one message per article, digests, or both)."""
        return list(dict.fromkeys([*self.topic_of, *self.digest_topic_of]))

    # ---- start-up -------------------------------------------------------------------------------

    def recover(self) -> int:
        """Re-queue rows a dead process left 'sending' (they may go out twice); rows a live process holds stay."""
        count = requeue_dead_claims(self.store, self.targets, self.name)
        self._recovered = True
        return count

    def guard_backlog(self, target: Target, stats: DrainStats, now: datetime | None = None) -> None:
        """Seed a brand-new target, then keep only the newest ``max_backlog`` pending items if it applies."""
        stats.seeded, stats.dropped = guard_backlog(
            self.store, target, self.topic_of[target], self.max_backlog, self.pacing.outage_after, self.name,
            now or utcnow(), seeded=stats.seeded, dropped=stats.dropped)

    # ---- the drain ------------------------------------------------------------------------------

    async def drain(
        self, stop: asyncio.Event | None = None, budget_seconds: float | None = None
    ) -> DrainStats:
        """Send what is pending (and edit what changed) until done, ``stop`` is set, or the budget is spent.

        A message in flight always completes and is recorded, so setting ``stop`` never leaves a
        duplicate behind. Raises PublisherUnauthorized when the credentials are rejected.
        """
        stop = stop or asyncio.Event()
        started = time.monotonic()
        deadline = started + budget_seconds if budget_seconds is not None else None
        stats = DrainStats()
        starting = not self._recovered
        if starting:
            stats.requeued = self.recover()
        now = utcnow()
        lanes: list[asyncio.Task[None]] = []
        for target in self.targets:
            state = self.store.target_state(target)
            if state and state.status == "blocked" and state.retry_at and state.retry_at > now:
                if not starting:
                    stats.blocked.append(target)
                    continue
                log.info("%s: %s was blocked (%s); trying it once now that feedbot (re)started",
                         self.name, target, state.last_error)
            jobs: list[_Job] = []
            if target in self.topic_of:
                self.guard_backlog(target, stats, now)
                jobs += [_Job("send", d) for d in self.store.deliveries(target=target, statuses=("pending",))]
                jobs += [
                    _Job("edit", d)
                    for d in self.store.edits_due([target], now - timedelta(seconds=self.edit_window))
                ]
            if target in self.digest_topic_of:
                jobs += [_Job("digest", p) for p in self.store.digest_parts(target, ("pending",))]
            if not jobs:
                self.store.mark_healthy(target, now)
                continue
            lanes.append(
                asyncio.create_task(
                    self._lane(target, jobs, stop, deadline, stats), name=f"{self.name}:{target}"
                )
            )
        try:
            if lanes:
                await asyncio.gather(*lanes)
        except PublisherUnauthorized:
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            for target in self.targets:
                self.store.set_target_state(
                    target,
                    "unauthorized",
                    error="401 Unauthorized: the bot token was rejected; fix it and restart",
                )
            raise
        finally:
            stats.stopped = stop.is_set()
            stats.seconds = time.monotonic() - started
        return stats

    def _lane_for(self, target: Target) -> Lane:
        # Keyed by the chat, not the target: Telegram's per-chat limit covers every forum topic of a group.
        chat = f"{target.kind}:{target.address}"
        if chat not in self._lanes:
            p = self.pacing
            self._lanes[chat] = Lane(Window(p.per_chat, p.per_chat_window, p.margin))
        return self._lanes[chat]

    async def _wait(self, seconds: float, stop: asyncio.Event, deadline: float | None) -> bool:
        """Sleep, waking early for stop; False when stopping or past the deadline."""
        if deadline is not None:
            seconds = min(seconds, deadline - time.monotonic())
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
        return not stop.is_set() and (deadline is None or time.monotonic() < deadline)

    async def _lane(
        self, target: Target, jobs: list[_Job], stop: asyncio.Event, deadline: float | None, stats: DrainStats
    ) -> None:
        lane = self._lane_for(target)
        healthy = True
        for job in jobs:
            not_before = job.delivery.next_attempt_at
            while True:
                if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                    return
                now = time.monotonic()
                ready = max(
                    lane.window.next_free(now),
                    lane.last_start + self.pacing.min_gap,
                    lane.blocked_until,
                    self._overall.next_free(now),
                )
                if not_before is not None:
                    ready = max(ready, now + (not_before - utcnow()).total_seconds())
                if ready > now:
                    if not await self._wait(ready - now, stop, deadline):
                        return
                    continue
                async with self._in_flight:
                    now = time.monotonic()
                    if max(lane.window.next_free(now), self._overall.next_free(now)) > now:
                        continue  # another lane took the overall budget while we queued
                    lane.last_start = now
                    self._overall.record(now)
                    # The attempt runs shielded: cancelling the drain never cuts a send between the request
                    # and the bookkeeping, so the row is either still 'sending' (killed) or recorded.
                    outcome = await asyncio.shield(self._attempt_claimed(target, job, stats))
                lane.window.record(time.monotonic())  # completion time: the server saw it before this
                if isinstance(outcome, FloodWait):
                    lane.blocked_until = time.monotonic() + outcome.retry_after
                    continue
                if isinstance(outcome, TransientPublishError):
                    healthy = False
                    if job.kind == "edit":
                        break  # edits are retried by the next drain
                    fresh = (self.store.digest_part(job.delivery.id) if job.kind == "digest"
                             else self.store.delivery(job.delivery.id))
                    job = _Job(job.kind, fresh or job.delivery)
                    not_before = job.delivery.next_attempt_at
                    continue
                if isinstance(outcome, TargetBlocked):
                    stats.blocked.append(target)
                    return
                break  # sent, rejected, or claimed by another process
        if healthy:
            self.store.mark_healthy(target)

    def _retry_at(self, attempts: int) -> datetime:
        p = self.pacing
        delay = min(p.backoff_cap, p.backoff_base * 2 ** max(attempts - 1, 0))
        return utcnow() + timedelta(seconds=delay * self._rng.uniform(0.8, 1.2))

    async def _attempt_claimed(self, target: Target, job: _Job, stats: DrainStats) -> PublishError | Sent | None:
        """Claim the row (compare-and-set), then attempt; None when another process claimed it first."""
        if job.kind == "digest":
            if not self.store.claim_digest_part(job.delivery.id, claimed_by=os.getpid()):
                return None
            IN_FLIGHT.add(-job.delivery.id)  # negative: digest part ids live apart from delivery ids
            try:
                return await self._attempt_digest(target, job.delivery, stats)  # type: ignore[arg-type]
            finally:
                IN_FLIGHT.discard(-job.delivery.id)
        if job.kind == "send":
            if not self.store.claim_for_sending(job.delivery.id, claimed_by=os.getpid()):
                log.info("%s: %s: delivery %d was already taken by another process; skipped",
                         self.name, target, job.delivery.id)
                return None
            IN_FLIGHT.add(job.delivery.id)
        try:
            return await self._attempt(target, job, stats)
        finally:
            IN_FLIGHT.discard(job.delivery.id)

    async def _attempt_digest(self, target: Target, part: DigestPart, stats: DrainStats) -> PublishError | Sent:
        """One digest message and its bookkeeping (claimed); the same outcomes as an article's send."""
        try:
            sent = await self.sender.send_digest(target, part)
        except FloodWait as exc:
            stats.rate_limited += 1
            self.store.mark_digest_part_retry(part.id, error=str(exc), next_attempt_at=utcnow())
            return exc
        except TransientPublishError as exc:
            if self.closing:
                return exc  # left 'sending': resolved at the next start, like an article
            stats.retried += 1
            log.warning("%s: %s: digest %s part %d: %s; will retry", self.name, target, part.period, part.part, exc)
            self.store.mark_digest_part_retry(part.id, error=str(exc), next_attempt_at=self._retry_at(part.attempts))
            return exc
        except TargetBlocked as exc:
            retry_at = utcnow() + timedelta(seconds=self.pacing.blocked_retry)
            log.error("%s: %s: %s; its messages stay pending", self.name, target, exc)
            self.store.mark_digest_part_retry(part.id, error=str(exc), next_attempt_at=utcnow())
            self.store.set_target_state(target, "blocked", error=str(exc), retry_at=retry_at)
            return exc
        except DeliveryRejected as exc:
            stats.failed += 1
            log.error("%s: %s: digest %s part %d rejected: %s", self.name, target, part.period, part.part, exc)
            self.store.mark_digest_part_failed(part.id, error=str(exc))
            return exc
        except PublisherUnauthorized:
            self.store.mark_digest_part_retry(part.id, error="401 Unauthorized", next_attempt_at=utcnow())
            raise
        self.store.mark_digest_part_sent(part.id, message_id=sent.message_id, note=sent.note)
        stats.digests += 1
        stats.plain_fallbacks += sent.plain_fallback
        return sent

    async def _attempt(self, target: Target, job: _Job, stats: DrainStats) -> PublishError | Sent:
        """One request and its bookkeeping (the row already claimed); returns the outcome instead of raising."""
        delivery = job.delivery
        article = self.store.article(delivery.article_id)
        if article is None:  # cannot happen with foreign keys on; don't loop on it
            self.store.mark_failed(delivery.id, error="article vanished")
            return DeliveryRejected("article vanished")
        try:
            if job.kind == "send":
                sent = await self.sender.send(target, article, delivery.topic)
            else:
                sent = await self.sender.edit(target, delivery.message_id or 0, article, delivery.topic)
        except FloodWait as exc:
            stats.rate_limited += 1
            log.info(
                "%s: %s: flood control, waiting %.1f s for this chat", self.name, target, exc.retry_after
            )
            if job.kind == "send":
                self.store.mark_retry(delivery.id, error=str(exc), next_attempt_at=utcnow())
            return exc
        except TransientPublishError as exc:
            if self.closing and job.kind == "send":
                # Cut off by our own shutdown: Telegram may have delivered it. Resolved at the next start.
                log.warning("%s: %s: send of delivery %d interrupted by shutdown (%s); left 'sending', "
                            "resolved at the next start", self.name, target, delivery.id, exc)
                return exc
            stats.retried += 1
            log.warning("%s: %s: %s; will retry", self.name, target, exc)
            if job.kind == "send":
                self.store.mark_retry(
                    delivery.id, error=str(exc), next_attempt_at=self._retry_at(delivery.attempts)
                )
            return exc
        except TargetBlocked as exc:
            retry_at = utcnow() + timedelta(seconds=self.pacing.blocked_retry)
            log.error(
                "%s: %s: %s; its messages stay pending, next try at %s",
                self.name,
                target,
                exc,
                retry_at.isoformat(timespec="seconds"),
            )
            if job.kind == "send":
                self.store.mark_retry(delivery.id, error=str(exc), next_attempt_at=utcnow())
            self.store.set_target_state(target, "blocked", error=str(exc), retry_at=retry_at)
            return exc
        except DeliveryRejected as exc:
            stats.failed += 1
            log.error("%s: %s: article %d rejected: %s", self.name, target, delivery.article_id, exc)
            if job.kind == "send":
                self.store.mark_failed(delivery.id, error=str(exc))
            else:  # stop trying to edit a message that can't take the new version
                self.store.mark_edited(
                    delivery.id, content_hash=article.content_hash, note=f"edit failed: {exc}"
                )
            return exc
        except PublisherUnauthorized:
            if job.kind == "send":
                self.store.mark_retry(delivery.id, error="401 Unauthorized", next_attempt_at=utcnow())
            raise
        if job.kind == "send":
            self.store.mark_sent(
                delivery.id, message_id=sent.message_id, content_hash=article.content_hash, note=sent.note
            )
            stats.sent += 1
        else:
            self.store.mark_edited(delivery.id, content_hash=article.content_hash, note=sent.note)
            stats.edited += 1
        stats.plain_fallbacks += sent.plain_fallback
        stats.shortened += sent.shortened
        state = self.store.target_state(target)
        if state and state.status != "ok":
            self.store.set_target_state(target, "ok")
        return sent
