"""One bad item must never stop a channel: issue 12, cases 1–5, through real sources, store, feeds and pages."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import feedparser
from click.testing import CliRunner
from lxml import etree
from lxml import html as lxml_html

from feedbot.cli import cli
from feedbot.clock import SHANGHAI, utcnow
from feedbot.model import Entry
from feedbot.ops.status import collect_status, render_status
from feedbot.pipeline import poll_source
from feedbot.publish import feeds
from feedbot.publish.format import format_article
from feedbot.settings.config import parse_config
from feedbot.sources import make_source
from feedbot.sources.base import PollResult
from feedbot.sources.http import Fetcher
from feedbot.sources.normalize import MAX_BODY_CHARS, MAX_DEPTH, MAX_PARAGRAPHS, MAX_SECTIONS, normalize
from feedbot.store import Store
from feedbot.store.db import MIGRATIONS
from feedbot.web.pages import render_index
from tests.doubles.site import SampleSite
from tests.feeds_helpers import live_markup

MARKET = ("全国碳市场第二个履约周期配额分配方案印发，重点排放单位须按时完成配额清缴。"
          "生态环境部表示，将加强碳排放数据质量监管，严厉打击数据造假，保障碳市场平稳运行。")
RSS_PATH = "/poison.xml"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"


def rss_item(guid: str, title: str, *, link: str | None = None, date: str | None = None, body: str = MARKET) -> str:
    link = link if link is not None else f"http://news.test/{guid}.html"
    when = date or format_datetime(datetime(2024, 6, 1, 8, tzinfo=UTC))
    return (f"<item><title>{title}</title><link>{link}</link><guid>{guid}</guid><pubDate>{when}</pubDate>"
            f"<description>&lt;p&gt;{body}&lt;/p&gt;</description></item>")


def rss(*items: str) -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>毒源</title>'
            "<link>http://news.test/</link><description>d</description>" + "".join(items) + "</channel></rss>\n")


def setup(tmp_path, url: str, kind: str = "feed"):
    config = parse_config({"state_dir": str(tmp_path / "state"), "web": {"base_url": "https://feeds.test"},
                           "fetch": {"delay": "0.01s"},
                           "sources": [{"id": "src", "kind": kind, "url": url, "interval": "10m", "backfill": "all"}]},
                          None, {})
    store = Store(config.db_path)
    store.sync_sources([("src", kind, url)])
    return config, store


async def poll(config, store, source=None, now=None):
    targets = {topic: [f"console:{topic}"] for topic in config.topics}
    async with Fetcher(config.fetch) as fetcher:
        return await poll_source(source or make_source(config.sources[0], fetcher), config.sources[0], store,
                                 config.topics, targets, now=now, rng=random.Random(1))


def parsed_feeds(config, channel="all"):
    out = {}
    for ext in ("xml", "atom"):
        out[ext] = feedparser.parse((config.feeds_dir / f"{channel}.{ext}").read_bytes())
        assert out[ext].bozo == 0, (ext, out[ext].get("bozo_exception"))
    out["json"] = json.loads((config.feeds_dir / f"{channel}.json").read_bytes())
    return out


# ---- case 1: a control character in <link> --------------------------------------------------------


async def test_1_control_character_in_a_link_is_stored_url_safe_and_every_feed_builds(site: SampleSite, tmp_path):
    site.put(RSS_PATH, rss(rss_item("bad1", "碳市场控制字符一", link="http://host/a\x01b"),
                           rss_item("bad2", "碳市场控制字符二", link="http://host/c&#x1;d"),
                           rss_item("good", "碳市场正常条目")))
    config, store = setup(tmp_path, site.url(RSS_PATH))
    report = await poll(config, store)
    assert report.result == "ok" and report.new == 3 and report.quarantined == 0
    urls = {a.title: a.url for a in store.articles(None, 10)}
    assert urls == {"碳市场控制字符一": "http://host/a%01b", "碳市场控制字符二": "http://host/c%01d",
                    "碳市场正常条目": "http://news.test/good.html"}
    feeds.rebuild_all(store, config)
    got = parsed_feeds(config)
    assert sorted(e.link for e in got["atom"].entries) == sorted(urls.values())
    store.close()


async def test_1_rows_stored_before_the_fix_cannot_stop_a_channel_or_crash_reclassify(tmp_path, write_config):
    path = write_config(f'state_dir = "{tmp_path / "state"}"\n')
    config = parse_config({"state_dir": str(tmp_path / "state")}, None, {})
    store = Store(config.db_path)
    from tests.feeds_helpers import article

    for n in range(3):
        art, cls = article(n, f"碳市场旧条目{n}", ("carbon-market",), datetime(2024, 6, 1, n, tzinfo=UTC))
        store.save_article(art, cls, {})
    # What an old feedbot stored (a raw control in the URL) and what a foreign tool may write (bytes as a title).
    store.db.execute("UPDATE articles SET url = 'http://host/a' || char(1) || 'b' WHERE title = '碳市场旧条目0'")
    store.db.execute("UPDATE articles SET title = CAST(title AS BLOB) WHERE title = '碳市场旧条目1'")
    store.close()
    result = CliRunner().invoke(cli, ["--config", str(path), "reclassify"], env={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    got = parsed_feeds(config, "carbon-market")
    # The raw control is percent-encoded at output; the unreadable row is left out, its neighbours stay.
    assert sorted(e.title for e in got["atom"].entries) == ["碳市场旧条目0", "碳市场旧条目2"]
    assert "http://host/a%01b" in {e.link for e in got["atom"].entries}
    status = CliRunner().invoke(cli, ["--config", str(path), "status", "--json"], env={}, catch_exceptions=False)
    quarantine = json.loads(status.output)["quarantine"]
    assert quarantine["total"] == 1 and quarantine["items"][0]["stage"] == "feeds"
    assert "TypeError" in quarantine["items"][0]["reason"]


# ---- case 2: a date in year 9999 -----------------------------------------------------------------


async def test_2_a_far_future_date_is_treated_as_unknown_and_every_output_works(site: SampleSite, tmp_path):
    site.put(RSS_PATH, rss(rss_item("future", "碳市场来自未来", date="Fri, 31 Dec 9999 23:00:00 GMT"),
                           rss_item("ancient", "碳市场来自1970", date="Thu, 01 Jan 1970 00:00:00 GMT"),
                           rss_item("good", "碳市场正常日期")))
    config, store = setup(tmp_path, site.url(RSS_PATH))
    now = datetime(2024, 6, 3, 4, tzinfo=UTC)
    assert (await poll(config, store, now=now)).new == 3
    stored = {a.title: a for a in store.articles(None, 10)}
    assert stored["碳市场来自未来"].published_at is None and stored["碳市场来自1970"].published_at is None
    assert stored["碳市场正常日期"].published_at == datetime(2024, 6, 1, 8, tzinfo=UTC)
    feeds.rebuild_all(store, config)
    atom = parsed_feeds(config)["atom"]
    # Unknown: the article counts as published when feedbot first saw it (the poll).
    assert {e.title: e.published for e in atom.entries}["碳市场来自未来"] == now.astimezone(SHANGHAI).isoformat()
    store.close()


def test_2_a_year_9999_row_stored_before_the_fix_breaks_no_output_and_the_migration_clears_it(tmp_path):
    config = parse_config({"state_dir": str(tmp_path / "state")}, None, {})
    store = Store(config.db_path)
    from tests.feeds_helpers import article

    art, cls = article(1, "碳市场九九九九年", ("carbon-market",), datetime(2024, 6, 1, tzinfo=UTC))
    store.save_article(art, cls, {"carbon-market": ["console:carbon-market"]},
                       now=datetime(2024, 6, 2, tzinfo=UTC))
    store.db.execute("UPDATE articles SET published_at = '9999-12-31T23:00:00+00:00'")
    row = store.articles(None, 1)[0]
    # Every output side: feeds, the index page, a chat message, status.
    feeds.rebuild_all(store, config)
    assert parsed_feeds(config)["atom"].entries[0].published == "2024-06-02T08:00:00+08:00"
    assert "碳市场九九九九年" in render_index(config, store)
    assert "2024-06-02 08:00" in format_article(row, "carbon-market").plain
    render_status(collect_status(store, config))
    # A file written before the quarantine migration: opening it clears the impossible date.
    store.db.execute("DROP TABLE quarantine")
    before = [step.__name__ for step in MIGRATIONS].index("_quarantine")
    store.db.execute(f"PRAGMA user_version = {before}")
    store.close()
    store = Store(config.db_path)
    assert store.articles(None, 1)[0].published_at is None and store.quarantine_count() == 0
    store.close()


# ---- case 3: a lone surrogate; one item that cannot be processed -----------------------------------


async def test_3_a_lone_surrogate_in_one_item_no_longer_fails_the_source(site: SampleSite, tmp_path):
    site.put(RSS_PATH, rss(rss_item("bad", "碳市场 &#xD800; 坏字符", body="配额&amp;#xD800;清缴 &#55296;"),
                           rss_item("good", "碳市场好条目")))
    config, store = setup(tmp_path, site.url(RSS_PATH))
    report = await poll(config, store)
    assert report.result == "ok" and report.new == 2, report
    assert {a.title for a in store.articles(None, 10)} == {"碳市场 \ufffd 坏字符", "碳市场好条目"}
    store.close()


@dataclass
class ListSource:
    """A source adapter double: returns the entries it is given (one of them broken like a buggy adapter's)."""

    entries: tuple[Entry, ...]

    async def poll(self, state, known, *, page_validators=None) -> PollResult:
        return PollResult(entries=self.entries, listed=len(self.entries))


def entry(key: str, title: str, published=None) -> Entry:
    return Entry(source_id="src", key=key, url=f"http://news.test/{key}", title=title,
                 body_html=f"<p>{MARKET}</p>", published_at=published)


async def test_3_an_item_that_fails_is_quarantined_listed_retried_sparingly_and_released(tmp_path, capsys):
    config, store = setup(tmp_path, "http://news.test/feed.xml")
    broken = entry("broken", "碳市场坏条目", published="2024-06-01")  # a string where a datetime belongs
    good = [entry(f"ok{n}", f"碳市场好条目{n}") for n in range(3)]
    now = datetime(2024, 6, 3, 4, tzinfo=UTC)
    report = await poll(config, store, ListSource((good[0], broken, *good[1:])), now=now)
    assert report.result == "ok" and report.new == 3 and report.quarantined == 1
    [item] = store.quarantined()
    assert (item.source_id, item.key, item.count, item.stage) == ("src", "broken", 1, "poll")
    assert "AttributeError" in item.reason
    # The next poll does not pay for it again until its retry is due (10 minutes, then doubling).
    again = await poll(config, store, ListSource((broken,)), now=now + timedelta(minutes=5))
    assert again.held_back == 1 and store.quarantined()[0].count == 1
    later = await poll(config, store, ListSource((broken,)), now=now + timedelta(minutes=11))
    assert later.quarantined == 1 and store.quarantined()[0].count == 2
    table = render_status(collect_status(store, config))
    assert "QUARANTINE  1 item(s)" in table and "broken" in table and "AttributeError" in table
    fixed = entry("broken", "碳市场坏条目已修好", published=now)
    healed = await poll(config, store, ListSource((fixed,)), now=now + timedelta(days=2))
    assert healed.new == 1 and store.quarantine_count() == 0
    store.close()


# ---- case 4: text decoded twice ----------------------------------------------------------------------


async def test_4_plain_text_that_reads_like_markup_is_escaped_exactly_once_everywhere(tmp_path):
    title = "碳市场 <script>alert(1)</script> a<b &amp; 配额"
    lead = "全国碳市场配额 <script>alert(1)</script> 清缴 a<b 与 &lt;i&gt; 字样。"
    async with SampleSite(posts=[]) as site:
        site.add_post(title, [lead, MARKET])  # the site escapes it: the page's visible text reads like markup
        config, store = setup(tmp_path, site.category_url, kind="jekyll")
        assert (await poll(config, store)).new == 1
    [stored] = store.articles(None, 1)
    assert stored.title == title and stored.text.startswith(lead)
    feeds.rebuild_all(store, config)
    got = parsed_feeds(config)
    rss_doc = etree.fromstring((config.feeds_dir / "all.xml").read_bytes())
    [description] = [el.text for el in rss_doc.iter("description") if el.getparent().tag == "item"]
    # RSS <description> is HTML: after the XML decode it reads, as HTML, exactly the visible text.
    assert live_markup(description) == []
    assert lead in lxml_html.fromstring(f"<div>{description}</div>").text_content()
    [content] = [el.text for el in rss_doc.iter(CONTENT)]
    assert live_markup(content) == [] and lead in lxml_html.fromstring(content).text_content()
    assert got["atom"].entries[0].title == title and got["xml"].entries[0].title == title
    assert got["atom"].entries[0].summary.startswith(lead)
    [item] = got["json"]["items"]
    assert item["title"] == title and item["summary"].startswith(lead)  # JSON Feed: plain text fields
    raw_json = (config.feeds_dir / "all.json").read_bytes()
    assert b"<script" not in raw_json and b"a<b" not in raw_json  # written \u003c: the same text, inert
    page = render_index(config, store)
    assert live_markup(page) == [] and title in lxml_html.fromstring(page).text_content()
    message = format_article(stored, next(iter(stored.excerpts)))
    assert title in message.plain and "&lt;script&gt;" in message.html and "<script" not in message.html
    store.close()


async def test_4_a_feed_title_marked_html_is_decoded_once(site: SampleSite, tmp_path):
    atom = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
            '<updated>2024-06-01T00:00:00Z</updated><entry><id>urn:x:1</id><updated>2024-06-01T00:00:00Z</updated>'
            '<title type="html">碳市场 A &amp;amp; B &lt;b&gt;粗&lt;/b&gt;</title><link href="http://news.test/1"/>'
            f'<content type="html">&lt;p&gt;{MARKET}&lt;/p&gt;</content></entry></feed>')
    site.put("/atom.xml", atom)
    config, store = setup(tmp_path, site.url("/atom.xml"))
    assert (await poll(config, store)).new == 1
    assert store.articles(None, 1)[0].title == "碳市场 A & B 粗"
    store.close()


