"""The sample Jekyll site `feedbot demo` serves on loopback: same HTML, the 10-entry site feed, ETag/304."""

from __future__ import annotations

import asyncio
import hashlib
import html
import tomllib
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from importlib import resources
from typing import Any

from aiohttp import web

from feedbot.clock import SHANGHAI
from feedbot.demo.theme import PAGE_FOOT, page_head

CST = SHANGHAI  # the site prints Asia/Shanghai times
DEFAULT_CATEGORY = "zhongguohuanjingbao"
FEED_SIZE = 10  # jekyll-feed's default: the newest 10 posts of the whole site


@dataclass(frozen=True)
class SamplePost:
    """One post of the sample site."""

    code: str
    category: str
    title: str
    paragraphs: tuple[str, ...]
    time: datetime  # Asia/Shanghai
    outlet: str = "中国环境报"

    @property
    def path(self) -> str:
        """The post's URL path, as Jekyll builds it."""
        return f"/{self.category}/{self.time:%Y/%m/%d}/{self.code}.html"


@dataclass
class _Doc:
    body: bytes
    content_type: str
    gzip: bool = False


@dataclass
class _Version:
    etag: str
    modified: datetime


def _fixture() -> dict[str, Any]:
    text = resources.files("feedbot").joinpath("data/sample_site/posts.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def fixture_posts() -> list[SamplePost]:
    """The bundled fixture articles (feedbot/data/sample_site/posts.toml)."""
    return [SamplePost(code=p["code"], category=p["category"], title=p["title"], paragraphs=tuple(p["paragraphs"]),
                       time=datetime.strptime(p["time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST),
                       outlet=p.get("outlet", "中国环境报"))
            for p in _fixture()["posts"]]


class SampleSite:
    """The sample Jekyll site on loopback; start() it, then change it from the demo or a test."""

    def __init__(self, posts: list[SamplePost] | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 category: str = DEFAULT_CATEGORY):
        fixture = _fixture()
        self.category = category
        self.category_names: dict[str, str] = dict(fixture["categories"])
        self.origin_prefix: str = fixture["site"]["origin"]
        self.posts: dict[str, SamplePost] = {}  # path -> post
        for post in fixture_posts() if posts is None else posts:
            self.posts[post.path] = post
        self.host = host
        self.port = port
        self.static: dict[str, _Doc] = {}
        self.hits: Counter[str] = Counter()  # requests per path
        self.bytes_sent: Counter[str] = Counter()  # body bytes written per path (what a client could read)
        self.statuses: list[tuple[str, int]] = []
        self.request_headers: dict[str, dict[str, str]] = {}  # the last request's headers, per path
        self.latency = 0.0  # seconds added before every answer (benchmarks: a far-away server)
        self.in_flight = 0
        self.peak_in_flight = 0
        self._versions: dict[str, _Version] = {}
        self._epoch = datetime(2022, 4, 5, tzinfo=UTC)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._serial = 0

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on host:port (port 0 picks a free one); returns the base URL."""
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the real port when 0 was asked for
        return self.base_url

    async def stop(self) -> None:
        """Stop serving (hanging and endless responses end)."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SampleSite:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of a path on this site."""
        return self.base_url + path

    @property
    def category_url(self) -> str:
        """The category index page, the jekyll source's url."""
        return self.url(f"/category/{self.category}.html")

    @property
    def feed_url(self) -> str:
        """jekyll-feed's site-wide Atom feed (newest 10 posts of every category)."""
        return self.url("/feed.xml")

    @property
    def rss_url(self) -> str:
        """A plain RSS 2.0 feed of the category (every post, with guids): a `feed` source."""
        return self.url(f"/rss/{self.category}.xml")

    # ---- changing the site -------------------------------------------------------------------

    def add_post(self, title: str, paragraphs: list[str] | tuple[str, ...], *, category: str | None = None,
                 when: datetime | None = None, code: str | None = None, outlet: str = "中国环境报") -> SamplePost:
        """Publish a post; by default one second after the newest post of the site."""
        when = when or (max((p.time for p in self.posts.values()), default=datetime(2022, 4, 5, tzinfo=CST))
                        + timedelta(seconds=1))
        self._serial += 1
        code = code or f"NW{when:%Y%m%d%H%M%S}{self._serial:06d}"
        post = SamplePost(code=code, category=category or self.category, title=title,
                          paragraphs=tuple(paragraphs), time=when.astimezone(CST), outlet=outlet)
        self.posts[post.path] = post
        return post

    def add_other_posts(self, count: int, category: str = "emnews") -> list[SamplePost]:
        """Posts of another category: they push this category out of the 10-entry site feed."""
        self.category_names.setdefault(category, "其他栏目新闻")
        return [self.add_post(f"其他栏目快讯 {self._serial + 1}", ["快讯"], category=category, outlet="其他")
                for _ in range(count)]

    def edit_post(self, post: SamplePost | str, *, title: str | None = None,
                  paragraphs: list[str] | tuple[str, ...] | None = None) -> SamplePost:
        """Change a post's title or body in place (same URL)."""
        path = post if isinstance(post, str) else post.path
        old = self.posts[path]
        new = replace(old, title=title if title is not None else old.title,
                      paragraphs=tuple(paragraphs) if paragraphs is not None else old.paragraphs)
        self.posts[path] = new
        return new

    def remove_post(self, post: SamplePost | str) -> None:
        """Unpublish a post."""
        del self.posts[post if isinstance(post, str) else post.path]

    def put(self, path: str, body: bytes | str, content_type: str = "application/xml", *,
            gzip: bool = False) -> str:
        """Serve an arbitrary document at path (with ETag/304, optionally gzip-encoded); returns its URL."""
        self.static[path] = _Doc(body.encode() if isinstance(body, str) else body, content_type, gzip)
        return self.url(path)

    # ---- rendering ---------------------------------------------------------------------------

    def category_posts(self, category: str | None = None) -> list[SamplePost]:
        """A category's posts, newest first (the order of the category page)."""
        category = category or self.category
        return sorted((p for p in self.posts.values() if p.category == category),
                      key=lambda p: (p.time, p.code), reverse=True)

    def render_category(self, category: str | None = None) -> str:
        """The category index page: every post of the category, newest first."""
        category = category or self.category
        name = self.category_names.get(category, category)
        items = "\n".join(f'    <li><a href="{p.path}">{html.escape(p.title, quote=False)}</a></li>'
                          for p in self.category_posts(category))
        return (page_head("咸宁日报新闻") + f'<h2 id="{name}">{name}</h2>\n<ul>\n{items}\n</ul>\n\n' + PAGE_FOOT)

    def _article_html(self, post: SamplePost) -> str:
        paragraphs = "\n ".join(f"<p>{html.escape(p, quote=False)}</p>" for p in post.paragraphs)
        return paragraphs + f'<p class="em_media">（文章来源：{html.escape(post.outlet)}）</p>'

    def origin_url(self, post: SamplePost) -> str:
        """The outlet's own URL of a post (the page links to it)."""
        return self.origin_prefix + post.code

    def render_post(self, post: SamplePost) -> str:
        """A post page: CST time, title, paragraphs, source link, 返回 links, tags line."""
        name = self.category_names.get(post.category, post.category)
        origin = self.origin_url(post)
        netloc = f"{self.host}:{self.port}"
        body = (f"<small>(GMT+8, Asia/Shanghai, CST) {post.time:%Y-%m-%d %H:%M:%S}</small>\n"
                f"<h1>{html.escape(post.title, quote=False)}</h1>\n\n"
                f"{self._article_html(post)}\n\n"
                f'<p><a href="{origin}">{origin}</a></p>\n\n'
                f'<p><a href="//{netloc}/category/{post.category}.html">返回{name}</a>｜'
                f'<a href="//{netloc}/">返回首页</a></p>\n\n'
                f"  <small>tags: <em>{name}</em></small>\n\n")
        return page_head(post.title) + body + PAGE_FOOT

    def render_feed(self) -> str:
        """jekyll-feed's Atom feed: the newest 10 posts of the whole site."""
        newest = sorted(self.posts.values(), key=lambda p: (p.time, p.code), reverse=True)[:FEED_SIZE]
        updated = newest[0].time.isoformat() if newest else "2022-01-01T00:00:00+08:00"
        base = self.base_url
        entries = []
        for p in newest:
            link = base + p.path
            title = html.escape(p.title)
            entries.append(
                f'<entry><title type="html">{title}</title><link href="{link}" rel="alternate" type="text/html" '
                f'title="{title}" /><published>{p.time.isoformat()}</published><updated>{p.time.isoformat()}'
                f'</updated><id>{link}</id><content type="html" xml:base="{link}">'
                f'{html.escape(self._article_html(p))}</content><author><name>ZNing</name></author>'
                f'<category term="{p.category}" /><summary type="html">{html.escape(p.paragraphs[0][:80])}'
                f"</summary></entry>")
        return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" >'
                '<generator uri="https://jekyllrb.com/" version="3.9.3">Jekyll</generator>'
                f'<link href="{base}/feed.xml" rel="self" type="application/atom+xml" />'
                f'<link href="{base}/" rel="alternate" type="text/html" hreflang="zh-CN" />'
                f"<updated>{updated}</updated><id>{base}/feed.xml</id><title type=\"html\">金融消息</title>"
                "<author><name>ZNing</name></author>" + "".join(entries) + "</feed>")

    def render_rss(self, category: str | None = None) -> str:
        """A plain RSS 2.0 feed of one category, every post, guid = the post URL."""
        category = category or self.category
        items = []
        for p in self.category_posts(category):
            link = self.base_url + p.path
            items.append(f"<item><title>{html.escape(p.title)}</title><link>{link}</link>"
                         f'<guid isPermaLink="true">{link}</guid>'
                         f"<pubDate>{format_datetime(p.time)}</pubDate>"
                         f"<description>{html.escape(self._article_html(p))}</description></item>")
        name = self.category_names.get(category, category)
        return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
                f"<title>{html.escape(name)}</title><link>{self.base_url}/category/{category}.html</link>"
                f"<description>{html.escape(name)}</description>" + "".join(items) + "</channel></rss>\n")

    def _document(self, path: str) -> _Doc | None:
        if path in self.static:
            return self.static[path]
        if path in self.posts:
            return _Doc(self.render_post(self.posts[path]).encode(), "text/html; charset=utf-8")
        if path == "/feed.xml":
            return _Doc(self.render_feed().encode(), "application/xml")
        for category in {p.category for p in self.posts.values()} | {self.category}:
            if path == f"/category/{category}.html":
                return _Doc(self.render_category(category).encode(), "text/html; charset=utf-8")
            if path == f"/rss/{category}.xml":
                return _Doc(self.render_rss(category).encode(), "application/rss+xml; charset=utf-8")
        if path in ("/", "/index.html"):
            links = "\n".join(f'    <li><a href="/category/{c}.html">{n}</a></li>'
                              for c, n in self.category_names.items())
            page = page_head("金融消息") + f"<ul>\n{links}\n</ul>\n" + PAGE_FOOT
            return _Doc(page.encode(), "text/html; charset=utf-8")
        return None

    def _version(self, path: str, body: bytes) -> _Version:
        """ETag from the bytes; Last-Modified moves when the bytes change."""
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        known = self._versions.get(path)
        if known is None or known.etag != etag:
            modified = self._epoch if known is None else max(datetime.now(UTC).replace(microsecond=0),
                                                             known.modified + timedelta(seconds=1))
            known = self._versions[path] = _Version(etag, modified)
        return known

    # ---- serving -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        self.request_headers[path] = dict(request.headers)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            response = await self._answer(request)
        except web.HTTPException as redirect:
            self.statuses.append((path, redirect.status))
            raise
        finally:
            self.in_flight -= 1
        self.statuses.append((path, response.status))
        return response

    def _serve(self, request: web.Request) -> web.Response:
        doc = self._document(request.path)
        if doc is None:
            return self._plain(404, "Not Found")
        version = self._version(request.path, doc.body)
        headers = {"ETag": version.etag, "Last-Modified": format_datetime(version.modified, usegmt=True),
                   "Cache-Control": "max-age=600"}
        if self._fresh(request, version):
            return web.Response(status=304, headers=headers)
        body = doc.body
        if doc.gzip:
            packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            body = packer.compress(body) + packer.flush()
            headers["Content-Encoding"] = "gzip"
        self.bytes_sent[request.path] += len(body)
        return web.Response(body=body, headers={**headers, "Content-Type": doc.content_type})

    @staticmethod
    def _fresh(request: web.Request, version: _Version) -> bool:
        match = request.headers.get("If-None-Match")
        if match is not None:
            return version.etag in [tag.strip() for tag in match.split(",")] or match.strip() == "*"
        since = request.headers.get("If-Modified-Since")
        if since:
            try:
                return version.modified <= parsedate_to_datetime(since)
            except (TypeError, ValueError):
                return False
        return False

    def _plain(self, status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=status, text=text, headers=headers)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        """The response to one request (the test double injects faults here)."""
        return self._serve(request)


async def serve_forever(host: str = "127.0.0.1", port: int = 8081) -> None:
    """Run the sample site until interrupted (python -m feedbot.demo.site)."""
    site = SampleSite(host=host, port=port)
    url = await site.start()
    print(f"sample site at {url}  category: {site.category_url}  feed: {site.feed_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await site.stop()


if __name__ == "__main__":
    import sys

    asyncio.run(serve_forever(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8081))
