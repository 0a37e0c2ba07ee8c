"""The schema's history: each migration moves a file forward by one version; never edit a released one."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from feedbot.store.convert import to_db
from feedbot.store.searchschema import INDEX_SCHEMA, QUEUE_SCHEMA, SEARCH_TABLE, SYNC_TRIGGERS, has_search_index

if TYPE_CHECKING:  # the migrations get a sqlite_utils.Database from Database.migrate, which imports it
    import sqlite_utils

log = logging.getLogger("feedbot.store.db")


# ---- the search index (FTS5, trigram tokenizer: Chinese substrings without a word segmenter) ----

def trigram_supported(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has FTS5 with the trigram tokenizer (3.34 and later, FTS5 compiled in)."""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.feedbot_trigram_probe USING fts5(x, tokenize='trigram')")
    except sqlite3.Error:
        return False
    conn.execute("DROP TABLE temp.feedbot_trigram_probe")
    return True


def _supports_search(conn: sqlite3.Connection) -> bool:
    if trigram_supported(conn):
        return True
    log.warning("SQLite %s has no FTS5 trigram tokenizer (needs 3.34 or later): search scans articles "
                "with LIKE instead of an index; `feedbot reclassify` builds the index after an upgrade",
                sqlite3.sqlite_version)
    return False


def create_search_index(conn: sqlite3.Connection) -> bool:
    """Create and fill the index, its queue and their triggers when this SQLite can (in the caller's transaction)."""
    if has_search_index(conn):
        return True
    if not _supports_search(conn):
        return False
    conn.execute(INDEX_SCHEMA)
    for statement in QUEUE_SCHEMA:
        conn.execute(statement)
    conn.execute(f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}) VALUES ('rebuild')")
    return True


def _create_synced_search_index(conn: sqlite3.Connection) -> None:
    """The index as _search_and_page_indexes made it: filled, and kept in step by triggers on every write."""
    if has_search_index(conn) or not _supports_search(conn):
        return
    conn.execute(INDEX_SCHEMA)
    for statement in SYNC_TRIGGERS.values():
        conn.execute(statement)
    conn.execute(f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}) VALUES ('rebuild')")


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


def _delivery_claims(db: sqlite_utils.Database) -> None:
    # Who marked a row 'sending' (a pid): a start re-queues only what no live process holds.
    db.execute("ALTER TABLE deliveries ADD COLUMN claimed_by INTEGER")


def _target_identity(db: sqlite_utils.Database) -> None:
    # A target is its chat, not its spelling: the chat id getChat resolved, and usernames in lower case
    # (Telegram usernames are case-insensitive), rows under "@Chan" adopted by "@chan".
    db.execute("ALTER TABLE targets ADD COLUMN chat_id TEXT")
    keys = {r[0] for r in db.execute("SELECT target FROM deliveries UNION SELECT target FROM targets")}
    for key in sorted(keys):
        kind, _, rest = key.partition(":")
        if kind == "telegram" and rest.startswith("@") and rest != rest.lower():
            adopt_target_rows(db.conn, key, f"{kind}:{rest.lower()}")


def _post_retries(db: sqlite_utils.Database) -> None:
    # Posts whose page failed to fetch or parse: retried explicitly on the next polls, wherever they are listed.
    db["post_retries"].create({
        "source_id": str, "key": str, "url": str, "error": str, "failures": int, "first_failed_at": str,
        "last_failed_at": str,
    }, pk=("source_id", "key"), not_null={"url"}, defaults={"failures": 0}, if_not_exists=True)


def adopt_target_rows(conn: sqlite3.Connection, old: str, new: str) -> int:
    """Move every outbox row of target key ``old`` to ``new`` (inside the caller's transaction).

    Where both keys hold a row for the same article, the one that went further wins: a pending row never
    replaces a sent one (that would send the article twice). Returns how many rows moved.
    """
    if old == new:
        return 0
    conn.execute(
        "DELETE FROM deliveries WHERE target = ? AND status IN ('pending', 'dropped', 'failed') AND article_id IN "
        "(SELECT article_id FROM deliveries WHERE target = ? AND status IN ('sent', 'sending'))", [new, old])
    moved = conn.execute("UPDATE OR IGNORE deliveries SET target = ? WHERE target = ?", [new, old]).rowcount
    conn.execute("DELETE FROM deliveries WHERE target = ?", [old])
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'digests'").fetchone():
        # Digests follow their chat too: a period recorded under the old spelling is never made again.
        conn.execute("UPDATE OR IGNORE digests SET target = ? WHERE target = ?", [new, old])
        conn.execute("DELETE FROM digest_parts WHERE digest_id IN (SELECT id FROM digests WHERE target = ?)", [old])
        conn.execute("DELETE FROM digests WHERE target = ?", [old])
    row = conn.execute("SELECT status, first_seen_at, retry_at, last_error, healthy_at, chat_id FROM targets "
                       "WHERE target = ?", [old]).fetchone()
    if row is not None:
        conn.execute(
            "INSERT INTO targets(target, status, first_seen_at, retry_at, last_error, healthy_at, chat_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(target) DO UPDATE SET "
            "first_seen_at = MIN(first_seen_at, excluded.first_seen_at), "
            "healthy_at = MAX(COALESCE(healthy_at, ''), COALESCE(excluded.healthy_at, '')), "
            "chat_id = COALESCE(chat_id, excluded.chat_id)", [new, *row])
        conn.execute("UPDATE targets SET healthy_at = NULL WHERE target = ? AND healthy_at = ''", [new])
        conn.execute("DELETE FROM targets WHERE target = ?", [old])
    return moved


