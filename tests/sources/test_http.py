"""The shared HTTP client against the loopback sample site: limits, faults, charset, conditional GET."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from feedbot import __version__
from feedbot.errors import FetchError
from feedbot.settings.config import FetchConfig
from feedbot.sources.http import (
    Fetcher,
    canonical_encoding,
    detect_encoding,
    human_bytes,
    parse_retry_after,
    sniff_charset,
)
from tests.doubles.site import BOMB_DECODED_BYTES, SampleSite

CAP = 256 * 1024


@pytest.fixture
async def site():
    async with SampleSite() as running:
        yield running


@pytest.fixture
async def fetcher():
    async with Fetcher(FetchConfig(timeout=0.5, deadline=1.5, max_body_bytes=CAP, max_redirects=3)) as client:
        yield client


async def test_plain_get_returns_body_validators_and_utf8(site, fetcher):
    result = await fetcher.get(site.category_url)
    assert result.status == 200 and not result.not_modified
    assert result.etag and result.last_modified
    assert result.encoding == "utf-8"
    assert "中国环境报新闻" in result.text
    assert result.final_url == site.category_url


async def test_user_agent_names_feedbot_and_the_project(site, fetcher):
    await fetcher.get(site.category_url)
    agent = site.request_headers["/category/zhongguohuanjingbao.html"]["User-Agent"]
    assert agent.startswith(f"feedbot/{__version__} (+http")


async def test_configured_user_agent_wins(site):
    async with Fetcher(FetchConfig(user_agent="my-bot/1.0 (ops@example.org)")) as client:
        await client.get(site.feed_url)
    assert site.request_headers["/feed.xml"]["User-Agent"] == "my-bot/1.0 (ops@example.org)"


async def test_etag_answered_304_without_body(site, fetcher):
    first = await fetcher.get(site.category_url)
    again = await fetcher.get(site.category_url, etag=first.etag)
    assert again.not_modified and again.status == 304 and again.content == b""
    assert site.request_headers["/category/zhongguohuanjingbao.html"]["If-None-Match"] == first.etag
    assert fetcher.stats.not_modified == 1


async def test_last_modified_alone_gives_304(site, fetcher):
    first = await fetcher.get(site.category_url)
    again = await fetcher.get(site.category_url, last_modified=first.last_modified)
    assert again.not_modified


async def test_changed_page_is_fetched_again_despite_old_etag(site, fetcher):
    first = await fetcher.get(site.category_url)
    site.add_post("新的一篇", ["正文。"])
    again = await fetcher.get(site.category_url, etag=first.etag, last_modified=first.last_modified)
    assert not again.not_modified and "新的一篇" in again.text and again.etag != first.etag


@pytest.mark.parametrize(("kind", "words"), [
    ("500", "HTTP 500 Internal Server Error from "),
    ("404", "HTTP 404 Not Found from "),
])
async def test_http_errors_name_status_and_url(site, fetcher, kind, words):
    site.fault("/feed.xml", kind)
    with pytest.raises(FetchError) as caught:
        await fetcher.get(site.feed_url)
    assert str(caught.value) == words + site.feed_url
    assert caught.value.url == site.feed_url and caught.value.retry_after is None


async def test_429_surfaces_retry_after_seconds(site, fetcher):
    site.fault("/feed.xml", "429", retry_after=120)
    with pytest.raises(FetchError) as caught:
        await fetcher.get(site.feed_url)
    assert caught.value.retry_after == 120
    assert "HTTP 429" in str(caught.value) and "Retry-After 120s" in str(caught.value)
    assert site.hits["/feed.xml"] == 1  # too long to wait inside the request


async def test_503_with_http_date_retry_after(site, fetcher):
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=10), usegmt=True)
    site.fault("/feed.xml", "503", retry_after=later)
    with pytest.raises(FetchError) as caught:
        await fetcher.get(site.feed_url)
    assert 500 < caught.value.retry_after <= 600


async def test_short_retry_after_is_waited_out_once(site):
    site.fault("/feed.xml", "429", times=1, retry_after=0)
    async with Fetcher(FetchConfig(deadline=5), short_retry=1.0) as client:
        result = await client.get(site.feed_url)
    assert result.status == 200
    assert site.hits["/feed.xml"] == 2


async def test_hanging_server_times_out(site, fetcher):
    site.fault("/feed.xml", "hang")
    with pytest.raises(FetchError) as caught:
        await fetcher.get(site.feed_url)
    assert str(caught.value).startswith("timed out after 0.5s") and site.feed_url in str(caught.value)


async def test_endless_body_is_cut_by_the_total_deadline(site, fetcher):
    site.fault("/feed.xml", "endless")
    with pytest.raises(FetchError) as caught:
        await fetcher.get(site.feed_url)
    assert str(caught.value) == f"timed out after 1.5s fetching {site.feed_url}"
    assert 0 < site.bytes_sent["/feed.xml"] < CAP  # trickling, never reaching the cap


async def test_huge_body_stops_reading_at_the_cap(site, fetcher):
    site.fault("/feed.xml", "huge")  # 1 GiB, chunked, no Content-Length
    with pytest.raises(FetchError) as caught:
        await fetcher.get(site.feed_url)
    assert str(caught.value) == f"body exceeds 256 KiB from {site.feed_url}"
    assert fetcher.stats.bytes_received <= CAP + 128 * 1024  # read at most one chunk past the cap
    await asyncio.sleep(0.1)
    assert site.bytes_sent["/feed.xml"] < 64 << 20  # the server stopped when we hung up


async def test_declared_huge_length_is_refused_before_reading(site, fetcher):
    site.fault("/feed.xml", "huge-length")
    with pytest.raises(FetchError) as caught:
        await fetcher.get(site.feed_url)
    assert "body exceeds 256 KiB" in str(caught.value) and "Content-Length 1073741824" in str(caught.value)
    assert fetcher.stats.bytes_received == 0


async def test_gzip_bomb_never_inflates_past_the_cap(site, fetcher):
    site.fault("/feed.xml", "gzip-bomb")
    with pytest.raises(FetchError) as caught:
        await fetcher.get(site.feed_url)
    assert str(caught.value) == f"body exceeds 256 KiB from {site.feed_url}"
    assert fetcher.stats.bytes_decoded == 0
    assert fetcher.stats.bytes_received < BOMB_DECODED_BYTES // 100


async def test_gzip_encoded_body_is_decoded(site, fetcher):
    url = site.put("/zipped.xml", "<rss>压缩的内容</rss>" * 100, "application/xml; charset=utf-8", gzip=True)
    result = await fetcher.get(url)
    assert result.headers["content-encoding"] == "gzip"
    assert result.text == "<rss>压缩的内容</rss>" * 100


async def test_redirect_loop_is_an_error(site, fetcher):
    site.fault("/feed.xml", "redirect-loop")
    with pytest.raises(FetchError) as caught:
        await fetcher.get(site.feed_url)
    assert str(caught.value).startswith(f"redirect loop fetching {site.feed_url}: ")
    assert "?hop=1" in str(caught.value)


async def test_redirects_are_followed_to_the_final_url(site, fetcher):
    site.fault("/old-feed.xml", "redirect", target="/feed.xml")
    result = await fetcher.get(site.url("/old-feed.xml"))
    assert result.final_url == site.feed_url and result.url == site.url("/old-feed.xml")
    assert b"<feed" in result.content


async def test_too_many_redirects(site, fetcher):
    for hop in range(5):
        site.fault(f"/r{hop}", "redirect", target=f"/r{hop + 1}")
    with pytest.raises(FetchError) as caught:
        await fetcher.get(site.url("/r0"))
    assert str(caught.value) == f"too many redirects (more than 3) fetching {site.url('/r0')}"


async def test_gbk_page_with_meta_charset_is_decoded(site, fetcher):
    post = site.category_posts()[0]
    site.fault(post.path, "gbk")
    result = await fetcher.get(site.url(post.path))
    assert result.content.decode("gbk")  # really GBK bytes on the wire
    assert result.encoding == "gb18030"
    assert post.title in result.text


async def test_gbk_page_without_any_declaration_falls_back_to_gb18030(site, fetcher):
    post = site.category_posts()[0]
    site.fault(post.path, "gbk-bare")
    result = await fetcher.get(site.url(post.path))
    assert "charset" not in result.content[:2000].decode("gbk").lower().replace("content-type", "")
    assert result.encoding == "gb18030" and post.title in result.text


async def test_header_charset_comes_first(site, fetcher):
    url = site.put("/gbk.html", '<html><head><meta charset="utf-8"></head><body>碳市场</body></html>'.encode("gbk"),
                   "text/html; charset=GBK")
    result = await fetcher.get(url)
    assert result.encoding == "gb18030" and "碳市场" in result.text


async def test_connection_refused_is_a_fetch_error(fetcher):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError) as caught:
        await fetcher.get(f"http://127.0.0.1:{port}/feed.xml")
    assert str(caught.value).startswith(f"cannot connect to http://127.0.0.1:{port}/feed.xml")


async def test_per_host_limit_bounds_concurrent_requests(site):
    site.latency = 0.1
    async with Fetcher(FetchConfig(per_host=2)) as client:
        await asyncio.gather(*(client.get(site.url(p.path)) for p in site.category_posts()[:6]))
    assert site.peak_in_flight == 2


def test_encoding_helpers():
    assert canonical_encoding("GBK") == "gb18030" and canonical_encoding("gb2312") == "gb18030"
    assert canonical_encoding("UTF8") == "utf-8" and canonical_encoding("no-such-charset") is None
    assert sniff_charset(b'<?xml version="1.0" encoding="GB2312"?><rss/>') == "gb18030"
    assert sniff_charset(b'<meta http-equiv="Content-Type" content="text/html; charset=gbk">') == "gb18030"
    assert sniff_charset(b"<html><body>no declaration</body></html>") is None
    assert detect_encoding("碳市场".encode(), None) == "utf-8"
    assert detect_encoding("碳市场".encode("gbk"), "text/html") == "gb18030"
    # a header that lies is not trusted over bytes that cannot be that charset
    assert detect_encoding("碳市场".encode("gbk"), "text/html; charset=utf-8") == "gb18030"


def test_retry_after_parsing():
    now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Mon, 01 Jan 2024 12:05:00 GMT", now) == 300.0
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_human_bytes():
    assert human_bytes(8 << 20) == "8 MiB" and human_bytes(1536) == "1.5 KiB" and human_bytes(10) == "10 bytes"


class RawHTTPServer:
    """A keep-alive HTTP/1.1 server on loopback that records request lines, headers and open connections."""

    def __init__(self, body: bytes = b"<rss version='2.0'><channel><title>t</title></channel></rss>",
                 extra_headers: str = "", latency: float = 0.0):
        self.body, self.extra_headers, self.latency = body, extra_headers, latency
        self.request_lines: list[str] = []
        self.request_headers: list[dict[str, str]] = []
        self.open_connections = 0
        self.connections = 0

    async def __aenter__(self) -> RawHTTPServer:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                line, *fields = head.decode("latin-1").split("\r\n")
                self.request_lines.append(line)
                self.request_headers.append({k.strip(): v.strip() for k, _, v in
                                             (f.partition(":") for f in fields if f)})
                await asyncio.sleep(self.latency)
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n{self.extra_headers}"
                             f"Content-Length: {len(self.body)}\r\n\r\n".encode() + self.body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()


async def until(condition, seconds: float = 5.0) -> bool:
    """Wait (polling) for a condition the other side reaches asynchronously."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


