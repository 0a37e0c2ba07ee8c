"""OPML import: the feeds of a reader's subscription list as [[sources]] blocks (the same outline
attributes /opml writes: type="rss", text, title, xmlUrl, htmlUrl)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from feedbot.errors import ParseError
from feedbot.sources.probe import source_id_for, toml_block


@dataclass(frozen=True)
class OpmlFeed:
    """One subscription of an OPML file."""

    url: str
    title: str | None = None


def read_opml(content: bytes, name: str) -> list[OpmlFeed]:
    """Every outline with an http(s) xmlUrl, at any depth (reader folders nest them), in file order."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"{name}: not an OPML file: {exc}") from exc
    if root.tag != "opml":
        raise ParseError(f"{name}: not an OPML file (the root element is <{root.tag}>, not <opml>)")
    out, seen = [], set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url.startswith(("http://", "https://")) or url in seen:
            continue
        seen.add(url)
        out.append(OpmlFeed(url, (outline.get("title") or outline.get("text") or "").strip() or None))
    return out


def source_blocks(found: Iterable[OpmlFeed], taken_ids: Iterable[str], taken_urls: Iterable[str]) -> list[str]:
    """A `kind = "feed"` [[sources]] block per new feed; ids made unique, URLs already polled left out."""
    ids, urls = set(taken_ids), set(taken_urls)
    blocks = []
    for feed in found:
        if feed.url in urls:
            continue
        urls.add(feed.url)
        base = source_id_for(feed.url)
        sid, n = base, 2
        while sid in ids:
            sid, n = f"{base}-{n}", n + 1
        ids.add(sid)
        blocks.append(toml_block({"id": sid, "kind": "feed", "url": feed.url, "name": feed.title}))
    return blocks
