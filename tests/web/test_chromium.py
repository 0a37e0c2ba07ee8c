"""The index page in headless Chromium: channel names visible, every feed link it shows returns a feed."""

from __future__ import annotations

import asyncio
import json
import struct
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import feedparser
import pytest
from lxml import html

from feedbot.publish import feeds
from feedbot.store import Store
from tests.conftest import require_program
from tests.feeds_helpers import TOPICS, expected, feeds_config, fill_store, live_markup, serving

CHANNELS = (*TOPICS, "all")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


async def chromium(program: str, profile: Path, *args: str) -> str:
    """Run headless Chromium once with a throwaway profile; returns its stdout."""
    proc = await asyncio.create_subprocess_exec(
        program,
        *FLAGS,
        f"--user-data-dir={profile}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode("utf-8")


@pytest.fixture
def world(tmp_path: Path):
    config = feeds_config(tmp_path / "state")
    store = Store(config.db_path)
    items = fill_store(store, datetime.now(UTC))  # recent, so the weekly chart has bars
    feeds.rebuild_all(store, config)
    yield config, store, items
    store.close()


async def test_index_in_chromium(world, tmp_path: Path, artifacts_dir: Path):
    program = require_program("chromium", "renders the index page as a browser would")
    config, store, items = world
    screenshot = artifacts_dir / "index.png"
    screenshot.unlink(missing_ok=True)
    async with serving(config, store) as server, aiohttp.ClientSession() as http:
        index = server.url + "/"
        dom, _ = await asyncio.gather(
            chromium(program, tmp_path / "profile-dom", "--dump-dom", index),
            chromium(
                program,
                tmp_path / "profile-shot",
                f"--screenshot={screenshot}",
                "--window-size=1200,1600",
                index,
            ),
        )
        tree = html.fromstring(dom)
        headings = [h.text_content() for h in tree.xpath("//section[contains(@class, 'channel')]/h2")]
        for cid in CHANNELS:
            assert any(h.startswith(feeds.channel(cid, config.topics).name) for h in headings), (
                cid,
                headings,
            )
        assert live_markup(dom) == []

        shown = tree.xpath("//a[contains(@class, 'feed')]/@href")
        discovered = tree.xpath(
            "//link[@rel='alternate'][contains(@type, 'feed') or contains(@type, 'xml')]/@href"
        )
        assert len(shown) == len(CHANNELS) * 3 and set(discovered) >= set(shown)
        for href in sorted(set(shown) | set(discovered)):
            async with http.get(urljoin(index, href)) as resp:
                assert resp.status == 200, href
                body = await resp.read()
            if href.endswith(".json"):
                assert json.loads(body)["version"] == "https://jsonfeed.org/version/1.1"
            elif href.endswith("opml"):
                assert b"<opml" in body
            else:
                parsed = feedparser.parse(body)
                assert parsed.bozo == 0 and parsed.feed.title.endswith("· feedbot"), href
        for cid in CHANNELS:
            section = tree.xpath(f"//section[@id='{cid}']")[0]
            listed = [a.text_content() for a in section.xpath(".//ol[@class='latest']/li/a")]
            assert listed == [i.title for i in expected(items, cid)][:5]

    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1200, 1600)


async def test_a_feed_opened_in_chromium_reads_as_a_page(world, tmp_path: Path, artifacts_dir: Path):
    program = require_program("chromium", "opens a feed URL as a person would")
    config, store, items = world
    async with serving(config, store) as server:
        url = f"{server.url}/feeds/carbon-market.atom"
        dom, _ = await asyncio.gather(
            chromium(program, tmp_path / "profile-dom", "--dump-dom", url),
            chromium(
                program,
                tmp_path / "profile-shot",
                f"--screenshot={artifacts_dir / 'feed.png'}",
                "--window-size=1000,1000",
                url,
            ),
        )
    # The channel's own page, no XSLT involved (Chromium is removing it), saying what to paste into a reader.
    tree = html.fromstring(dom)
    assert tree.xpath("string(//h1)") == "碳市场"
    assert "https://feeds.example.org/feeds/carbon-market.atom" in tree.xpath("string(//p[@class='notice'])")
    assert [a.text_content() for a in tree.xpath("//ol[@class='items']/li/h3/a")] == [
        i.title for i in expected(items, "carbon-market")
    ]
    assert "xslt" not in dom.lower()
