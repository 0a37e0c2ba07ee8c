"""The Jekyll source and what it must not drop (issue 12: 9, 10, 15): backfill, failed posts, empty listings, edits."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from feedbot.app import App
from feedbot.clock import SHANGHAI
from feedbot.settings.config import load_config
from feedbot.store import Store
from tests.doubles.site import SampleSite

SID = "hjb"
MARKET = ["全国碳市场配额清缴工作启动，重点排放单位须按时完成碳排放权交易履约。",
          "生态环境部要求加强碳排放数据质量管理，推进碳市场扩围。"]


def config_for(tmp_path, site: SampleSite, backfill: str = "3"):
    path = tmp_path / "feedbot.toml"
    path.write_text(f"""
state_dir = "{tmp_path / 'state'}"
[web]
enabled = false
[fetch]
delay = "0.01s"
[[sources]]
id = "{SID}"
kind = "jekyll"
url = "{site.category_url}"
backfill = {backfill}
""", encoding="utf-8")
    return load_config(path, {})


def stored(config) -> dict[str, int]:
    """Stored article key → how many outbox rows it has."""
    store = Store(config.db_path)
    try:
        keys = store.known_keys(SID)
        rows = store._rows("SELECT a.key, COUNT(d.id) AS n FROM articles a LEFT JOIN deliveries d "
                           "ON d.article_id = a.id GROUP BY a.id")
        return {r["key"]: r["n"] for r in rows if r["key"] in keys}
    finally:
        store.close()


async def test_backfill_leaves_posts_newer_than_the_last_poll_to_the_poll(site, tmp_path):
    config = config_for(tmp_path, site, backfill="2")
    async with App(config, {}) as app:
        assert (await app.poll(SID, deadline=30)).new == 2
        newer = [site.add_post(f"碳市场新消息{n}", MARKET) for n in range(3)]
        report = await app.backfill(SID, date(2000, 1, 1))
        assert report.saved == len(site.category_posts()) - 2 - 3  # only what lies below the oldest stored
        after = await app.poll(SID, deadline=30)
    assert after.new == 3
    rows = stored(config)
    assert all(rows[p.path] >= 1 for p in newer), "posts newer than the last poll must reach their chats"


async def test_a_failed_post_at_the_bottom_of_the_first_run_is_retried(site, tmp_path):
    config = config_for(tmp_path, site, backfill="3")
    bottom = site.category_posts()[2]
    site.fault(bottom.path, "500", times=1)
    async with App(config, {}) as app:
        first = await app.poll(SID, deadline=30)
        assert (first.new, first.item_errors) == (2, 1)
        second = await app.poll(SID, deadline=30)
        assert second.new == 1
        assert app.store.post_retries(SID) == set()
    assert bottom.path in stored(config)


async def test_a_post_failing_for_good_is_given_up_after_a_bounded_number_of_polls(site, tmp_path):
    from feedbot.store.sources import MAX_POST_FAILURES

    config = config_for(tmp_path, site, backfill="3")
    bottom = site.category_posts()[2]
    site.fault(bottom.path, "404")
    async with App(config, {}) as app:
        for _ in range(MAX_POST_FAILURES + 2):
            await app.poll(SID, deadline=30)
    assert site.hits[bottom.path] == MAX_POST_FAILURES


async def test_an_empty_category_is_a_good_poll_and_a_later_burst_is_taken_whole(tmp_path):
    async with SampleSite(posts=[]) as site:
        config = config_for(tmp_path, site, backfill="20")
        async with App(config, {}) as app:
            empty = await app.poll(SID, deadline=30)
            assert empty.result == "ok", empty.error
            today = datetime.now(SHANGHAI).replace(microsecond=0)
            for n in range(40):
                site.add_post(f"新栏目第{n}篇 碳市场", MARKET, when=today - timedelta(minutes=40 - n))
            burst = await app.poll(SID, deadline=60)
    assert burst.result == "ok" and burst.new == 40


async def test_a_page_of_another_layout_is_still_an_error(tmp_path):
    async with SampleSite(posts=[]) as site:
        site.fault("/category/zhongguohuanjingbao.html", "html")
        config = config_for(tmp_path, site)
        async with App(config, {}) as app:
            report = await app.poll(SID, deadline=30)
    assert report.result == "failed" and "no post links" in report.error


async def test_edits_to_older_posts_are_noticed_within_a_bounded_number_of_polls(site, tmp_path):
    config = config_for(tmp_path, site, backfill='"all"')
    listed = site.category_posts()
    assert len(listed) > 5  # the oldest is outside the newest five every poll re-checks
    async with App(config, {}) as app:
        await app.poll(SID, deadline=30)
        oldest = listed[-1]
        site.edit_post(oldest, paragraphs=[*oldest.paragraphs, "（更正：文中数据已更新。）"])
        polls = 0
        # Newest 5 each poll plus a window of 5 older ones moving on: every post within ceil(older / 5) polls.
        for polls in range(1, (len(listed) - 5 + 4) // 5 + 2):  # noqa: B007 (read after the loop)
            if (await app.poll(SID, deadline=30)).updated:
                break
        else:
            raise AssertionError("an edit to the oldest post was never noticed")
    assert polls <= (len(listed) - 5 + 4) // 5
