"""The search index's SQL: the FTS5 table, the queue of articles still to index, and their triggers."""

from __future__ import annotations

import sqlite3

SEARCH_TABLE = "articles_fts"
SEARCH_QUEUE = "search_queue"
INDEX_SCHEMA = (f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5(title, text, content='articles', "
                "content_rowid='id', tokenize='trigram')")
# The triggers of _search_and_page_indexes kept the index in step on every write (~0.1 ms per article on
# the poll path); _search_queue replaces them. Kept as they were: a file older than that step passes through.
SYNC_TRIGGERS = {
    "articles_fts_insert": f"CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN "
    f"INSERT INTO {SEARCH_TABLE}(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "articles_fts_delete": f"CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN "
    f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); "
    "END",
    "articles_fts_update": f"CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, text ON articles BEGIN "
    f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); "
    f"INSERT INTO {SEARCH_TABLE}(rowid, title, text) VALUES (new.id, new.title, new.text); END",
}
# Now a write only queues the article's id; Store.index_pending indexes the queue in batches off the poll.
# An article is either indexed (with its current title and text) or queued, never both: an external-content
# index can only forget a row by the values it indexed, so an edit or a delete forgets an indexed row's old
# values at once and a queued row needs nothing (it was never indexed).
_FORGET_INDEXED = (f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, title, text) "
                   f"SELECT 'delete', old.id, old.title, old.text "
                   f"WHERE NOT EXISTS (SELECT 1 FROM {SEARCH_QUEUE} WHERE article_id = old.id);")
QUEUE_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {SEARCH_QUEUE} (article_id INTEGER PRIMARY KEY)",
    f"CREATE TRIGGER IF NOT EXISTS articles_search_insert AFTER INSERT ON articles BEGIN "
    f"INSERT OR IGNORE INTO {SEARCH_QUEUE}(article_id) VALUES (new.id); END",
    f"CREATE TRIGGER IF NOT EXISTS articles_search_update AFTER UPDATE OF title, text ON articles BEGIN "
    f"{_FORGET_INDEXED} INSERT OR IGNORE INTO {SEARCH_QUEUE}(article_id) VALUES (new.id); END",
    f"CREATE TRIGGER IF NOT EXISTS articles_search_delete AFTER DELETE ON articles BEGIN "
    f"{_FORGET_INDEXED} DELETE FROM {SEARCH_QUEUE} WHERE article_id = old.id; END",
)


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the file holds this table (virtual tables included)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() is not None


def has_search_index(conn: sqlite3.Connection) -> bool:
    """Whether the file holds the full-text index."""
    return has_table(conn, SEARCH_TABLE)
