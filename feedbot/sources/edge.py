"""The source edge: every field a source hands over is validated and clamped here, once, before it is stored.

Rules (the contract the rest of feedbot relies on):
- URLs: surrounding space trimmed; control characters, spaces and backslashes inside are percent-encoded;
  a URL that is not http(s) with a host becomes None.
- Dates: a time more than ``FUTURE_SLACK`` after the poll, or before ``EARLIEST`` (1990-01-01), is not
  believed and becomes None, so the article counts as published when feedbot first saw it.
- Text (title, outlet, key, body): lone surrogates become U+FFFD, characters XML 1.0 forbids are removed;
  titles are plain text (a feed's HTML title is decoded here, the only decode).
- A feed document: character references to surrogates (or beyond Unicode) and UTF-8 encoded surrogates
  are replaced by U+FFFD before any XML parser sees them, so one bad item cannot sink the source.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import nh3

from feedbot.model import Entry

FUTURE_SLACK = timedelta(days=2)  # clocks and time zones differ; a week ahead is a typo or a trap
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # before the web: a parser's guess, not a publication time
MAX_TITLE_CHARS = 1000
MAX_URL_CHARS = 4096

# XML 1.0 Char: tab, newline, carriage return, and everything from U+0020 except surrogates, U+FFFE/U+FFFF.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")
# A UTF-8 encoded surrogate (ED A0..BF xx) is invalid UTF-8 that some encoders still write.
_UTF8_SURROGATE = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
_SPACE = re.compile(r"\s+")


def _fix_reference(match: re.Match[bytes]) -> bytes:
    hex_digits, decimal = match.groups()
    code = int(hex_digits, 16) if hex_digits else int(decimal)
    # A surrogate or a number beyond Unicode makes feedparser raise on the whole document. A reference to a
    # control character only makes the document not well-formed: feedparser's lenient parser still reads it,
    # and clean_entry percent-encodes it in a URL (the link stays the one the source gave) or drops it.
    return b"&#xFFFD;" if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF else match[0]


def clean_document(content: bytes) -> bytes:
    """A feed's bytes with what would make the parser raise (surrogates, references beyond Unicode) replaced.

    Works on the bytes of any ASCII-compatible encoding (UTF-8, GBK, ISO-8859-x): in those, the ASCII of
    ``&#...;`` only ever stands for itself. UTF-16/32 documents are left alone.
    """
    if content[:2] in (b"\xff\xfe", b"\xfe\xff") or content[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"):
        return content
    if b"&#" in content:
        content = _CHAR_REF.sub(_fix_reference, content)
    if b"\xed" in content:
        content = _UTF8_SURROGATE.sub("\ufffd".encode(), content)
    return content


def clean_text(value: str | None) -> str:
    """Lone surrogates → U+FFFD, XML-forbidden characters removed (tab and newline kept)."""
    if not value:
        return ""
    if _SURROGATE.search(value):
        value = _SURROGATE.sub("\ufffd", value)
    return _XML_FORBIDDEN.sub("", value)


def clean_line(value: str | None, limit: int = MAX_TITLE_CHARS) -> str:
    """One line of plain text: cleaned, whitespace collapsed, at most ``limit`` characters."""
    return _SPACE.sub(" ", clean_text(value)).strip()[:limit]


def clean_key(value: str) -> str:
    """An item's key as stored and quarantined: cleaned text, trimmed ("" when nothing is left)."""
    return clean_text(value).strip()


def clean_url(value: str | None) -> str | None:
    """An http(s) URL with a host, controls and spaces inside percent-encoded; anything else is None."""
    if not value:
        return None
    url = value.strip()
    if not url or len(url) > MAX_URL_CHARS:
        return None
    url = clean_text(_URL_UNSAFE.sub(lambda m: f"%{ord(m[0]):02X}", url))
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number or out of range
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or "%" in host:
        return None
    return url


def plausible(moment: datetime | None, now: datetime) -> datetime | None:
    """The time when it is believable (aware, from 1990 up to two days after ``now``), else None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        if moment < EARLIEST or moment > now + FUTURE_SLACK:
            return None
        moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return moment


def html_to_text(value: str) -> str:
    """HTML (a feed's type="html" title) as the plain text a reader sees: tags dropped, entities decoded once."""
    stripped = nh3.clean(value, tags=set(), clean_content_tags={"script", "style"}, attributes={})
    return html.unescape(stripped)


def entry_title(item: Mapping[str, Any]) -> str:
    """A feedparser item's title as plain text: decoded when the feed marked it HTML, else as given."""
    title = item.get("title") or ""
    detail = item.get("title_detail") or {}
    if str(detail.get("type", "")).lower() in ("text/html", "application/xhtml+xml"):
        title = html_to_text(title)
    return clean_line(title)


def clean_entry(entry: Entry, now: datetime) -> Entry:
    """The entry with every field validated and clamped at the edge (see the module's rules)."""
    published = plausible(entry.published_at, now)
    updated = plausible(entry.updated_at, now)
    return replace(
        entry,
        key=clean_key(entry.key)
        or "sha256:" + hashlib.sha256(entry.key.encode("utf-8", "surrogatepass")).hexdigest(),
        url=clean_url(entry.url),
        title=clean_line(entry.title),
        body_html=clean_text(entry.body_html),
        published_at=published,
        updated_at=updated if updated != published else None,
        outlet=clean_line(entry.outlet, 200) or None,
        origin_url=clean_url(entry.origin_url),
    )
