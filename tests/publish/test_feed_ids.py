"""Feed entry ids survive a new public URL (issue 12: 11): readers must not show every entry again."""

from __future__ import annotations

from dataclasses import replace

import feedparser

from feedbot.app import App
from feedbot.publish import feeds
from feedbot.settings.config import WebConfig
from feedbot.store import Store
from tests.telegram_helpers import make_article, save, telegram_config


def ids(config) -> dict[str, set[str]]:
    out = {}
    for name in ("carbon-market.atom", "carbon-market.xml", "all.atom"):
        out[name] = {e.id for e in feedparser.parse((config.feeds_dir / name).read_bytes()).entries}
    return out


def moved(config, base_url: str):
    return replace(config, web=replace(config.web, base_url=base_url))


def fill(config) -> None:
    store = Store(config.db_path)
    for n in range(3):
        save(store, config, make_article(n), ["carbon-market"])
    store.close()


def test_entry_ids_do_not_change_when_the_feeds_move_to_another_domain(tmp_path):
    config = telegram_config(tmp_path, None)
    config = replace(config, web=WebConfig(base_url="http://127.0.0.1:8080"))
    fill(config)
    with App(config) as app:
        app.rebuild_feeds()
    before = ids(config)
    assert all(len(v) == 3 for v in before.values())
    real = moved(config, "https://feeds.example.org/climate")
    with App(real) as app:
        app.rebuild_feeds()
    assert ids(real) == before
    # The links follow the new address; only the ids stay.
    atom = (real.feeds_dir / "carbon-market.atom").read_text(encoding="utf-8")
    assert "https://feeds.example.org/climate/" in atom


def test_an_install_from_before_keeps_the_ids_its_feeds_already_published(tmp_path):
    config = replace(telegram_config(tmp_path, None), web=WebConfig(base_url="http://localhost:8080"))
    fill(config)
    store = Store(config.db_path)
    feeds.rebuild_all(store, config)  # as the previous release wrote them: no stored authority yet
    store.close()
    before = ids(config)
    assert all(i.startswith("tag:localhost,") for v in before.values() for i in v)
    real = moved(config, "https://news.example.net")
    with App(real) as app:
        app.rebuild_feeds()
        authority = app.store.get_meta("feeds.tag_authority")
    assert ids(real) == before
    assert authority == "localhost"