def _search_and_page_indexes(db: sqlite_utils.Database) -> None:
    # Full-text search over title and text, kept in step with `articles` by triggers; populated here for an
    # existing database. SQLite older than 3.34 has no trigram tokenizer: search then scans with LIKE.
    _create_synced_search_index(db.conn)
    # Every page's Last-Modified is MAX() of these: an index makes that one lookup instead of a scan.
    db.execute("CREATE INDEX IF NOT EXISTS idx_articles_first_seen ON articles (first_seen_at)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_articles_updated ON articles (updated_at)")


def _quarantine(db: sqlite_utils.Database) -> None:
    # Items that failed processing, with their reason; and dates no source can mean (year 9999, 1970)
    # stored before the edge clamped them: those articles count as published when first seen.
    db["quarantine"].create({
        "source_id": str, "key": str, "url": str, "reason": str, "stage": str, "first_seen_at": str,
        "last_seen_at": str, "count": int, "retry_at": str,
    }, pk=("source_id", "key"), not_null={"reason", "first_seen_at", "last_seen_at", "count"}, if_not_exists=True)
    db.execute("UPDATE articles SET published_at = NULL WHERE published_at < '1990-01-01' OR published_at > "
               "strftime('%Y-%m-%dT%H:%M:%S+00:00', first_seen_at, '+2 days')")
    db.execute("UPDATE articles SET updated_at = NULL WHERE updated_at < '1990-01-01' OR updated_at > "
               "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '+2 days')")


def _digests(db: sqlite_utils.Database) -> None:
    # A channel's digest per (target, period), recorded once (the period's key is unique), and its messages:
    # outbox rows with the same claim / requeue life as deliveries, their text fixed when the digest is made.
    db["digests"].create({
        "id": int, "target": str, "topic": str, "period": str, "period_start": str, "period_end": str,
        "status": str, "articles": int, "note": str, "created_at": str,
    }, pk="id", not_null={"target", "topic", "period", "status", "created_at"}, if_not_exists=True)
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS idx_digests_period ON digests (target, period)")
    db["digest_parts"].create({
        "id": int, "digest_id": int, "part": int, "html": str, "plain": str, "status": str, "attempts": int,
        "claimed_by": int, "message_id": int, "next_attempt_at": str, "last_error": str, "sent_at": str,
    }, pk="id", not_null={"digest_id", "part", "html", "plain", "status"}, defaults={"attempts": 0},
        foreign_keys=[("digest_id", "digests", "id")], if_not_exists=True)
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS idx_digest_parts ON digest_parts (digest_id, part)")


def _story_signatures(db: sqlite_utils.Database) -> None:
    # One MinHash signature per article (feedbot.dedupe), and the first-seen article a reprint joins.
    db["signatures"].create({
        "article_id": int, "source_id": str, "signature": bytes, "original_id": int, "first_seen_at": str,
    }, pk="article_id", foreign_keys=[("article_id", "articles", "id")], not_null={"source_id", "first_seen_at"},
        if_not_exists=True)
    db.execute("CREATE INDEX IF NOT EXISTS idx_signatures_seen ON signatures (first_seen_at)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_signatures_original ON signatures (original_id)")


CHANGE_COUNTER = "change_counter"


def _change_counter(db: sqlite_utils.Database) -> None:
    # One row counting every write to articles and classifications: the feeds' "anything changed?" token.
    # (COUNT / MAX(id) / MAX(updated_at) missed an edit stamped with a time older than the newest one.)
    db.execute(f"CREATE TABLE IF NOT EXISTS {CHANGE_COUNTER} (id INTEGER PRIMARY KEY CHECK (id = 1), "
               "value INTEGER NOT NULL)")
    db.execute(f"INSERT OR IGNORE INTO {CHANGE_COUNTER}(id, value) VALUES (1, 0)")
    for table in ("articles", "classifications"):
        for event in ("INSERT", "UPDATE", "DELETE"):
            db.execute(f"CREATE TRIGGER IF NOT EXISTS {table}_{event.lower()}_counted AFTER {event} ON {table} "
                       f"BEGIN UPDATE {CHANGE_COUNTER} SET value = value + 1; END")


def _search_queue(db: sqlite_utils.Database) -> None:
    # The index off the write path: a write queues the article's id, Store.index_pending indexes the queue in
    # batches (the daemon's indexing loop) and search scans what is still queued. The index as it stands is
    # complete (its triggers kept it so): nothing to queue. Without the index there is nothing to change;
    # rebuild_search_index creates index and queue together once this SQLite can.
    if not has_search_index(db.conn):
        return
    for name in SYNC_TRIGGERS:
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in QUEUE_SCHEMA:
        db.execute(statement)


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _v1, _v2, _v3, _delivery_claims, _target_identity, _post_retries, _search_and_page_indexes, _quarantine,
    _digests, _story_signatures, _change_counter, _search_queue)
SCHEMA_VERSION = len(MIGRATIONS)
FEEDBOT_TABLES = frozenset({"sources", "pages", "articles", "classifications", "deliveries", "targets", "meta"})
