"""One shared HTTP client: timeouts, size cap, redirects, charset, conditional GET, Retry-After, per-host limit.

One aiohttp.ClientSession over one connector: `[fetch] per_host` connections per host, `max_connections`
in all. Redirects are followed here (limit, loop detection), bodies are decoded here (the size cap holds
for what a gzip body inflates to), and proxies come from the environment, read once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from urllib.parse import urljoin

import aiohttp
from yarl import URL

from feedbot import PROJECT_URL, __version__
from feedbot.clock import parse_http_date  # re-exported: one HTTP-date reader for client and server
from feedbot.errors import FetchError
from feedbot.settings.config import FetchConfig
from feedbot.settings.secrets import redact_url
from feedbot.sources.charset import (  # re-exported: the Fetcher's callers read charsets through here
    ENCODING_ALIASES,
    canonical_encoding,
    detect_encoding,
    header_charset,
    sniff_charset,
)
from feedbot.sources.transport import BodyDecoder, EnvironmentProxies, HostConnector

__all__ = ["DEFAULT_USER_AGENT", "ENCODING_ALIASES", "FetchResult", "FetchStats", "Fetcher", "canonical_encoding",
           "detect_encoding", "header_charset", "human_bytes", "parse_http_date", "parse_retry_after",
           "sniff_charset"]

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"feedbot/{__version__} (+{PROJECT_URL})"
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
RETRY_AFTER_STATUSES = {429, 503}
URL_CACHE_SIZE = 4096
READ_CHUNK = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024  # one header line or field; aiohttp's default of 8 KiB refuses some real sites


def human_bytes(n: int) -> str:
    """8388608 → '8 MiB'."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    moment = parse_http_date(value)
    if moment is None:
        return None
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def shown(url: str) -> str:
    """A URL as it may appear in a message or a log: its user:password@ as ***@ (one rule: settings.secrets)."""
    return redact_url(url)


@dataclass(frozen=True)
class FetchResult:
    """One fetched document (or a 304: not_modified, no content)."""

    url: str
    final_url: str
    status: int
    not_modified: bool
    content: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # case-insensitive keys

    @cached_property
    def encoding(self) -> str:
        """The charset the body is decoded with (header, then in-document declaration, then fallback)."""
        return detect_encoding(self.content, self.content_type)

    @cached_property
    def text(self) -> str:
        """The body decoded; undecodable bytes become U+FFFD."""
        return self.content.decode(self.encoding, errors="replace")


@dataclass
class FetchStats:
    """Counters for benchmarks and status: what the client has done so far."""

    requests: int = 0
    not_modified: int = 0
    bytes_received: int = 0  # on the wire, before decompression
    bytes_decoded: int = 0


