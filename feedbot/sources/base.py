"""What every source kind returns from one poll, and the interface the pipeline calls."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import Protocol

from feedbot.model import Entry, PageState, SourceState

# The store's page_validators: a page's stored validators and digest, or None when never fetched.
PageValidators = Callable[[str], PageState | None]


@dataclass(frozen=True)
class PageRecord:
    """A page fetched during a poll; the pipeline passes it to store.record_page after saving."""

    url: str
    etag: str | None
    last_modified: str | None
    content_hash: str


@dataclass(frozen=True)
class PollResult:
    """One poll of one source: entries found, and the validators to store for the next poll.

    ``etag``/``last_modified`` are None when the index must be fetched in full next time (a post
    failed this time and must be retried even if the index does not change).
    """

    entries: tuple[Entry, ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    pages: tuple[PageRecord, ...] = ()
    errors: tuple[str, ...] = ()  # per-item failures in words; the source as a whole succeeded
    warnings: tuple[str, ...] = ()
    listed: int = 0  # how many items the index (category page or feed) holds
    # (key, url, error) of items that failed and must be retried explicitly (the pipeline remembers them)
    failed: tuple[tuple[str, str, str], ...] = ()


class Source(Protocol):
    """A source kind: `await source.poll(state, known)` once per scheduled check."""

    async def poll(self, state: SourceState | None, known: Set[str], *,
                   page_validators: PageValidators | None = None) -> PollResult:
        """Fetch the index conditionally and return the entries not stored yet (and changed ones)."""
        ...


def body_digest(content: bytes) -> str:
    """sha256 of a fetched page's bytes: tells a changed page from a repeat without parsing it."""
    return hashlib.sha256(content).hexdigest()
