"""Listening: bind the aiohttp app, close idle connections, fold accept() failures into one line a minute."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from feedbot.errors import PublishError

IDLE_TIMEOUT = 15.0  # seconds a connection may stay open without a request (also between keep-alive requests)
ALL_INTERFACES = ("", "0.0.0.0", "::")
ACCEPT_FAILED = "socket.accept() out of system resource"  # asyncio's message for EMFILE/ENFILE/ENOBUFS/ENOMEM
ACCEPT_REPORT_EVERY = 60.0  # seconds between two log lines about failing accepts

log = logging.getLogger("feedbot.web")


@dataclass
class WebServer:
    """A started server: where it listens and how to stop it."""

    runner: web.AppRunner
    site: web.TCPSite
    host: str
    port: int
    accept_errors: _AcceptErrors | None = None

    @property
    def url(self) -> str:
        """The root URL it answers on."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and finish open requests."""
        await self.runner.cleanup()
        if self.accept_errors is not None:
            self.accept_errors.uninstall()


class _AcceptErrors:
    """Folds asyncio's reports of a failed accept() (EMFILE: out of file descriptors) into one line a minute.

    asyncio already backs off by itself (it stops accepting for a second, then tries again), but it reports
    every failed attempt, up to the listen backlog each time, with a traceback: thousands of lines a second.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, idle_timeout: float):
        self.loop = loop
        self.idle_timeout = idle_timeout
        self.previous = loop.get_exception_handler()
        self.last_report = -math.inf
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_FAILED:
            if self.previous is not None:
                self.previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self.last_report < ACCEPT_REPORT_EVERY:
            self.suppressed += 1
            return
        exc = context.get("exception")
        reason = (exc.strerror if isinstance(exc, OSError) else None) or exc or "unknown error"
        log.warning("web server cannot accept connections: %s (%d more such failure(s) since the last report); "
                    "retrying every second, idle connections close after %gs", reason, self.suppressed,
                    self.idle_timeout)
        self.last_report, self.suppressed = now, 0

    def uninstall(self) -> None:
        """Put back the handler that was there before."""
        if self.loop.get_exception_handler() is self:
            self.loop.set_exception_handler(self.previous)


async def start_web(app: web.Application, host: str = "127.0.0.1", port: int = 8080, *,
                    idle_timeout: float = IDLE_TIMEOUT) -> WebServer:
    """Bind and serve ``app`` in the running event loop (port 0 picks a free port)."""
    # keepalive_timeout also starts when a connection opens, so a client that never sends (or never finishes)
    # a request is closed too; aiohttp's default (an hour) lets idle sockets eat the descriptor limit.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=idle_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise PublishError(f"web.listen: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound = runner.addresses[0] if runner.addresses else (host, port)
    if host in ALL_INTERFACES:
        log.warning("web server listens on ALL interfaces (%s port %d): anyone who can reach this machine can "
                    "read the feeds, /healthz and /metrics; set web.listen = \"127.0.0.1:%d\" to keep it local",
                    host or "0.0.0.0", int(bound[1]), int(bound[1]))
    accept_errors = _AcceptErrors(asyncio.get_running_loop(), idle_timeout)
    asyncio.get_running_loop().set_exception_handler(accept_errors)
    return WebServer(runner=runner, site=site, host=host, port=int(bound[1]), accept_errors=accept_errors)
