"""Articles: the change token the feeds loop compares, and the insert a poll's cached keys allow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedbot.model import Classification
from feedbot.store import Store
from tests.store.test_store import make_article, verdict

NOW = datetime(2024, 6, 3, 4, tzinfo=UTC)


def test_an_edit_changes_the_token_even_when_its_time_is_older_than_the_newest(store: Store):
    store.save_article(make_article("a"), verdict("carbon-market"), {}, now=NOW)
    store.save_article(make_article("b", updated_at=NOW), verdict("carbon-market"), {}, now=NOW)
    before = store.last_change()
    # The source says "a" was updated yesterday: older than b's updated_at, so MAX(updated_at) stays.
    edit = make_article("a", text="更正后的正文", updated_at=NOW - timedelta(days=1))
    assert store.save_article(edit, verdict("carbon-market"), {}, now=NOW).status == "updated"
    assert store.last_change() != before


def test_the_token_follows_every_write_to_articles_and_classifications_and_only_those(store: Store):
    tokens = [store.last_change()]
    saved = store.save_article(make_article("a"), verdict("carbon-market"), {}, now=NOW)
    tokens.append(store.last_change())
    store.save_article(make_article("a"), verdict("carbon-market"), {}, now=NOW)  # unchanged: nothing written
    assert store.last_change() == tokens[-1]
    store.set_meta("unrelated", "x")
    store.record_poll_ok("src", etag='"e"', last_modified=None, checked_at=NOW, next_check_at=NOW)
    assert store.last_change() == tokens[-1]
    store.reclassify(saved.article_id, Classification(()))  # its channels changed
    tokens.append(store.last_change())
    with store.transaction():
        store.db.execute("DELETE FROM articles WHERE id = ?", [saved.article_id])
    tokens.append(store.last_change())
    assert len(set(tokens)) == len(tokens), tokens


def test_a_second_connection_reads_the_token_the_first_one_wrote(tmp_path):
    store = Store(tmp_path / "feedbot.db")
    reader = Store(tmp_path / "feedbot.db", migrate=False, read_only=True)  # as the feeds thread opens it
    try:
        seen = reader.last_change()
        store.save_article(make_article("a"), verdict("carbon-market"), {}, now=NOW)
        assert reader.last_change() != seen
    finally:
        reader.close()
        store.close()
