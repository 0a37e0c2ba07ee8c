"""The Fetcher's pieces under HTTP: proxies from the environment, a bounded body decoder, a per-host connector."""

from __future__ import annotations

import base64
import ipaddress
import urllib.request
import zlib
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from yarl import URL

from feedbot.errors import FetchError

Proxy = tuple[URL, dict[str, str] | None] | None  # proxy URL, Proxy-Authorization header
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EnvironmentProxies:
    """HTTP(S)_PROXY / ALL_PROXY / NO_PROXY, read once; which proxy (or none) a URL goes through.

    aiohttp's trust_env reads the environment again on every request in a worker thread; this reads it
    at start-up and remembers the answer per host. NO_PROXY is read the way curl and httpx read it:
    "example.org" (or ".example.org") also bypasses "www.example.org"; IP addresses and CIDR networks
    match addresses; "*" turns proxies off.
    """

    def __init__(self, found: dict[str, str] | None = None):
        found = urllib.request.getproxies() if found is None else found
        self._proxies: dict[str, Proxy] = {}
        for scheme in ("http", "https"):
            proxy = found.get(scheme) or found.get("all")
            if proxy:
                self._proxies[scheme] = _proxy_url(proxy)
        self._names: list[str] = []
        self._networks: list[_Network] = []
        for entry in (item.strip() for item in found.get("no", "").split(",")):
            if entry == "*":
                self._proxies.clear()
            if not entry or entry == "*":
                continue
            host = urlsplit(entry).hostname if "://" in entry else entry
            host = (host or "").strip("[]").lower()
            try:
                self._networks.append(ipaddress.ip_network(host, strict=False))
            except ValueError:
                self._names.append(host.split(":")[0].lstrip("*").lstrip("."))
        self._by_host: dict[tuple[str, str], Proxy] = {}

    def __bool__(self) -> bool:
        return bool(self._proxies)

    def for_url(self, url: URL) -> Proxy:
        """The proxy for this URL, None to go direct."""
        if not self._proxies:
            return None
        key = (url.scheme, url.host or "")
        if key not in self._by_host:
            if len(self._by_host) > 4096:
                self._by_host.clear()
            proxy = self._proxies.get(url.scheme)
            self._by_host[key] = None if proxy is None or self._bypassed(key[1].lower()) else proxy
        return self._by_host[key]

    def _bypassed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return any(host == name or host.endswith("." + name) for name in self._names)
        return any(address in network for network in self._networks) or host in self._names


def _proxy_url(proxy: str) -> tuple[URL, dict[str, str] | None]:
    url = URL(proxy if "://" in proxy else f"http://{proxy}")
    headers = None
    if url.user is not None:  # credentials travel as Proxy-Authorization, never in a URL that gets logged
        pair = f"{unquote(url.user)}:{unquote(url.password or '')}".encode()
        headers = {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        url = url.with_user(None)
    return url, headers


class BodyDecoder:
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


class HostConnector(aiohttp.TCPConnector):
    """A TCPConnector that keeps idle keep-alive connections for at most `keep_hosts` hosts.

    aiohttp keeps every host's idle connections until its keep-alive timeout; a poller that walks
    thousands of hosts would hold thousands of sockets. After each release, the least recently used
    hosts' idle connections beyond `keep_hosts` are closed (connections in use are never touched).
    This reads the connector's pool (`_conns`, host key → idle (protocol, time) pairs, aiohttp 3.x);
    should a release change that shape, idle connections simply live out their keep-alive timeout.
    """

    def __init__(self, *, keep_hosts: int, **kwargs: Any):
        super().__init__(**kwargs)
        self._keep_hosts = keep_hosts

    def _release(self, key: Any, protocol: Any, *args: Any, **kwargs: Any) -> None:
        super()._release(key, protocol, *args, **kwargs)  # type: ignore[misc]
        idle = getattr(self, "_conns", None)
        if not isinstance(idle, dict) or key not in idle:
            return
        idle[key] = idle.pop(key)  # most recently used last
        surplus = len(idle) - self._keep_hosts
        if surplus > 0:
            for stale in list(idle)[:surplus]:
                for proto, *_ in idle.pop(stale):
                    proto.close()
