"""One poll end to end against the loopback Jekyll site: nothing lost, nothing stored twice."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import feedparser
from click.testing import CliRunner

from feedbot.cli import cli
from feedbot.clock import utcnow
from feedbot.pipeline import poll_source
from feedbot.settings.config import SourceConfig, parse_config
from feedbot.sources import make_source
from feedbot.sources.http import Fetcher
from feedbot.store import Store
from tests.doubles.site import SampleSite

MARKET_POST = ["全国碳市场第二个履约周期配额分配方案印发，重点排放单位须按时完成配额清缴。",
               "生态环境部表示，将加强碳排放数据质量监管，严厉打击数据造假，保障碳市场平稳运行。"]


def setup(site: SampleSite, tmp_path, **source):
    config = parse_config({"sources": [{"id": "hjb", "kind": "jekyll", "url": site.category_url,
                                        "interval": "10m", "backfill": "all", **source}],
                           "fetch": {"delay": "0.01s"}}, None, {})
    store = Store(tmp_path / "feedbot.db")
    store.sync_sources([("hjb", "jekyll", site.category_url)])
    return config, store


async def poll(config, store, fetcher, now=None):
    source_config = config.sources[0]
    targets = {topic: [f"console:{topic}"] for topic in config.topics}
    return await poll_source(make_source(source_config, fetcher), source_config, store, config.topics, targets,
                             now=now, rng=random.Random(1))


async def test_first_poll_stores_and_routes_every_post_then_restart_stores_nothing_twice(site, tmp_path):
    config, store = setup(site, tmp_path)
    async with Fetcher(config.fetch) as fetcher:
        report = await poll(config, store, fetcher)
    listed = len(site.category_posts())
    assert report.result == "ok" and report.new == listed
    assert store.article_counts()["all"] == listed
    assert report.deliveries > 0 and report.deliveries == sum(
        r.count for r in store.delivery_counts())
    seed = next(a for a in store.articles(None, limit=100) if a.title.startswith("落实“1+N”"))
    assert set(seed.excerpts) == {"carbon-market", "adaptation-2035", "climate-finance", "carbon-manager"}
    store.close()

    # A restart: a new process with new connections over the same file.
    store = Store(tmp_path / "feedbot.db")
    async with Fetcher(config.fetch) as fetcher:
        again = await poll(config, store, fetcher)
    assert again.result == "not_modified" and again.new == 0 and again.deliveries == 0
    assert site.statuses[-1][1] in (200, 304)
    assert store.article_counts()["all"] == listed
    store.close()


async def test_post_only_on_category_page_and_a_burst_of_30_are_picked_up(site, tmp_path):
    config, store = setup(site, tmp_path)
    async with Fetcher(config.fetch) as fetcher:
        await poll(config, store, fetcher)
        lonely = site.add_post("全国碳市场扩容在即，建材行业纳入准备工作启动", MARKET_POST)
        site.add_other_posts(12)  # pushes every 中国环境报 post out of the 10-entry site feed
        assert lonely.path not in site.render_feed()
        burst = [site.add_post(f"碳市场观察之{i}：配额清缴与数据质量", MARKET_POST) for i in range(30)]
        report = await poll(config, store, fetcher)
    assert report.new == 31
    assert {p.path for p in [lonely, *burst]} <= store.known_keys("hjb")  # the key is the post's URL path
    assert len(store.articles("carbon-market", limit=100)) >= 31
    store.close()


async def test_failing_source_backs_off_and_recovers_without_loss(site, tmp_path):
    config, store = setup(site, tmp_path)
    now = utcnow()
    async with Fetcher(replace(config.fetch, timeout=2.0)) as fetcher:
        await poll(config, store, fetcher, now=now)
        site.fault("/category/zhongguohuanjingbao.html", "500")
        during = site.add_post("碳排放权交易管理暂行条例正式施行", MARKET_POST)
        failed = await poll(config, store, fetcher, now=now)
        assert failed.result == "failed" and "500" in failed.error
        second = await poll(config, store, fetcher, now=now)
        state = store.source_state("hjb")
        assert (state.failures, state.last_error) == (2, second.error)
        # Backoff: two failures wait about 4 intervals, not one.
        assert state.next_check_at - now > timedelta(minutes=30)
        site.clear_faults()
        healed = await poll(config, store, fetcher, now=now)
    assert healed.result == "ok" and healed.new == 1
    state = store.source_state("hjb")
    assert state.failures == 0 and state.last_error is None
    assert timedelta(minutes=8) < state.next_check_at - now < timedelta(minutes=12)
    assert any(a.title == during.title for a in store.articles(None, limit=100))
    store.close()


async def test_edited_post_is_an_update_not_a_new_article(site, tmp_path):
    config, store = setup(site, tmp_path)
    async with Fetcher(config.fetch) as fetcher:
        post = site.add_post("全国碳市场配额分配方案征求意见", MARKET_POST)
        await poll(config, store, fetcher)
        before = {a.title: a for a in store.articles(None, limit=100)}[post.title]
        site.edit_post(post, paragraphs=[*MARKET_POST, "（更正：文中配额数据已更新。）"])
        report = await poll(config, store, fetcher)
    assert report.updated == 1 and report.new == 0
    after = store.article(before.id)
    assert after.content_hash != before.content_hash and after.updated_at is not None
    assert store.article_counts()["all"] == len(site.category_posts())
    store.close()


def test_source_config_defaults():
    assert SourceConfig("x", "feed", "https://x.org/f").backfill == 20


async def test_reclassify_applies_new_rules_to_stored_articles_without_chat_messages(site, tmp_path):
    config, store = setup(site, tmp_path)
    async with Fetcher(config.fetch) as fetcher:
        await poll(config, store, fetcher)
    before = store.article_counts()
    deliveries = store.delivery_counts()
    assert before["carbon-market"] > 0
    store.close()
    path = tmp_path / "feedbot.toml"
    path.write_text(f'state_dir = "{tmp_path}"\n[topics.carbon-market]\nthreshold = 100000\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(path), "reclassify"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{before['all']} article(s) classified again, {before['carbon-market']} changed" in result.output
    store = Store(tmp_path / "feedbot.db")
    after = store.article_counts()
    assert after.get("carbon-market", 0) == 0
    assert after["climate-finance"] == before["climate-finance"]
    assert store.delivery_counts() == deliveries  # feeds follow new rules; chats get no old news
    assert feedparser.parse((tmp_path / "feeds" / "carbon-market.atom").read_bytes()).entries == []
    store.close()
