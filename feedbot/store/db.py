"""The state database: the only module that speaks SQL (sqlite-utils over one SQLite file)."""

from __future__ import annotations

import functools
import inspect
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from feedbot.errors import StateError
from feedbot.model import (
    Article,
    Classification,
    Delivery,
    SaveResult,
    SourceState,
    StoredArticle,
    TopicMatch,
)

BUSY_TIMEOUT_MS = 10_000


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the store's clock)."""
    return datetime.now(UTC)


def to_db(moment: datetime | None) -> str | None:
    """A timezone-aware datetime as a sortable UTC ISO string."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r} reached the store")
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def from_db(value: str | None) -> datetime | None:
    """The inverse of to_db."""
    return datetime.fromisoformat(value) if value else None


# ---- migrations: each step moves the schema forward by one version; never edit a released one ----


def _v1(db: sqlite_utils.Database) -> None:
    db["sources"].create({
        "id": str, "kind": str, "url": str, "etag": str, "last_modified": str, "last_checked_at": str,
        "last_ok_at": str, "next_check_at": str, "failures": int, "last_error": str,
    }, pk="id", not_null={"kind", "url"}, defaults={"failures": 0})
    db["pages"].create({  # validators and digests of fetched pages (e.g. Jekyll post pages)
        "url": str, "source_id": str, "etag": str, "last_modified": str, "content_hash": str, "fetched_at": str,
    }, pk="url")
    db["articles"].create({
        "id": int, "source_id": str, "key": str, "url": str, "title": str, "published_at": str,
        "updated_at": str, "first_seen_at": str, "body_html": str, "text": str, "content_hash": str,
        "outlet": str, "origin_url": str,
    }, pk="id", not_null={"source_id", "key", "title", "first_seen_at", "content_hash"})
    db["articles"].create_index(["source_id", "key"], unique=True)
    db["articles"].create_index(["published_at"])
    db["classifications"].create({
        "article_id": int, "topic": str, "score": float, "evidence": str, "excerpt": str,
    }, pk=("article_id", "topic"), foreign_keys=[("article_id", "articles", "id")])
    db["classifications"].create_index(["topic"])
    db["deliveries"].create({
        "id": int, "article_id": int, "topic": str, "target": str, "status": str, "attempts": int,
        "next_attempt_at": str, "message_id": int, "last_error": str, "content_hash": str,
        "created_at": str, "sent_at": str,
    }, pk="id", not_null={"article_id", "topic", "target", "status", "created_at"},
        defaults={"attempts": 0, "status": "pending"}, foreign_keys=[("article_id", "articles", "id")])
    db["deliveries"].create_index(["article_id", "target"], unique=True)
    db["deliveries"].create_index(["target", "status"])
    db["targets"].create({  # per publishing target: blocked (403), first seen (backlog guard)
        "target": str, "status": str, "first_seen_at": str, "retry_at": str, "last_error": str,
    }, pk="target")
    db["meta"].create({"key": str, "value": str}, pk="key")


def _v2(db: sqlite_utils.Database) -> None:
    # Feeds and the outbox order by this expression; indexing it keeps "newest 50" fast at 100k articles.
    db.execute("CREATE INDEX idx_articles_newest ON articles (COALESCE(published_at, first_seen_at), id)")


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (_v1, _v2)
SCHEMA_VERSION = len(MIGRATIONS)


class Store:
    """One connection per process; every write that belongs together is one transaction."""

    def __init__(self, path: Path | str, *, migrate: bool = True):
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE), never implicit.
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            self.db = sqlite_utils.Database(conn)
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.db.execute("PRAGMA foreign_keys = ON")
            version = self.schema_version()
        except (sqlite3.DatabaseError, StateError) as exc:
            cause = exc.__cause__ if isinstance(exc, StateError) else exc
            raise StateError(f"{self.path}: not a usable SQLite database: {cause}") from exc
        if version > SCHEMA_VERSION:
            conn.close()
            raise StateError(
                f"{self.path}: written by a newer feedbot (schema version {version}, this one knows "
                f"up to {SCHEMA_VERSION}); upgrade feedbot or restore a backup — the file was not touched")
        if migrate:
            self.migrate()

    # ---- plumbing ---------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version recorded in the file (0 for a new file)."""
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> int:
        """Apply the forward migrations this file lacks; returns the resulting version."""
        version = self.schema_version()
        if version < SCHEMA_VERSION and str(self.path) != ":memory:":
            # WAL lets the web server read while a poll writes.
            self.db.execute("PRAGMA journal_mode = WAL")
        for number in range(version, SCHEMA_VERSION):
            with self.transaction():
                MIGRATIONS[number](self.db)
                self.db.execute(f"PRAGMA user_version = {number + 1}")
        return self.schema_version()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error; not re-entrant."""
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: cannot start a write: {_describe(exc)}") from exc
        try:
            yield
            conn.execute("COMMIT")
        except BaseException as exc:
            # SQLite may already have rolled back by itself (e.g. on SQLITE_FULL).
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StateError(f"{self.path}: nothing was written: {_describe(exc)}") from exc
            raise

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        self.db.conn.close()

    def _rows(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def get_meta(self, key: str) -> str | None:
        """A small named value kept across restarts."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a named value."""
        self.db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                        "excluded.value", [key, value])

    # ---- sources ------------------------------------------------------------------------------

    def sync_sources(self, sources: Iterable[tuple[str, str, str]]) -> None:
        """Make sure a row exists for each configured (id, kind, url); a changed URL resets its validators."""
        with self.transaction():
            for sid, kind, url in sources:
                row = self.db.execute("SELECT kind, url FROM sources WHERE id = ?", [sid]).fetchone()
                if row is None:
                    self.db.execute("INSERT INTO sources(id, kind, url, failures) VALUES (?, ?, ?, 0)",
                                    [sid, kind, url])
                elif tuple(row) != (kind, url):
                    self.db.execute("UPDATE sources SET kind = ?, url = ?, etag = NULL, last_modified = NULL "
                                    "WHERE id = ?", [kind, url, sid])

    def source_state(self, source_id: str) -> SourceState | None:
        """The stored polling state of one source."""
        rows = self._rows("SELECT * FROM sources WHERE id = ?", [source_id])
        return _source(rows[0]) if rows else None

    def source_states(self) -> list[SourceState]:
        """Every source's polling state."""
        return [_source(r) for r in self._rows("SELECT * FROM sources ORDER BY id")]

    def record_poll_ok(self, source_id: str, *, etag: str | None, last_modified: str | None,
                       checked_at: datetime, next_check_at: datetime) -> None:
        """A successful poll: new validators, failures reset."""
        self.db.execute(
            "UPDATE sources SET etag = ?, last_modified = ?, last_checked_at = ?, last_ok_at = ?, "
            "next_check_at = ?, failures = 0, last_error = NULL WHERE id = ?",
            [etag, last_modified, to_db(checked_at), to_db(checked_at), to_db(next_check_at), source_id])

    def record_poll_failure(self, source_id: str, *, error: str, checked_at: datetime,
                            next_check_at: datetime) -> int:
        """A failed poll: the error in words and one more failure; returns the failure count."""
        self.db.execute(
            "UPDATE sources SET last_checked_at = ?, next_check_at = ?, failures = failures + 1, "
            "last_error = ? WHERE id = ?", [to_db(checked_at), to_db(next_check_at), error, source_id])
        row = self.db.execute("SELECT failures FROM sources WHERE id = ?", [source_id]).fetchone()
        return row[0] if row else 0

    def page_validators(self, url: str) -> dict[str, str | None] | None:
        """Stored ETag / Last-Modified / digest of one fetched page."""
        rows = self._rows("SELECT etag, last_modified, content_hash, fetched_at FROM pages WHERE url = ?", [url])
        return rows[0] if rows else None

    def record_page(self, url: str, source_id: str, *, etag: str | None, last_modified: str | None,
                    content_hash: str | None, fetched_at: datetime) -> None:
        """Remember a fetched page's validators and digest."""
        self.db.execute(
            "INSERT INTO pages(url, source_id, etag, last_modified, content_hash, fetched_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(url) DO UPDATE SET etag = excluded.etag, "
            "last_modified = excluded.last_modified, content_hash = excluded.content_hash, "
            "fetched_at = excluded.fetched_at",
            [url, source_id, etag, last_modified, content_hash, to_db(fetched_at)])

    # ---- articles -----------------------------------------------------------------------------

    def known_keys(self, source_id: str) -> set[str]:
        """Keys of every article already stored for a source."""
        cursor = self.db.execute("SELECT key FROM articles WHERE source_id = ?", [source_id])
        return {row[0] for row in cursor}

    def content_hashes(self, source_id: str) -> dict[str, str]:
        """key → content hash for a source's stored articles (to tell updates from repeats)."""
        cursor = self.db.execute("SELECT key, content_hash FROM articles WHERE source_id = ?", [source_id])
        return dict(cursor.fetchall())

    def save_article(self, article: Article, classification: Classification,
                     targets: Mapping[str, Iterable[str]], now: datetime | None = None) -> SaveResult:
        """Store an article, its classification and its deliveries in one transaction.

        ``targets`` maps a topic to the publishing targets that want it (e.g. "telegram:@chan").
        An unchanged article writes nothing; an edited one keeps its id and gets ``updated_at``.
        """
        now = now or utcnow()
        with self.transaction():
            row = self.db.execute("SELECT id, content_hash FROM articles WHERE source_id = ? AND key = ?",
                                  [article.source_id, article.key]).fetchone()
            if row is not None and row[1] == article.content_hash:
                return SaveResult(article_id=row[0], status="unchanged")
            values = {
                "url": article.url, "title": article.title, "published_at": to_db(article.published_at),
                "body_html": article.body_html, "text": article.text, "content_hash": article.content_hash,
                "outlet": article.outlet, "origin_url": article.origin_url,
            }
            if row is None:
                cursor = self.db.execute(
                    "INSERT INTO articles(source_id, key, first_seen_at, updated_at, " + ", ".join(values)
                    + ") VALUES (?, ?, ?, ?" + ", ?" * len(values) + ")",
                    [article.source_id, article.key, to_db(now), to_db(article.updated_at), *values.values()])
                article_id, status = cursor.lastrowid, "new"
            else:
                article_id, status = row[0], "updated"
                values["updated_at"] = to_db(article.updated_at or now)
                self.db.execute("UPDATE articles SET " + ", ".join(f"{k} = ?" for k in values) + " WHERE id = ?",
                                [*values.values(), article_id])
            added = 0
            for match in self._write_classification(article_id, classification):
                for target in targets.get(match.topic, ()):
                    cursor = self.db.execute(
                        "INSERT INTO deliveries(article_id, topic, target, status, attempts, created_at) "
                        "VALUES (?, ?, ?, 'pending', 0, ?) ON CONFLICT(article_id, target) DO NOTHING",
                        [article_id, match.topic, target, to_db(now)])
                    added += cursor.rowcount
            return SaveResult(article_id=article_id, status=status, deliveries_added=added)

    def _write_classification(self, article_id: int, classification: Classification) -> list[TopicMatch]:
        """Replace an article's classification rows (inside the caller's transaction); returns the matches."""
        self.db.execute("DELETE FROM classifications WHERE article_id = ?", [article_id])
        matched = [m for m in classification.matches if m.matched]
        for match in matched:
            evidence = [[e.term, e.where, e.count, e.weight] for e in match.evidence]
            self.db.execute(
                "INSERT INTO classifications(article_id, topic, score, evidence, excerpt) VALUES (?, ?, ?, ?, ?)",
                [article_id, match.topic, match.score, json.dumps(evidence, ensure_ascii=False), match.excerpt])
        return matched

    def reclassify(self, article_id: int, classification: Classification) -> bool:
        """Replace a stored article's classification (new rules); no deliveries. True when its topics changed."""
        with self.transaction():
            before = {r[0] for r in self.db.execute("SELECT topic FROM classifications WHERE article_id = ?",
                                                    [article_id])}
            self._write_classification(article_id, classification)
            self.db.execute("INSERT INTO meta(key, value) VALUES ('reclassified_at', ?) ON CONFLICT(key) "
                            "DO UPDATE SET value = excluded.value", [to_db(utcnow())])
        return before != set(classification.topics)

    def article_ids(self) -> list[int]:
        """Every stored article's id, oldest first."""
        return [row[0] for row in self.db.execute("SELECT id FROM articles ORDER BY id")]

    def article(self, article_id: int) -> StoredArticle | None:
        """One stored article with its topics."""
        rows = self._rows("SELECT * FROM articles WHERE id = ?", [article_id])
        return self._with_topics(rows)[0] if rows else None

    def articles(self, topic: str | None = None, limit: int = 50) -> list[StoredArticle]:
        """The newest articles (of one topic, or all classified into any topic), newest first."""
        if topic is None:
            sql = ("SELECT a.* FROM articles a WHERE EXISTS (SELECT 1 FROM classifications c "
                   "WHERE c.article_id = a.id) ORDER BY COALESCE(a.published_at, a.first_seen_at) DESC, a.id DESC "
                   "LIMIT ?")
            params: list[Any] = [limit]
        else:
            # EXISTS (not JOIN) lets SQLite walk idx_articles_newest and stop after `limit` rows.
            sql = ("SELECT a.* FROM articles a WHERE EXISTS (SELECT 1 FROM classifications c "
                   "WHERE c.article_id = a.id AND c.topic = ?) "
                   "ORDER BY COALESCE(a.published_at, a.first_seen_at) DESC, a.id DESC LIMIT ?")
            params = [topic, limit]
        return self._with_topics(self._rows(sql, params))

    def _with_topics(self, rows: list[dict[str, Any]]) -> list[StoredArticle]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        excerpts: dict[int, dict[str, str]] = {i: {} for i in ids}
        scores: dict[int, dict[str, float]] = {i: {} for i in ids}
        marks = ", ".join("?" * len(ids))
        for c in self._rows(f"SELECT article_id, topic, score, excerpt FROM classifications "
                            f"WHERE article_id IN ({marks})", ids):
            excerpts[c["article_id"]][c["topic"]] = c["excerpt"] or ""
            scores[c["article_id"]][c["topic"]] = c["score"]
        return [_stored(r, excerpts[r["id"]], scores[r["id"]]) for r in rows]

    def weekly_counts(self, topic: str | None, weeks: int, now: datetime | None = None) -> list[int]:
        """Articles per week for the last ``weeks`` weeks, oldest first (by publication time)."""
        now = now or utcnow()
        start = now - timedelta(weeks=weeks)
        if topic is None:
            sql = ("SELECT COALESCE(published_at, first_seen_at) AS t FROM articles a WHERE t >= ? AND EXISTS "
                   "(SELECT 1 FROM classifications c WHERE c.article_id = a.id)")
            params: list[Any] = [to_db(start)]
        else:
            sql = ("SELECT COALESCE(a.published_at, a.first_seen_at) AS t FROM articles a JOIN classifications c "
                   "ON c.article_id = a.id AND c.topic = ? WHERE t >= ?")
            params = [topic, to_db(start)]
        counts = [0] * weeks
        for (moment,) in self.db.execute(sql, params):
            age_weeks = int((now - datetime.fromisoformat(moment)).total_seconds() // (7 * 86400))
            if 0 <= age_weeks < weeks:
                counts[weeks - 1 - age_weeks] += 1
        return counts

    def article_counts(self) -> dict[str, int]:
        """Stored articles per topic, plus "all" (every stored article) and "unrouted"."""
        out = {r["topic"]: r["n"] for r in self._rows(
            "SELECT topic, COUNT(*) AS n FROM classifications GROUP BY topic ORDER BY topic")}
        out["all"] = self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        out["unrouted"] = self.db.execute(
            "SELECT COUNT(*) FROM articles a WHERE NOT EXISTS "
            "(SELECT 1 FROM classifications c WHERE c.article_id = a.id)").fetchone()[0]
        return out

    def last_change(self) -> str | None:
        """A token that changes whenever an article is added or edited (to skip needless feed rebuilds)."""
        row = self.db.execute("SELECT COUNT(*), MAX(id), MAX(updated_at) FROM articles").fetchone()
        return json.dumps([*row, self.get_meta("reclassified_at")])

    # ---- the outbox ---------------------------------------------------------------------------

    def delivery_counts(self) -> list[dict[str, Any]]:
        """Deliveries per (target, topic, status)."""
        return self._rows("SELECT target, topic, status, COUNT(*) AS n FROM deliveries "
                          "GROUP BY target, topic, status ORDER BY target, topic, status")

    def deliveries(self, *, target: str | None = None, statuses: Iterable[str] = ("pending",),
                   due_before: datetime | None = None, limit: int | None = None) -> list[Delivery]:
        """Outbox rows, oldest article first (publication time, then arrival)."""
        statuses = list(statuses)
        where = [f"d.status IN ({', '.join('?' * len(statuses))})"]
        params: list[Any] = [*statuses]
        if target is not None:
            where.append("d.target = ?")
            params.append(target)
        if due_before is not None:
            where.append("(d.next_attempt_at IS NULL OR d.next_attempt_at <= ?)")
            params.append(to_db(due_before))
        sql = ("SELECT d.* FROM deliveries d JOIN articles a ON a.id = d.article_id WHERE " + " AND ".join(where)
               + " ORDER BY COALESCE(a.published_at, a.first_seen_at), a.id, d.id")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_delivery(r) for r in self._rows(sql, params)]

    def delivery(self, delivery_id: int) -> Delivery | None:
        """One outbox row."""
        rows = self._rows("SELECT * FROM deliveries WHERE id = ?", [delivery_id])
        return _delivery(rows[0]) if rows else None

    def mark_sending(self, delivery_id: int) -> None:
        """Recorded before the request, so a crash mid-send is visible on restart."""
        self.db.execute("UPDATE deliveries SET status = 'sending', attempts = attempts + 1 WHERE id = ?",
                        [delivery_id])

    def mark_sent(self, delivery_id: int, *, message_id: int | None, content_hash: str,
                  sent_at: datetime | None = None, note: str | None = None) -> None:
        """Recorded after the request succeeded."""
        self.db.execute(
            "UPDATE deliveries SET status = 'sent', message_id = ?, content_hash = ?, sent_at = ?, "
            "last_error = ?, next_attempt_at = NULL WHERE id = ?",
            [message_id, content_hash, to_db(sent_at or utcnow()), note, delivery_id])

    def mark_retry(self, delivery_id: int, *, error: str, next_attempt_at: datetime) -> None:
        """Back to pending, not before ``next_attempt_at``."""
        self.db.execute("UPDATE deliveries SET status = 'pending', last_error = ?, next_attempt_at = ? WHERE id = ?",
                        [error, to_db(next_attempt_at), delivery_id])

    def mark_failed(self, delivery_id: int, *, error: str) -> None:
        """Given up for good (the reason is kept)."""
        self.db.execute("UPDATE deliveries SET status = 'failed', last_error = ? WHERE id = ?", [error, delivery_id])

    def target_states(self) -> dict[str, dict[str, Any]]:
        """Per publishing target: its state (ok, blocked, unauthorized), last error and next retry."""
        return {r["target"]: {"state": r["status"], "last_error": r["last_error"], "retry_at": r["retry_at"]}
                for r in self._rows("SELECT * FROM targets ORDER BY target")}

    def mark_dropped(self, delivery_ids: Iterable[int], *, reason: str) -> int:
        """Not to be sent (e.g. the backlog guard); the articles stay in the feeds."""
        ids = list(delivery_ids)
        with self.transaction():
            for did in ids:
                self.db.execute("UPDATE deliveries SET status = 'dropped', last_error = ? WHERE id = ? "
                                "AND status = 'pending'", [reason, did])
        return len(ids)

    def drop_pending_of_kind(self, kind: str, *, reason: str) -> int:
        """Drop every pending delivery whose target is of one kind (e.g. "console" once a token is set)."""
        cursor = self.db.execute("UPDATE deliveries SET status = 'dropped', last_error = ? "
                                 "WHERE status = 'pending' AND target LIKE ?", [reason, f"{kind}:%"])
        return cursor.rowcount

    # ---- telegram / outbox (telegram engineer) ------------------------------------------------

    def requeue_sending(self, targets: Iterable[str]) -> int:
        """Rows left 'sending' by a killed process go back to pending (at most one duplicate each)."""
        targets = list(targets)
        if not targets:
            return 0
        cursor = self.db.execute(
            f"UPDATE deliveries SET status = 'pending', last_error = 'interrupted while sending; resent' "
            f"WHERE status = 'sending' AND target IN ({', '.join('?' * len(targets))})", targets)
        return cursor.rowcount

    def target_state(self, target: str) -> dict[str, Any] | None:
        """One target's row: status, first_seen_at, retry_at, last_error (None when never seen)."""
        rows = self._rows("SELECT * FROM targets WHERE target = ?", [target])
        if not rows:
            return None
        row = rows[0]
        return {"status": row["status"], "first_seen_at": from_db(row["first_seen_at"]),
                "retry_at": from_db(row["retry_at"]), "last_error": row["last_error"]}

    def set_target_state(self, target: str, status: str, *, error: str | None = None,
                         retry_at: datetime | None = None, now: datetime | None = None) -> None:
        """Upsert a target's state (ok, blocked, unauthorized); first_seen_at is kept from the first call."""
        self.db.execute(
            "INSERT INTO targets(target, status, first_seen_at, retry_at, last_error) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(target) DO UPDATE SET status = excluded.status, retry_at = excluded.retry_at, "
            "last_error = excluded.last_error",
            [target, status, to_db(now or utcnow()), to_db(retry_at), error])

    def sent_count(self, target: str) -> int:
        """How many deliveries to a target were ever sent."""
        return self.db.execute("SELECT COUNT(*) FROM deliveries WHERE target = ? AND status = 'sent'",
                               [target]).fetchone()[0]

    def delivery_total(self, target: str) -> int:
        """How many deliveries a target has in any status."""
        return self.db.execute("SELECT COUNT(*) FROM deliveries WHERE target = ?", [target]).fetchone()[0]

    def enqueue(self, article_id: int, topic: str, target: str, now: datetime | None = None) -> bool:
        """Add one pending delivery (no-op when the article already has one for the target)."""
        cursor = self.db.execute(
            "INSERT INTO deliveries(article_id, topic, target, status, attempts, created_at) "
            "VALUES (?, ?, ?, 'pending', 0, ?) ON CONFLICT(article_id, target) DO NOTHING",
            [article_id, topic, target, to_db(now or utcnow())])
        return cursor.rowcount > 0

    def edits_due(self, targets: Iterable[str], sent_since: datetime) -> list[Delivery]:
        """Sent deliveries whose article changed since (content hash differs), sent after ``sent_since``."""
        targets = list(targets)
        if not targets:
            return []
        sql = ("SELECT d.* FROM deliveries d JOIN articles a ON a.id = d.article_id "
               f"WHERE d.status = 'sent' AND d.target IN ({', '.join('?' * len(targets))}) "
               "AND d.message_id IS NOT NULL AND d.content_hash IS NOT a.content_hash AND d.sent_at >= ? "
               "ORDER BY d.sent_at, d.id")
        return [_delivery(r) for r in self._rows(sql, [*targets, to_db(sent_since)])]

    def mark_edited(self, delivery_id: int, *, content_hash: str, note: str | None = None) -> None:
        """The sent message now shows this article version (sent_at stays: the edit window counts from it)."""
        self.db.execute("UPDATE deliveries SET content_hash = ?, last_error = ? WHERE id = ?",
                        [content_hash, note, delivery_id])

    # ---- benchmarks & drills ------------------------------------------------------------------

    def integrity_check(self) -> str:
        """SQLite's PRAGMA integrity_check: "ok", or the problems it found, one per line."""
        return "\n".join(row[0] for row in self.db.execute("PRAGMA integrity_check"))

    def bulk_load(self, items: Iterable[tuple[Article, Classification]], targets: Mapping[str, Iterable[str]],
                  *, delivered: bool = True, now: datetime | None = None) -> int:
        """Load many new articles in one transaction (benchmark set-up); deliveries are stored as sent."""
        now_db = to_db(now or utcnow())
        targets = {topic: list(ts) for topic, ts in targets.items()}
        status = "sent" if delivered else "pending"
        count = 0
        with self.transaction():
            for article, classification in items:
                cursor = self.db.execute(
                    "INSERT INTO articles(source_id, key, first_seen_at, updated_at, url, title, published_at, "
                    "body_html, text, content_hash, outlet, origin_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [article.source_id, article.key, now_db, to_db(article.updated_at), article.url, article.title,
                     to_db(article.published_at), article.body_html, article.text, article.content_hash,
                     article.outlet, article.origin_url])
                article_id = cursor.lastrowid
                for match in classification.matches:
                    if not match.matched:
                        continue
                    evidence = [[e.term, e.where, e.count, e.weight] for e in match.evidence]
                    self.db.execute(
                        "INSERT INTO classifications(article_id, topic, score, evidence, excerpt) "
                        "VALUES (?, ?, ?, ?, ?)",
                        [article_id, match.topic, match.score, json.dumps(evidence, ensure_ascii=False),
                         match.excerpt])
                    for target in targets.get(match.topic, ()):
                        self.db.execute(
                            "INSERT INTO deliveries(article_id, topic, target, status, attempts, created_at, "
                            "sent_at, content_hash, message_id) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)",
                            [article_id, match.topic, target, status, now_db, now_db if delivered else None,
                             article.content_hash, article_id if delivered else None])
                count += 1
        return count


