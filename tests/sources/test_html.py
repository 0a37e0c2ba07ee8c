"""List-page sources (kind html) against saved pages on a loopback server: presets, GBK, Chinese dates,
bursts longer than a page, a changed layout, conditional GET."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from feedbot.clock import SHANGHAI, utcnow
from feedbot.errors import ParseError
from feedbot.model import SourceState
from feedbot.pipeline import poll_source
from feedbot.settings.config import FetchConfig, SourceConfig, parse_config
from feedbot.settings.topics import load_default_topics
from feedbot.sources import make_source
from feedbot.sources.extract import parse_cn_datetime
from feedbot.sources.html import HtmlSource, parse_article, parse_list
from feedbot.sources.http import Fetcher
from feedbot.sources.normalize import normalize
from tests.doubles.pages import PageSite, saved

MEE_POST_TEXT = "3月27日，生态环境部在京召开全国碳排放权交易市场扩围专题会议"


@pytest.fixture
async def fetcher():
    async with Fetcher(FetchConfig(timeout=1, deadline=3, delay=0)) as client:
        yield client


def preset(name: str, url: str | None = None, **keys) -> SourceConfig:
    block = {"id": "s", "preset": name, **keys}
    if url:
        block["url"] = url
    return parse_config({"sources": [block]}, None, {}).sources[0]


def after(result, state: SourceState | None = None) -> SourceState:
    base = state or SourceState(id="s", kind="html", url="")
    return replace(base, etag=result.etag, last_modified=result.last_modified, last_ok_at=utcnow())


@pytest.mark.parametrize("text, expected", [
    ("2024年3月28日", datetime(2024, 3, 28, tzinfo=SHANGHAI)),
    ("发布时间：2024-03-28 10:00　来源：处室", datetime(2024, 3, 28, 10, 0, tzinfo=SHANGHAI)),
    ("2024/3/5 08:01:02", datetime(2024, 3, 5, 8, 1, 2, tzinfo=SHANGHAI)),
    ("[03-28]", datetime(2024, 3, 28, tzinfo=SHANGHAI)),
    ("3月28日", datetime(2024, 3, 28, tzinfo=SHANGHAI)),
    ("12-30", datetime(2023, 12, 30, tzinfo=SHANGHAI)),  # a year-less day after today is last year's
    ("浏览次数：1024", None),
])
def test_chinese_dates(text, expected):
    assert parse_cn_datetime(text, today=date(2024, 3, 29)) == expected


def test_mee_yaowen_preset_reads_the_second_column_with_relative_links():
    config = preset("mee-yaowen")
    items = parse_list(saved("mee-ywdt.html").decode(), "https://www.mee.gov.cn/ywdt/", config.selectors)
    mee = "https://www.mee.gov.cn"
    assert [(i.url, i.title) for i in items] == [
        (f"{mee}/ywdt/hjywnews/202403/t20240328_1069102.shtml", "生态环境部召开全国碳市场扩围专题会议"),
        (f"{mee}/ywdt/hjywnews/202403/t20240326_1068950.shtml", "生态环境部部署适应气候变化重点工作"),
        (f"{mee}/ywgz/ydqhbh/wsqtkz/202403/t20240325_1068801.shtml", "温室气体自愿减排交易市场启动一周年"),
    ]


def test_mee_gonggao_and_climate_presets_read_their_columns():
    page = saved("mee-ywdt.html").decode()
    gonggao = parse_list(page, "https://www.mee.gov.cn/ywdt/", preset("mee-gonggao").selectors)
    assert [i.title for i in gonggao] == ["关于2023年度全国碳排放权交易市场配额清缴情况的公告",
                                         "关于公开征求碳排放管理员培训规范意见的通知"]
    # ywgz/ydqhbh has the same .bd column layout; its first column on this page is 时政要闻
    first = parse_list(page, "https://www.mee.gov.cn/ywdt/", preset("mee-climate").selectors)
    assert [i.title for i in first] == ["国务院常务会议部署推动绿色低碳发展"]


def test_mee_zcwj_preset_reads_dated_items():
    items = parse_list(saved("mee-zcwj.html").decode(), "https://www.mee.gov.cn/zcwj/", preset("mee-zcwj").selectors)
    assert [(i.url, i.day) for i in items] == [
        ("https://www.mee.gov.cn/zcwj/bwj/202403/t20240330_1069300.html", date(2024, 3, 30)),
        ("https://www.mee.gov.cn/zcwj/bgtwj/202403/t20240321_1068500.html", date(2024, 3, 21)),
        ("https://www.gov.cn/zhengce/content/202402/content_6930000.htm", date(2024, 2, 4)),
    ]


def test_cneeex_preset_reads_the_exchange_list():
    items = parse_list(saved("exchange-list.html").decode(), "https://www.cneeex.com/xwzx/",
                       preset("cneeex-news").selectors)
    assert (items[0].url, items[0].day) == ("https://www.cneeex.com/c/2024-03-29/491234.shtml", date(2024, 3, 29))
    assert len(items) == 3


def test_mee_post_page_by_preset_selector_and_pubdate_meta():
    config = preset("mee-yaowen")
    url = "https://www.mee.gov.cn/ywdt/hjywnews/202403/t20240328_1069102.shtml"
    entry = parse_article(saved("mee-post.html").decode(), url, config.selectors, "s", outlet="生态环境部")
    assert entry.title == "生态环境部召开全国碳市场扩围专题会议"
    assert entry.published_at == datetime(2024, 3, 28, 10, 5, tzinfo=SHANGHAI)
    article = normalize(entry)
    assert article.text.startswith(MEE_POST_TEXT)
    assert "版权所有" not in article.text and "分享到" not in article.text
    assert entry.key == "/ywdt/hjywnews/202403/t20240328_1069102.shtml"


def test_a_post_without_body_selector_is_extracted_without_chrome():
    selectors = preset("cneeex-news").selectors  # no body selector: readability
    entry = parse_article(saved("province-post.gbk.html").decode("gbk"), "https://sthjt.example.gov.cn/gzdt/a.html",
                          selectors, "s")
    text = normalize(entry).text
    assert entry.title == "全省碳排放权交易工作推进会召开"
    assert entry.published_at == datetime(2024, 3, 28, 10, 0, tzinfo=SHANGHAI)
    assert text.startswith("3月28日上午，全省碳排放权交易工作推进会在省城召开") and "能力培训" in text
    for chrome in ("网站首页", "打印本页", "ICP", "省人民政府"):
        assert chrome not in text


async def test_gbk_list_page_polls_end_to_end_with_relative_links(fetcher):
    async with PageSite() as site:
        # GBK bytes, the charset only in <meta http-equiv>: the Fetcher decodes
        site.put("/gzdt/", saved("province-list.gbk.html"), "text/html")
        post = saved("province-post.gbk.html")
        for path in ("/gzdt/202403/t20240328_88001.html", "/gzdt/202403/t20240327_88000.html",
                     "/gzdt/t20240326_87990.html"):
            site.put(path, post, "text/html")
        config = SourceConfig(id="s", kind="html", url=site.url("/gzdt/"), backfill=None,
                              selectors=preset("cneeex-news").selectors.__class__(
                                  item="tr.item", link="td.bt a", date="td.rq"))
        source = make_source(config, fetcher)
        assert isinstance(source, HtmlSource)
        result = await source.poll(None, frozenset())
        assert sorted(e.url for e in result.entries) == sorted(site.url(p) for p in (
            "/gzdt/202403/t20240328_88001.html", "/gzdt/202403/t20240327_88000.html", "/gzdt/t20240326_87990.html"))
        assert {e.title for e in result.entries} == {"全省碳排放权交易工作推进会召开"}
        # conditional GET: an unchanged list page is a 304 and no post page is fetched again
        site.requests.clear()
        again = await source.poll(after(result), {e.key for e in result.entries})
        assert again.not_modified and not again.entries
        assert site.requests == ["/gzdt/"]


def _list_page(ids: list[int], next_href: str | None) -> str:
    rows = "".join(f'<li><a href="/news/{i}.html">第{i}号新闻</a><span>2024-03-{i % 28 + 1:02d}</span></li>'
                   for i in ids)
    more = f'<a class="next" href="{next_href}">下一页</a>' if next_href else ""
    return f"<html><body><ul class='list'>{rows}</ul>{more}</body></html>"


def _post(i: int) -> str:
    return (f"<html><head><title>第{i}号新闻 - 网站</title></head><body><div class='nav'><a href='/'>首页</a></div>"
            f"<div class='c'><h1>第{i}号新闻</h1>"
            f"<p>第{i}号新闻的正文，讲述碳市场的第{i}件事情，内容足够长以便抽取。</p>"
            f"<p>第二段说明更多细节，第{i}号。</p></div></body></html>")


async def test_a_burst_longer_than_the_page_is_followed_to_the_next_pages(fetcher):
    from feedbot.settings.sourcekeys import ListSelectors
    async with PageSite() as site:
        for i in range(1, 20):
            site.put(f"/news/{i}.html", _post(i))
        site.put("/list/", _list_page([3, 2, 1], "/list/2"))
        config = SourceConfig(id="s", kind="html", url=site.url("/list/"), backfill=None,
                              selectors=ListSelectors(item="ul.list li", date="span", next="a.next", max_pages=5))
        source = HtmlSource(config, fetcher)
        first = await source.poll(None, frozenset())
        known = {e.key for e in first.entries}
        assert known == {"/news/1.html", "/news/2.html", "/news/3.html"}
        # 7 new posts while the page shows 3: pages 1-3 hold them, page 3 also lists a stored one
        site.put("/list/", _list_page([10, 9, 8], "/list/2"))
        site.put("/list/2", _list_page([7, 6, 5], "/list/3"))
        site.put("/list/3", _list_page([4, 3, 2], "/list/4"))
        burst = await source.poll(after(first), known)
        assert {e.key for e in burst.entries} == {f"/news/{i}.html" for i in range(4, 11)}
        assert "/list/4" not in site.requests  # stops at the page that lists a stored post


async def test_a_changed_layout_is_a_failed_poll_not_nothing_new(fetcher, store):
    async with PageSite() as site:
        site.put("/zcwj/", saved("mee-zcwj.html"))
        for path in ("/zcwj/bwj/202403/t20240330_1069300.html", "/zcwj/bgtwj/202403/t20240321_1068500.html"):
            site.put(path, saved("mee-post.html"))
        config = preset("mee-zcwj", url=site.url("/zcwj/"), backfill=2)
        source = make_source(config, fetcher)
        topics = load_default_topics()
        ok = await poll_source(source, config, store, topics, {})
        assert (ok.result, ok.new) == ("ok", 2)
        # the site is redesigned: no element matches the item selector any more
        site.put("/zcwj/", "<html><body><div class='newlist'><a href='/x.html'>新版</a></div></body></html>")
        report = await poll_source(source, config, store, topics, {})
        assert report.result == "failed"
        assert "no items" in report.error and "li:has(.date)" in report.error
        with pytest.raises(ParseError):
            await source.fetch_index(None)


def test_every_preset_is_a_valid_source_block():
    from feedbot.settings.sourcekeys import presets
    for name in presets():
        config = preset(name)
        assert config.kind == "html" and config.selectors is not None and config.url.startswith("https://")


@pytest.mark.parametrize("block, message", [
    ({"id": "s", "preset": "mee-yaowne"}, 'sources[0].preset: unknown preset \'mee-yaowne\''),
    ({"id": "s", "kind": "html", "url": "https://x.example/"}, "sources[0].item: missing"),
    ({"id": "s", "kind": "html", "url": "https://x.example/", "item": "li[", "link": "a"},
     "sources[0].item: bad CSS selector 'li['"),
    ({"id": "s", "kind": "feed", "url": "https://x.example/", "item": "li"}, "sources[0].item: only list-page"),
])
def test_list_source_config_errors_name_the_key(block, message):
    from feedbot.errors import ConfigError
    with pytest.raises(ConfigError) as caught:
        parse_config({"sources": [block]}, None, {})
    assert message in str(caught.value) and "\n" not in str(caught.value)


async def test_a_failed_post_keyed_by_its_query_is_retried_at_its_own_url(fetcher):
    from feedbot.settings.sourcekeys import ListSelectors
    async with PageSite() as site:
        site.put("/list", '<ul class="l"><li><a href="show.php?id=1">第一条</a></li>'
                          '<li><a href="show.php?id=2">第二条</a></li></ul>')
        site.put("/show.php?id=1", _post(1))  # id=2 is not there yet: a 404
        config = SourceConfig(id="s", kind="html", url=site.url("/list"), backfill=None,
                              selectors=ListSelectors(item="ul.l li"))
        source = HtmlSource(config, fetcher)
        first = await source.poll(None, frozenset())
        assert [e.key for e in first.entries] == ["/show.php?id=1"]
        assert [key for key, _, _ in first.failed] == ["/show.php?id=2"]
        # the list no longer shows it: it is retried by its key, and a second failure keeps that key
        site.put("/list", '<ul class="l"><li><a href="show.php?id=1">第一条</a></li></ul>')
        again = await source.poll(after(first), {"/show.php?id=1"}, retry={"/show.php?id=2"})
        assert [key for key, _, _ in again.failed] == ["/show.php?id=2"]
        site.put("/show.php?id=2", _post(2))
        third = await source.poll(after(again), {"/show.php?id=1"}, retry={"/show.php?id=2"})
        assert [e.key for e in third.entries] == ["/show.php?id=2"]


def test_check_config_shows_a_preset_source_as_its_keys(write_config):
    import json as jsonlib

    from click.testing import CliRunner

    from feedbot.cli import cli
    path = write_config('[[sources]]\nid = "mee"\npreset = "mee-zcwj"\n')
    shown = CliRunner().invoke(cli, ["--config", str(path), "check-config", "--json"])
    assert shown.exit_code == 0, shown.output
    source = jsonlib.loads(shown.stdout)["sources"][0]
    assert (source["kind"], source["item"], source["date"]) == ("html", "li:has(.date)", ".date")
    text = CliRunner().invoke(cli, ["--config", str(path), "check-config"])
    assert text.exit_code == 0 and 'item = "li:has(.date)"' in text.stdout
