"""The Jekyll source against the loopback sample site: category page, post pages, edits, faults, backfill."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import feedparser
import pytest

from feedbot.clock import utcnow
from feedbot.errors import FetchError, ParseError
from feedbot.model import Classification, SourceState
from feedbot.settings.config import FetchConfig, SourceConfig
from feedbot.sources.http import Fetcher
from feedbot.sources.jekyll import JekyllSource, parse_category, parse_post, post_day, post_key
from feedbot.sources.normalize import normalize
from feedbot.store import Store
from tests.conftest import require_shared
from tests.doubles.site import SampleSite, fixture_posts

CST = timezone(timedelta(hours=8))
SEED_HEADINGS = [
    "完善碳市场制度体系，推动交易管理条例出台",
    "增强气候韧性，实施适应气候变化战略",
    "深化南南合作，为全球气候治理贡献力量",
    "稳步推进气候投融资试点，引导资金流向低碳领域",
    "加强人才队伍建设，推进碳排放管理员职业发展",
]


@pytest.fixture
async def fetcher():
    async with Fetcher(FetchConfig(timeout=1, deadline=3, delay=0)) as client:
        yield client


def source_for(site: SampleSite, fetcher: Fetcher, backfill=None, **kwargs) -> JekyllSource:
    config = SourceConfig(id="zhongguohuanjingbao", kind="jekyll", url=site.category_url, backfill=backfill)
    return JekyllSource(config, fetcher, **kwargs)


def after(result, state: SourceState | None = None) -> SourceState:
    """The source row a pipeline would store after a good poll."""
    base = state or SourceState(id="zhongguohuanjingbao", kind="jekyll", url="")
    return replace(base, etag=result.etag, last_modified=result.last_modified, last_ok_at=utcnow())


def seed_post(site: SampleSite):
    return next(p for p in site.posts.values() if p.time == datetime(2022, 3, 28, 7, 19, 21, tzinfo=CST))


# ---- parsing ---------------------------------------------------------------------------------


def test_category_page_lists_posts_newest_first_with_absolute_urls(site):
    links = parse_category(site.render_category(), "http://127.0.0.1:9/category/zhongguohuanjingbao.html")
    expected = site.category_posts()
    assert [link.url for link in links] == ["http://127.0.0.1:9" + p.path for p in expected]
    assert [link.title for link in links] == [p.title for p in expected]
    assert links[0].day == date(2022, 4, 4) and links[-1].day == date(2022, 3, 28)
    assert all(link.key.startswith("/zhongguohuanjingbao/2022/") for link in links)


def test_category_page_of_5000_posts_parses_completely(site):
    for n in range(5000):
        site.add_post(f"第{n}篇 &“引号” <b>x</b>", ["正文。"])
    links = parse_category(site.render_category(), site.category_url)
    assert len(links) == 5008
    assert links[0].title == "第4999篇 &“引号” <b>x</b>"  # the page escapes it; entities are decoded back
    assert len({link.key for link in links}) == len(links)


def test_seed_style_post_extraction(site):
    post = seed_post(site)
    entry = parse_post(site.render_post(post), site.url(post.path), "zhongguohuanjingbao")
    assert entry.title == "落实“1+N”政策体系，健全减污降碳激励约束机制"
    assert entry.published_at == datetime(2022, 3, 28, 7, 19, 21, tzinfo=CST)
    assert entry.published_at.utcoffset() == timedelta(hours=8)
    assert entry.key == post.path and entry.url == site.url(post.path)
    assert entry.origin_url == site.origin_url(post)
    assert entry.outlet == "中国环境报"
    article = normalize(entry)
    assert list(article.paragraphs) == list(post.paragraphs)
    for chrome in ("返回", "tags:", "文章来源", "金融消息", "infoCode", "(GMT+8"):
        assert chrome not in article.text
    assert [s.heading for s in article.sections] == [None, *SEED_HEADINGS]
    assert article.sections[0].paragraphs == (post.paragraphs[0],)
    assert article.sections[1].paragraphs == post.paragraphs[2:5]
    assert sum(len(s.paragraphs) for s in article.sections) + 5 == len(post.paragraphs)


def test_configured_outlet_wins_over_the_page_note(site):
    post = site.category_posts()[0]
    entry = parse_post(site.render_post(post), site.url(post.path), "x", outlet="中国环境报（转载）")
    assert entry.outlet == "中国环境报（转载）"


def test_the_real_site_pages_parse():
    category = require_shared("source-sample/category-zhongguohuanjingbao.html").read_text(encoding="utf-8")
    page = require_shared("source-sample/post-NW202203282324189380.html").read_text(encoding="utf-8")
    links = parse_category(category, "https://finews.withounder.com/category/zhongguohuanjingbao.html")
    assert [link.url for link in links] == [
        "https://finews.withounder.com/zhongguohuanjingbao/2022/03/28/NW202203282324189380.html"]
    entry = parse_post(page, links[0].url, "zhongguohuanjingbao")
    assert entry.title == links[0].title == "推进“1+N”政策体系落实，形成减污降碳激励约束机制"
    assert entry.published_at == datetime(2022, 3, 28, 7, 19, 21, tzinfo=CST)
    assert entry.origin_url == "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203282324189380"
    article = normalize(entry)
    assert len(article.sections) == 6 and article.sections[0].heading is None
    assert all(s.heading for s in article.sections[1:])
    assert article.text.startswith("(上接一版)") and article.text.endswith("考试题库》。")


def test_markup_inside_a_listed_title_is_dropped():
    page = '<section><ul><li><a href="/c/2024/01/02/NW1.html"><b>碳</b>市场 &amp; 周报</a></li></ul></section>'
    assert parse_category(page, "https://example.org/category/c.html")[0].title == "碳市场 & 周报"


def test_a_page_that_is_not_a_post_is_a_parse_error(site):
    with pytest.raises(ParseError, match=r"no <h1> title in the article at http://x/p\.html"):
        parse_post(site.render_category().replace("<h2", "<h3"), "http://x/p.html", "s")
    with pytest.raises(ParseError, match="no article paragraphs"):
        parse_post("<html><body><section><h1>标题</h1></section></body></html>", "http://x/p.html", "s")


# ---- polling ---------------------------------------------------------------------------------


async def test_first_poll_is_bounded_by_a_post_count(site, fetcher):
    result = await source_for(site, fetcher, backfill=3).poll(None, set())
    assert [e.key for e in result.entries] == [p.path for p in site.category_posts()[:3]]
    assert result.listed == len(site.category_posts()) and result.etag and not result.errors
    assert {page.url for page in result.pages} == {e.url for e in result.entries}


async def test_first_poll_is_bounded_by_a_date(site, fetcher):
    result = await source_for(site, fetcher, backfill=date(2022, 4, 1)).poll(None, set())
    assert {e.published_at.date() for e in result.entries} == {date(2022, 4, d) for d in (1, 2, 3, 4)}


async def test_a_post_only_on_the_category_page_is_found(site, fetcher):
    source = source_for(site, fetcher)
    first = await source.poll(None, set())
    known = {e.key for e in first.entries}
    quiet = site.add_post("碳排放权交易市场扩容准备工作有序推进", ["据悉，建材行业纳入全国碳市场的准备工作正在推进。"])
    site.add_other_posts(10)  # the site-wide feed.xml moves on before we look
    feed = feedparser.parse((await fetcher.get(site.feed_url)).content)
    assert len(feed.entries) == 10 and site.url(quiet.path) not in {e.link for e in feed.entries}
    second = await source.poll(after(first), known)
    assert [e.key for e in second.entries] == [quiet.path]
    assert second.entries[0].title == "碳排放权交易市场扩容准备工作有序推进"


async def test_a_burst_of_30_posts_between_polls_is_found_completely(site, fetcher):
    source = source_for(site, fetcher, backfill=5)
    first = await source.poll(None, set())
    known = {e.key for e in first.entries}
    burst = [site.add_post(f"快讯第{n}条：碳市场日报", [f"第{n}条正文。"]) for n in range(30)]
    second = await source.poll(after(first), known)
    assert sorted(e.key for e in second.entries) == sorted(p.path for p in burst)
    assert len(second.entries) == 30


async def test_unchanged_category_page_is_304_and_nothing_is_parsed(site, fetcher):
    source = source_for(site, fetcher, recheck=0)
    first = await source.poll(None, set())
    hits_before = sum(site.hits.values())
    second = await source.poll(after(first), {e.key for e in first.entries})
    assert second.not_modified and second.entries == () and second.listed == 0
    assert (second.etag, second.last_modified) == (first.etag, first.last_modified)
    assert sum(site.hits.values()) == hits_before + 1  # the category page only
    assert site.statuses[-1] == ("/category/zhongguohuanjingbao.html", 304)


async def test_an_edited_post_surfaces_with_a_new_hash_and_is_stored_as_an_update(site, fetcher, tmp_path):
    store = Store(tmp_path / "feedbot.db")
    store.sync_sources([("zhongguohuanjingbao", "jekyll", site.category_url)])
    source = source_for(site, fetcher, backfill=None, recheck=3)

    async def poll_and_store():
        state = store.source_state("zhongguohuanjingbao")
        result = await source.poll(state, store.known_keys("zhongguohuanjingbao"),
                                   page_validators=store.page_validators)
        statuses = [store.save_article(normalize(e), Classification(), {}).status for e in result.entries]
        for page in result.pages:
            store.record_page(page.url, "zhongguohuanjingbao", etag=page.etag, last_modified=page.last_modified,
                              content_hash=page.content_hash, fetched_at=utcnow())
        store.record_poll_ok("zhongguohuanjingbao", etag=result.etag, last_modified=result.last_modified,
                             checked_at=utcnow(), next_check_at=utcnow())
        return result, statuses

    _, statuses = await poll_and_store()
    assert statuses == ["new"] * 8
    before = store.content_hashes("zhongguohuanjingbao")
    unchanged, statuses = await poll_and_store()
    assert unchanged.not_modified and unchanged.entries == () and statuses == []

    newest = site.category_posts()[0]
    site.edit_post(newest, paragraphs=[*newest.paragraphs, "（记者 张三）更正：数据已更新。"])
    edited, statuses = await poll_and_store()
    assert edited.not_modified  # the category page did not change; the post page did
    assert [e.key for e in edited.entries] == [newest.path] and statuses == ["updated"]
    after_edit = store.content_hashes("zhongguohuanjingbao")
    assert after_edit[newest.path] != before[newest.path]
    assert {k: v for k, v in after_edit.items() if k != newest.path} == {
        k: v for k, v in before.items() if k != newest.path}
    store.close()


async def test_nothing_is_stored_twice_across_restarts(site, fetcher, tmp_path):
    path = tmp_path / "feedbot.db"
    source = source_for(site, fetcher, backfill=None)
    for round_ in range(3):
        store = Store(path)  # a fresh process each round
        store.sync_sources([("zhongguohuanjingbao", "jekyll", site.category_url)])
        if round_ == 1:
            site.add_post("重启之间的新文章", ["正文。"])
        # the last round has lost its validators too: only the stored keys prevent repeats
        state = store.source_state("zhongguohuanjingbao") if round_ != 2 else None
        result = await source.poll(state, store.known_keys("zhongguohuanjingbao"))
        statuses = [store.save_article(normalize(e), Classification(), {}).status for e in result.entries]
        store.record_poll_ok("zhongguohuanjingbao", etag=result.etag, last_modified=result.last_modified,
                             checked_at=utcnow(), next_check_at=utcnow())
        assert "updated" not in statuses
        assert statuses.count("new") == [8, 1, 0][round_]
        store.close()
    store = Store(path)
    assert len(store.known_keys("zhongguohuanjingbao")) == 9
    store.close()


async def test_a_failed_post_is_retried_next_poll_even_when_the_index_is_unchanged(site, fetcher):
    source = source_for(site, fetcher, backfill=2)
    first = await source.poll(None, set())
    known = {e.key for e in first.entries}
    ok = site.add_post("第一篇新文章", ["正文。"])
    broken = site.add_post("第二篇新文章", ["正文。"])
    site.fault(broken.path, "500", times=1)
    second = await source.poll(after(first), known)
    assert [e.key for e in second.entries] == [ok.path]
    assert second.errors == (f"HTTP 500 Internal Server Error from {site.url(broken.path)}",)
    assert second.etag is None and second.last_modified is None  # forces a full index fetch next time
    third = await source.poll(after(second), known | {ok.path})
    assert not third.not_modified and [e.key for e in third.entries] == [broken.path]


async def test_every_new_post_failing_fails_the_poll(site, fetcher):
    source = source_for(site, fetcher, backfill=2)
    for post in site.category_posts()[:2]:
        site.fault(post.path, "404")
    with pytest.raises(FetchError, match="HTTP 404 Not Found from http://"):
        await source.poll(None, set())


@pytest.mark.parametrize(("kind", "message"), [
    ("500", "HTTP 500 Internal Server Error from {url}"),
    ("429", "HTTP 429 Too Many Requests from {url} (Retry-After 120s)"),
    ("redirect-loop", "redirect loop fetching {url}: "),
    ("hang", "timed out after 1s waiting for an answer from {url}"),
])
async def test_category_page_faults_are_clear_errors(site, fetcher, kind, message):
    site.fault("/category/zhongguohuanjingbao.html", kind)
    with pytest.raises(FetchError) as caught:
        await source_for(site, fetcher).poll(None, set())
    assert str(caught.value).startswith(message.format(url=site.category_url))


async def test_a_page_without_post_links_is_a_parse_error(site, fetcher):
    site.fault("/category/zhongguohuanjingbao.html", "html")
    with pytest.raises(ParseError, match=r"no post links on http://.*expected a Jekyll category page"):
        await source_for(site, fetcher).poll(None, set())


async def test_gbk_encoded_pages_are_decoded(site, fetcher):
    site.fault("/category/zhongguohuanjingbao.html", "gbk")
    for post in site.category_posts()[:2]:
        site.fault(post.path, "gbk-bare")
    result = await source_for(site, fetcher, backfill=2).poll(None, set())
    assert [e.title for e in result.entries] == [p.title for p in site.category_posts()[:2]]
    assert result.entries[0].body_html.count("<p>") == len(site.category_posts()[0].paragraphs)
    assert result.entries[0].title == "重点区域秋冬季大气污染综合治理攻坚成效明显"


async def test_source_recovers_after_failures_without_losing_posts(site, fetcher):
    source = source_for(site, fetcher, backfill=1)
    first = await source.poll(None, set())
    known = {e.key for e in first.entries}
    site.fault("/category/zhongguohuanjingbao.html", "500")
    while_down = [site.add_post(f"故障期间发布的文章{n}", ["正文。"]) for n in range(3)]
    with pytest.raises(FetchError):
        await source.poll(after(first), known)
    site.clear_faults()
    recovered = await source.poll(after(first), known)
    assert sorted(e.key for e in recovered.entries) == sorted(p.path for p in while_down)


async def test_backfill_fetches_older_posts_politely(site, fetcher):
    source = source_for(site, fetcher, backfill=2)
    first = await source.poll(None, set())
    known = {e.key for e in first.entries}
    plan = await source.backfill_plan(date(2022, 3, 30), known)
    assert [link.day for link in plan] == [date(2022, 3, 30), date(2022, 3, 31), date(2022, 4, 1), date(2022, 4, 2)]
    site.latency = 0.02
    got = [(link, entry, error) async for link, entry, error in source.fetch_posts(plan, delay=0.01)]
    assert sorted(e.key for _, e, _ in got) == sorted(link.key for link in plan)
    assert all(error is None for *_, error in got)
    assert site.peak_in_flight <= fetcher.config.per_host


def test_post_keys_ignore_scheme_and_host():
    assert post_key("https://finews.withounder.com/zhongguohuanjingbao/2022/03/28/NW1.html") == post_key(
        "http://127.0.0.1:8081/zhongguohuanjingbao/2022/03/28/NW1.html")


def test_fixture_articles_are_ours_and_well_formed():
    posts = fixture_posts()
    assert len(posts) >= 8 and len({p.code for p in posts}) == len(posts)
    assert {p.category for p in posts} >= {"zhongguohuanjingbao"}
    assert all(p.time.utcoffset() == timedelta(hours=8) for p in posts)


async def test_backfill_command_stores_older_posts_with_a_progress_bar(site, tmp_path, write_config):
    import asyncio
    import sys

    path = write_config(f"""
        state_dir = "{tmp_path / 'state'}"
        [fetch]
        delay = "0.01s"
        [[sources]]
        id = "zhongguohuanjingbao"
        kind = "jekyll"
        url = "{site.category_url}"
        backfill = 1
        """)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feedbot", "--config", str(path), "backfill", "zhongguohuanjingbao",
        "--since", "2022-03-31", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "zhongguohuanjingbao: 5 of 5 post(s) stored" in out.decode()
    assert "5 older post(s) since 2022-03-31 to fetch" in err.decode() and "fetching" in err.decode()
    store = Store(tmp_path / "state" / "feedbot.db")
    assert {post_day(k) for k in store.known_keys("zhongguohuanjingbao")} == {
        date(2022, 3, 31), date(2022, 4, 1), date(2022, 4, 2), date(2022, 4, 3), date(2022, 4, 4)}
    store.close()
    again = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feedbot", "--config", str(path), "backfill", "zhongguohuanjingbao",
        "--since", "2022-03-31", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(again.communicate(), 60)
    assert "0 of 0 post(s) stored" in out.decode()
