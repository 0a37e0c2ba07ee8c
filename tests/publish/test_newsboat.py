"""A real feed reader (Debian's newsboat) reloads every channel from the loopback server, sees every entry."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest
from aiohttp import web

from feedbot.publish import feeds
from feedbot.store import Store
from feedbot.web.listen import start_web
from feedbot.web.server import create_app
from tests.conftest import require_program
from tests.feeds_helpers import TOPICS, expected, feeds_config, fill_store, fixed_now

CHANNELS = (*TOPICS, "all")


async def newsboat_reload(program: str, home: Path, urls: list[str]) -> sqlite3.Connection:
    """Run `newsboat -x reload` against the URLs and open the cache it wrote."""
    home.mkdir(exist_ok=True)
    (home / "urls").write_text("".join(f"{u}\n" for u in urls), encoding="utf-8")
    (home / "config").write_text("reload-threads 2\ndownload-timeout 20\n", encoding="utf-8")
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "XDG_DATA_HOME": str(home),
        "LANG": "C.UTF-8",
    }
    proc = await asyncio.create_subprocess_exec(
        program,
        "-u",
        str(home / "urls"),
        "-c",
        str(home / "cache.db"),
        "-C",
        str(home / "config"),
        "-x",
        "reload",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, (out, err)
    return sqlite3.connect(home / "cache.db")


@pytest.mark.parametrize("ext", ["xml", "atom"])
async def test_newsboat_sees_every_channel_with_all_entries(tmp_path: Path, ext: str):
    program = require_program("newsboat", "the real feed reader the feeds are checked with")
    config = feeds_config(tmp_path / "state")
    store = Store(config.db_path)
    items = fill_store(store, fixed_now())
    feeds.rebuild_all(store, config)
    answers: list[tuple[str, int]] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        answers.append((request.path, response.status))

    app = create_app(config, store)
    app.on_response_prepare.append(record)  # aiohttp's own signal: observe what the reader was answered
    server = await start_web(app, "127.0.0.1", 0)
    try:
        urls = [f"{server.url}/feeds/{cid}.{ext}" for cid in CHANNELS]
        cache = await newsboat_reload(program, tmp_path / "newsboat", urls)
        assert sorted(answers) == sorted((f"/feeds/{cid}.{ext}", 200) for cid in CHANNELS)
        try:
            titles = dict(cache.execute("SELECT rssurl, title FROM rss_feed").fetchall())
            assert titles == {
                url: f"{feeds.channel(cid, config.topics).name} · feedbot"
                for url, cid in zip(urls, CHANNELS, strict=True)
            }
            for url, cid in zip(urls, CHANNELS, strict=True):
                rows = cache.execute(
                    "SELECT title, url, author, pubDate, content FROM rss_item "
                    "WHERE feedurl = ? AND deleted = 0 "
                    "ORDER BY pubDate DESC",
                    [url],
                ).fetchall()
                want = expected(items, cid)
                assert [r[0] for r in rows] == [i.title for i in want], cid
                assert [r[1] for r in rows] == [i.key for i in want]
                assert [r[3] for r in rows] == [int(i.published_at.timestamp()) for i in want]
                assert {r[2] for r in rows} == {"中国环境报"}
                for row in rows:
                    assert "<script" not in row[4].lower() and "javascript:" not in row[4].lower()
                    assert row[4].startswith("<p>")  # the full article, not just the excerpt
            first = cache.execute("SELECT feedurl, guid, title FROM rss_item ORDER BY id").fetchall()
        finally:
            cache.close()
        # newsboat 2.21 stores a new feed's validators from its second reload on; the third is conditional.
        for _ in range(2):
            answers.clear()
            cache = await newsboat_reload(program, tmp_path / "newsboat", urls)
            again = cache.execute("SELECT feedurl, guid, title FROM rss_item ORDER BY id").fetchall()
            cache.close()
            assert again == first  # nothing shown twice
        assert sorted(answers) == sorted((f"/feeds/{cid}.{ext}", 304) for cid in CHANNELS)
    finally:
        await server.close()
        store.close()