# ---- case 5: unbounded work per article ---------------------------------------------------------------


async def test_5_a_130k_line_post_is_processed_within_the_caps(tmp_path):
    lines = [f"第{n}行" if n % 3 else f"碳市场小标题{n}" for n in range(130_000)]
    async with SampleSite(posts=[]) as site:
        site.add_post("碳市场超长文章", lines)
        config, store = setup(tmp_path, site.category_url, kind="jekyll")
        report = await poll(config, store)
    assert report.new == 1 and report.quarantined == 0
    [stored] = store.articles(None, 1)
    paragraphs = stored.text.split("\n")
    assert paragraphs[:3] == lines[:3]  # the first N are kept, in order
    assert len(paragraphs) <= MAX_PARAGRAPHS and len(stored.body_html) <= MAX_BODY_CHARS
    store.close()


def test_5_deep_nesting_and_many_sections_are_capped_linearly():
    # 50k levels fit the size cap: the text survives, only the tags deeper than MAX_DEPTH are dropped.
    nested = Entry("s", "k", None, "碳市场深层嵌套", "<div>" * 50_000 + "碳市场配额清缴" + "</div>" * 50_000)
    article = normalize(nested)
    assert article.text == "碳市场配额清缴"
    assert max_depth(article.body_html) <= MAX_DEPTH + 1
    # 100k levels (500 kB of tags before any text): the first MAX_BODY_CHARS are read, nothing deeper.
    deeper = normalize(Entry("s", "k", None, "t", "<div>" * 100_000 + "正文" + "</div>" * 100_000))
    assert len(deeper.body_html) <= MAX_BODY_CHARS and max_depth(deeper.body_html) <= MAX_DEPTH + 1
    many = Entry("s", "k", None, "碳市场", "".join(f"<p>小标题{n}</p><p>第{n}段正文。</p>" for n in range(5000)))
    article = normalize(many)
    assert len(article.sections) == MAX_SECTIONS and len(article.paragraphs) == MAX_PARAGRAPHS


def max_depth(fragment: str) -> int:
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    best = 0
    stack = [(root, 0)]
    while stack:
        el, depth = stack.pop()
        best = max(best, depth)
        stack.extend((child, depth + 1) for child in el)
    return best


def test_quarantine_table_survives_a_read_only_status_on_an_old_file(tmp_path):
    db = tmp_path / "old.db"
    store = Store(db)
    store.db.execute("DROP TABLE quarantine")
    before = [step.__name__ for step in MIGRATIONS].index("_quarantine")
    store.db.execute(f"PRAGMA user_version = {before}")
    store.close()
    old = Store(db, migrate=False)
    assert old.quarantined() == [] and old.quarantine_count() == 0 and old.quarantined_keys("x") == {}
    old.close()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == before


def test_now_is_aware():  # the edge compares with utcnow(); a naive clock would raise on every entry
    assert utcnow().tzinfo is not None
