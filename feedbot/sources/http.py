"""One shared HTTP client: timeouts, size cap, redirects, charset, conditional GET, Retry-After, per-host limit."""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import logging
import re
import time
import urllib.request
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from urllib.parse import urljoin

import httpx

from feedbot import PROJECT_URL, __version__
from feedbot.errors import FetchError
from feedbot.settings.config import FetchConfig

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"feedbot/{__version__} (+{PROJECT_URL})"
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
RETRY_AFTER_STATUSES = {429, 503}
# Chinese news sites label GB18030 text as GBK or GB2312; GB18030 is the superset that decodes all three.
ENCODING_ALIASES = {"gbk": "gb18030", "gb2312": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
                    "gb_2312-80": "gb18030", "euc-cn": "gb18030", "csgb2312": "gb18030", "utf8": "utf-8"}
SNIFF_BYTES = 4096
URL_CACHE_SIZE = 4096
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)


def human_bytes(n: int) -> str:
    """8388608 → '8 MiB'."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def canonical_encoding(name: str | None) -> str | None:
    """A Python codec name for a declared charset, GBK family → gb18030; None if unknown."""
    if not name:
        return None
    name = name.strip().strip("\"'").lower()
    name = ENCODING_ALIASES.get(name, name)
    try:
        name = codecs.lookup(name).name
    except LookupError:
        return None
    return ENCODING_ALIASES.get(name, name)


def header_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header."""
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return match.group(1) if match else None


def sniff_charset(content: bytes) -> str | None:
    """The charset a document declares: BOM, XML declaration, or <meta charset> / http-equiv."""
    if content.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = content[:SNIFF_BYTES]
    for pattern in (_XML_DECL, _META_CHARSET):
        match = pattern.search(head)
        if match:
            found = canonical_encoding(match.group(1).decode("ascii", "replace"))
            if found:
                return found
    return None


def detect_encoding(content: bytes, content_type: str | None) -> str:
    """HTTP header, then the document's own declaration, then UTF-8 if it decodes, else GB18030."""
    declared = canonical_encoding(header_charset(content_type)) or sniff_charset(content)
    candidates = [declared] if declared else []
    candidates += [enc for enc in ("utf-8", "gb18030") if enc not in candidates]
    for encoding in candidates:
        try:
            content.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return declared or "utf-8"  # undecodable either way: replace the bad bytes


def parse_http_date(value: str) -> datetime | None:
    """An HTTP date (Retry-After, If-Modified-Since) as an aware datetime; None when unreadable."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


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


def environment_proxies() -> dict[str, str | None]:
    """HTTP(S)_PROXY / ALL_PROXY / NO_PROXY as httpx mount patterns → proxy URL (None: go direct)."""
    found = urllib.request.getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        proxy = found.get(scheme)
        if proxy:
            mounts[f"{scheme}://"] = proxy if "://" in proxy else f"http://{proxy}"
    if not mounts:
        return {}
    for host in (name.strip() for name in found.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
            continue
        try:
            address = ipaddress.ip_address(host.split("/")[0])
        except ValueError:
            # same reading as httpx: "example.org" also bypasses "www.example.org"
            mounts[f"all://{host}" if host.lower() == "localhost" else f"all://*{host}"] = None
        else:
            mounts[f"all://[{host}]" if address.version == 6 else f"all://{host}"] = None
    return mounts


class _HostPool:
    """One host's connection pool and how many of its responses are still open."""

    __slots__ = ("active", "transport")

    def __init__(self, transport: httpx.AsyncHTTPTransport):
        self.transport = transport
        self.active = 0


class _Released(httpx.AsyncByteStream):
    """A response body that tells its host pool when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, pool: _HostPool):
        self._stream = stream
        self._pool: _HostPool | None = pool

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()  # the body's own iterator: no extra generator per chunk

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.active -= 1
            self._pool = None
        await self._stream.aclose()


class _HostPools(httpx.AsyncBaseTransport):
    """A small connection pool per host; beyond keep_hosts pools, the least recently used idle ones are closed.

    httpcore rescans its whole pool twice per request (quadratically, polling every idle socket), so one
    shared pool of 50 connections cost more CPU than the rest of a 304; a pool per host keeps it O(per_host).
    """

    def __init__(self, *, per_host: int, keep_hosts: int, ssl_context: object):
        self._limits = httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host)
        self._keep_hosts = keep_hosts
        self._ssl_context = ssl_context
        self._pools: OrderedDict[tuple[bytes, str, int | None], _HostPool] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.raw_scheme, url.host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _HostPool(httpx.AsyncHTTPTransport(verify=self._ssl_context,
                                                                         limits=self._limits))
            pool.active += 1
            if len(self._pools) > self._keep_hosts:
                await self._close_idle()
        else:
            self._pools.move_to_end(key)
            pool.active += 1
        try:
            response = await pool.transport.handle_async_request(request)
        except BaseException:
            pool.active -= 1
            raise
        response.stream = _Released(response.stream, pool)
        return response

    async def _close_idle(self) -> None:
        idle = [key for key, pool in self._pools.items() if not pool.active]
        # taken out of the map before any await, so no request picks up a pool being closed
        closing = [self._pools.pop(key) for key in idle[:len(self._pools) - self._keep_hosts]]
        for pool in closing:
            await pool.transport.aclose()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.transport.aclose()


class _Cookies(httpx.Cookies):
    """A cookie jar that hands only responses with Set-Cookie to http.cookiejar (a costly round trip)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _Client(httpx.AsyncClient):
    """The shared client, its cookie jar a _Cookies (httpx reads and sets it only through this property)."""

    def __init__(self, **kwargs: object):
        self._jar = _Cookies()
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        self._jar = _Cookies(cookies)  # type: ignore[arg-type]


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
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

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


