"""Logging for a terminal or journald, with secrets redacted from every line and traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping

from feedbot.settings.secrets import redact

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Libraries that log every request (httpx logs the full URL, token included) stay at WARNING.
NOISY = ("httpx", "httpcore", "telegram", "apscheduler", "aiohttp.access", "hpack", "asyncio")


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then redacts the whole line, traceback included."""

    def __init__(self, fmt: str, secrets: Iterable[str] = ()):
        super().__init__(fmt, datefmt="%Y-%m-%d %H:%M:%S")
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def setup_logging(level: str = "info", *, env: Mapping[str, str], secrets: Iterable[str] = (),
                  stream=None) -> logging.Handler:
    """Configure the root logger once; journald gets lines without timestamps (it adds its own)."""
    journald = bool(env.get("JOURNAL_STREAM"))
    fmt = "%(levelname)s %(name)s: %(message)s" if journald else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(fmt, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = LEVELS.get(level, logging.INFO)
    root.setLevel(numeric)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    return handler