# ---- errors: sqlite3's become StateError here, at the edge ----------------------------------------


def _describe(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "full" in text:
        return f"the disk is full ({text}); feedbot retries when space returns"
    if "locked" in text or "busy" in text:
        return f"the database stayed locked by another process for {BUSY_TIMEOUT_MS // 1000}s ({text})"
    return text


def _state_errors(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {_describe(exc)}") from exc

    return wrapper


# Every public method of Store turns sqlite3 errors into StateError (transaction() does it itself).
for _name, _method in list(vars(Store).items()):
    if not _name.startswith("_") and _name not in ("transaction", "close") and inspect.isfunction(_method):
        setattr(Store, _name, _state_errors(_method))


# ---- row → dataclass ------------------------------------------------------------------------


def _source(r: Mapping[str, Any]) -> SourceState:
    return SourceState(
        id=r["id"], kind=r["kind"], url=r["url"], etag=r["etag"], last_modified=r["last_modified"],
        last_checked_at=from_db(r["last_checked_at"]), last_ok_at=from_db(r["last_ok_at"]),
        next_check_at=from_db(r["next_check_at"]), failures=r["failures"] or 0, last_error=r["last_error"])


def _stored(r: Mapping[str, Any], excerpts: dict[str, str], scores: dict[str, float]) -> StoredArticle:
    return StoredArticle(
        id=r["id"], source_id=r["source_id"], key=r["key"], url=r["url"], title=r["title"],
        body_html=r["body_html"] or "", text=r["text"] or "", content_hash=r["content_hash"],
        published_at=from_db(r["published_at"]), updated_at=from_db(r["updated_at"]),
        first_seen_at=from_db(r["first_seen_at"]), outlet=r["outlet"], origin_url=r["origin_url"],
        excerpts=excerpts, scores=scores)


def _delivery(r: Mapping[str, Any]) -> Delivery:
    return Delivery(
        id=r["id"], article_id=r["article_id"], topic=r["topic"], target=r["target"], status=r["status"],
        attempts=r["attempts"] or 0, next_attempt_at=from_db(r["next_attempt_at"]), message_id=r["message_id"],
        last_error=r["last_error"], content_hash=r["content_hash"], created_at=from_db(r["created_at"]),
        sent_at=from_db(r["sent_at"]))
