"""The outbox: deliveries (one article to one target) and each target's health."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from feedbot.clock import utcnow
from feedbot.model import Delivery, DeliveryCount, Target, TargetState
from feedbot.store.db import Database, adopt_target_rows, from_db, to_db


class DeliveriesTable(Database):
    """The `deliveries` and `targets` tables."""

    def delivery_counts(self) -> list[DeliveryCount]:
        """Deliveries per (target, topic, status)."""
        return [DeliveryCount(target_of(r["target"]), r["topic"], r["status"], r["n"]) for r in self._rows(
            "SELECT target, topic, status, COUNT(*) AS n FROM deliveries "
            "GROUP BY target, topic, status ORDER BY target, topic, status")]

    def deliveries(self, *, target: Target | str | None = None, statuses: Iterable[str] = ("pending",),
                   due_before: datetime | None = None, limit: int | None = None) -> list[Delivery]:
        """Outbox rows, oldest article first (publication time, then arrival)."""
        sql, params = _outbox_query("d.*", target, statuses, due_before, limit)
        return [_delivery(r) for r in self._rows(sql, params)]

    def delivery_ids(self, *, target: Target | str | None = None, statuses: Iterable[str] = ("pending",)) -> list[int]:
        """The ids of the rows ``deliveries`` gives, in its order, without building them (the backlog guard)."""
        sql, params = _outbox_query("d.id", target, statuses, None, None)
        return [row[0] for row in self._execute(sql, params)]

    def delivery(self, delivery_id: int) -> Delivery | None:
        """One outbox row."""
        rows = self._rows("SELECT * FROM deliveries WHERE id = ?", [delivery_id])
        return _delivery(rows[0]) if rows else None

    def claim_for_sending(self, delivery_id: int, *, claimed_by: int | None = None) -> bool:
        """Compare-and-set pending → sending before the request; False when another process got there first.

        Recorded before the request, so a crash mid-send is visible on restart; ``claimed_by`` (a pid)
        tells a start which 'sending' rows still belong to a live process.
        """
        cursor = self._execute(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, claimed_by = ? "
            "WHERE id = ? AND status = 'pending'", [claimed_by, delivery_id])
        return cursor.rowcount == 1

    def mark_sent(self, delivery_id: int, *, message_id: int | None, content_hash: str,
                  sent_at: datetime | None = None, note: str | None = None) -> None:
        """Recorded after the request succeeded."""
        self._execute(
            "UPDATE deliveries SET status = 'sent', message_id = ?, content_hash = ?, sent_at = ?, "
            "last_error = ?, next_attempt_at = NULL WHERE id = ?",
            [message_id, content_hash, to_db(sent_at or utcnow()), note, delivery_id])

    def mark_retry(self, delivery_id: int, *, error: str, next_attempt_at: datetime) -> None:
        """Back to pending, not before ``next_attempt_at``."""
        self._execute("UPDATE deliveries SET status = 'pending', last_error = ?, next_attempt_at = ? WHERE id = ?",
                        [error, to_db(next_attempt_at), delivery_id])

    def mark_failed(self, delivery_id: int, *, error: str) -> None:
        """Given up for good (the reason is kept)."""
        self._execute("UPDATE deliveries SET status = 'failed', last_error = ? WHERE id = ?", [error, delivery_id])

    def target_states(self) -> list[TargetState]:
        """Every publishing target's health (ok, blocked, unauthorized), last error and next retry."""
        return [_target_state(r) for r in self._rows("SELECT * FROM targets ORDER BY target")]

    def mark_dropped(self, delivery_ids: Iterable[int], *, reason: str) -> int:
        """Not to be sent (e.g. the backlog guard); the articles stay in the feeds."""
        ids = list(delivery_ids)
        with self.transaction():
            self._executemany("UPDATE deliveries SET status = 'dropped', last_error = ? WHERE id = ? "
                              "AND status = 'pending'", [(reason, did) for did in ids])
        return len(ids)

    def drop_pending_of_kind(self, kind: str, *, reason: str) -> int:
        """Drop every pending delivery whose target is of one kind (e.g. "console" once a token is set)."""
        cursor = self._execute("UPDATE deliveries SET status = 'dropped', last_error = ? "
                               "WHERE status = 'pending' AND substr(target, 1, ?) = ?",
                               [reason, len(kind) + 1, f"{kind}:"])
        return cursor.rowcount

    def sending_claims(self, targets: Iterable[Target | str]) -> list[tuple[int, int | None]]:
        """(delivery id, claiming pid) of every row left 'sending' for these targets."""
        targets = [key_of(t) for t in targets]
        if not targets:
            return []
        return [(r[0], r[1]) for r in self._execute(
            f"SELECT id, claimed_by FROM deliveries WHERE status = 'sending' "
            f"AND target IN ({', '.join('?' * len(targets))}) ORDER BY id", targets)]

    def requeue_sending(self, delivery_ids: Iterable[int]) -> int:
        """Rows left 'sending' by a dead process go back to pending (at most one duplicate each)."""
        return self._requeue("deliveries", delivery_ids)

    def unblock_targets(self, targets: Iterable[Target | str] | None = None) -> list[Target]:
        """Clear the 'blocked' state of some targets (all blocked ones when None); returns those cleared."""
        blocked = [t.target for t in self.target_states() if t.status == "blocked"]
        wanted = None if targets is None else {key_of(t) for t in targets}
        cleared = [t for t in blocked if wanted is None or key_of(t) in wanted]
        with self.transaction():
            for target in cleared:
                self._execute("UPDATE targets SET status = 'ok', retry_at = NULL WHERE target = ?", [key_of(target)])
        return cleared

    def target_keys(self, kind: str) -> list[Target]:
        """Every target of one kind the outbox has ever known (rows or state)."""
        rows = self._execute("SELECT target FROM deliveries WHERE substr(target, 1, ?) = ? UNION "
                             "SELECT target FROM targets WHERE substr(target, 1, ?) = ? ORDER BY 1",
                             [len(kind) + 1, f"{kind}:", len(kind) + 1, f"{kind}:"]).fetchall()
        return [target_of(r[0]) for r in rows]

    def target_chat_id(self, target: Target | str) -> str | None:
        """The chat id a target's address resolved to (getChat), when known."""
        row = self._execute("SELECT chat_id FROM targets WHERE target = ?", [key_of(target)]).fetchone()
        return row[0] if row else None

    def set_target_chat_id(self, target: Target | str, chat_id: str, now: datetime | None = None) -> None:
        """Remember what a target's address resolved to."""
        self._execute("INSERT INTO targets(target, status, first_seen_at, chat_id) VALUES (?, 'ok', ?, ?) "
                      "ON CONFLICT(target) DO UPDATE SET chat_id = excluded.chat_id",
                      [key_of(target), to_db(now or utcnow()), chat_id])

    def adopt_target(self, old: Target | str, new: Target | str) -> int:
        """The same chat under a new spelling: its outbox rows and state move to ``new``; returns rows moved."""
        with self.transaction():
            return adopt_target_rows(self.db.conn, key_of(old), key_of(new))

    def target_state(self, target: Target | str) -> TargetState | None:
        """One target's health (None when never seen)."""
        rows = self._rows("SELECT * FROM targets WHERE target = ?", [key_of(target)])
        return _target_state(rows[0]) if rows else None

    def mark_healthy(self, target: Target | str, at: datetime | None = None) -> None:
        """A drain finished this target's lane without a block or a transient failure."""
        moment = to_db(at or utcnow())
        self._execute("INSERT INTO targets(target, status, first_seen_at, healthy_at) VALUES (?, 'ok', ?, ?) "
                      "ON CONFLICT(target) DO UPDATE SET healthy_at = excluded.healthy_at",
                      [key_of(target), moment, moment])

    def set_target_state(self, target: Target | str, status: str, *, error: str | None = None,
                         retry_at: datetime | None = None, now: datetime | None = None) -> None:
        """Upsert a target's state (ok, blocked, unauthorized); first_seen_at is kept from the first call."""
        self._execute(
            "INSERT INTO targets(target, status, first_seen_at, retry_at, last_error) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(target) DO UPDATE SET status = excluded.status, retry_at = excluded.retry_at, "
            "last_error = excluded.last_error",
            [key_of(target), status, to_db(now or utcnow()), to_db(retry_at), error])

    def sent_count(self, target: Target | str) -> int:
        """How many deliveries to a target were ever sent."""
        return self._execute("SELECT COUNT(*) FROM deliveries WHERE target = ? AND status = 'sent'",
                             [key_of(target)]).fetchone()[0]

    def delivery_total(self, target: Target | str) -> int:
        """How many deliveries a target has in any status."""
        return self._execute("SELECT COUNT(*) FROM deliveries WHERE target = ?", [key_of(target)]).fetchone()[0]

    def enqueue(self, article_id: int, topic: str, target: Target | str, now: datetime | None = None) -> bool:
        """Add one pending delivery (no-op when the article already has one for the target)."""
        cursor = self._execute(
            "INSERT INTO deliveries(article_id, topic, target, status, attempts, created_at) "
            "VALUES (?, ?, ?, 'pending', 0, ?) ON CONFLICT(article_id, target) DO NOTHING",
            [article_id, topic, key_of(target), to_db(now or utcnow())])
        return cursor.rowcount > 0

    def edits_due(self, targets: Iterable[Target | str], sent_since: datetime) -> list[Delivery]:
        """Sent deliveries whose article changed since (content hash differs), sent after ``sent_since``."""
        targets = [key_of(t) for t in targets]
        if not targets:
            return []
        sql = ("SELECT d.* FROM deliveries d JOIN articles a ON a.id = d.article_id "
               f"WHERE d.status = 'sent' AND d.target IN ({', '.join('?' * len(targets))}) "
               "AND d.message_id IS NOT NULL AND d.content_hash IS NOT a.content_hash AND d.sent_at >= ? "
               "ORDER BY d.sent_at, d.id")
        return [_delivery(r) for r in self._rows(sql, [*targets, to_db(sent_since)])]

    def mark_edited(self, delivery_id: int, *, content_hash: str, note: str | None = None) -> None:
        """The sent message now shows this article version (sent_at stays: the edit window counts from it)."""
        self._execute("UPDATE deliveries SET content_hash = ?, last_error = ? WHERE id = ?",
                        [content_hash, note, delivery_id])