class Fetcher:
    """Polite, bounded HTTP GETs over one shared aiohttp.ClientSession."""

    def __init__(self, config: FetchConfig | None = None, *, max_connections: int = 100,
                 short_retry: float = 2.0):
        self.config = config or FetchConfig()
        self.short_retry = short_retry  # a Retry-After this short is waited out inside the request, once
        self.max_connections = max_connections  # requests in flight, and hosts that keep idle connections
        self.stats = FetchStats()
        self._proxies = EnvironmentProxies()
        self._urls: dict[str, URL] = {}  # parsed once per polled URL
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> Fetcher:
        self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the shared session and its connections."""
        self._closed = True
        if self._session is not None:
            await self._session.close()

    def _open(self) -> aiohttp.ClientSession:
        """The session, built on first use (aiohttp wants a running event loop)."""
        if self._session is None:
            if self._closed:
                raise FetchError("the Fetcher is closed")
            timeout = self.config.timeout
            connector = HostConnector(keep_hosts=self.max_connections, limit=self.max_connections,
                                      limit_per_host=self.config.per_host)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # the total deadline is asyncio.timeout in get(): it also covers waiting for a connection
                timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_connect=timeout, sock_read=timeout),
                headers={"User-Agent": self.config.user_agent or DEFAULT_USER_AGENT,
                         "Accept-Encoding": "gzip, deflate"},
                auto_decompress=False,  # decoded by BodyDecoder, under the size cap
                cookie_jar=aiohttp.CookieJar(unsafe=True),  # unsafe: keep cookies from IP-address hosts too
                trust_env=False,  # proxies: EnvironmentProxies, read once
                max_line_size=MAX_HEADER_BYTES,
                max_field_size=MAX_HEADER_BYTES,
            )
        return self._session

    def _url(self, url: str, current: str) -> URL:
        parsed = self._urls.get(current)
        if parsed is None:
            try:
                parsed = URL(current)
            except (ValueError, TypeError) as exc:
                raise FetchError(f"bad URL {shown(current)!r}: {exc}", url=url) from exc
            if parsed.scheme not in ("http", "https") or not parsed.raw_host:
                raise FetchError(f"bad URL {shown(current)!r}: expected an absolute http:// or https:// URL",
                                 url=url)
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()
            self._urls[current] = parsed
        return parsed

    async def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                  accept: str | None = None, max_bytes: int | None = None,
                  deadline: float | None = None) -> FetchResult:
        """GET url conditionally; every failure is a FetchError whose message names the URL."""
        deadline = deadline or self.config.deadline
        limit = max_bytes or self.config.max_body_bytes
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        started = time.monotonic()
        try:
            async with asyncio.timeout(deadline):
                result = await self._follow(url, headers, limit)
                if isinstance(result, FetchError):
                    retry_after = result.retry_after
                    remaining = deadline - (time.monotonic() - started)
                    if retry_after is not None and retry_after <= min(self.short_retry, remaining - 1):
                        log.info("%s: waiting %.1fs (Retry-After) before one retry", shown(url), retry_after)
                        await asyncio.sleep(retry_after)
                        result = await self._follow(url, headers, limit)
                    if isinstance(result, FetchError):
                        raise result
                return result
        except TimeoutError:
            raise FetchError(f"timed out after {deadline:g}s fetching {shown(url)}", url=url) from None

    async def _follow(self, url: str, headers: dict[str, str], limit: int) -> FetchResult | FetchError:
        """Follow redirects by hand; returns (not raises) a Retry-After error so get() may retry once."""
        seen = [url]
        current = url
        while True:
            outcome = await self._request(url, current, headers, limit)
            if isinstance(outcome, str):  # a redirect target
                target = outcome
                if target in seen:
                    chain = " → ".join(shown(hop) for hop in [*seen[seen.index(target):], target])
                    raise FetchError(f"redirect loop fetching {shown(url)}: {chain}", url=url)
                if len(seen) > self.config.max_redirects:
                    raise FetchError(f"too many redirects (more than {self.config.max_redirects}) fetching "
                                     f"{shown(url)}", url=url)
                seen.append(target)
                current = target
                continue
            return outcome

    async def _request(self, url: str, current: str, headers: dict[str, str],
                       limit: int) -> FetchResult | FetchError | str:
        target = self._url(url, current)
        session = self._open()
        proxy = self._proxies.for_url(target) if self._proxies else None
        timeout = self.config.timeout
        self.stats.requests += 1
        try:
            if proxy is None:
                response = await session.get(target, headers=headers, allow_redirects=False)
            elif target.scheme == "http":  # the request itself goes to the proxy, so it carries the credentials
                response = await session.get(target, headers={**headers, **(proxy[1] or {})}, allow_redirects=False,
                                             proxy=proxy[0])
            else:  # https: the credentials go on the CONNECT request
                response = await session.get(target, headers=headers, allow_redirects=False, proxy=proxy[0],
                                             proxy_headers=proxy[1])
        except aiohttp.ConnectionTimeoutError as exc:
            raise FetchError(f"timed out after {timeout:g}s connecting to {shown(current)}", url=url) from exc
        except aiohttp.ServerTimeoutError as exc:
            raise FetchError(f"timed out after {timeout:g}s waiting for an answer from {shown(current)}",
                             url=url) from exc
        except aiohttp.ClientConnectorError as exc:
            reason = exc.strerror or str(exc.os_error) or type(exc).__name__
            raise FetchError(f"cannot connect to {shown(current)}: {reason}", url=url) from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise FetchError(f"request to {shown(current)} failed: {exc or type(exc).__name__}", url=url) from exc
        try:
            outcome = await self._handle(url, current, response, limit)
        except BaseException:
            response.close()  # mid-body: drop the connection, the server stops sending
            raise
        response.release()
        return outcome

    async def _handle(self, url: str, current: str, response: aiohttp.ClientResponse,
                      limit: int) -> FetchResult | FetchError | str:
        status = response.status
        headers = response.headers
        if status in REDIRECT_STATUSES:
            location = headers.get("Location")
            if not location:
                raise FetchError(f"HTTP {status} redirect without a Location from {shown(current)}", url=url)
            return urljoin(current, location.strip())
        if status == 304:
            self.stats.not_modified += 1
            log.debug("%s: 304 not modified", current)
            return FetchResult(url=url, final_url=current, status=304, not_modified=True, content=b"",
                               etag=headers.get("ETag"), last_modified=headers.get("Last-Modified"),
                               content_type=headers.get("Content-Type"), headers=headers)
        if not 200 <= status < 300:
            reason = response.reason or ""
            message = f"HTTP {status}{' ' + reason if reason else ''} from {shown(current)}"
            if status in RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(headers.get("Retry-After"))
                if retry_after is not None:
                    message += f" (Retry-After {retry_after:g}s)"
                return FetchError(message, url=url, retry_after=retry_after)
            raise FetchError(message, url=url)
        content = await self._read_body(url, current, response, limit)
        log.debug("%s: HTTP %d, %d bytes", current, status, len(content))
        return FetchResult(url=url, final_url=current, status=status, not_modified=False, content=content,
                           etag=headers.get("ETag"), last_modified=headers.get("Last-Modified"),
                           content_type=headers.get("Content-Type"), headers=headers)

    async def _read_body(self, url: str, current: str, response: aiohttp.ClientResponse, limit: int) -> bytes:
        where = shown(current)
        too_big = f"body exceeds {human_bytes(limit)} from {where}"
        encoding = response.headers.get("Content-Encoding", "")
        length = response.headers.get("Content-Length", "")
        if not encoding and length.isdigit() and int(length) > limit:
            raise FetchError(f"{too_big} (Content-Length {length})", url=url)
        decoder = BodyDecoder(encoding, where)
        stream = response.content
        chunks: list[bytes] = []
        size = 0
        try:
            while raw := await stream.read(READ_CHUNK):
                self.stats.bytes_received += len(raw)
                data = decoder.feed(raw, limit - size)
                size += len(data)
                if size > limit:
                    raise FetchError(too_big, url=url)
                chunks.append(data)
        except aiohttp.ServerTimeoutError as exc:
            raise FetchError(f"timed out after {self.config.timeout:g}s reading {where}", url=url) from exc
        except aiohttp.ClientError as exc:
            raise FetchError(f"reading the body of {where} failed: {exc or type(exc).__name__}", url=url) from exc
        self.stats.bytes_decoded += size
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
