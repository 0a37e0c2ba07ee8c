"""The same story once: a reprint on a second source reaches each channel once and shows under the first-seen
article; different articles of the same topic and week stay apart; a grown article is an update."""

from __future__ import annotations

import json
import random
import sqlite3

import feedparser
import pytest

from feedbot import dedupe
from feedbot.model import Entry
from feedbot.pipeline import poll_source
from feedbot.publish import feeds
from feedbot.settings.config import parse_config
from feedbot.sources import make_source
from feedbot.sources.http import Fetcher
from feedbot.sources.normalize import normalize
from feedbot.store import Store
from feedbot.web.article import render_article
from feedbot.web.channel import find_channel, render_channel
from tests.conftest import require_shared
from tests.doubles.pages import PageSite
from tests.doubles.site import SampleSite

REPRINT_HEAD = "来源：人民网－环保频道 编辑：张三 责任编辑：李四 【字号 大 中 小】【打印】"
REPRINT_TAIL = ("（责任编辑：王五）版权声明：凡注明来源的作品均转载自其它媒体，不代表本网观点。"
                "扫码关注公众号，获取更多碳市场资讯。相关阅读：全国碳市场周报 | 返回顶部")


def corpus(*ids: str) -> list[dict]:
    rows = {}
    for name in ("dev.jsonl", "dev2.jsonl"):
        for line in require_shared(f"corpus/{name}").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            rows[row["id"]] = row
    return [rows[i] for i in ids]


def text(row: dict) -> str:
    return normalize(Entry(source_id="x", key=row["id"], url=None, title=row["title"],
                           body_html=row["body_html"])).text


def seed(site: SampleSite):
    return next(p for p in site.posts.values() if p.code == "NW202203280719219380")


def list_page(items: list[tuple[str, str]]) -> str:
    rows = "".join(f'<li><a href="{path}">{title}</a><span class="date">2022-03-29</span></li>'
                   for path, title in items)
    return f'<html><body><div class="nav"><a href="/">首页</a></div><ul class="news">{rows}</ul></body></html>'


def post_page(title: str, paragraphs: list[str], head: str = REPRINT_HEAD, tail: str = REPRINT_TAIL) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<html><head><title>{title}_人民网</title></head><body><div class='top'>{head}</div>"
            f"<div class='article'><h1>{title}</h1><div class='info'>发布时间：2022-03-29 09:00</div>"
            f"<div class='body'>{body}</div></div><div class='foot'>{tail}</div></body></html>")


def delivered(db, article_id: int) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute("SELECT topic, target FROM deliveries WHERE article_id = ?", [article_id]))


def test_constructed_reprint_joins_and_same_week_carbon_articles_do_not():
    first, second = corpus("rch-0001", "rch-0002")  # two carbon-market articles four days apart
    a, b = dedupe.signature(text(first)), dedupe.signature(text(second))
    assert dedupe.similarity(a, b) < dedupe.THRESHOLD
    reprint = dedupe.signature(f"{REPRINT_HEAD}\n另拟标题\n{text(first)}\n{REPRINT_TAIL}")
    assert dedupe.similarity(a, reprint) >= dedupe.THRESHOLD
    assert dedupe.signature("全国碳市场今日收盘价每吨八十元。") is None  # a flash is no evidence either way


def _signature_before_the_early_exit(text: str) -> bytes | None:
    """dedupe.signature as it was before it returned early for short texts (the set built, then counted)."""
    import hashlib

    import numpy as np

    grams = dedupe.shingles(text)
    if len(grams) < dedupe.MIN_SHINGLES:
        return None
    a, b = dedupe._permutations()
    h = np.fromiter((int.from_bytes(hashlib.sha1(g.encode("utf-8")).digest()[:4], "little") for g in grams),
                    dtype=np.uint32, count=len(grams))
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return (h[:, None] * a + b).min(axis=0).astype("<u8").tobytes()


