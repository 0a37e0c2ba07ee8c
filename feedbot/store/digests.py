"""Digests: one row per (target, period), recorded once, and its messages as outbox rows (claim, requeue)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from feedbot.clock import utcnow
from feedbot.model import DigestPart, StoredArticle, Target
from feedbot.store.db import Database, to_db
from feedbot.store.deliveries import key_of, status_and_target, target_of


class DigestsTable(Database):
    """The `digests` and `digest_parts` tables."""

    def received_article_ids(self, topic: str, start: datetime, end: datetime) -> list[int]:
        """Articles of a channel first stored in [start, end), oldest first: what the channel received."""
        rows = self._execute(
            "SELECT a.id FROM articles a WHERE a.first_seen_at >= ? AND a.first_seen_at < ? AND EXISTS "
            "(SELECT 1 FROM classifications c WHERE c.article_id = a.id AND c.topic = ?) "
            "ORDER BY a.first_seen_at, a.id", [to_db(start), to_db(end), topic]).fetchall()
        return [r[0] for r in rows]

    def received_articles(self, topic: str, start: datetime, end: datetime) -> list[StoredArticle]:
        """The articles themselves (see received_article_ids)."""
        return self.articles_by_id(self.received_article_ids(topic, start, end))  # type: ignore[attr-defined]

    def record_digest(self, target: Target, topic: str, period: str, start: datetime, end: datetime, *,
                      parts: Sequence[tuple[str, str]] = (), status: str = "pending", articles: int = 0,
                      note: str | None = None, now: datetime | None = None) -> bool:
        """Record a period's digest and its messages in one transaction; False when the period is already recorded."""
        with self.transaction():
            cursor = self._execute(
                "INSERT INTO digests(target, topic, period, period_start, period_end, status, articles, note, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(target, period) DO NOTHING",
                [key_of(target), topic, period, to_db(start), to_db(end), status, articles, note,
                 to_db(now or utcnow())])
            if cursor.rowcount != 1:
                return False
            digest_id = cursor.lastrowid
            for number, (html, plain) in enumerate(parts, 1):
                self._execute("INSERT INTO digest_parts(digest_id, part, html, plain, status, attempts) "
                              "VALUES (?, ?, ?, ?, 'pending', 0)", [digest_id, number, html, plain])
        return True

    def digest_periods(self, target: Target) -> dict[str, str]:
        """period → status of every digest recorded for a target."""
        return {r[0]: r[1] for r in self._execute(
            "SELECT period, status FROM digests WHERE target = ?", [key_of(target)]).fetchall()}

    def last_digest_end(self, target: Target) -> datetime | None:
        """The end of the newest period recorded for a target (any status)."""
        row = self._execute("SELECT MAX(period_end) FROM digests WHERE target = ?", [key_of(target)]).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def drop_unsent_digests(self, target: Target, *, before: datetime, reason: str) -> int:
        """Digests of older periods none of whose messages went out are dropped (never a burst of old ones)."""
        with self.transaction():
            ids = [r[0] for r in self._execute(
                "SELECT d.id FROM digests d WHERE d.target = ? AND d.period_end < ? AND d.status = 'pending' "
                "AND NOT EXISTS (SELECT 1 FROM digest_parts p WHERE p.digest_id = d.id "
                "AND p.status IN ('sent', 'sending'))", [key_of(target), to_db(before)]).fetchall()]
            for digest_id in ids:
                self._execute("UPDATE digests SET status = 'dropped', note = ? WHERE id = ?", [reason, digest_id])
                self._execute("UPDATE digest_parts SET status = 'dropped', last_error = ? WHERE digest_id = ? "
                              "AND status = 'pending'", [reason, digest_id])
        return len(ids)

    def digest_parts(self, target: Target | None = None, statuses: Iterable[str] = ("pending",)) -> list[DigestPart]:
        """Digest messages, oldest period first, parts in order."""
        where, params = status_and_target(statuses, target, status_column="p.status", target_column="d.target")
        return [_part(r) for r in self._rows(
            "SELECT p.*, d.target, d.topic, d.period FROM digest_parts p JOIN digests d ON d.id = p.digest_id "
            f"WHERE {' AND '.join(where)} ORDER BY d.period_end, d.id, p.part", params)]

    def digest_part(self, part_id: int) -> DigestPart | None:
        """One digest message."""
        rows = self._rows("SELECT p.*, d.target, d.topic, d.period FROM digest_parts p "
                          "JOIN digests d ON d.id = p.digest_id WHERE p.id = ?", [part_id])
        return _part(rows[0]) if rows else None

    def claim_digest_part(self, part_id: int, *, claimed_by: int | None = None) -> bool:
        """Compare-and-set pending → sending before the request (as claim_for_sending)."""
        return self._execute(
            "UPDATE digest_parts SET status = 'sending', attempts = attempts + 1, claimed_by = ? "
            "WHERE id = ? AND status = 'pending'", [claimed_by, part_id]).rowcount == 1

    def mark_digest_part_sent(self, part_id: int, *, message_id: int | None, note: str | None = None) -> None:
        """Recorded after the request succeeded; the digest is sent once its last part is."""
        with self.transaction():
            self._execute("UPDATE digest_parts SET status = 'sent', message_id = ?, sent_at = ?, last_error = ?, "
                          "next_attempt_at = NULL WHERE id = ?", [message_id, to_db(utcnow()), note, part_id])
            self._execute(
                "UPDATE digests SET status = 'sent' WHERE id = (SELECT digest_id FROM digest_parts WHERE id = ?) "
                "AND NOT EXISTS (SELECT 1 FROM digest_parts WHERE digest_id = digests.id AND status != 'sent')",
                [part_id])

    def mark_digest_part_retry(self, part_id: int, *, error: str, next_attempt_at: datetime) -> None:
        """Back to pending, not before ``next_attempt_at``."""
        self._execute("UPDATE digest_parts SET status = 'pending', last_error = ?, next_attempt_at = ? WHERE id = ?",
                      [error, to_db(next_attempt_at), part_id])

    def mark_digest_part_failed(self, part_id: int, *, error: str) -> None:
        """Given up for good (the reason is kept)."""
        self._execute("UPDATE digest_parts SET status = 'failed', last_error = ? WHERE id = ?", [error, part_id])

    def digest_sending_claims(self, targets: Iterable[Target]) -> list[tuple[int, int | None]]:
        """(part id, claiming pid) of every digest message left 'sending' for these targets."""
        keys = [key_of(t) for t in targets]
        if not keys:
            return []
        return [(r[0], r[1]) for r in self._execute(
            "SELECT p.id, p.claimed_by FROM digest_parts p JOIN digests d ON d.id = p.digest_id "
            f"WHERE p.status = 'sending' AND d.target IN ({', '.join('?' * len(keys))}) ORDER BY p.id", keys)]

    def requeue_digest_parts(self, part_ids: Iterable[int]) -> int:
        """Digest messages left 'sending' by a dead process go back to pending (at most one duplicate each)."""
        return self._requeue("digest_parts", part_ids)

    def digest_summary(self) -> list[dict[str, Any]]:
        """Per target: its topic, digests by status and the newest period (empty for a file without the table)."""
        if not self._execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'digests'").fetchone():
            return []  # `status` reads a file an older version wrote, without migrating it
        out: dict[str, dict[str, Any]] = {}
        for r in self._rows("SELECT target, topic, status, COUNT(*) AS n, MAX(period) AS newest FROM digests "
                            "GROUP BY target, topic, status ORDER BY target, status"):
            entry = out.setdefault(r["target"], {"target": r["target"], "topic": r["topic"], "by_status": {},
                                                 "newest": r["newest"]})
            entry["by_status"][r["status"]] = r["n"]
            entry["newest"] = max(entry["newest"], r["newest"])
        return list(out.values())

    def digests(self, topic: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recorded digests, newest period first (for status and tests)."""
        where, params = ("WHERE topic = ?", [topic]) if topic else ("", [])
        return self._rows(f"SELECT * FROM digests {where} ORDER BY period_end DESC, id DESC LIMIT ?",
                          [*params, limit])


def _part(r: Mapping[str, Any]) -> DigestPart:
    return DigestPart(
        id=r["id"], digest_id=r["digest_id"], target=target_of(r["target"]),
        topic=r["topic"], period=r["period"], part=r["part"], html=r["html"], plain=r["plain"],
        status=r["status"], attempts=r["attempts"] or 0, message_id=r["message_id"],
        next_attempt_at=datetime.fromisoformat(r["next_attempt_at"]) if r["next_attempt_at"] else None)
