"""A loopback web server for saved pages: path → bytes, ETag/304, a log of requested paths."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

PAGES = Path(__file__).resolve().parent.parent / "sources" / "pages"


def saved(name: str) -> bytes:
    """A saved page from tests/sources/pages."""
    return (PAGES / name).read_bytes()


class PageSite:
    """Serves `pages` (path → (body, content type)); pages can be changed between polls."""

    def __init__(self, pages: dict[str, tuple[bytes, str]] | None = None):
        self.pages: dict[str, tuple[bytes, str]] = dict(pages or {})
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self.base = ""

    def put(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8") -> None:
        """Serve body at path."""
        self.pages[path] = (body.encode() if isinstance(body, str) else body, content_type)

    def url(self, path: str) -> str:
        return self.base + path

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path_qs
        self.requests.append(path)
        if path not in self.pages:
            return web.Response(status=404, text="not found")
        body, content_type = self.pages[path]
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, headers={"Content-Type": content_type, "ETag": etag})

    async def __aenter__(self) -> PageSite:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc) -> None:
        if self._runner:
            await self._runner.cleanup()
