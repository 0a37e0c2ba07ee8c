"""The loopback sample site: same structure as the real pages, the 10-entry feed, 304s, changes, faults."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import feedparser
import httpx
import lxml.html
import pytest

from tests.conftest import require_shared
from tests.doubles.site import FAULT_KINDS, SampleSite

CST = timezone(timedelta(hours=8))


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


def chrome(page: str) -> list[str]:
    """The page's skeleton outside the article: tag names of head, header, footer and the section's children."""
    root = lxml.html.document_fromstring(page)
    outer = [el.tag for el in root.iter() if isinstance(el.tag, str) and el.getparent() is not None
             and "section" not in [a.tag for a in el.iterancestors()]]
    inner = [el.tag for el in root.find(".//section")]
    return outer + ["|"] + [tag for n, tag in enumerate(inner) if tag != "p" or n >= len(inner) - 2]


def test_pages_have_the_real_sites_structure():
    real_post = require_shared("source-sample/post-NW202203282324189380.html").read_text(encoding="utf-8")
    real_category = require_shared("source-sample/category-zhongguohuanjingbao.html").read_text(encoding="utf-8")
    site = SampleSite()
    post = site.category_posts()[-1]
    assert chrome(site.render_post(post)) == chrome(real_post)
    assert chrome(site.render_category()) == chrome(real_category)
    # the same lines around the article, character for character
    ours, theirs = site.render_post(post).splitlines(), real_post.splitlines()
    assert ours[:8] == theirs[:8] and ours[-10:] == theirs[-10:]
    assert re.search(r'<p><a href="//[^"]+/category/zhongguohuanjingbao.html">返回中国环境报新闻</a>｜'
                     r'<a href="//[^"]+/">返回首页</a></p>', site.render_post(post))


async def test_category_page_lists_every_post_newest_first(site, client):
    page = (await client.get(site.category_url)).text
    paths = re.findall(r'<li><a href="([^"]+)">', page)
    assert paths == [p.path for p in site.category_posts()]
    assert len(paths) == 8 and "/jingjiribao/" not in page


async def test_site_feed_is_capped_at_ten_and_other_categories_push_posts_out(site, client):
    ours = site.add_post("本栏目的新文章", ["正文。"])
    feed = feedparser.parse((await client.get(site.feed_url)).content)
    assert feed.entries[0].link == site.url(ours.path) and len(feed.entries) == 10
    site.add_other_posts(10)
    feed = feedparser.parse((await client.get(site.feed_url)).content)
    assert len(feed.entries) == 10 and all("/emnews/" in e.link for e in feed.entries)
    assert not feed.bozo and feed.version == "atom10"


async def test_etag_and_last_modified_give_304_until_something_changes(site, client):
    first = await client.get(site.category_url)
    assert (await client.get(site.category_url, headers={"If-None-Match": first.headers["ETag"]})).status_code == 304
    since = {"If-Modified-Since": first.headers["Last-Modified"]}
    assert (await client.get(site.category_url, headers=since)).status_code == 304
    site.add_post("改变了目录", ["正文。"])
    changed = await client.get(site.category_url, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["ETag"] != first.headers["ETag"]
    assert (await client.get(site.category_url, headers=since)).status_code == 200


async def test_edit_changes_the_post_page_only(site, client):
    post = site.category_posts()[0]
    before_post = await client.get(site.url(post.path))
    before_index = await client.get(site.category_url)
    site.edit_post(post, paragraphs=["改写后的正文。"])
    after_post = await client.get(site.url(post.path))
    assert "改写后的正文。" in after_post.text and after_post.headers["ETag"] != before_post.headers["ETag"]
    assert (await client.get(site.category_url)).headers["ETag"] == before_index.headers["ETag"]


async def test_added_posts_get_jekyll_paths_and_cst_times(site):
    post = site.add_post("新文章", ["正文。"])
    assert post.time == datetime(2022, 4, 4, 13, 0, 1, tzinfo=CST)  # a second after the newest
    assert post.path.startswith("/zhongguohuanjingbao/2022/04/04/NW20220404130001")
    assert "(GMT+8, Asia/Shanghai, CST) 2022-04-04 13:00:01" in site.render_post(post)


async def test_faults_apply_per_path_and_for_a_number_of_requests(site, client):
    site.fault("/feed.xml", "500", times=2)
    assert [(await client.get(site.feed_url)).status_code for _ in range(3)] == [500, 500, 200]
    site.fault(site.category_url.replace(site.base_url, ""), "429", retry_after=7)
    answer = await client.get(site.category_url)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    assert (await client.get(site.rss_url)).status_code == 200
    site.clear_faults()
    assert (await client.get(site.category_url)).status_code == 200
    with pytest.raises(ValueError, match="unknown fault"):
        site.fault("/x", "explode")
    assert "billion-laughs" in FAULT_KINDS and "gbk" in FAULT_KINDS


async def test_huge_body_is_streamed_and_stops_when_the_client_leaves(site, client):
    site.fault("/big", "huge")
    async with client.stream("GET", site.url("/big")) as response:
        assert "content-length" not in response.headers
        got = 0
        async for chunk in response.aiter_raw():
            got += len(chunk)
            if got > 1 << 20:
                break
    assert site.bytes_sent["/big"] < 128 << 20  # nowhere near 1 GiB


async def test_gbk_fault_serves_gbk_bytes(site, client):
    post = site.category_posts()[0]
    site.fault(post.path, "gbk")
    raw = (await client.get(site.url(post.path))).content
    assert '<meta charset="gbk">' in raw.decode("gbk") and post.title in raw.decode("gbk")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


async def test_the_site_restarts_on_a_fixed_port():
    first = SampleSite()
    await first.start()
    port = first.port
    await first.stop()
    again = SampleSite(port=port)
    assert await again.start() == f"http://127.0.0.1:{port}"
    await again.stop()
