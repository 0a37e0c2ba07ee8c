"""Redaction: known secrets and anything shaped like a bot token never reach a log line, error or page."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Bot API URLs carry the token as /bot<id>:<secret>/; catch it even when the value is not known.
_TOKEN_IN_URL = re.compile(r"bot\d+:[A-Za-z0-9_-]{20,}")
_TOKEN_SHAPE = re.compile(r"\b\d{6,}:[A-Za-z0-9_-]{30,}\b")
REDACTED = "********"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secrets and anything shaped like a bot token."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _TOKEN_IN_URL.sub("bot" + REDACTED, text)
    return _TOKEN_SHAPE.sub(REDACTED, text)
