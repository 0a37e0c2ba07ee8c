"""Feeds from a real Store: valid RSS/Atom/JSON Feed, stable ids, +08:00 times, no-op unchanged rebuilds."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html

from feedbot.errors import ConfigError, PublishError
from feedbot.publish import feeds
from feedbot.store import Store
from tests.feeds_helpers import (
    BAD_MARKERS,
    HOSTILE_EXCERPT,
    HOSTILE_TITLE,
    TOPICS,
    article,
    edited,
    expected,
    feeds_config,
    fill_store,
    fixed_now,
    live_markup,
)

CHANNELS = (*TOPICS, "all")
NAMES = {
    "carbon-market": "碳市场",
    "adaptation-2035": "适应气候变化战略2035",
    "climate-finance": "气候投融资试点",
    "carbon-manager": "碳排放管理员",
    "all": "全部频道",
}


@pytest.fixture
def world(tmp_path: Path):
    config = feeds_config(tmp_path / "state")
    store = Store(config.db_path)
    items = fill_store(store, fixed_now())
    yield config, store, items
    store.close()


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def test_every_channel_feed_is_valid_and_complete(world):
    config, store, items = world
    changed = feeds.rebuild_all(store, config)
    assert sorted(p.name for p in changed) == sorted(
        [f"{c}.{ext}" for c in CHANNELS for ext in ("xml", "atom", "json")] + ["feed.xsl"]
    )
    for cid in CHANNELS:
        want = expected(items, cid)
        assert want, cid
        titles = [i.title for i in want]
        for ext in ("xml", "atom"):
            raw = (config.feeds_dir / f"{cid}.{ext}").read_bytes()
            parsed = feedparser.parse(raw)
            assert parsed.bozo == 0, (cid, ext, parsed.get("bozo_exception"))
            assert parsed.feed.title == f"{NAMES[cid]} · feedbot"
            assert parsed.feed.language == "zh-CN"
            assert parsed.feed.generator == "feedbot"
            self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
            assert self_links == [f"https://feeds.example.org/feeds/{cid}.{ext}"]
            assert [e.title for e in parsed.entries] == titles
            assert [e.link for e in parsed.entries] == [i.key for i in want]
            ids = [e.id for e in parsed.entries]
            assert len(set(ids)) == len(ids)
            assert ids == [
                f"tag:feeds.example.org,2024:{cid}/article/zhongguohuanjingbao/{i.key}" for i in want
            ]
            assert all(e.author == "中国环境报" for e in parsed.entries)
            for entry, item in zip(parsed.entries, want, strict=True):
                labels = {t.label or t.term for t in entry.tags}
                if cid == "all":
                    assert labels == {NAMES[t] for t in item.topics}
                else:
                    assert labels == {NAMES[cid]}
                assert entry.summary  # the topic's excerpt
                assert entry.content[0].value.startswith("<p>")
            if ext == "xml":
                dates = re.findall(rb"<pubDate>([^<]+)</pubDate>", raw)
                assert len(dates) == len(want) and all(d.endswith(b" +0800") for d in dates)
                newest = max(i.published_at for i in want).astimezone(feeds.SHANGHAI)
                assert parsed.feed.updated == newest.strftime("%a, %d %b %Y %H:%M:%S +0800")
            else:
                assert all(
                    e.published.endswith("+08:00") and e.updated.endswith("+08:00") for e in parsed.entries
                )
                assert [e.published for e in parsed.entries] == [
                    i.published_at.astimezone(feeds.SHANGHAI).isoformat() for i in want
                ]
                assert (
                    parsed.feed.updated
                    == max(i.published_at for i in want).astimezone(feeds.SHANGHAI).isoformat()
                )
        doc = json.loads((config.feeds_dir / f"{cid}.json").read_bytes())
        assert doc["version"] == "https://jsonfeed.org/version/1.1"
        assert doc["title"] == f"{NAMES[cid]} · feedbot"
        assert doc["feed_url"] == f"https://feeds.example.org/feeds/{cid}.json"
        assert doc["language"] == "zh-CN"
        assert [it["title"] for it in doc["items"]] == titles
        assert len({it["id"] for it in doc["items"]}) == len(titles)
        assert all(
            it["date_published"].endswith("+08:00") and it["date_modified"].endswith("+08:00")
            for it in doc["items"]
        )
        assert all(it["authors"] == [{"name": "中国环境报"}] for it in doc["items"])
        if cid != "all":
            assert all(it["tags"] == [NAMES[cid]] for it in doc["items"])
        # The same article has the same id in every format and in every channel.
        atom_ids = [e.id for e in feedparser.parse((config.feeds_dir / f"{cid}.atom").read_bytes()).entries]
        assert [it["id"] for it in doc["items"]] == atom_ids


def test_topic_excerpt_is_the_summary_and_all_uses_the_best(world):
    config, store, _ = world
    stored = next(a for a in store.articles(None, 50) if a.title == "四个频道都相关的综合报道")
    topic_feed = feeds.build_feeds("climate-finance", config.topics, [stored], config.web.base_url)
    entry = feedparser.parse(topic_feed["atom"]).entries[0]
    assert entry.summary == "四个频道都相关的综合报道：climate-finance 摘要"
    all_feed = feeds.build_feeds("all", config.topics, [stored], config.web.base_url)
    # fill_store scores later topics higher: the best excerpt is the carbon-manager one.
    assert (
        feedparser.parse(all_feed["atom"]).entries[0].summary
        == "四个频道都相关的综合报道：carbon-manager 摘要"
    )
    assert json.loads(all_feed["json"])["items"][0]["summary"].endswith("carbon-manager 摘要")


def test_entry_limit_caps_every_feed(tmp_path: Path):
    config = feeds_config(tmp_path / "state", entry_limit=3)
    store = Store(config.db_path)
    items = fill_store(store, fixed_now())
    feeds.rebuild_all(store, config)
    for cid in CHANNELS:
        parsed = feedparser.parse((config.feeds_dir / f"{cid}.atom").read_bytes())
        want = expected(items, cid)[:3]
        assert [e.title for e in parsed.entries] == [i.title for i in want]
        assert len(json.loads((config.feeds_dir / f"{cid}.json").read_bytes())["items"]) == len(want)
    store.close()


def test_unchanged_rebuild_writes_no_file(world):
    config, store, _ = world
    assert feeds.rebuild_all(store, config)
    files = sorted(config.feeds_dir.iterdir())
    before = {p.name: (_stat(p), p.read_bytes()) for p in files}
    assert feeds.rebuild_all(store, config) == []
    after = {p.name: (_stat(p), p.read_bytes()) for p in sorted(config.feeds_dir.iterdir())}
    assert after == before  # same inode, same mtime, same bytes, no stray temp files


def test_edit_keeps_ids_and_moves_updated(world):
    config, store, items = world
    feeds.rebuild_all(store, config)
    first = {c: feedparser.parse((config.feeds_dir / f"{c}.atom").read_bytes()) for c in CHANNELS}
    untouched = {c: _stat(config.feeds_dir / f"{c}.atom") for c in CHANNELS}

    target = next(i for i in items if i.topics == ("climate-finance",))
    original, classification = article(target.serial, target.title, target.topics, target.published_at)
    edit_time = fixed_now() + timedelta(hours=5)
    result = store.save_article(
        edited(original, "气候投融资 更正后的标题"), classification, {}, now=edit_time
    )
    assert result.status == "updated"

    changed = {p.name for p in feeds.rebuild_all(store, config)}
    assert changed == {f"{c}.{ext}" for c in ("climate-finance", "all") for ext in ("xml", "atom", "json")}
    for cid in ("carbon-market", "adaptation-2035", "carbon-manager"):
        assert _stat(config.feeds_dir / f"{cid}.atom") == untouched[cid]
    for cid in ("climate-finance", "all"):
        now_parsed = feedparser.parse((config.feeds_dir / f"{cid}.atom").read_bytes())
        assert [e.id for e in now_parsed.entries] == [e.id for e in first[cid].entries]
        old = {e.id: e for e in first[cid].entries}
        edited_entries = [e for e in now_parsed.entries if e.title == "气候投融资 更正后的标题"]
        assert len(edited_entries) == 1
        entry = edited_entries[0]
        assert entry.updated == edit_time.astimezone(feeds.SHANGHAI).isoformat()
        assert entry.updated != old[entry.id].updated
        assert entry.published == old[entry.id].published
        # The feed's own `updated` is the newest entry's, which is now the edit.
        assert now_parsed.feed.updated == edit_time.astimezone(feeds.SHANGHAI).isoformat()
        rss = feedparser.parse((config.feeds_dir / f"{cid}.xml").read_bytes())
        assert [e.id for e in rss.entries] == [e.id for e in first[cid].entries]


def test_hostile_content_never_reaches_a_feed(world):
    config, store, _ = world
    hostile = next(a for a in store.articles("carbon-market", 50) if "<script" in a.title)
    assert "onerror" in hostile.body_html  # stored raw on purpose: the publisher must still clean it
    feeds.rebuild_all(store, config)
    for cid in ("carbon-market", "all"):
        for ext in ("xml", "atom", "json"):
            raw = (config.feeds_dir / f"{cid}.{ext}").read_bytes().decode("utf-8").lower()
            for marker in BAD_MARKERS:  # a raw "<script" in XML or JSON would be an element, not text
                assert marker not in raw, (cid, ext, marker)
        parsed = feedparser.parse((config.feeds_dir / f"{cid}.atom").read_bytes())
        entry = next(e for e in parsed.entries if e.title == HOSTILE_TITLE)
        # The harmless parts survive: text, the image and the ordinary link.
        assert "全国碳市场扩容。" in entry.content[0].value
        assert 'href="https://ex.org/ok"' in entry.content[0].value
        assert "https://img.example.org/a.png" in entry.content[0].value
        # Title and excerpt are plain text: what they say, literally, never markup.
        assert entry.summary == HOSTILE_EXCERPT
        # Every field a reader treats as HTML holds no live markup after one decode.
        rss = etree.fromstring((config.feeds_dir / f"{cid}.xml").read_bytes())
        atom = etree.fromstring((config.feeds_dir / f"{cid}.atom").read_bytes())
        document = json.loads((config.feeds_dir / f"{cid}.json").read_bytes())
        fields = [el.text or "" for el in rss.iter("description", "{http://purl.org/rss/1.0/modules/content/}encoded")]
        fields += [el.text or "" for el in atom.iter("{http://www.w3.org/2005/Atom}content")]
        fields += [item["content_html"] for item in document["items"]]
        for fragment in fields:
            assert live_markup(fragment) == [], fragment[:200]


def test_control_characters_and_empty_channels_still_make_valid_feeds(tmp_path: Path):
    config = feeds_config(tmp_path / "state")
    store = Store(config.db_path)
    art, cls = article(
        7,
        "标题\x00带\x1b控制字符",
        ("carbon-market",),
        fixed_now(),
        body_html="<p>正文\x08里也有\x0b</p>",
        raw=True,
    )
    store.save_article(art, cls, {})
    feeds.rebuild_all(store, config)
    parsed = feedparser.parse((config.feeds_dir / "carbon-market.xml").read_bytes())
    assert parsed.bozo == 0 and [e.title for e in parsed.entries] == ["标题带控制字符"]
    for ext in ("xml", "atom"):
        empty = feedparser.parse((config.feeds_dir / f"carbon-manager.{ext}").read_bytes())
        assert empty.bozo == 0 and empty.entries == [] and empty.feed.title == "碳排放管理员 · feedbot"
    assert json.loads((config.feeds_dir / "carbon-manager.json").read_bytes())["items"] == []
    store.close()


def test_write_feeds_is_atomic_and_readable_by_others(tmp_path: Path):
    feeds_dir = tmp_path / "feeds"
    assert feeds.write_feeds(feeds_dir, "all", {"xml": b"<rss/>", "atom": b"<feed/>", "json": b"{}"}) == [
        feeds_dir / "all.xml",
        feeds_dir / "all.atom",
        feeds_dir / "all.json",
    ]
    assert feeds.write_feeds(feeds_dir, "all", {"xml": b"<rss/>", "atom": b"<feed/>", "json": b"{}"}) == []
    assert feeds.write_feeds(feeds_dir, "all", {"xml": b"<rss version='2.0'/>"}) == [feeds_dir / "all.xml"]
    assert (feeds_dir / "all.xml").read_bytes() == b"<rss version='2.0'/>"
    assert sorted(p.name for p in feeds_dir.iterdir()) == ["all.atom", "all.json", "all.xml"]
    assert all(os.stat(p).st_mode & 0o777 == 0o644 for p in feeds_dir.iterdir())
    with pytest.raises(ValueError):
        feeds.write_feeds(feeds_dir, "all", {"html": b"x"})


def test_stylesheet_turns_both_feed_kinds_into_a_page(world):
    config, store, items = world
    feeds.rebuild_all(store, config)
    transform = etree.XSLT(etree.fromstring((config.feeds_dir / "feed.xsl").read_bytes()))
    for ext in ("xml", "atom"):
        raw = (config.feeds_dir / f"carbon-market.{ext}").read_bytes()
        assert b'<?xml-stylesheet type="text/xsl" href="feed.xsl"?>' in raw
        page = str(transform(etree.fromstring(raw)))
        assert "碳市场 · feedbot" in page
        shown = lxml_html.fromstring(page).text_content()
        for item in expected(items, "carbon-market"):
            assert item.title in shown  # as text: the hostile title reads literally
        assert live_markup(page) == []


def test_unwritable_feeds_dir_is_a_publish_error(tmp_path: Path):
    blocker = tmp_path / "feeds"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(PublishError, match=r"feeds/all.xml: cannot (read|write) the feed file"):
        feeds.write_feeds(blocker, "all", {"xml": b"<rss/>"})


def test_a_topic_called_all_is_refused(world):
    config, _, _ = world
    topics = {**config.topics, "all": config.topics["carbon-market"]}
    with pytest.raises(ConfigError, match='"all" is the name of the channel of every article'):
        feeds.channels(topics)
