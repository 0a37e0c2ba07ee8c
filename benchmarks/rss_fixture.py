"""RSS documents for the polling benchmarks: one small feed per loopback source."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

PARAGRAPH = ("生态环境部有关负责人表示，将持续完善全国碳排放权交易市场制度体系，"
             "强化排放数据质量管理，稳步扩大行业覆盖范围。")


def rss_feed(source: int, entries: int, version: int = 0) -> bytes:
    """RSS 2.0 of one source; a new ``version`` gives every entry a new guid (a changed feed)."""
    start = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(hours=version)
    items = []
    for n in range(entries):
        link = f"https://news{source}.example.org/{version}/{n}.html"
        items.append(f"<item><title>第{source}号源 第{n}条 全国碳市场动态 v{version}</title><link>{link}</link>"
                     f"<guid>{link}</guid><pubDate>{format_datetime(start - timedelta(minutes=n))}</pubDate>"
                     f"<description>&lt;p&gt;{PARAGRAPH * 3}&lt;/p&gt;</description></item>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>源{source}</title><link>https://news{source}.example.org/</link><description>d</description>"
            + "".join(items) + "</channel></rss>").encode()


class FeedServer:
    """Serves rss_feed() documents at /feed/<n>.xml on many loopback ports, with ETag and 304 answers."""

    def __init__(self, entries: int, latency: float = 0.0):
        self.entries, self.latency = entries, latency
        self.versions: dict[int, int] = {}  # source → version; bump one to make its feed change
        self._cache: dict[tuple[int, int], tuple[bytes, str]] = {}

    async def feed(self, request):
        """The aiohttp handler."""
        from aiohttp import web

        if self.latency:
            await asyncio.sleep(self.latency)
        source = int(request.match_info["n"])
        version = self.versions.get(source, 0)
        if (source, version) not in self._cache:
            body = rss_feed(source, self.entries, version)
            self._cache[(source, version)] = (body, '"' + hashlib.sha1(body).hexdigest()[:16] + '"')
        body, etag = self._cache[(source, version)]
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, headers={"ETag": etag, "Content-Type": "application/rss+xml"})

    async def start(self, ports: int, extra_routes=()) -> list[int]:
        """Serve on `ports` loopback ports (many hosts for per-host limits); returns the ports."""
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/feed/{n}.xml", self.feed)
        for path, handler in extra_routes:
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        bound = []
        for _ in range(ports):
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            bound.append(site._server.sockets[0].getsockname()[1])
        return bound