def test_shingles_are_cut_from_the_nfkc_text_without_punctuation_in_lower_case():
    import unicodedata

    rng = random.Random(3)
    alphabet = list("碳市场，。！：；（）ＡＢｃ１２ETS Ü\u3000\u00a0e\u0301\u212b\ufb01\u2460\u3300\U0001d400_-")
    for _ in range(2_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        expected = "".join(c for c in unicodedata.normalize("NFKC", text) if c.isalnum()).lower()
        assert dedupe._flat(text) == expected, ascii(text)
    assert dedupe._flat("全国碳市场，ＣＣＥＲ（自愿减排）") == "全国碳市场ccer自愿减排"


def test_the_signature_is_the_same_with_the_early_exit_for_short_and_long_texts():
    rng = random.Random(5)
    wide = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    narrow = list("碳市场配额")  # few distinct shingles however long the text
    boundary = dedupe.MIN_SHINGLES + dedupe.SHINGLE - 1  # the shortest flat text that can hold enough shingles
    texts = ["", "碳", "全国碳市场今日收盘价每吨八十元。", "，。！　 " * 200]
    for length in (*range(boundary - 3, boundary + 4), 165, 1000):
        texts.append("".join(rng.choice(wide) for _ in range(length)))
        texts.append("".join(rng.choice(narrow) for _ in range(length)))
        # Punctuation and full-width forms vanish or fold: the raw length is no guide, the flat one is.
        texts.append("".join(rng.choice(wide) + rng.choice("，。 ＡＢ") for _ in range(length // 2)))
    # Exactly at the threshold: MIN_SHINGLES distinct shingles, and one fewer (a repeated run).
    distinct = "".join(wide[:boundary])
    texts += [distinct, distinct[:-1], distinct[:-1] + distinct[0]]
    results = [dedupe.signature(t) for t in texts]
    assert results == [_signature_before_the_early_exit(t) for t in texts]
    assert None in results and any(r is not None for r in results)  # both sides of the threshold were seen
    assert dedupe.signature(distinct) is not None and dedupe.signature(distinct[:-1]) is None


def _long_story(source_id: str, key: str, seed: int = 1):
    """A new article long enough for a signature, matched to carbon-market."""
    from feedbot.model import Classification, Evidence, TopicMatch

    rng = random.Random(seed)
    body = "".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(500))
    article = normalize(Entry(source_id=source_id, key=key, url=f"https://{source_id}.test/{key}",
                              title="碳市场长文", body_html=f"<p>{body}</p>"))
    verdict = Classification((TopicMatch("carbon-market", 9.0, True, (Evidence("碳市场", "title", 1, 3.0),), "摘要"),))
    return article, verdict


def test_an_article_and_its_signature_are_stored_together_or_not_at_all(tmp_path):
    from datetime import UTC, datetime

    from feedbot.errors import StateError

    now = datetime(2024, 6, 3, tzinfo=UTC)
    path = tmp_path / "feedbot.db"
    store = Store(path)
    with sqlite3.connect(path) as conn:  # a real failure of the signature's write (as a full disk would give)
        conn.execute("CREATE TRIGGER boom BEFORE INSERT ON signatures BEGIN SELECT RAISE(ABORT, 'no room'); END")
    article, verdict = _long_story("a", "k1")
    with pytest.raises(StateError, match="no room"):
        dedupe.save_once(store, article, verdict, {"carbon-market": ["telegram:@cm"]}, now=now, new=True)
    assert store.article_counts()["all"] == 0 and store.deliveries() == []  # not an article without its signature
    assert store.known_keys("a") == set()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER boom")
    saved = dedupe.save_once(store, article, verdict, {"carbon-market": ["telegram:@cm"]}, now=now, new=True)
    assert saved.status == "new" and saved.deliveries_added == 1
    assert store.db.execute("SELECT COUNT(*) FROM signatures WHERE signature IS NOT NULL").fetchone()[0] == 1
    store.close()


def test_a_stored_reprint_handed_over_as_new_is_still_an_update_without_messages(tmp_path):
    from dataclasses import replace
    from datetime import UTC, datetime

    now = datetime(2024, 6, 3, tzinfo=UTC)
    store = Store(tmp_path / "feedbot.db")
    targets = {"carbon-market": ["telegram:@cm"]}
    original, verdict = _long_story("first", "o1")
    assert dedupe.save_once(store, original, verdict, targets, now=now).deliveries_added == 1
    reprint = replace(original, source_id="second", key="r1", url="https://second.test/r1")
    joined = dedupe.save_once(store, reprint, verdict, targets, now=now, new=True)
    assert joined.status == "new" and joined.deliveries_added == 0 and store.original_of(joined.article_id)
    # A stale cache says "new" again for the grown reprint: the insert meets its key, it is an update of itself.
    grown = replace(reprint, text=reprint.text + "补充内容", content_hash="grown")
    again = dedupe.save_once(store, grown, verdict, targets, now=now, new=True)
    assert (again.status, again.article_id, again.deliveries_added) == ("updated", joined.article_id, 0)
    assert store.article_counts()["all"] == 2 and len(store.deliveries()) == 1
    store.close()


async def test_a_reprint_on_a_second_source_reaches_each_channel_once_with_both_outlets(tmp_path):
    march, other = corpus("rch-0001", "rch-0002")
    async with SampleSite() as site, PageSite() as news:
        original = seed(site)
        site.add_post(march["title"], text(march).split("\n"))  # a carbon-market article on the first source
        # The second source reprints the seed article: another title, its own boilerplate around it;
        # and carries a different carbon-market article of the same week.
        news.put("/n/1.html", post_page("落实1+N政策体系 形成减污降碳激励约束机制（转载）", list(original.paragraphs)))
        news.put("/n/2.html", post_page(other["title"], text(other).split("\n")))
        news.put("/news/", list_page([("/n/1.html", "减污降碳（转载）"), ("/n/2.html", other["title"])]))
        config = parse_config({"sources": [
            {"id": "hjb", "kind": "jekyll", "url": site.category_url, "backfill": "all", "outlet": "中国环境报"},
            {"id": "rmw", "kind": "html", "url": news.url("/news/"), "backfill": "all", "outlet": "人民网",
             "item": "ul.news li", "date": ".date", "body": ".body"},
        ], "fetch": {"delay": "0.01s"}}, None, {})
        targets = {topic: [f"telegram:@{topic.replace('-', '_')}_chan"] for topic in config.topics}
        store = Store(tmp_path / "feedbot.db")
        async with Fetcher(config.fetch) as fetcher:
            for source in config.sources:
                report = await poll_source(make_source(source, fetcher), source, store, config.topics, targets,
                                           rng=random.Random(1))
                assert report.result == "ok", report.error
        stored = {a.title: a for a in store.articles(None, limit=500)}
        seed_article = next(a for t, a in stored.items() if t.startswith("落实“1+N”"))
        reprint = stored["落实1+N政策体系 形成减污降碳激励约束机制（转载）"]
        db = tmp_path / "feedbot.db"
        # the seed article went to its four channels once; the reprint to none
        assert {topic for topic, _ in delivered(db, seed_article.id)} == {
            "carbon-market", "adaptation-2035", "climate-finance", "carbon-manager"}
        assert delivered(db, reprint.id) == []
        # the two different carbon-market articles of the same week are each a story of their own
        assert [t for t, _ in delivered(db, stored[march["title"]].id)] == ["carbon-market"]
        assert "carbon-market" in {t for t, _ in delivered(db, stored[other["title"]].id)}
        assert store.original_of(stored[other["title"]].id) is None

        # feeds: one entry for the story, showing both outlets
        articles, also = feeds._stories(store, "carbon-market", 50)
        built = feeds.build_feeds("carbon-market", config.topics, articles, "https://feeds.example.org",
                                  reprints=also)
        parsed = feedparser.parse(built["atom"])
        titles = [e.title for e in parsed.entries]
        assert reprint.title not in titles and seed_article.title in titles
        entry = parsed.entries[titles.index(seed_article.title)]
        assert entry.author == "中国环境报"
        assert "另见报道" in entry.content[0].value and "人民网" in entry.content[0].value
        assert news.url("/n/1.html") in entry.content[0].value
        # pages: the original lists the reprint, the reprint names the original
        page = render_article(config, store, seed_article.id, "../")
        assert "另见报道" in page and f'href="../a/{reprint.id}"' in page
        assert f'href="../a/{seed_article.id}"' in render_article(config, store, reprint.id, "../")
        listing = render_channel(config, store, find_channel(config, "carbon-market"), 1, "../../")
        assert f'另见报道：<a href="../../a/{reprint.id}">人民网</a>' in listing
        assert f'转载，首发见 <a href="../../a/{seed_article.id}">' in listing

        # the reprint grows later: an update of the reprint, still no message; the original grows: an update
        news.put("/n/1.html", post_page("落实1+N政策体系 形成减污降碳激励约束机制（转载）",
                                        [*original.paragraphs, "编者按：本文有删节，详见原文。"]))
        site.edit_post(original, paragraphs=[*original.paragraphs, "（本报记者补充报道）各地正加快落实相关部署。"])
        async with Fetcher(config.fetch) as fetcher:
            for source in config.sources:
                report = await poll_source(make_source(source, fetcher), source, store, config.topics, targets,
                                           rng=random.Random(1))
                assert report.new == 0 and report.deliveries == 0
        assert delivered(db, reprint.id) == [] and store.original_of(reprint.id) == seed_article.id
        store.close()
