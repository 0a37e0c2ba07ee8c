"""Metrics read from the store at scrape time: the search queue's length."""

from __future__ import annotations

from feedbot.ops.metrics import Metrics
from feedbot.store import Store
from tests.store.test_store import make_article, verdict


def test_the_search_queue_is_a_gauge(store: Store):
    metrics = Metrics(store)
    store.save_article(make_article("k1"), verdict("carbon-market"), {})
    assert "feedbot_search_queue 1.0" in metrics.render().decode()
    store.index_pending()
    assert "feedbot_search_queue 0.0" in metrics.render().decode()