class _BodyDecoder:
    """Content-Encoding decoding with a hard output limit, so a gzip bomb never inflates past the cap."""

    def __init__(self, encoding: str, url: str):
        encoding = encoding.strip().lower()
        self._raw_deflate_probe = False
        if encoding in ("", "identity"):
            self._inflate = None
        elif encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflate = zlib.decompressobj()
            self._raw_deflate_probe = True  # some servers send raw deflate without the zlib header
        else:
            raise FetchError(f"unsupported Content-Encoding {encoding!r} from {url}", url=url)
        self.url = url

    def feed(self, data: bytes, room: int) -> bytes:
        """Decode one chunk, producing at most room + 1 bytes (one more than fits means over the cap)."""
        if self._inflate is None:
            return data
        try:
            out = self._inflate.decompress(data, room + 1)
        except zlib.error as exc:
            if not self._raw_deflate_probe:
                raise FetchError(f"corrupt compressed body from {self.url}: {exc}", url=self.url) from exc
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            self._raw_deflate_probe = False
            return self.feed(data, room)
        self._raw_deflate_probe = False
        return out


class Fetcher:
    """Polite, bounded HTTP GETs over one shared httpx.AsyncClient."""

    def __init__(self, config: FetchConfig | None = None, *, max_connections: int = 50,
                 short_retry: float = 2.0, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config or FetchConfig()
        self.short_retry = short_retry  # a Retry-After this short is waited out inside the request, once
        self.stats = FetchStats()
        timeout = httpx.Timeout(connect=self.config.timeout, read=self.config.timeout,
                                write=self.config.timeout, pool=self.config.deadline)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        mounts = None
        if transport is None:
            # A custom transport turns off httpx's own HTTP(S)_PROXY/NO_PROXY handling, so the environment is
            # read here, once. The SSL context (a CA bundle load) is built once and shared by every host's pool.
            # max_connections bounds requests in flight (below) and how many hosts keep idle connections.
            ssl_context = httpx.create_ssl_context()
            transport = _HostPools(per_host=self.config.per_host, keep_hosts=max_connections, ssl_context=ssl_context)
            mounts = {pattern: None if proxy is None else httpx.AsyncHTTPTransport(proxy=proxy, verify=ssl_context,
                                                                                 limits=limits)
                      for pattern, proxy in environment_proxies().items()}
        self.client = _Client(
            timeout=timeout,
            follow_redirects=False,  # followed here: limit, loop detection, per-host slots per hop
            headers={
                "User-Agent": self.config.user_agent or DEFAULT_USER_AGENT,
                "Accept-Encoding": "gzip, deflate",
            },
            limits=limits,
            transport=transport,
            mounts=mounts,
            trust_env=False,
        )
        self._base_headers = dict(self.client.headers)
        self._timeout_extension = timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}  # parsed once per polled URL
        self._host_slots: dict[tuple[bytes, str, int | None], asyncio.Semaphore] = {}
        # Bounds requests in flight (the host pools bound each host) and keeps httpcore's queues short.
        self._pool_slots = asyncio.Semaphore(max_connections)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the shared client and its connections."""
        await self.client.aclose()

    def _slot(self, url: httpx.URL) -> asyncio.Semaphore:
        host = (url.raw_scheme, url.host, url.port)
        slot = self._host_slots.get(host)
        if slot is None:
            slot = self._host_slots[host] = asyncio.Semaphore(self.config.per_host)
        return slot

    def _build(self, url: str, current: str, headers: dict[str, str]) -> httpx.Request:
        try:
            if self.client.cookies:  # a server set cookies: let httpx send them back
                request = self.client.build_request("GET", current, headers=headers)
            else:  # what build_request does, minus merging an empty cookie jar and parsing a known URL again
                parsed = self._urls.get(current)
                if parsed is None:
                    if len(self._urls) >= URL_CACHE_SIZE:
                        self._urls.clear()
                    parsed = self._urls[current] = httpx.URL(current)
                request = httpx.Request("GET", parsed, headers={**self._base_headers, **headers},
                                        extensions={"timeout": self._timeout_extension})
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise FetchError(f"bad URL {current!r}: {exc}", url=url) from exc
        if request.url.scheme not in ("http", "https") or not request.url.host:
            raise FetchError(f"bad URL {current!r}: expected an absolute http:// or https:// URL", url=url)
        return request

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
                retry_after = getattr(result, "retry_after", None)
                if isinstance(result, FetchError):
                    remaining = deadline - (time.monotonic() - started)
                    if retry_after is not None and retry_after <= min(self.short_retry, remaining - 1):
                        log.info("%s: waiting %.1fs (Retry-After) before one retry", url, retry_after)
                        await asyncio.sleep(retry_after)
                        result = await self._follow(url, headers, limit)
                    if isinstance(result, FetchError):
                        raise result
                return result
        except TimeoutError:
            raise FetchError(f"timed out after {deadline:g}s fetching {url}", url=url) from None

    async def _follow(self, url: str, headers: dict[str, str], limit: int) -> FetchResult | FetchError:
        """Follow redirects by hand; returns (not raises) a Retry-After error so get() may retry once."""
        seen = [url]
        current = url
        while True:
            request = self._build(url, current, headers)
            async with self._slot(request.url), self._pool_slots:
                outcome = await self._request(url, current, request, limit)
            if isinstance(outcome, str):  # a redirect target
                target = outcome
                if target in seen:
                    chain = " → ".join([*seen[seen.index(target):], target])
                    raise FetchError(f"redirect loop fetching {url}: {chain}", url=url)
                if len(seen) > self.config.max_redirects:
                    raise FetchError(f"too many redirects (more than {self.config.max_redirects}) fetching {url}",
                                     url=url)
                seen.append(target)
                current = target
                continue
            return outcome

    async def _request(self, url: str, current: str, request: httpx.Request,
                       limit: int) -> FetchResult | FetchError | str:
        timeout = self.config.timeout
        self.stats.requests += 1
        try:
            response = await self.client.send(request, stream=True)
        except httpx.ConnectTimeout as exc:
            raise FetchError(f"timed out after {timeout:g}s connecting to {current}", url=url) from exc
        except httpx.ReadTimeout as exc:
            raise FetchError(f"timed out after {timeout:g}s waiting for an answer from {current}", url=url) from exc
        except httpx.TimeoutException as exc:
            raise FetchError(f"timed out after {timeout:g}s fetching {current}", url=url) from exc
        except httpx.ConnectError as exc:
            raise FetchError(f"cannot connect to {current}: {exc or type(exc).__name__}", url=url) from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"request to {current} failed: {exc or type(exc).__name__}", url=url) from exc
        try:
            return await self._handle(url, current, response, limit)
        finally:
            await response.aclose()

    async def _handle(self, url: str, current: str, response: httpx.Response,
                      limit: int) -> FetchResult | FetchError | str:
        status = response.status_code
        if status in REDIRECT_STATUSES:
            location = response.headers.get("Location")
            if not location:
                raise FetchError(f"HTTP {status} redirect without a Location from {current}", url=url)
            return urljoin(current, location.strip())
        headers = response.headers
        if status == 304:
            await response.aread()  # empty, but read to the end so the connection goes back to the pool
            self.stats.not_modified += 1
            log.debug("%s: 304 not modified", current)
            return FetchResult(url=url, final_url=current, status=304, not_modified=True, content=b"",
                               etag=headers.get("ETag"), last_modified=headers.get("Last-Modified"),
                               content_type=headers.get("Content-Type"), headers=dict(headers))
        if not 200 <= status < 300:
            reason = response.reason_phrase or ""
            message = f"HTTP {status}{' ' + reason if reason else ''} from {current}"
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
                           content_type=headers.get("Content-Type"), headers=dict(headers))

    async def _read_body(self, url: str, current: str, response: httpx.Response, limit: int) -> bytes:
        too_big = f"body exceeds {human_bytes(limit)} from {current}"
        encoding = response.headers.get("Content-Encoding", "")
        length = response.headers.get("Content-Length", "")
        if not encoding and length.isdigit() and int(length) > limit:
            raise FetchError(f"{too_big} (Content-Length {length})", url=url)
        decoder = _BodyDecoder(encoding, current)
        chunks: list[bytes] = []
        size = 0
        try:
            async for raw in response.aiter_raw():
                self.stats.bytes_received += len(raw)
                data = decoder.feed(raw, limit - size)
                size += len(data)
                if size > limit:
                    raise FetchError(too_big, url=url)
                chunks.append(data)
        except httpx.ReadTimeout as exc:
            raise FetchError(f"timed out after {self.config.timeout:g}s reading {current}", url=url) from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"reading the body of {current} failed: {exc or type(exc).__name__}", url=url) from exc
        self.stats.bytes_decoded += size
        return b"".join(chunks)
