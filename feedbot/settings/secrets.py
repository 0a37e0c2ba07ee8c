"""Redaction: known secrets, URL credentials and anything shaped like a bot token never reach a log line,
error, status or page."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

# Bot API URLs carry the token as /bot<id>:<secret>/; catch it even when the value is not known.
_TOKEN_IN_URL = re.compile(r"bot\d+:[A-Za-z0-9_-]{20,}")
_TOKEN_SHAPE = re.compile(r"\b\d{6,}:[A-Za-z0-9_-]{30,}\b")
# scheme://userinfo@host: the userinfo runs to the LAST '@' before the path, query, fragment or whitespace
# (a raw '@' in a pasted password must not leave its tail behind). Quotes stay inside the run on purpose:
# a password may hold one, and over-redacting a repr is harmless.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#\\<>]*@")
REDACTED = "********"
REDACTED_USERINFO = "***"
# Shorter passwords would blank ordinary words in log lines; the URL pattern still catches them in URLs.
_MIN_KNOWN_SECRET = 6


def redact_url(url: str) -> str:
    """'http://user:pass@host/x' → 'http://***@host/x': user and password both go (a token may be either)."""
    return _USERINFO.sub(rf"\g<1>{REDACTED_USERINFO}@", url)


def strip_userinfo(url: str) -> str:
    """'http://user:pass@host/x' → 'http://host/x': the form a reader may see and follow."""
    return _USERINFO.sub(r"\g<1>", url, count=1) if "@" in url else url


def url_secrets(urls: Iterable[str]) -> list[str]:
    """The passwords of URLs with credentials (as written and percent-decoded), for redact()."""
    found: list[str] = []
    for url in urls:
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        for form in {password or "", unquote(password or "")}:
            if len(form) >= _MIN_KNOWN_SECRET:
                found.append(form)
    return found


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secrets, URL credentials and anything shaped like a bot token."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    if "@" in text:
        text = redact_url(text)
    text = _TOKEN_IN_URL.sub("bot" + REDACTED, text)
    return _TOKEN_SHAPE.sub(REDACTED, text)
