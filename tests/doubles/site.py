"""The sample Jekyll site with faults on demand: 5xx, 429, hangs, bombs, malformed XML, GBK, redirects."""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass

from aiohttp import web

from feedbot.demo.site import CST, DEFAULT_CATEGORY, FEED_SIZE, SamplePost, fixture_posts
from feedbot.demo.site import SampleSite as _CleanSite

__all__ = ["CST", "DEFAULT_CATEGORY", "FAULT_KINDS", "FEED_SIZE", "Fault", "SamplePost", "SampleSite", "fixture_posts"]

CHUNK = 64 * 1024
HUGE_BYTES = 1 << 30
BOMB_DECODED_BYTES = 64 << 20
FAULT_KINDS = (
    "500", "503", "404", "429", "hang", "endless", "huge", "huge-length", "gzip-bomb", "malformed-xml", "html",
    "empty", "gbk", "gbk-bare", "redirect", "redirect-loop", "billion-laughs",
)
MALFORMED_XML = (b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>broken &amp '
                 b'<<link>>\n</channel>')
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title><guid>laughs</guid></item></channel></rss>
"""
NOT_A_FEED = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>页面</title></head>"
              "<body><h1>这不是订阅源</h1><p>您访问的页面已迁移。</p></body></html>\n").encode()

_bomb: bytes | None = None


def _gzip_bomb() -> bytes:
    """64 MiB of zeros gzipped (about 64 KiB), built once in 1 MiB steps."""
    global _bomb
    if _bomb is None:
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = bytes(1 << 20)
        _bomb = b"".join(packer.compress(zeros) for _ in range(BOMB_DECODED_BYTES >> 20)) + packer.flush()
    return _bomb


@dataclass
class Fault:
    """A misbehaviour injected on one path, for `times` requests (None = until cleared)."""

    kind: str
    times: int | None = None
    retry_after: str = "120"
    target: str = "/"



class SampleSite(_CleanSite):
    """The demo's sample site, plus misbehaviour injected per path from a test."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.faults: dict[str, Fault] = {}

    def fault(self, path: str, kind: str, *, times: int | None = None, retry_after: int | str = 120,
              target: str = "/") -> None:
        """Make path misbehave: one of FAULT_KINDS, for `times` requests or until cleared."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        self.faults[path] = Fault(kind, times, str(retry_after), target)

    def clear_faults(self, path: str | None = None) -> None:
        """Heal one path, or every path."""
        if path is None:
            self.faults.clear()
        else:
            self.faults.pop(path, None)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        fault = self.faults.get(path)
        if fault is not None:
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[path]
            return await self._misbehave(request, fault)
        return self._serve(request)

    async def _misbehave(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        kind, path = fault.kind, request.path
        if kind in ("500", "404"):
            return self._plain(int(kind), "Internal Server Error" if kind == "500" else "Not Found")
        if kind in ("429", "503"):
            return self._plain(int(kind), "slow down", {"Retry-After": fault.retry_after})
        if kind == "hang":
            await self._stopping.wait()
            return self._plain(503, "stopped")
        if kind in ("endless", "huge", "huge-length", "gzip-bomb"):
            return await self._stream(request, kind)
        if kind == "redirect":
            raise web.HTTPFound(fault.target)
        if kind == "redirect-loop":  # A → A?hop=1 → A → …
            raise web.HTTPFound(path if request.query.get("hop") else path + "?hop=1")
        bodies = {"malformed-xml": (MALFORMED_XML, "application/rss+xml"),
                  "billion-laughs": (BILLION_LAUGHS, "application/rss+xml"),
                  "html": (NOT_A_FEED, "text/html; charset=utf-8"),
                  "empty": (b"", "application/rss+xml")}
        if kind in bodies:
            body, content_type = bodies[kind]
            self.bytes_sent[path] += len(body)
            return web.Response(body=body, headers={"Content-Type": content_type})
        # gbk / gbk-bare: the normal document, encoded in GBK, without a charset in the header.
        doc = self._document(path)
        if doc is None:
            return self._plain(404, "Not Found")
        text = doc.body.decode("utf-8")
        meta = '<meta charset="gbk">' if kind == "gbk" else ""
        body = text.replace('<meta charset="UTF-8">', meta).encode("gbk")
        self.bytes_sent[path] += len(body)
        return web.Response(body=body, headers={"Content-Type": "text/html"})

    async def _stream(self, request: web.Request, kind: str) -> web.StreamResponse:
        """Bodies too big or too long to build: written chunk by chunk, counted, stopped by the client."""
        path = request.path
        response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
        if kind == "huge-length":
            response.content_length = HUGE_BYTES
        if kind == "gzip-bomb":
            response.headers["Content-Encoding"] = "gzip"
            payload = _gzip_bomb()
            response.content_length = len(payload)
        await response.prepare(request)
        try:
            if kind == "endless":  # slow and never finishing: only a total deadline stops it
                chunk = "<p>仍在加载……</p>\n".encode()
                while not self._stopping.is_set():
                    await response.write(chunk)
                    self.bytes_sent[path] += len(chunk)
                    await asyncio.sleep(0.05)
            elif kind == "gzip-bomb":
                for start in range(0, len(payload), CHUNK):
                    await response.write(payload[start:start + CHUNK])
                    self.bytes_sent[path] += len(payload[start:start + CHUNK])
            else:  # 1 GiB, never held in memory: the same 64 KiB written again and again
                chunk = b"<!-- " + b"x" * (CHUNK - 9) + b" -->\n"
                for _ in range(HUGE_BYTES // CHUNK):
                    await response.write(chunk)
                    self.bytes_sent[path] += len(chunk)
            await response.write_eof()
        except ConnectionError:
            pass  # the client hung up: exactly what a size cap or deadline should do
        return response
