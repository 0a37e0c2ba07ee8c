"""What a drain does before it sends: give back rows a dead process left 'sending', and the backlog guard.

Backlog guard: for each target about to be worked on, when it has more than ``max_backlog`` pending
deliveries AND either it never had a delivery sent (first run, or a chat newly configured), or it was
last known healthy more than ``outage_after`` ago, only the newest ``max_backlog`` pending items stay; the
older ones are marked ``dropped`` with the reason. A target with no deliveries at all yet (a chat
configured on an existing install) is first seeded with the newest ``max_backlog`` articles of its topic.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

from feedbot.model import Target
from feedbot.store import Store

log = logging.getLogger("feedbot.outbox.drain")

# Delivery ids this process is sending right now: a 'sending' row with our pid outside this set is stale.
IN_FLIGHT: set[int] = set()


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (owned by us or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True



def requeue_dead_claims(store: Store, targets: list[Target], name: str) -> int:
    """Re-queue rows a dead process left 'sending' (they may go out twice); rows a live process holds stay."""
    held: set[int] = set()
    # Digest parts are kept in IN_FLIGHT as negative ids, apart from delivery ids.
    count = store.requeue_sending(_stale(store.sending_claims(targets), 1, held))
    count += store.requeue_digest_parts(_stale(store.digest_sending_claims(targets), -1, held))
    if count:
        log.warning(
            "%s: %d message(s) were in flight when the last process died; sending them again "
            "(at most one duplicate each)",
            name,
            count,
        )
    if held:
        log.warning("%s: messages in flight in another live process (pid %s) are left to it",
                    name, ", ".join(map(str, sorted(held))))
    return count


def _stale(claims: list[tuple[int, int | None]], sign: int, held: set[int]) -> list[int]:
    """The claimed rows no live process is sending; the pids of live holders go into ``held``."""
    me, stale = os.getpid(), []
    for row_id, pid in claims:
        if pid is None or (pid == me and sign * row_id not in IN_FLIGHT) or (pid != me and not alive(pid)):
            stale.append(row_id)
        else:
            held.add(pid)
    return stale


def guard_backlog(store: Store, target: Target, topic: str, max_backlog: int, outage_after: float, name: str,
                  now: datetime, *, seeded: int = 0, dropped: int = 0) -> tuple[int, int]:
    """Seed a brand-new target, then keep only the newest ``max_backlog`` pending items if it applies.

    Returns the running (seeded, dropped) counts with this target's added.
    """
    state = store.target_state(target)
    # Never delivered to (a state row may exist: its chat id resolved, or a 403 before the first send).
    if (state is None or state.healthy_at is None) and store.delivery_total(target) == 0:
        for article in reversed(store.articles(topic, limit=max_backlog)):
            seeded += store.enqueue(article.id, topic, target, now)
    pending = store.delivery_ids(target=target, statuses=("pending",))
    reason = None
    if len(pending) > max_backlog:
        if store.sent_count(target) == 0:
            reason = f"backlog: older than the newest {max_backlog} on first start of {target}"
        else:
            state = store.target_state(target)
            healthy = state.healthy_at if state else None
            if healthy and (now - healthy).total_seconds() > outage_after:
                hours = (now - healthy).total_seconds() / 3600
                reason = (f"backlog: older than the newest {max_backlog} "
                          f"after {hours:.1f} h without sending")
    if reason:
        old = pending[: len(pending) - max_backlog]
        store.mark_dropped(old, reason=reason)
        dropped += len(old)
        log.info(
            "%s: %s: dropped %d old message(s) (%s); they stay in the feeds",
            name,
            target,
            len(old),
            reason,
        )
    if store.target_state(target) is None:
        store.set_target_state(target, "ok", now=now)
    return seeded, dropped
