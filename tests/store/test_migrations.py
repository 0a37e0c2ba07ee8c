"""Migrations of databases written by earlier releases: the change counter and the search queue."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from feedbot.store import Store
from feedbot.store import migrations as store_migrations
from tests.store.test_store import make_article, verdict

NOW = datetime(2024, 6, 3, 4, tzinfo=UTC)


def old_database(path: Path, upto: str) -> None:
    """A file as the release before migration ``upto`` left it: every earlier step applied, one article stored."""
    names = [step.__name__ for step in store_migrations.MIGRATIONS]
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for number, step in enumerate(store_migrations.MIGRATIONS[:names.index(upto)], start=1):
        step(db)
        db.execute(f"PRAGMA user_version = {number}")
    db["articles"].insert({"id": 1, "source_id": "src", "key": "k1", "title": "旧库里的碳普惠文章",
                           "first_seen_at": "2024-01-01T00:00:00+00:00", "content_hash": "h",
                           "text": "碳普惠机制在广东试行。", "updated_at": "2024-05-01T00:00:00+00:00"})
    db["articles"].insert({"id": 2, "source_id": "src", "key": "k2", "title": "较新的文章", "content_hash": "h2",
                           "first_seen_at": "2024-01-02T00:00:00+00:00", "text": "全国碳市场扩容。",
                           "updated_at": "2024-06-01T00:00:00+00:00"})
    conn.close()


def test_an_existing_database_gets_the_change_counter_and_an_old_edit_moves_it(tmp_path: Path):
    path = tmp_path / "old.db"
    old_database(path, "_change_counter")
    store = Store(path)
    try:
        assert store.schema_version() == store_migrations.SCHEMA_VERSION
        before = store.last_change()
        assert before is not None
        edit = make_article("k1", title="旧库里的碳普惠文章（更正）", updated_at=datetime(2024, 5, 2, tzinfo=UTC))
        assert store.save_article(edit, verdict("carbon-market"), {}, now=NOW).status == "updated"
        assert store.last_change() != before
    finally:
        store.close()


def triggers(store: Store) -> set[str]:
    return {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}


def test_an_existing_index_moves_off_the_write_path_complete_and_with_nothing_queued(tmp_path: Path):
    from tests.store.test_search import drained, index_consistent

    path = tmp_path / "old.db"
    old_database(path, "_search_queue")  # its two articles were indexed by the old triggers as they were written
    store = Store(path)
    try:
        assert {"articles_fts_insert", "articles_fts_update", "articles_fts_delete"}.isdisjoint(triggers(store))
        assert {"articles_search_insert", "articles_search_update", "articles_search_delete"} <= triggers(store)
        assert store.search_queue_length() == 0 and index_consistent(store)  # nothing to index again
        assert [h.article.id for h in store.search("碳普惠").hits] == [1]
        saved = store.save_article(make_article("k3", title="迁移后的新文章 蓝碳"), verdict("carbon-market"), {},
                                   now=NOW)
        assert store.search_queue_length() == 1  # written now: queued, found by the scan
        assert [h.article.id for h in store.search("蓝碳 迁移后").hits] == [saved.article_id]
        edit = make_article("k1", title="旧库里的文章（更正）", content_hash="h-edited")
        store.save_article(edit, verdict("carbon-market"), {}, now=NOW)  # indexed by the old triggers: forgotten
        assert drained(store)
        assert store.search("碳普惠文章").hits == ()
    finally:
        store.close()
