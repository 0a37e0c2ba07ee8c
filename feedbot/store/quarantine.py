"""Quarantined items: source items that failed processing, kept with their reason and retried sparingly."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from feedbot.model import QuarantinedItem
from feedbot.store.db import Database, from_db, to_db

# A failing item is retried after 10 min, then 20, 40 … up to once a day: never at full cost every poll.
RETRY_FIRST = timedelta(minutes=10)
RETRY_MAX = timedelta(days=1)
REASON_CHARS = 500


def retry_delay(count: int) -> timedelta:
    """How long an item that failed ``count`` times waits before it is tried again."""
    return min(RETRY_FIRST * (2 ** min(max(count - 1, 0), 16)), RETRY_MAX)


class QuarantineTable(Database):
    """The `quarantine` table; absent in an older file opened read-only (`status`), which reads as empty."""

    def _has_quarantine(self) -> bool:
        # Once there, the table stays (no migration drops it): asked once per connection, not once per poll.
        if not getattr(self, "_quarantine_seen", False):
            self._quarantine_seen = self._execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quarantine'").fetchone() is not None
        return self._quarantine_seen

    def quarantine(self, source_id: str, key: str, *, url: str | None, reason: str, stage: str,
                   now: datetime) -> int:
        """Record (or count once more) a failed item; returns how often it has failed."""
        reason = reason[:REASON_CHARS]
        with self.transaction():
            row = self._execute("SELECT count FROM quarantine WHERE source_id = ? AND key = ?",
                                [source_id, key]).fetchone()
            count = (row[0] if row else 0) + 1
            retry_at = to_db(now + retry_delay(count))
            if row is None:
                self._execute("INSERT INTO quarantine(source_id, key, url, reason, stage, first_seen_at, "
                              "last_seen_at, count, retry_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
                              [source_id, key, url, reason, stage, to_db(now), to_db(now), retry_at])
            else:
                self._execute("UPDATE quarantine SET url = ?, reason = ?, stage = ?, last_seen_at = ?, "
                              "count = ?, retry_at = ? WHERE source_id = ? AND key = ?",
                              [url, reason, stage, to_db(now), count, retry_at, source_id, key])
        return count

    def release(self, source_id: str, key: str) -> None:
        """The item went through after all: it is no longer quarantined."""
        self._execute("DELETE FROM quarantine WHERE source_id = ? AND key = ?", [source_id, key])

    def quarantined_keys(self, source_id: str) -> dict[str, datetime | None]:
        """A source's quarantined keys and when each may be tried again."""
        if not self._has_quarantine():
            return {}
        cursor = self._execute("SELECT key, retry_at FROM quarantine WHERE source_id = ?", [source_id])
        return {key: from_db(retry_at) for key, retry_at in cursor}

    def quarantined(self, limit: int = 100) -> list[QuarantinedItem]:
        """Quarantined items, most recently failed first."""
        if not self._has_quarantine():
            return []
        rows = self._rows("SELECT * FROM quarantine ORDER BY last_seen_at DESC, source_id, key LIMIT ?", [limit])
        return [_item(r) for r in rows]

    def quarantine_count(self) -> int:
        """How many items are quarantined."""
        if not self._has_quarantine():
            return 0
        return self._execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]


def _item(r: Mapping[str, Any]) -> QuarantinedItem:
    return QuarantinedItem(
        source_id=r["source_id"], key=r["key"], url=r["url"], reason=r["reason"], stage=r["stage"],
        first_seen_at=from_db(r["first_seen_at"]), last_seen_at=from_db(r["last_seen_at"]), count=r["count"],
        retry_at=from_db(r["retry_at"]))