def _delivery(r: Mapping[str, Any]) -> Delivery:
    return Delivery(
        id=r["id"], article_id=r["article_id"], topic=r["topic"], target=target_of(r["target"]), status=r["status"],
        attempts=r["attempts"] or 0, next_attempt_at=from_db(r["next_attempt_at"]), message_id=r["message_id"],
        last_error=r["last_error"], content_hash=r["content_hash"], created_at=from_db(r["created_at"]),
        sent_at=from_db(r["sent_at"]))


def _target_state(r: Mapping[str, Any]) -> TargetState:
    return TargetState(target=target_of(r["target"]), status=r["status"], first_seen_at=from_db(r["first_seen_at"]),
                       retry_at=from_db(r["retry_at"]), last_error=r["last_error"],
                       healthy_at=from_db(r.get("healthy_at")))


# ---- the store's edge for targets: the only place a target key is written or read as text ----


def key_of(target: Target | str) -> str:
    """The stored key of a target ("telegram:@chan", "telegram:-100…#42")."""
    return str(target if isinstance(target, Target) else target_of(target))


def target_of(key: str) -> Target:
    """A stored key back into a Target; ValueError names a malformed one."""
    kind, sep, rest = key.partition(":")
    if not sep or not kind or not rest:
        raise ValueError(f"not a target key: {key!r} (expected kind:address)")
    address, hash_, thread = rest.partition("#")
    if hash_ and not thread.isdigit():
        raise ValueError(f"not a target key: {key!r} (the thread after # must be a number)")
    return Target(kind, address, int(thread) if hash_ else None)


def status_and_target(statuses: Iterable[str], target: Target | str | None, *, status_column: str,
                      target_column: str) -> tuple[list[str], list[Any]]:
    """The WHERE terms (and their parameters) of an outbox query: one of these statuses, and this target if any."""
    statuses = list(statuses)
    where = [f"{status_column} IN ({', '.join('?' * len(statuses))})"]
    params: list[Any] = [*statuses]
    if target is not None:
        where.append(f"{target_column} = ?")
        params.append(key_of(target))
    return where, params


def _outbox_query(columns: str, target: Target | str | None, statuses: Iterable[str], due_before: datetime | None,
                  limit: int | None) -> tuple[str, list[Any]]:
    where, params = status_and_target(statuses, target, status_column="d.status", target_column="d.target")
    if due_before is not None:
        where.append("(d.next_attempt_at IS NULL OR d.next_attempt_at <= ?)")
        params.append(to_db(due_before))
    sql = (f"SELECT {columns} FROM deliveries d JOIN articles a ON a.id = d.article_id WHERE " + " AND ".join(where)
           + " ORDER BY COALESCE(a.published_at, a.first_seen_at), a.id, d.id")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, params
