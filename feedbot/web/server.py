"""The built-in web server: pages, feed files, OPML, health (aiohttp, inside the daemon's event loop).

URL scheme (every path relative to the public base URL; pages link relatively, so a path prefix works):
  /                          the index: every channel, its chart and newest articles
  /c/<channel>/              a channel's archive, newest first; /c/<channel>/page/<n> for page n ≥ 2
  /a/<article id>            one article: its channels and the evidence that put it there
  /search?q=…&channel=…&page=n   full-text search
  /feeds/<channel>.xml|.atom|.json   the feeds (a browser asking for text/html gets the channel page)
  /opml, /healthz, /metrics
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from feedbot.clock import format_http_date
from feedbot.publish import feeds
from feedbot.publish.channels import channel_files
from feedbot.publish.digestfeeds import digest_feed_ids
from feedbot.settings.secrets import redact
from feedbot.web.article import render_article
from feedbot.web.channel import find_channel, render_channel
from feedbot.web.conditional import accepts_gzip, not_modified
from feedbot.web.layout import PAGE_CSP
from feedbot.web.pages import render_index, render_opml
from feedbot.web.searchpage import render_search

CONTENT_TYPES = {
    "xml": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
# A browser that opens a feed gets a type it renders as XML, so the xml-stylesheet PI applies (Chromium shows
# application/rss+xml as plain text); readers keep the registered feed types.
BROWSER_TYPES = {
    "xml": "application/xml; charset=utf-8",
    "atom": "application/xml; charset=utf-8",
    "json": "application/json; charset=utf-8",
}
FEED_MEDIA = ("application/rss+xml", "application/atom+xml", "application/feed+json", "application/json")
XSL_TYPE = "text/xsl; charset=utf-8"
OPML_TYPE = "text/x-opml; charset=utf-8"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FEED_CACHE_CONTROL = "public, max-age=300"
HTML_TYPE = "text/html; charset=utf-8"
# Pages change with every stored article: a browser revalidates each time, cheaply, with the validators.
PAGE_CACHE_CONTROL = "no-cache"
MAX_PAGE_NUMBER = 1_000_000


# The stylesheet ships with the code: it changes only when the process does.
_STARTED = datetime.now(UTC).replace(microsecond=0)

log = logging.getLogger("feedbot.web")

Health = Callable[[], tuple[bool, Mapping[str, Any]]]
Metrics = Callable[[], str]


@dataclass
class _Cached:
    stamp: tuple[int, int, int]  # (inode, size, mtime_ns): the file was replaced when this changes
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime


class FeedFiles:
    """Serves the written feed files from one directory; only names on the whitelist are ever opened."""

    def __init__(self, feeds_dir: Path, topic_ids: list[str]):
        self.feeds_dir = Path(feeds_dir)
        self.allowed = channel_files(topic_ids)  # the whitelist: every channel's feed file names
        self._cache: dict[str, _Cached] = {}

    def get(self, name: str) -> _Cached | None:
        """The current bytes and validators of a whitelisted file, or None (unknown name, not written yet)."""
        if name not in self.allowed:
            return None
        path = self.feeds_dir / name  # name is a whitelist key, never raw user input
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        cached = self._cache.get(name)
        if cached is None or cached.stamp != stamp:
            body = path.read_bytes()
            cached = _Cached(
                stamp=stamp,
                body=body,
                gzipped=gzip.compress(body, mtime=0),
                etag=hashlib.sha256(body).hexdigest()[:32],
                last_modified=datetime.fromtimestamp(stat.st_mtime, UTC).replace(microsecond=0),
            )
            self._cache[name] = cached
        return cached


_CONFIG = web.AppKey("config", object)
_STORE = web.AppKey("store", object)
_FILES = web.AppKey("files", FeedFiles)
_HEALTH = web.AppKey("health", object)
_METRICS = web.AppKey("metrics", object)


def create_app(
    config: Any, store: Any, *, metrics: Metrics | None = None, health: Health | None = None
) -> web.Application:
    """The app: the pages, the feeds, /feeds/feed.xsl, /opml, /healthz, /metrics if hooked (see the module doc)."""
    app = web.Application(middlewares=[_headers])
    app[_CONFIG] = config
    app[_STORE] = store
    ids = [c.id for c in feeds.channels(config.topics, config.chats)]
    app[_FILES] = FeedFiles(config.feeds_dir, ids + digest_feed_ids([i for i in ids if i in config.topics]))
    app[_HEALTH] = health
    app[_METRICS] = metrics
    # add_get also answers HEAD (same headers, no body).
    app.router.add_get("/", _index)
    app.router.add_get("/c/{channel}", _channel_slash)
    app.router.add_get("/c/{channel}/", _channel)
    app.router.add_get(r"/c/{channel}/page/{number:\d{1,7}}", _channel)
    app.router.add_get(r"/a/{article:\d{1,12}}", _article)
    app.router.add_get("/search", _search)
    app.router.add_get("/feeds/feed.xsl", _stylesheet)
    app.router.add_get("/feeds/{name}", _feed)
    app.router.add_get("/opml", _opml)
    app.router.add_get("/healthz", _healthz)
    if metrics is not None:
        app.router.add_get("/metrics", _metrics)
    return app


@web.middleware
async def _headers(request: web.Request, handler: Callable) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


# ---- feeds -------------------------------------------------------------------------------------


async def _feed(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    cached = request.app[_FILES].get(name)
    if cached is None:
        raise web.HTTPNotFound(text="not found\n")
    channel_id, ext = request.app[_FILES].allowed[name]
    if _is_browser(request):
        # A person opened the link: show the channel's page, saying how to subscribe to this very URL.
        config = request.app[_CONFIG]
        item = find_channel(config, channel_id)
        if item is not None:
            page = render_channel(config, request.app[_STORE], item, 1, "../", feed_ext=ext)
            return _html(request, page)
        return _conditional(request, cached, BROWSER_TYPES[ext], variant="b")
    return _conditional(request, cached, CONTENT_TYPES[ext])


def _is_browser(request: web.Request) -> bool:
    """A page navigation: text/html at full weight and no feed type named (SimplePie names both)."""
    accept = request.headers.get("Accept", "").lower()
    if any(media in accept for media in FEED_MEDIA):
        return False
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        if media.strip() == "text/html":
            return "q=" not in params.replace(" ", "") or params.replace(" ", "").endswith("q=1")
    return False


def _conditional(request: web.Request, cached: _Cached, content_type: str, variant: str = "") -> web.Response:
    use_gzip = accepts_gzip(request)
    # A strong ETag names one exact representation: the gzip and browser variants get their own.
    suffix = "-".join(filter(None, (variant, "gz" if use_gzip else "")))
    etag = f'"{cached.etag}-{suffix}"' if suffix else f'"{cached.etag}"'
    headers = {
        "ETag": etag,
        "Last-Modified": format_http_date(cached.last_modified),
        "Cache-Control": FEED_CACHE_CONTROL,
        "Vary": "Accept, Accept-Encoding",
    }
    if not_modified(request, etag, cached.last_modified):
        return web.Response(status=304, headers=headers)
    body = cached.gzipped if use_gzip else cached.body
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = content_type
    return web.Response(body=body, headers=headers)


async def _stylesheet(request: web.Request) -> web.StreamResponse:
    body = feeds.stylesheet()
    cached = _Cached(
        stamp=(0, 0, 0),
        body=body,
        gzipped=gzip.compress(body, mtime=0),
        etag=hashlib.sha256(body).hexdigest()[:32],
        last_modified=_STARTED,
    )
    return _conditional(request, cached, XSL_TYPE)


# ---- OPML, health, metrics -----------------------------------------------------------------------


async def _opml(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=render_opml(request.app[_CONFIG]),
        headers={"Content-Type": OPML_TYPE, "Content-Disposition": 'inline; filename="feedbot.opml"'},
    )


async def _healthz(request: web.Request) -> web.StreamResponse:
    check = request.app[_HEALTH]
    try:
        healthy, details = check() if check else (True, {})
    except Exception as exc:  # a broken check is itself a reason to report unhealthy, not to answer 500
        healthy, details = False, {"error": f"health check failed: {type(exc).__name__}"}
    # /healthz is public behind the documented proxy: no string in it may carry URL credentials or a token.
    body = _redacted({"status": "ok" if healthy else "unhealthy", **details})
    return web.json_response(
        body,
        status=200 if healthy else 503,
        dumps=lambda v: json.dumps(v, default=str),
        headers={"Cache-Control": "no-store"},
    )


def _redacted(value: Any) -> Any:
    """Every string inside a JSON-like value, redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


