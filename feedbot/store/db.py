"""The connection: one SQLite file, explicit transactions, forward migrations, sqlite3 errors mapped at the edge."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlite_utils

from feedbot.errors import StateError

log = logging.getLogger(__name__)
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


# ---- the search index (FTS5, trigram tokenizer: Chinese substrings without a word segmenter) ----

SEARCH_TABLE = "articles_fts"
_SEARCH_SCHEMA = (
    f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5(title, text, content='articles', content_rowid='id', "
    "tokenize='trigram')",
    f"CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN "
    f"INSERT INTO {SEARCH_TABLE}(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    f"CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN "
    f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); "
    "END",
    f"CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, text ON articles BEGIN "
    f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); "
    f"INSERT INTO {SEARCH_TABLE}(rowid, title, text) VALUES (new.id, new.title, new.text); END",
)


def trigram_supported(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has FTS5 with the trigram tokenizer (3.34 and later, FTS5 compiled in)."""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.feedbot_trigram_probe USING fts5(x, tokenize='trigram')")
    except sqlite3.Error:
        return False
    conn.execute("DROP TABLE temp.feedbot_trigram_probe")
    return True


def has_search_index(conn: sqlite3.Connection) -> bool:
    """Whether the file holds the full-text index."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [SEARCH_TABLE]).fetchone()
    return row is not None


def create_search_index(conn: sqlite3.Connection) -> bool:
    """Create and fill the index and its triggers when this SQLite can (inside the caller's transaction)."""
    if has_search_index(conn):
        return True
    if not trigram_supported(conn):
        log.warning("SQLite %s has no FTS5 trigram tokenizer (needs 3.34 or later): search scans articles "
                    "with LIKE instead of an index; `feedbot reclassify` builds the index after an upgrade",
                    sqlite3.sqlite_version)
        return False
    for statement in _SEARCH_SCHEMA:
        conn.execute(statement)
    conn.execute(f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}) VALUES ('rebuild')")
    return True


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
    create_search_index(db.conn)
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


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _v1, _v2, _v3, _delivery_claims, _target_identity, _post_retries, _search_and_page_indexes, _quarantine,
    _digests, _story_signatures)
SCHEMA_VERSION = len(MIGRATIONS)
FEEDBOT_TABLES = frozenset({"sources", "pages", "articles", "classifications", "deliveries", "targets", "meta"})


class Database:
    """One connection per process; every write that belongs together is one transaction."""

    def __init__(self, path: Path | str, *, migrate: bool = True, read_only: bool = False):
        self.path = Path(path)
        memory = str(path) == ":memory:"
        try:
            # `status` on a file it may not write (a read-only mount, another user's file): open it read-only.
            ro = read_only and not memory and self.path.exists() and not _writable(self.path)
            if not memory and not ro:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = self._connect(ro)
                version = self.schema_version()
            except (sqlite3.OperationalError, StateError):
                if not ro:
                    raise
                # WAL without a -shm file we may create: nobody can be writing here, read the file as it is.
                conn = self._connect(ro, immutable=True)
                version = self.schema_version()
            foreign = self._foreign_tables() if version == 0 else []
        except (sqlite3.DatabaseError, StateError) as exc:
            cause = exc.__cause__ if isinstance(exc, StateError) else exc
            raise StateError(f"{self.path}: not a usable SQLite database: {cause}") from exc
        except OSError as exc:
            raise StateError(f"{self.path}: cannot open: {exc.strerror or exc}") from exc
        if foreign:
            conn.close()
            shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
            raise StateError(
                f"{self.path}: not a feedbot database (it holds other tables: {shown}); point state_dir at "
                "a directory of its own — the file was not touched")
        if version > SCHEMA_VERSION:
            conn.close()
            raise StateError(
                f"{self.path}: written by a newer feedbot (schema version {version}, this one knows "
                f"up to {SCHEMA_VERSION}); upgrade feedbot or restore a backup — the file was not touched")
        if migrate:
            self.migrate()

    def _connect(self, read_only: bool, *, immutable: bool = False) -> sqlite3.Connection:
        if read_only:
            target = f"file:{quote(str(self.path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")
        else:
            target = str(self.path)
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE), never implicit.
        conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False, uri=read_only)
        self.db = sqlite_utils.Database(conn)
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.db.execute("PRAGMA foreign_keys = ON")
        return conn

    def _foreign_tables(self) -> list[str]:
        """The tables of a version-0 file that holds none of feedbot's (another program's database), else []."""
        names = [r[0] for r in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name").fetchall()]
        # A racing process may have just migrated the file: its tables are ours, not foreign.
        return [] if set(names) & FEEDBOT_TABLES else names

    def schema_version(self) -> int:
        """The schema version recorded in the file (0 for a new file)."""
        return self._execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> int:
        """Apply the forward migrations this file lacks; returns the resulting version.

        Each step re-reads the version inside its BEGIN IMMEDIATE transaction, so two processes starting
        on a fresh file never both apply one (the state-dir lock already keeps them apart; this holds
        even without it).
        """
        if self.schema_version() < SCHEMA_VERSION and str(self.path) != ":memory:":
            self._use_wal()
        while True:
            with self.transaction():
                version = self.schema_version()
                if version >= SCHEMA_VERSION:
                    return version
                MIGRATIONS[version](self.db)
                self.db.execute(f"PRAGMA user_version = {version + 1}")

    def _use_wal(self) -> None:
        """WAL lets the web server read while a poll writes.

        Switching the journal mode needs the file to itself and SQLite answers "locked" at once, without
        its busy handler: a process starting beside another one retries until the other has switched it.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._execute("PRAGMA journal_mode = WAL")
                return
            except StateError:
                with contextlib.suppress(StateError):
                    if self._execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                        return
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error; inside another one, a SAVEPOINT.

        A nested block is all-or-nothing within the outer transaction (e.g. one article of a poll), and
        nothing of it is durable before the outer COMMIT. Never hold one across an ``await``: the
        connection is shared by every coroutine of the process.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self._savepoint(conn):
                yield
            return
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
            self.forget_caches()
            cause = exc.__cause__ if isinstance(exc, StateError) else exc
            if isinstance(cause, sqlite3.Error):
                raise StateError(f"{self.path}: nothing was written: {_describe(cause)}") from cause
            raise

    @contextmanager
    def _savepoint(self, conn: sqlite3.Connection) -> Iterator[None]:
        self._savepoints = getattr(self, "_savepoints", 0) + 1
        name = f"feedbot_sp{self._savepoints}"
        try:
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                raise
            conn.execute(f"RELEASE {name}")
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {_describe(exc)}") from exc
        finally:
            self._savepoints -= 1

    def forget_caches(self) -> None:
        """Forget caches that may not match the file (a rollback, rows written behind the methods' back)."""

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


def _writable(path: Path) -> bool:
    """Whether this process may write the file and create its journal beside it."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _describe(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "full" in text:
        return f"the disk is full ({text}); feedbot retries when space returns"
    if "locked" in text or "busy" in text:
        return f"the database stayed locked by another process for {BUSY_TIMEOUT_MS // 1000}s ({text})"
    return text
