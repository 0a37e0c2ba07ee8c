"""The store methods the benchmarks and drills use: bulk_load and integrity_check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedbot.errors import StateError
from feedbot.model import Classification, Entry, Evidence, TopicMatch
from feedbot.sources.normalize import normalize
from feedbot.store import Store
from feedbot.store.bulk import bulk_load


def article(n: int):
    when = datetime(2024, 1, 1 + n, tzinfo=UTC)
    return normalize(Entry("src", f"https://x.test/{n}", f"https://x.test/{n}", f"第{n}篇 碳市场",
                           f"<p>全国碳市场第{n}个履约周期顺利收官。</p>", published_at=when))


def test_bulk_load_stores_articles_classifications_and_sent_deliveries(tmp_path):
    store = Store(tmp_path / "feedbot.db")
    matched = Classification((TopicMatch("carbon-market", 9.0, True, (Evidence("碳市场", "title", 1, 3.0),), "摘要"),
                              TopicMatch("climate-finance", 1.0, False)))
    loaded = bulk_load(store, [(article(n), matched) for n in range(3)], {"carbon-market": ["telegram:@cm"]})
    assert loaded == 3
    newest = store.articles("carbon-market", limit=10)
    assert [a.title for a in newest] == ["第2篇 碳市场", "第1篇 碳市场", "第0篇 碳市场"]
    assert newest[0].excerpts == {"carbon-market": "摘要"}
    assert store.articles("climate-finance", limit=10) == []
    assert store.sent_count("telegram:@cm") == 3
    assert store.deliveries(target="telegram:@cm", statuses=("pending",)) == []
    # A bulk-loaded article is known: the pipeline's save of the same content is "unchanged".
    assert store.save_article(article(1), matched, {}).status == "unchanged"
    store.close()


def test_bulk_load_is_one_transaction(tmp_path):
    store = Store(tmp_path / "feedbot.db")
    same = article(0)
    with pytest.raises(StateError, match="UNIQUE"):  # the third item repeats the second's key
        bulk_load(store, [(article(5), Classification()), (same, Classification()), (same, Classification())], {})
    assert store.article_counts()["all"] == 0  # nothing of the failed batch was kept
    store.close()


def test_integrity_check_is_ok_on_a_sound_database(tmp_path):
    store = Store(tmp_path / "feedbot.db")
    bulk_load(store, [(article(0), Classification())], {}, delivered=False)
    assert store.integrity_check() == "ok"
    store.close()


def test_bulk_loaded_articles_are_indexed_for_search(tmp_path):
    store = Store(tmp_path / "feedbot.db")
    bulk_load(store, [(article(n), Classification()) for n in range(3)], {})
    assert store.search_queue_length() == 0  # a benchmark's searches meet a complete index
    assert len(store.search("履约周期").hits) == 3
    store.close()
