"""The shared vocabulary: frozen dataclasses passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

DeliveryStatus = Literal["pending", "sending", "sent", "failed", "dropped"]


@dataclass(frozen=True)
class Entry:
    """One item as a source adapter found it, before normalization."""

    source_id: str
    key: str  # stable identity inside the source: canonical URL, guid, or a hash
    url: str | None
    title: str
    body_html: str
    published_at: datetime | None = None  # timezone-aware
    updated_at: datetime | None = None
    outlet: str | None = None  # the newspaper/agency that wrote it
    origin_url: str | None = None  # the outlet's own URL, when the page links to it


@dataclass(frozen=True)
class Section:
    """A run of paragraphs under one heading (heading is None for the lead)."""

    heading: str | None
    paragraphs: tuple[str, ...]

    @property
    def text(self) -> str:
        """The section as plain text, heading first."""
        parts = ([self.heading] if self.heading else []) + list(self.paragraphs)
        return "\n".join(parts)


@dataclass(frozen=True)
class Article:
    """A normalized entry: sanitized HTML, plain text, paragraphs and sections."""

    source_id: str
    key: str
    url: str | None
    title: str
    body_html: str  # sanitized
    text: str
    paragraphs: tuple[str, ...]
    sections: tuple[Section, ...]
    content_hash: str
    published_at: datetime | None = None
    updated_at: datetime | None = None
    outlet: str | None = None
    origin_url: str | None = None


@dataclass(frozen=True)
class Evidence:
    """One matched term: where it matched and how much it contributed."""

    term: str
    where: Literal["title", "heading", "body"]
    count: int
    weight: float


@dataclass(frozen=True)
class TopicMatch:
    """How one topic scored on one article."""

    topic: str
    score: float
    matched: bool
    evidence: tuple[Evidence, ...] = ()
    excerpt: str = ""


@dataclass(frozen=True)
class Classification:
    """The classifier's verdict on one article: every topic scored, some matched."""

    matches: tuple[TopicMatch, ...] = ()

    @property
    def topics(self) -> tuple[str, ...]:
        """Ids of the topics the article belongs to."""
        return tuple(m.topic for m in self.matches if m.matched)

    def match(self, topic: str) -> TopicMatch | None:
        """The match for one topic, or None when it was not scored."""
        return next((m for m in self.matches if m.topic == topic), None)


@dataclass(frozen=True)
class StoredArticle:
    """An article as read back from the store, with its topics and excerpts."""

    id: int
    source_id: str
    key: str
    url: str | None
    title: str
    body_html: str
    text: str
    content_hash: str
    published_at: datetime | None
    updated_at: datetime | None
    first_seen_at: datetime
    outlet: str | None = None
    origin_url: str | None = None
    excerpts: dict[str, str] = field(default_factory=dict)  # topic -> excerpt
    scores: dict[str, float] = field(default_factory=dict)

    # Two links with two jobs, chosen here once: a feed entry links where feedbot read the article (the
    # page it keeps polling); a message's 原文链接 goes to the outlet's own page when the post names one.

    @property
    def read_url(self) -> str | None:
        """The page feedbot read the article from (the feed entry's link); only http(s) leaves the building."""
        return next((u for u in (self.url, self.origin_url, self.key) if _is_web_url(u)), None)

    @property
    def original_url(self) -> str | None:
        """The outlet's own page when known, else the page feedbot read (a message's 原文链接)."""
        return next((u for u in (self.origin_url, self.url) if _is_web_url(u)), None)


@dataclass(frozen=True)
class Delivery:
    """One outbox row: one article to one publishing target."""

    id: int
    article_id: int
    topic: str
    target: Target
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    message_id: int | None
    last_error: str | None
    content_hash: str | None  # the article version last sent (edits compare against it)
    created_at: datetime
    sent_at: datetime | None = None


@dataclass(frozen=True)
class SourceState:
    """A source's polling state as stored."""

    id: str
    kind: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_checked_at: datetime | None = None
    last_ok_at: datetime | None = None
    next_check_at: datetime | None = None
    failures: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class SaveResult:
    """What storing one article did."""

    article_id: int
    status: Literal["new", "updated", "unchanged"]
    deliveries_added: int = 0


@dataclass(frozen=True, order=True)
class Target:
    """Where a channel's messages go: a publisher kind and an address (a Telegram chat, a console topic)."""

    kind: str  # "telegram" | "console"
    address: str  # "@chan", "-100123", or a topic id for the console
    thread: int | None = None  # a forum topic (message_thread_id) inside the chat

    def __str__(self) -> str:
        """The key the store keeps: "telegram:@chan" (with "#42" for a forum topic)."""
        key = f"{self.kind}:{self.address}"
        return key if self.thread is None else f"{key}#{self.thread}"


@dataclass(frozen=True)
class TargetState:
    """A target's health as stored: ok, blocked (403) until retry_at, or unauthorized (401)."""

    target: Target
    status: str
    first_seen_at: datetime | None = None
    retry_at: datetime | None = None
    last_error: str | None = None
    healthy_at: datetime | None = None  # the last drain that finished this target's lane cleanly


@dataclass(frozen=True)
class DeliveryCount:
    """How many outbox rows one target has in one status, for one topic."""

    target: Target
    topic: str
    status: DeliveryStatus
    count: int


@dataclass(frozen=True)
class PageState:
    """Validators and digest of a fetched page (e.g. a Jekyll post page), to refetch it conditionally."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    fetched_at: datetime | None = None


ALL_CHANNEL = "all"  # the channel of every article; no topic may take this id


def _is_web_url(url: str | None) -> bool:
    parts = urlsplit(url) if url else None
    return bool(parts and parts.scheme in ("http", "https") and parts.netloc)


@dataclass(frozen=True)
class QuarantinedItem:
    """A source item set aside because it could not be processed: why, since when, how often."""

    source_id: str
    key: str
    url: str | None
    reason: str
    stage: str  # where it failed: "normalize", "store", "feeds", …
    first_seen_at: datetime
    last_seen_at: datetime
    count: int
    retry_at: datetime | None = None


@dataclass(frozen=True)
class DigestPart:
    """One message of a channel's digest for one period: an outbox row like a delivery, its text fixed."""

    id: int
    digest_id: int
    target: Target
    topic: str
    period: str  # "daily:2026-11-29" (the day the period ends) or "weekly:2026-11-30"
    part: int  # 1-based
    html: str
    plain: str
    status: str  # pending | sending | sent | failed | dropped
    attempts: int = 0
    message_id: int | None = None
    next_attempt_at: datetime | None = None
