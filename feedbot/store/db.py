"""The connection: one SQLite file, explicit transactions, forward migrations, sqlite3 errors mapped at the edge."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from feedbot.errors import StateError

BUSY_TIMEOUT_MS = 10_000
Params = Iterable[Any] | Mapping[str, Any]


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


def _v3(db: sqlite_utils.Database) -> None:
    # A target's health lives in one row: the "outbox.healthy_at:<target>" meta keys move into it.
    db.execute("ALTER TABLE targets ADD COLUMN healthy_at TEXT")
    prefix = "outbox.healthy_at:"
    for key, value in db.execute("SELECT key, value FROM meta WHERE key LIKE 'outbox.healthy_at:%'").fetchall():
        target = key[len(prefix):]
        db.execute("INSERT INTO targets(target, status, first_seen_at, healthy_at) VALUES (?, 'ok', ?, ?) "
                   "ON CONFLICT(target) DO UPDATE SET healthy_at = excluded.healthy_at",
                   [target, to_db(datetime.fromisoformat(value)), to_db(datetime.fromisoformat(value))])
    db.execute("DELETE FROM meta WHERE key LIKE 'outbox.healthy_at:%'")


def _v4_quarantine(db: sqlite_utils.Database) -> None:
    # Items that failed processing, with their reason; and dates no source can mean (year 9999, 1970)
    # stored before the edge clamped them: those articles count as published when first seen.
    db["quarantine"].create({
        "source_id": str, "key": str, "url": str, "reason": str, "stage": str, "first_seen_at": str,
        "last_seen_at": str, "count": int, "retry_at": str,
    }, pk=("source_id", "key"), not_null={"reason", "first_seen_at", "last_seen_at", "count"})
    db.execute("UPDATE articles SET published_at = NULL WHERE published_at < '1990-01-01' OR published_at > "
               "strftime('%Y-%m-%dT%H:%M:%S+00:00', first_seen_at, '+2 days')")
    db.execute("UPDATE articles SET updated_at = NULL WHERE updated_at < '1990-01-01' OR updated_at > "
               "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '+2 days')")


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (_v1, _v2, _v3, _v4_quarantine)
SCHEMA_VERSION = len(MIGRATIONS)


class Database:
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

    def schema_version(self) -> int:
        """The schema version recorded in the file (0 for a new file)."""
        return self._execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> int:
        """Apply the forward migrations this file lacks; returns the resulting version."""
        version = self.schema_version()
        if version < SCHEMA_VERSION and str(self.path) != ":memory:":
            # WAL lets the web server read while a poll writes.
            self._execute("PRAGMA journal_mode = WAL")
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
            cause = exc.__cause__ if isinstance(exc, StateError) else exc
            if isinstance(cause, sqlite3.Error):
                raise StateError(f"{self.path}: nothing was written: {_describe(cause)}") from cause
            raise

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        self.db.conn.close()

    # Every statement goes through these two, so every sqlite3 error becomes a StateError here.

    def _execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {_describe(exc)}") from exc

    def _rows(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        try:
            return list(self.db.query(sql, params))
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {_describe(exc)}") from exc

    def get_meta(self, key: str) -> str | None:
        """A small named value kept across restarts."""
        row = self._execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a named value."""
        self._execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                      "excluded.value", [key, value])

    def integrity_check(self) -> str:
        """SQLite's PRAGMA integrity_check: "ok", or the problems it found, one per line."""
        return "\n".join(row[0] for row in self._execute("PRAGMA integrity_check"))


def _describe(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "full" in text:
        return f"the disk is full ({text}); feedbot retries when space returns"
    if "locked" in text or "busy" in text:
        return f"the database stayed locked by another process for {BUSY_TIMEOUT_MS // 1000}s ({text})"
    return text
