"""Flood limits and retry timing for one publisher: per chat, overall, and the backoff after failures."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Pacing:
    """Flood limits and retry timing (Telegram: 20 per minute per group/channel, 30 per second overall)."""

    per_chat: int = 20
    per_chat_window: float = 60.0
    min_gap: float = 1.0  # Telegram's advice: about one message per second in one chat
    overall: int = 30
    overall_window: float = 1.0
    margin: float = 0.01  # share of a window added on top, against clock rounding
    backoff_base: float = 5.0  # 5xx/timeouts: base * 2^(attempts-1), capped, with jitter
    backoff_cap: float = 900.0
    blocked_retry: float = 6 * 3600.0  # a 403 target is probed again after this long
    outage_after: float = 3600.0  # unhealthy longer than this → the backlog guard applies
    in_flight: int = 1  # requests at once over all chats: a SIGKILL can then duplicate at most this many

    def scaled(self, factor: float) -> Pacing:
        """The same pacing with every duration multiplied by ``factor`` (for tests and benchmarks)."""
        return replace(
            self,
            per_chat_window=self.per_chat_window * factor,
            min_gap=self.min_gap * factor,
            overall_window=self.overall_window * factor,
            backoff_base=self.backoff_base * factor,
            backoff_cap=self.backoff_cap * factor,
            blocked_retry=self.blocked_retry * factor,
        )

    @classmethod
    def unlimited(cls) -> Pacing:
        """No flood limits (the console)."""
        return cls(
            per_chat=1_000_000,
            per_chat_window=1.0,
            min_gap=0.0,
            overall=1_000_000,
            overall_window=1.0,
            backoff_base=0.5,
            backoff_cap=5.0,
        )


class Window:
    """At most ``limit`` events in any ``window`` seconds (a sliding log, like the server's)."""

    def __init__(self, limit: int, window: float, margin: float):
        self.limit, self.window, self.margin = limit, window, margin
        self.log: deque[float] = deque()

    def next_free(self, now: float) -> float:
        while self.log and self.log[0] <= now - self.window * (1 + self.margin):
            self.log.popleft()
        if len(self.log) < self.limit:
            return now
        return self.log[-self.limit] + self.window * (1 + self.margin)

    def record(self, at: float) -> None:
        self.log.append(at)


@dataclass
class Lane:
    """One chat's pacing memory, kept across drains."""

    window: Window
    last_start: float = float("-inf")
    blocked_until: float = 0.0


