"""Sources and fetched pages: polling state, validators, backoff."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from feedbot.model import PageState, SourceState
from feedbot.store.db import Database, from_db, to_db

MAX_POST_FAILURES = 20  # a post failing this many polls in a row is no longer retried (its error is kept)


class SourcesTable(Database):
    """The `sources` and `pages` tables."""

    def sync_sources(self, sources: Iterable[tuple[str, str, str]]) -> None:
        """Make sure a row exists for each configured (id, kind, url); a changed URL resets its validators."""
        with self.transaction():
            for sid, kind, url in sources:
                row = self._execute("SELECT kind, url FROM sources WHERE id = ?", [sid]).fetchone()
                if row is None:
                    self._execute("INSERT INTO sources(id, kind, url, failures) VALUES (?, ?, ?, 0)",
                                  [sid, kind, url])
                elif tuple(row) != (kind, url):
                    self._execute("UPDATE sources SET kind = ?, url = ?, etag = NULL, last_modified = NULL "
                                  "WHERE id = ?", [kind, url, sid])

    def source_state(self, source_id: str) -> SourceState | None:
        """The stored polling state of one source."""
        rows = self._rows("SELECT * FROM sources WHERE id = ?", [source_id])
        return _source(rows[0]) if rows else None

    def never_polled(self) -> int:
        """How many sources have never been polled successfully (their first poll brings entries)."""
        return self._execute("SELECT COUNT(*) FROM sources WHERE last_ok_at IS NULL").fetchone()[0]

    def source_states(self) -> list[SourceState]:
        """Every source's polling state."""
        return [_source(r) for r in self._rows("SELECT * FROM sources ORDER BY id")]

    def record_poll_ok(self, source_id: str, *, etag: str | None, last_modified: str | None,
                       checked_at: datetime, next_check_at: datetime) -> None:
        """A successful poll: new validators, failures reset."""
        self._execute(
            "UPDATE sources SET etag = ?, last_modified = ?, last_checked_at = ?, last_ok_at = ?, "
            "next_check_at = ?, failures = 0, last_error = NULL WHERE id = ?",
            [etag, last_modified, to_db(checked_at), to_db(checked_at), to_db(next_check_at), source_id])

    def record_poll_failure(self, source_id: str, *, error: str, checked_at: datetime,
                            next_check_at: datetime) -> int:
        """A failed poll: the error in words and one more failure; returns the failure count."""
        self._execute(
            "UPDATE sources SET last_checked_at = ?, next_check_at = ?, failures = failures + 1, "
            "last_error = ? WHERE id = ?", [to_db(checked_at), to_db(next_check_at), error, source_id])
        row = self._execute("SELECT failures FROM sources WHERE id = ?", [source_id]).fetchone()
        return row[0] if row else 0

    def page_validators(self, url: str) -> PageState | None:
        """Stored ETag / Last-Modified / digest of one fetched page."""
        rows = self._rows("SELECT url, etag, last_modified, content_hash, fetched_at FROM pages WHERE url = ?", [url])
        if not rows:
            return None
        r = rows[0]
        return PageState(url=r["url"], etag=r["etag"], last_modified=r["last_modified"],
                         content_hash=r["content_hash"], fetched_at=from_db(r["fetched_at"]))

    def record_page(self, url: str, source_id: str, *, etag: str | None, last_modified: str | None,
                    content_hash: str | None, fetched_at: datetime) -> None:
        """Remember a fetched page's validators and digest."""
        self._execute(
            "INSERT INTO pages(url, source_id, etag, last_modified, content_hash, fetched_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(url) DO UPDATE SET etag = excluded.etag, "
            "last_modified = excluded.last_modified, content_hash = excluded.content_hash, "
            "fetched_at = excluded.fetched_at",
            [url, source_id, etag, last_modified, content_hash, to_db(fetched_at)])


    def post_retries(self, source_id: str, *, max_failures: int = MAX_POST_FAILURES) -> set[str]:
        """Keys of a source's posts that failed and are still to be retried."""
        cursor = self._execute("SELECT key FROM post_retries WHERE source_id = ? AND failures < ?",
                               [source_id, max_failures])
        return {row[0] for row in cursor}

    def retry_keys(self, source_id: str) -> set[str]:
        """Keys of every post of a source with a retry row, given up on or not (a poll clears only these)."""
        return {row[0] for row in self._execute("SELECT key FROM post_retries WHERE source_id = ?", [source_id])}

    def record_post_failures(self, source_id: str, failed: Iterable[tuple[str, str, str]], at: datetime) -> list[str]:
        """Remember posts (key, url, error) that failed, to retry them; returns the keys given up on just now."""
        given_up = []
        with self.transaction():
            for key, url, error in failed:
                self._execute(
                    "INSERT INTO post_retries(source_id, key, url, error, failures, first_failed_at, last_failed_at) "
                    "VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT(source_id, key) DO UPDATE SET error = excluded.error, "
                    "url = excluded.url, failures = failures + 1, last_failed_at = excluded.last_failed_at",
                    [source_id, key, url, error, to_db(at), to_db(at)])
                row = self._execute("SELECT failures FROM post_retries WHERE source_id = ? AND key = ?",
                                    [source_id, key]).fetchone()
                if row and row[0] == MAX_POST_FAILURES:
                    given_up.append(key)
        return given_up


def _source(r: Mapping[str, Any]) -> SourceState:
    return SourceState(
        id=r["id"], kind=r["kind"], url=r["url"], etag=r["etag"], last_modified=r["last_modified"],
        last_checked_at=from_db(r["last_checked_at"]), last_ok_at=from_db(r["last_ok_at"]),
        next_check_at=from_db(r["next_check_at"]), failures=r["failures"] or 0, last_error=r["last_error"])