def no_proxy_environment(monkeypatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def test_http_proxy_from_the_environment_is_used(monkeypatch):
    no_proxy_environment(monkeypatch)
    async with RawHTTPServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        async with Fetcher(FetchConfig(timeout=2, deadline=4)) as client:
            result = await client.get("http://feeds.example.invalid/rss.xml")
    assert result.status == 200 and b"<rss" in result.content
    assert proxy.request_lines == ["GET http://feeds.example.invalid/rss.xml HTTP/1.1"]


async def test_no_proxy_hosts_go_direct(monkeypatch):
    no_proxy_environment(monkeypatch)
    async with RawHTTPServer() as proxy, RawHTTPServer() as origin:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        async with Fetcher(FetchConfig(timeout=2, deadline=4)) as client:
            await client.get(f"{origin.url}/rss.xml")
    assert proxy.request_lines == [] and origin.request_lines == ["GET /rss.xml HTTP/1.1"]


async def test_connections_are_kept_alive_per_host_and_idle_hosts_closed_beyond_the_limit():
    async with (RawHTTPServer() as a, RawHTTPServer() as b, RawHTTPServer() as c,
                Fetcher(FetchConfig(timeout=2, deadline=4), max_connections=2) as client):
        for server in (a, b, a, b):
            await client.get(f"{server.url}/rss.xml")
        assert (a.connections, b.connections) == (1, 1)  # reused, not reopened
        await client.get(f"{c.url}/rss.xml")  # a third host: the least recently used idle one is closed
        assert await until(lambda: a.open_connections == 0)
        assert b.open_connections == 1 and c.open_connections == 1


async def test_busy_hosts_are_not_closed_under_them():
    servers = [RawHTTPServer(latency=0.05) for _ in range(4)]
    for server in servers:
        await server.__aenter__()
    try:
        async with Fetcher(FetchConfig(timeout=2, deadline=4, per_host=2), max_connections=2) as client:
            results = await asyncio.gather(*(client.get(f"{s.url}/{n}.xml") for n in range(3) for s in servers))
        assert all(r.status == 200 for r in results)
        assert all(len(s.request_lines) == 3 for s in servers)
    finally:
        for server in servers:
            await server.__aexit__()


async def test_cookies_a_server_sets_are_sent_back():
    async with (RawHTTPServer(extra_headers="Set-Cookie: visited=1; Path=/\r\n") as server,
                Fetcher(FetchConfig(timeout=2, deadline=4)) as client):
        await client.get(f"{server.url}/a.xml")
        await client.get(f"{server.url}/b.xml")
    assert "Cookie" not in server.request_headers[0]
    assert server.request_headers[1]["Cookie"] == "visited=1"


@pytest.mark.parametrize("url", ["ftp://example.org/feed.xml", "not a url", "http://", "http://[::1/feed.xml"])
async def test_bad_urls_are_fetch_errors(fetcher, url):
    with pytest.raises(FetchError) as caught:
        await fetcher.get(url)
    assert str(caught.value).startswith(f"bad URL {url!r}")
