"""What a publisher and the outbox say to each other: a Sender sends, reports Sent; a drain reports DrainStats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from feedbot.model import DigestPart, StoredArticle, Target


@dataclass(frozen=True)
class Sent:
    """What a Sender reports after a message went out (or an edit landed)."""

    message_id: int | None
    note: str | None = None  # recorded on the delivery: plain-text fallback, shortened, not modified
    plain_fallback: bool = False
    shortened: bool = False


class Sender(Protocol):
    """Turns one delivery into one message; raises FloodWait, TransientPublishError, TargetBlocked, …"""

    async def send(self, target: Target, article: StoredArticle, topic: str) -> Sent: ...

    async def edit(self, target: Target, message_id: int, article: StoredArticle, topic: str) -> Sent: ...

    async def send_digest(self, target: Target, part: DigestPart) -> Sent: ...


@dataclass
class DrainStats:
    """What one drain did."""

    sent: int = 0
    edited: int = 0
    digests: int = 0  # digest messages sent
    failed: int = 0
    dropped: int = 0
    seeded: int = 0
    requeued: int = 0  # 'sending' rows found on start (a previous process died mid-send)
    rate_limited: int = 0  # 429s received
    retried: int = 0  # 5xx / timeouts / network errors
    plain_fallbacks: int = 0
    shortened: int = 0
    blocked: list[str] = field(default_factory=list)
    stopped: bool = False  # returned because the stop event was set
    seconds: float = 0.0
