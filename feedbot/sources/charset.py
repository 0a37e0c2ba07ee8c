"""Which charset a fetched document is in: HTTP header, then its own declaration, then UTF-8 or GB18030."""

from __future__ import annotations

import codecs
import re

# Chinese news sites label GB18030 text as GBK or GB2312; GB18030 is the superset that decodes all three.
ENCODING_ALIASES = {"gbk": "gb18030", "gb2312": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
                    "gb_2312-80": "gb18030", "euc-cn": "gb18030", "csgb2312": "gb18030", "utf8": "utf-8"}
SNIFF_BYTES = 4096
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)


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