async def _metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=request.app[_METRICS]().encode("utf-8"),
        headers={"Content-Type": METRICS_TYPE, "Cache-Control": "no-store"},
    )


# ---- pages -------------------------------------------------------------------------------------


def _html(request: web.Request, page: str | None) -> web.Response:
    """A rendered page with validators (ETag from its bytes, Last-Modified from the store), gzip, the CSP."""
    if page is None:
        raise web.HTTPNotFound(text="not found\n")
    body = page.encode("utf-8")
    changed = request.app[_STORE].changed_at()
    # The code's start counts as a change too: a new version renders the same articles differently.
    last_modified = max(changed.replace(microsecond=0), _STARTED) if changed else _STARTED
    etag = hashlib.sha256(body).hexdigest()[:32]
    use_gzip = accepts_gzip(request)
    headers = {
        "ETag": f'"{etag}-gz"' if use_gzip else f'"{etag}"',
        "Last-Modified": format_http_date(last_modified),
        "Cache-Control": PAGE_CACHE_CONTROL,
        "Vary": "Accept, Accept-Encoding",
        "Content-Security-Policy": PAGE_CSP,
    }
    if not_modified(request, headers["ETag"], last_modified):
        return web.Response(status=304, headers=headers)
    if use_gzip:
        body = gzip.compress(body, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = HTML_TYPE
    return web.Response(body=body, headers=headers)


def _number(value: str | None) -> int:
    """A page number from the URL; anything else is page 1."""
    try:
        return max(1, min(int(value or 1), MAX_PAGE_NUMBER))
    except ValueError:
        return 1


async def _index(request: web.Request) -> web.StreamResponse:
    return _html(request, render_index(request.app[_CONFIG], request.app[_STORE]))


async def _channel_slash(request: web.Request) -> web.StreamResponse:
    item = find_channel(request.app[_CONFIG], request.match_info["channel"])
    if item is None:
        raise web.HTTPNotFound(text="not found\n")
    raise web.HTTPMovedPermanently(f"{item.id}/")  # relative: resolves under any path prefix


async def _channel(request: web.Request) -> web.StreamResponse:
    config = request.app[_CONFIG]
    item = find_channel(config, request.match_info["channel"])
    if item is None:
        raise web.HTTPNotFound(text="not found\n")
    number = request.match_info.get("number")
    if number is None:
        return _html(request, render_channel(config, request.app[_STORE], item, 1, "../../"))
    if int(number) <= 1:
        raise web.HTTPMovedPermanently("../")  # page 1 has one URL: the channel's own
    return _html(request, render_channel(config, request.app[_STORE], item, int(number), "../../../"))


async def _article(request: web.Request) -> web.StreamResponse:
    article_id = int(request.match_info["article"])
    return _html(request, render_article(request.app[_CONFIG], request.app[_STORE], article_id, "../"))


async def _search(request: web.Request) -> web.StreamResponse:
    query = request.query
    page = render_search(request.app[_CONFIG], request.app[_STORE], query.get("q", ""), query.get("channel", ""),
                         _number(query.get("page")), "")
    return _html(request, page)
