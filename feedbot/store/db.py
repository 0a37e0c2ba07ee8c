"""The connection: one SQLite file, explicit transactions, forward migrations, sqlite3 errors mapped at the edge."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from feedbot.errors import StateError
from feedbot.store.connection import Connection
from feedbot.store.convert import from_db, to_db  # noqa: F401 - re-exported: every table module uses them
from feedbot.store.migrations import (  # noqa: F401 - re-exported for the table modules and tests
    FEEDBOT_TABLES,
    MIGRATIONS,
    SCHEMA_VERSION,
    SEARCH_TABLE,
    adopt_target_rows,
    create_search_index,
    has_search_index,
)

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 10_000
Params = Iterable[Any] | Mapping[str, Any]




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
        self.db = Connection(conn)  # sqlite-utils is imported by a migration only (store/connection.py says why)
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.db.execute("PRAGMA foreign_keys = ON")
        # A poll's savepoint per item journals the pages it changes: in memory, not ~40 writes to a temp file.
        self.db.execute("PRAGMA temp_store = MEMORY")
        # SQLite's own setting (FULL: every COMMIT is fsynced), restored after a transaction(durable=False).
        self._synchronous = self.db.execute("PRAGMA synchronous").fetchone()[0]
        return conn

    def _foreign_tables(self) -> list[str]:
        """The tables of a version-0 file that holds none of feedbot's (another program's database), else []."""
        names = [r[0] for r in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name").fetchall()]
        # A racing process may have just migrated the file: its tables are ours, not foreign.
        return [] if set(names) & FEEDBOT_TABLES else names

    def _empty(self) -> bool:
        return self.db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0

    def schema_version(self) -> int:
        """The schema version recorded in the file (0 for a new file)."""
        return self._execute("PRAGMA user_version").fetchone()[0]

    def migrate(self, *, replay: bool = False) -> int:
        """Apply the forward migrations this file lacks; returns the resulting version.

        A new, empty file gets the current schema in one step (feedbot.store.schema), unless ``replay``.
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
                if version == 0 and not replay and self._empty():
                    from feedbot.store.schema import create_current

                    if create_current(self.db.conn):
                        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                        continue
                import sqlite_utils

                MIGRATIONS[version](sqlite_utils.Database(self.db.conn, recursive_triggers=False))  # already on
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
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error; inside another one, a SAVEPOINT.

        A nested block is all-or-nothing within the outer transaction (e.g. one article of a poll), and
        nothing of it is durable before the outer COMMIT. Never hold one across an ``await``: the
        connection is shared by every coroutine of the process.

        ``durable=False`` is for bookkeeping that may be lost to a power cut (not to a crash: a committed
        write survives SIGKILL either way), such as when a source was last checked: its COMMIT skips the
        fsync, and the next durable COMMIT syncs it with its own (the WAL is replayed in order, so what
        survives is always a prefix of the commits).
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self._savepoint(conn):
                yield
            return
        try:
            if not durable:
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._restore_synchronous(durable)
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
        finally:
            self._restore_synchronous(durable)

    def _restore_synchronous(self, durable: bool) -> None:
        if not durable:
            with contextlib.suppress(sqlite3.Error):  # outside a transaction only a closed connection refuses it
                self.db.conn.execute(f"PRAGMA synchronous = {self._synchronous}")

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
                self.forget_caches()  # what a cache learnt inside the savepoint may be gone with it
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

    # Every statement goes through these three, so every sqlite3 error becomes a StateError here.

    def _execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {_describe(exc)}") from exc

    def _executemany(self, sql: str, rows: Iterable[Params]) -> sqlite3.Cursor:
        try:
            return self.db.conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {_describe(exc)}") from exc

    def _rows(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        try:
            return list(self.db.query(sql, params))
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {_describe(exc)}") from exc

    def _requeue(self, table: str, ids: Iterable[int]) -> int:
        """Outbox rows (deliveries or digest_parts) left 'sending' by a dead process go back to pending."""
        count = 0
        with self.transaction():
            for row_id in ids:
                count += self._execute(
                    f"UPDATE {table} SET status = 'pending', claimed_by = NULL, "
                    "last_error = 'interrupted while sending; resent' WHERE id = ? AND status = 'sending'",
                    [row_id]).rowcount
        return count

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
