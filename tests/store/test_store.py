"""The state store: migrations, refusal of newer schemas, one-transaction writes, dedup, outbox."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest

from feedbot.errors import StateError
from feedbot.model import Article, Classification, Evidence, Section, TopicMatch
from feedbot.store import SCHEMA_VERSION, Store

CST = timezone(timedelta(hours=8))


def make_article(key: str = "k1", title: str = "全国碳市场第二个履约周期启动", text: str = "正文", **kw) -> Article:
    return Article(
        source_id=kw.pop("source_id", "src"), key=key, url=f"https://example.org/{key}.html", title=title,
        body_html=f"<p>{text}</p>", text=text, paragraphs=(text,), sections=(Section(None, (text,)),),
        content_hash=kw.pop("content_hash", f"hash-{title}-{text}"),
        published_at=kw.pop("published_at", datetime(2022, 3, 28, 7, 19, 21, tzinfo=CST)), **kw)


def verdict(*topics: str) -> Classification:
    return Classification(tuple(
        TopicMatch(t, 9.0, True, (Evidence("碳市场", "title", 1, 3.0),), f"excerpt for {t}") for t in topics))


def test_new_file_is_migrated_to_current_schema_in_wal_mode(tmp_path):
    store = Store(tmp_path / "state" / "feedbot.db")
    assert store.schema_version() == SCHEMA_VERSION
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"sources", "pages", "articles", "classifications", "deliveries", "targets", "meta"} <= set(
        store.db.table_names())
    store.close()
    # Opening again applies nothing and keeps data.
    again = Store(tmp_path / "state" / "feedbot.db")
    assert again.schema_version() == SCHEMA_VERSION
    again.close()


def test_newer_schema_is_refused_and_untouched(tmp_path):
    path = tmp_path / "feedbot.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StateError, match=rf"newer feedbot \(schema version {SCHEMA_VERSION + 5}"):
        Store(path)
    assert path.read_bytes() == before


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "feedbot.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="not a usable SQLite database"):
        Store(path)


def test_article_classification_and_deliveries_in_one_write(store):
    result = store.save_article(make_article(), verdict("carbon-market", "climate-finance"),
                                {"carbon-market": ["telegram:@cm"], "climate-finance": ["telegram:@cf"]})
    assert result.status == "new" and result.deliveries_added == 2
    stored = store.article(result.article_id)
    assert stored.excerpts == {"carbon-market": "excerpt for carbon-market",
                               "climate-finance": "excerpt for climate-finance"}
    assert stored.published_at == datetime(2022, 3, 27, 23, 19, 21, tzinfo=UTC)
    assert [str(d.target) for d in store.deliveries()] == ["telegram:@cm", "telegram:@cf"]


def test_failure_in_the_middle_leaves_nothing(store, monkeypatch):
    calls = {"n": 0}
    real_execute = store.db.execute

    def failing_execute(sql, params=None):
        if sql.startswith("INSERT INTO deliveries"):
            calls["n"] += 1
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return real_execute(sql, params) if params is not None else real_execute(sql)

    monkeypatch.setattr(store.db, "execute", failing_execute)
    with pytest.raises(StateError, match="nothing was written: disk I/O error"):
        store.save_article(make_article(), verdict("carbon-market"), {"carbon-market": ["telegram:@cm"]})
    monkeypatch.undo()
    assert calls["n"] == 1
    for table in ("articles", "classifications", "deliveries"):
        assert store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0


def test_a_transaction_that_need_not_be_durable_still_rolls_back_whole_and_leaves_fsync_on(store):
    before = store.db.execute("PRAGMA synchronous").fetchone()[0]
    store.sync_sources([("src", "feed", "https://example.org/feed.xml")])
    now = datetime(2024, 6, 3, tzinfo=UTC)
    with pytest.raises(RuntimeError), store.transaction(durable=False):
        store.record_poll_ok("src", etag='"v2"', last_modified=None, checked_at=now, next_check_at=now)
        raise RuntimeError("a bug mid-write")
    assert store.source_state("src").etag is None  # all or nothing, as any transaction
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == before
    with store.transaction(durable=False):
        store.record_poll_ok("src", etag='"v3"', last_modified=None, checked_at=now, next_check_at=now)
    assert store.source_state("src").etag == '"v3"'
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == before


def test_same_article_twice_is_stored_once_and_an_edit_is_an_update(store):
    first = store.save_article(make_article(), verdict("carbon-market"), {"carbon-market": ["telegram:@cm"]})
    repeat = store.save_article(make_article(), verdict("carbon-market"), {"carbon-market": ["telegram:@cm"]})
    assert repeat.status == "unchanged" and repeat.article_id == first.article_id
    edited = store.save_article(make_article(text="更正后的正文"), verdict("carbon-market", "carbon-manager"),
                                {"carbon-market": ["telegram:@cm"], "carbon-manager": ["telegram:@mgr"]})
    assert edited.status == "updated" and edited.article_id == first.article_id
    assert edited.deliveries_added == 1  # only the newly matched topic gets a delivery
    assert store.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 1
    stored = store.article(first.article_id)
    assert stored.text == "更正后的正文" and stored.updated_at is not None
    assert store.known_keys("src") == {"k1"}


def test_articles_newest_first_per_topic_and_weekly_counts(store):
    now = datetime(2024, 6, 30, tzinfo=UTC)
    for i in range(5):
        store.save_article(make_article(key=f"k{i}", title=f"t{i}", published_at=now - timedelta(days=8 * i)),
                           verdict("carbon-market") if i % 2 == 0 else verdict("climate-finance"), {})
    store.save_article(make_article(key="none", title="unrouted"), Classification(), {})
    assert [a.key for a in store.articles("carbon-market")] == ["k0", "k2", "k4"]
    assert [a.key for a in store.articles(None, limit=2)] == ["k0", "k1"]
    weekly = store.weekly_counts("carbon-market", 12, now=now + timedelta(hours=1))
    assert len(weekly) == 12 and sum(weekly) == 3 and weekly[-1] == 1
    assert store.article_counts() == {"carbon-market": 3, "climate-finance": 2, "all": 6, "unrouted": 1}


def test_outbox_state_machine(store):
    store.save_article(make_article(), verdict("carbon-market"), {"carbon-market": ["telegram:@cm"]})
    (delivery,) = store.deliveries()
    assert store.claim_for_sending(delivery.id)
    assert store.deliveries() == [] and store.deliveries(statuses=["sending"])[0].attempts == 1
    later = datetime.now(UTC) + timedelta(minutes=5)
    store.mark_retry(delivery.id, error="502 Bad Gateway", next_attempt_at=later)
    assert store.deliveries(due_before=datetime.now(UTC)) == []
    assert store.deliveries(due_before=later)[0].last_error == "502 Bad Gateway"
    assert store.claim_for_sending(delivery.id)
    store.mark_sent(delivery.id, message_id=42, content_hash="h")
    sent = store.delivery(delivery.id)
    assert (sent.status, sent.message_id, sent.attempts) == ("sent", 42, 2)


def test_source_rows_follow_the_config_and_record_failures(store):
    store.sync_sources([("a", "feed", "https://x.org/a.xml")])
    now = datetime.now(UTC)
    store.record_poll_ok("a", etag='"v1"', last_modified=None, checked_at=now, next_check_at=now)
    assert store.source_state("a").etag == '"v1"'
    assert store.record_poll_failure("a", error="HTTP 500", checked_at=now, next_check_at=now) == 1
    assert store.record_poll_failure("a", error="HTTP 502", checked_at=now, next_check_at=now) == 2
    state = store.source_state("a")
    assert (state.failures, state.last_error, state.last_ok_at is not None) == (2, "HTTP 502", True)
    store.sync_sources([("a", "feed", "https://x.org/moved.xml")])
    assert store.source_state("a").etag is None and store.source_state("a").url.endswith("moved.xml")


def test_naive_datetimes_are_rejected(store):
    with pytest.raises(ValueError, match="naive datetime"):
        store.save_article(make_article(published_at=datetime(2022, 1, 1)), verdict(), {})


def test_pending_console_deliveries_can_be_dropped_by_kind(store):
    store.save_article(make_article(), verdict("carbon-market"),
                       {"carbon-market": ["console:carbon-market", "telegram:@cm"]})
    assert store.drop_pending_of_kind("console", reason="replaced") == 1
    assert [(str(d.target), d.status) for d in store.deliveries(statuses=["pending", "dropped"])] == [
        ("console:carbon-market", "dropped"), ("telegram:@cm", "pending")]


def test_delivery_ids_are_the_ids_of_the_outbox_rows_in_their_order(store):
    # Published out of arrival order: the outbox goes by publication time, then arrival.
    for n, day in enumerate((5, 1, 3, 1)):
        store.save_article(make_article(f"k{n}", published_at=datetime(2022, 3, day, tzinfo=CST)),
                           verdict("carbon-market"), {"carbon-market": ["telegram:@cm", "telegram:@cf"]})
    rows = store.deliveries(target="telegram:@cm", statuses=("pending",))
    assert [r.article_id for r in rows] == [2, 4, 3, 1]
    assert store.delivery_ids(target="telegram:@cm", statuses=("pending",)) == [r.id for r in rows]
    assert store.mark_dropped([rows[0].id, rows[1].id], reason="backlog") == 2
    assert [r.article_id for r in store.deliveries(target="telegram:@cm")] == [3, 1]
    assert len(store.delivery_ids(statuses=("pending",))) == 6  # the other chat's rows are untouched


def test_sqlite_errors_become_state_errors_that_say_what_happened(tmp_path):
    store = Store(tmp_path / "feedbot.db")
    other = sqlite3.connect(tmp_path / "feedbot.db", timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    store.db.execute("PRAGMA busy_timeout = 50")
    try:
        with pytest.raises(StateError, match="locked by another process"):
            store.save_article(make_article(), verdict(), {})
        with pytest.raises(StateError, match="locked by another process"):
            store.set_meta("k", "v")
    finally:
        other.rollback()
        other.close()
    store.set_meta("k", "v")  # usable again once the lock is gone
    assert store.get_meta("k") == "v"
    store.close()
