"""The search index: kept with the articles, found by short and long Chinese terms and English words."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from feedbot.model import Classification, Evidence, TopicMatch
from feedbot.store import Store
from feedbot.store import migrations as store_migrations
from feedbot.store.search import MARK_CLOSE, MARK_OPEN
from tests.feeds_helpers import article, edited

NOW = datetime(2024, 6, 3, 4, 0, tzinfo=UTC)


def _save(store: Store, serial: int, title: str, body: str, topics=("carbon-market",), days: int = 0) -> int:
    art, cls = article(serial, title, topics, NOW - timedelta(days=days), body_html=body)
    return store.save_article(art, cls, {}, now=NOW).article_id


def _world(store: Store) -> dict[str, int]:
    return {
        "ccer": _save(store, 1, "温室气体自愿减排交易重启",
                      "<p>CCER 市场重启，首批项目方法学发布。</p><p>Carbon pricing in China.</p>"),
        "adapt": _save(store, 2, "城市适应气候变化试点", "<p>海绵城市与气候风险评估。</p>",
                       topics=("adaptation-2035",), days=1),
        "market": _save(store, 3, "全国碳市场扩容", "<p>钢铁、水泥行业纳入全国碳市场。</p>", days=2),
    }


def test_a_long_term_uses_the_index_and_a_short_one_a_scan(store: Store):
    ids = _world(store)
    assert store.search_indexed()
    found = store.search("碳市场")  # three characters: the trigram index
    assert found.indexed and [h.article.id for h in found.hits] == [ids["market"]]
    assert f"{MARK_OPEN}碳市场{MARK_CLOSE}" in found.hits[0].snippet
    short = store.search("减排")  # two characters: too short for trigrams, found by LIKE
    assert not short.indexed and [h.article.id for h in short.hits] == [ids["ccer"]]
    assert MARK_OPEN not in short.hits[0].snippet  # a match in the title only: the text starts the snippet
    in_body = store.search("首批")
    assert f"{MARK_OPEN}首批{MARK_CLOSE}" in in_body.hits[0].snippet
    assert [h.article.id for h in store.search("城").hits] == [ids["adapt"]]


def test_english_words_match_without_regard_to_case(store: Store):
    ids = _world(store)
    for query in ("pricing", "PRICING", "ccer", "carbon pricing"):
        assert [h.article.id for h in store.search(query).hits] == [ids["ccer"]], query


def test_every_term_must_occur_and_a_channel_narrows(store: Store):
    ids = _world(store)
    assert [h.article.id for h in store.search("气候 试点").hits] == [ids["adapt"]]
    assert store.search("碳市场 海绵城市").hits == ()
    assert [h.article.id for h in store.search("市场").hits] == [ids["market"], ids["ccer"]]  # last stored first
    assert [h.article.id for h in store.search("市场", topic="adaptation-2035").hits] == []
    assert [h.article.id for h in store.search("气候风险", topic="adaptation-2035").hits] == [ids["adapt"]]


def test_query_syntax_is_taken_literally(store: Store):
    _world(store)
    _save(store, 9, "百分比 50%_off", "<p>折扣 50%_off 与 a\"b NEAR(x) 的写法。</p>")
    for query in ('"', 'a"b', "NEAR(x)", "OR", "*", "50%_off", "%", "_", "\\", "碳市场 OR 海绵", "-碳"):
        store.search(query)  # no StateError: every term is a quoted phrase or an escaped LIKE pattern
    assert [h.article.title for h in store.search("%").hits] == ["百分比 50%_off"]
    assert [h.article.title for h in store.search("50%_off").hits] == ["百分比 50%_off"]
    assert store.search("   ").hits == ()


def test_pages_of_results(store: Store):
    for n in range(7):
        _save(store, 100 + n, f"碳配额分配 第{n}篇", "<p>配额分配方案。</p>", days=n)
    first = store.search("碳配额", limit=3)
    second = store.search("碳配额", limit=3, offset=3)
    last = store.search("碳配额", limit=3, offset=6)
    assert first.has_more and second.has_more and not last.has_more
    titles = [h.article.title for page in (first, second, last) for h in page.hits]
    assert titles == [f"碳配额分配 第{n}篇" for n in reversed(range(7))]  # each stored after the previous


def test_an_edit_reindexes_and_the_old_words_are_gone(store: Store):
    art, cls = article(5, "原来的标题 甲烷排放", ("carbon-market",), NOW)
    store.save_article(art, cls, {}, now=NOW)
    assert len(store.search("甲烷排放").hits) == 1
    assert store.save_article(edited(art, "新标题 氢能炼钢"), cls, {}, now=NOW).status == "updated"
    assert [h.article.title for h in store.search("氢能炼钢").hits] == ["新标题 氢能炼钢"]
    # The text still holds the old title (edited() changes only the title), the title column no longer does.
    assert all("甲烷排放" not in h.article.title for h in store.search("甲烷排放").hits)


def test_migration_indexes_articles_already_stored(tmp_path: Path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for number, step in enumerate(store_migrations.MIGRATIONS[:3], start=1):  # a database from before the index
        step(db)
        db.execute(f"PRAGMA user_version = {number}")
    db["articles"].insert({"id": 1, "source_id": "s", "key": "k", "title": "旧库里的碳普惠文章",
                           "first_seen_at": "2024-01-01T00:00:00+00:00", "content_hash": "h",
                           "text": "碳普惠机制在广东试行。"})
    conn.close()
    store = Store(path)
    try:
        assert store.schema_version() == len(store_migrations.MIGRATIONS)
        assert [h.article.id for h in store.search("碳普惠").hits] == [1]
        assert store.search("碳普惠").indexed
    finally:
        store.close()


def test_rebuild_restores_a_stale_index(store: Store):
    ids = _world(store)
    assert store.index_pending() == 3  # indexed, no longer queued: the index alone answers
    store.db.execute("INSERT INTO articles_fts(articles_fts) VALUES ('delete-all')")  # as if damaged
    assert store.search("碳市场").hits == ()
    assert store.rebuild_search_index()
    assert [h.article.id for h in store.search("碳市场").hits] == [ids["market"]]


def test_without_trigram_support_search_scans_and_says_so(tmp_path: Path, monkeypatch, caplog):
    # Stands in for SQLite older than 3.34 (no trigram tokenizer): this machine's SQLite has it.
    monkeypatch.setattr(store_migrations, "trigram_supported", lambda conn: False)
    with caplog.at_level(logging.WARNING, logger="feedbot.store.db"):
        store = Store(tmp_path / "old-sqlite.db")
    try:
        assert "has no FTS5 trigram tokenizer (needs 3.34 or later)" in caplog.text
        assert not store.search_indexed()
        ids = _world(store)
        found = store.search("碳市场")
        assert not found.indexed and [h.article.id for h in found.hits] == [ids["market"]]
        assert [h.article.id for h in store.search("Pricing").hits] == [ids["ccer"]]
        monkeypatch.undo()  # SQLite upgraded: reclassify's rebuild creates the index
        assert store.rebuild_search_index() and store.search("碳市场").indexed
    finally:
        store.close()


def test_classifications_come_back_with_their_evidence(store: Store):
    art, _ = article(7, "碳市场扩容", ("carbon-market",), NOW)
    evidence = (Evidence("碳市场", "title", 1, 3.0), Evidence("配额", "body", 4, 2.5))
    cls = Classification((TopicMatch("carbon-market", 8.5, True, evidence, "配额分配段落"),
                          TopicMatch("climate-finance", 0.5, False)))
    article_id = store.save_article(art, cls, {}, now=NOW).article_id
    assert store.classifications(article_id) == [TopicMatch("carbon-market", 8.5, True, evidence, "配额分配段落")]


def test_channel_counts_pages_and_changes(store: Store):
    before = store.changed_at()
    ids = _world(store)
    assert before is None and store.changed_at() == NOW
    assert store.count_articles() == 3 and store.count_articles("carbon-market") == 2
    assert [a.id for a in store.articles("carbon-market", 1, 1)] == [ids["market"]]
    assert [a.id for a in store.articles_by_id([ids["market"], 999, ids["ccer"]])] == [ids["market"], ids["ccer"]]


def index_consistent(store: Store) -> bool:
    """FTS5's own check that the index holds exactly every article's current title and text, no stale words
    (rank 1: compared with the articles; only true with nothing queued, as a queued article is not indexed)."""
    try:
        store.db.execute("INSERT INTO articles_fts(articles_fts, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError:
        return False
    return True


def drained(store: Store) -> bool:
    """Index everything queued; True when the index then agrees with the articles exactly."""
    while store.index_pending(limit=2):
        pass
    return store.search_queue_length() == 0 and index_consistent(store)


def indexed_ids(store: Store) -> set[int]:
    """The articles the index holds (FTS5 keeps one docsize row per indexed document)."""
    return {r[0] for r in store.db.execute("SELECT id FROM articles_fts_docsize")}


def test_a_new_article_is_found_while_queued_and_by_the_index_once_indexed(store: Store):
    ids = _world(store)
    assert store.search_queue_length() == 3 and indexed_ids(store) == set()  # the write only queued them
    queued = store.search("碳市场")
    assert queued.indexed and [h.article.id for h in queued.hits] == [ids["market"]]
    assert f"{MARK_OPEN}碳市场{MARK_CLOSE}" in queued.hits[0].snippet
    assert store.index_pending(limit=2) == 2 and store.search_queue_length() == 1
    assert store.index_pending() == 1 and store.index_pending() == 0
    assert indexed_ids(store) == set(ids.values()) and drained(store)
    assert [h.article.id for h in store.search("碳市场").hits] == [ids["market"]]


def test_indexed_and_queued_hits_page_together_newest_first(store: Store):
    for n in range(7):
        _save(store, 100 + n, f"碳配额分配 第{n}篇", "<p>配额分配方案。</p>", days=n,
              topics=("carbon-market",) if n % 2 else ("adaptation-2035",))
    store.index_pending(limit=3)  # the three oldest indexed, four still queued
    pages = [store.search("碳配额", limit=3, offset=o) for o in (0, 3, 6)]
    assert [p.has_more for p in pages] == [True, True, False]
    titles = [h.article.title for page in pages for h in page.hits]
    assert titles == [f"碳配额分配 第{n}篇" for n in reversed(range(7))]
    assert [h.article.title for h in store.search("碳配额 第3", topic="carbon-market").hits] == ["碳配额分配 第3篇"]
    assert [h.article.title for h in store.search("配额 第6", topic="adaptation-2035").hits] == ["碳配额分配 第6篇"]
    assert store.search("碳配额", topic="climate-finance").hits == ()
    while store.index_pending():
        pass
    assert [h.article.title for page in (store.search("碳配额", limit=3, offset=o) for o in (0, 3, 6))
            for h in page.hits] == titles  # the same answer from the index alone


def test_an_edit_or_a_delete_leaves_no_stale_words_whether_indexed_or_queued(store: Store):
    art, cls = article(5, "原来的标题 甲烷排放", ("carbon-market",), NOW)
    indexed_id = store.save_article(art, cls, {}, now=NOW).article_id
    assert not index_consistent(store)  # the check sees a queued article missing from the index
    assert drained(store)
    store.save_article(edited(art, "新标题 氢能炼钢"), cls, {}, now=NOW)  # indexed: its old words go at once
    assert store.search_queue_length() == 1
    assert [h.article.title for h in store.search("氢能炼钢").hits] == ["新标题 氢能炼钢"]
    assert drained(store)
    queued_art, _ = article(6, "排队中的标题 碳汇林业", ("carbon-market",), NOW)
    queued_id = store.save_article(queued_art, cls, {}, now=NOW).article_id
    store.save_article(edited(queued_art, "排队中改过 蓝碳湿地"), cls, {}, now=NOW)  # queued: stays queued, once
    assert store.search_queue_length() == 1
    assert drained(store)  # (edited() changes the title only: the text keeps the old words)
    assert [h.article.id for h in store.search("蓝碳湿地").hits] == [queued_id]
    last_art, _ = article(7, "刚写入就删除 碳普惠", ("carbon-market",), NOW)
    last_id = store.save_article(last_art, cls, {}, now=NOW).article_id
    with store.transaction():  # one indexed, one queued
        store.db.execute("DELETE FROM classifications WHERE article_id IN (?, ?)", [indexed_id, last_id])
        store.db.execute("DELETE FROM articles WHERE id IN (?, ?)", [indexed_id, last_id])
    assert store.search_queue_length() == 0 and index_consistent(store)
    assert store.search("氢能炼钢").hits == () and store.search("碳普惠").hits == ()
    assert indexed_ids(store) == {queued_id}


def test_a_rebuild_indexes_everything_and_empties_the_queue(store: Store):
    ids = _world(store)
    assert store.search_queue_length() == 3
    assert store.rebuild_search_index()
    assert store.search_queue_length() == 0 and store.index_pending() == 0
    assert indexed_ids(store) == set(ids.values()) and index_consistent(store)


def test_without_an_index_nothing_is_queued(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(store_migrations, "trigram_supported", lambda conn: False)
    store = Store(tmp_path / "old-sqlite.db")
    try:
        ids = _world(store)
        assert store.index_pending() == 0 and store.search_queue_length() == 0
        assert [h.article.id for h in store.search("碳市场").hits] == [ids["market"]]
    finally:
        store.close()
