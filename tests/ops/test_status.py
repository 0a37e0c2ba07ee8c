"""`feedbot status`: the articles still waiting for the search index are counted and named."""

from __future__ import annotations

from feedbot.ops.status import collect_status, render_status
from feedbot.settings.config import parse_config
from feedbot.store import Store
from tests.store.test_store import make_article, verdict


def test_status_counts_the_articles_not_yet_in_the_search_index(tmp_path):
    config = parse_config({"state_dir": str(tmp_path / "state")}, None, {})
    store = Store(config.db_path)
    try:
        for n in range(2):
            store.save_article(make_article(f"k{n}", title=f"碳市场{n}"), verdict("carbon-market"), {})
        report = collect_status(store, config)
        assert report["articles"]["search_queue"] == 2
        assert "2 not yet in the search index" in render_status(report)
        store.index_pending()
        report = collect_status(store, config)
        assert report["articles"]["search_queue"] == 0
        assert "search index" not in render_status(report)  # nothing waiting: nothing said
    finally:
        store.close()
