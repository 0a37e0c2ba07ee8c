"""Feed publisher: one channel's stored articles → RSS 2.0, Atom 1.0 and JSON Feed 1.1, written atomically."""

from __future__ import annotations

import html
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from lxml import etree

from feedbot import PROJECT_URL, __version__
from feedbot.clock import SHANGHAI, in_shanghai, utcnow
from feedbot.errors import PublishError
from feedbot.model import StoredArticle
from feedbot.publish.channels import (
    ALL,
    SITE_NAME,
    XSL_NAME,
    Channel,
    TopicLike,
    channel,
    channels,
    feed_url,
)
from feedbot.sources.edge import clean_text, clean_url, plausible
from feedbot.sources.normalize import sanitize_html

log = logging.getLogger("feedbot.feeds")

FORMATS = {"xml": "rss", "atom": "atom", "json": "json"}  # file extension → format
# An empty feed still needs a fixed `updated`, or every rebuild would differ by the clock.
EPOCH = datetime(2024, 1, 1, tzinfo=SHANGHAI)
TAG_YEAR = 2024
SUMMARY_FALLBACK_CHARS = 200
_SPACE = re.compile(r"\s+")


def tag_authority_of(base_url: str) -> str:
    """The tag: URI authority a fresh install takes from its public URL (then kept for good, see App)."""
    return urlsplit(base_url).hostname or "localhost"


def entry_id(base_url: str, channel_id: str, article: StoredArticle, authority: str | None = None) -> str:
    """A tag: URI from (authority, channel, source, key), all stable, so an edit never changes it.

    ``authority`` is stored once (the base_url host when feeds were first built), so moving the feeds
    to another domain never changes an id. Per channel on purpose: readers such as newsboat key items
    by id across all feeds, so an article shared by two subscribed channels would otherwise vanish
    from one of them.
    """
    host = authority or tag_authority_of(base_url)
    key = quote(article.key, safe=":/@-._~!$'()*+,;=")
    return f"tag:{host},{TAG_YEAR}:{channel_id}/article/{quote(article.source_id, safe='-_')}/{key}"


def to_shanghai(moment: datetime) -> datetime:
    """A timezone-aware time shown at +08:00 (clamped, never overflowing)."""
    return in_shanghai(moment)


def published(article: StoredArticle) -> datetime:
    """When the article appeared, at +08:00: first seen when the source gave no believable time.

    The edge already refuses implausible dates; this guards rows stored before it did.
    """
    return to_shanghai(plausible(article.published_at, article.first_seen_at) or article.first_seen_at)


def updated(article: StoredArticle) -> datetime:
    """When the article last changed, at +08:00 (never before it was published)."""
    return (
        max(to_shanghai(article.updated_at), published(article)) if article.updated_at else published(article)
    )


def plain_text(value: str | None) -> str:
    """Stored plain text made XML-safe (controls, lone surrogates removed), spaces collapsed; never decoded.

    Titles, text, excerpts and outlets are plain text from the edge on: "a<b" and "&lt;" are what the
    reader sees. Each output escapes it once for its own syntax (feedgen/json for XML/JSON, html.escape
    where a field is HTML: RSS <description>, pages).
    """
    if not value:
        return ""
    return _SPACE.sub(" ", clean_text(value)).strip()


def safe_html(value: str | None) -> str:
    """Sanitized again right before output (the store's copy was sanitized on the way in, but escape last)."""
    return clean_text(sanitize_html(value or ""))


def summary_of(article: StoredArticle, topic_id: str) -> str:
    """The channel's excerpt; for "all" the best-scoring topic's; else the start of the text."""
    excerpt = article.excerpts.get(topic_id, "")
    if not excerpt and article.excerpts:
        best = max(article.excerpts, key=lambda t: (article.scores.get(t, 0.0), bool(article.excerpts[t])))
        excerpt = article.excerpts[best] or next((e for e in article.excerpts.values() if e), "")
    text = plain_text(excerpt)
    if not text:
        text = plain_text(article.text)[:SUMMARY_FALLBACK_CHARS]
    return text


def categories_of(
    article: StoredArticle, topic_id: str, topics: Mapping[str, TopicLike]
) -> list[tuple[str, str]]:
    """(term, label) pairs: the channel's topic, or for "all" every topic the article is in."""
    ids = [topic_id] if topic_id != ALL else [t for t in topics if t in article.excerpts]
    return [(t, topics[t].name if t in topics else t) for t in ids]


def author_of(article: StoredArticle) -> str:
    """The outlet that wrote it (the source id when unknown)."""
    return plain_text(article.outlet) or article.source_id


def link_of(article: StoredArticle) -> str | None:
    """The feed entry's link: where feedbot read the article (see StoredArticle.read_url), made URL-safe."""
    return clean_url(article.read_url)


_PROBE = etree.Element("probe")


def checked(entry: FeedEntry) -> FeedEntry:
    """The entry when lxml accepts every one of its strings (the check feedgen would fail on, per article)."""
    for value in (entry.id, entry.title, entry.link or "", entry.content_html, entry.summary, entry.author,
                  *(part for pair in entry.categories for part in pair)):
        _PROBE.text = value  # raises ValueError on what XML cannot hold
    return entry


@dataclass(frozen=True)
class FeedEntry:
    """One article as every format shows it: cleaned once, rendered three times."""

    id: str
    title: str
    link: str | None
    content_html: str
    summary: str
    author: str
    categories: tuple[tuple[str, str], ...]  # (term, label)
    published: datetime
    updated: datetime


def also_reported_html(reprints: Sequence[Any]) -> str:
    """"Also reported by <outlet> <link>" under an article that other sources reprinted (escaped here)."""
    if not reprints:
        return ""
    parts = []
    for reprint in reprints:
        outlet = html.escape(plain_text(reprint.outlet), quote=False)
        url = reprint.url if reprint.url and reprint.url.startswith(("http://", "https://")) else None
        parts.append(f'<a href="{html.escape(url)}">{outlet}</a>' if url else outlet)
    return f'<p class="also-reported">另见报道（also reported by）：{"、".join(parts)}</p>'


def feed_entry(
    article: StoredArticle, channel_id: str, topics: Mapping[str, TopicLike], base_url: str,
    tag_authority: str | None = None, reprints: Sequence[Any] = (),
) -> FeedEntry:
    """Everything a channel's feeds say about one article, escaped and sanitized last (here)."""
    body = safe_html(article.body_html) or html.escape(plain_text(article.text), quote=False)
    return FeedEntry(
        id=entry_id(base_url, channel_id, article, tag_authority),
        title=plain_text(article.title) or "（无标题）",
        link=link_of(article),
        content_html=body + also_reported_html(reprints),
        summary=summary_of(article, channel_id),
        author=author_of(article),
        categories=tuple(categories_of(article, channel_id, topics)),
        published=published(article),
        updated=updated(article),
    )


def build_feeds(
    topic_id: str,
    topics: Mapping[str, TopicLike],
    articles: Sequence[StoredArticle],
    base_url: str,
    limit: int = 50,
    chats: Mapping[str, str] | None = None,
    tag_authority: str | None = None,
    skipped: list[tuple[StoredArticle, str]] | None = None,
    reprints: Mapping[int, Sequence[Any]] | None = None,
) -> dict[str, bytes]:
    """One channel's feeds: {"xml": RSS 2.0, "atom": Atom 1.0, "json": JSON Feed 1.1} bytes, deterministic.

    With ``skipped`` given, an article that cannot be rendered is left out and listed there with the reason.
    ``reprints`` maps an article id to other outlets' copies of it, shown under it as "also reported by".
    """
    meta = channel(topic_id, topics, chats)
    base_url = base_url.rstrip("/")
    entries = []
    for article in list(articles)[:limit]:
        try:
            also = (reprints or {}).get(article.id, ())
            entries.append(checked(feed_entry(article, meta.id, topics, base_url, tag_authority, also)))
        except Exception as exc:  # one bad stored article must not stop the channel's feed
            if skipped is None:
                raise
            skipped.append((article, f"{type(exc).__name__}: {exc}"))
    # The newest entry's time, not the clock: an unchanged rebuild is byte-identical.
    newest = max((e.updated for e in entries), default=EPOCH)
    return {
        "xml": _xml_feed("rss", meta, entries, base_url, newest),
        "atom": _xml_feed("atom", meta, entries, base_url, newest),
        "json": _json_feed(meta, entries, base_url, newest),
    }


def _xml_feed(kind: str, meta: Channel, entries: list[FeedEntry], base_url: str, newest: datetime) -> bytes:
    ext = "xml" if kind == "rss" else "atom"
    self_url = feed_url(base_url, meta.id, ext)
    from feedgen.feed import FeedGenerator  # with dateutil: for a rebuild only, not the web pages or `status`

    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)  # RSS <author> must be an e-mail; dc:creator takes a name
    fg.id(self_url)
    fg.title(meta.title)
    fg.description(plain_text(meta.description) or meta.name)
    fg.link(href=self_url, rel="self")
    fg.link(href=base_url + "/", rel="alternate")  # last: feedgen makes the last link RSS's <link>
    fg.language("zh-CN")
    fg.updated(newest)
    fg.generator(generator=SITE_NAME, version=__version__, uri=PROJECT_URL)
    for item in entries:
        entry = fg.add_entry(order="append")
        entry.id(item.id)
        entry.title(item.title)
        if item.link:
            entry.link(href=item.link, rel="alternate")
        entry.published(item.published)
        entry.updated(item.updated)
        entry.author(name=item.author)
        entry.dc.dc_creator(item.author)
        for term, label in item.categories:
            entry.category(term=term, label=label)
        entry.content(item.content_html, type="html")
        if item.summary:
            # RSS <description> is HTML to every reader: the plain text is escaped for HTML once, here.
            entry.summary(html.escape(item.summary, quote=False) if kind == "rss" else item.summary)
    raw = fg.rss_str(pretty=True) if kind == "rss" else fg.atom_str(pretty=True)
    return _with_stylesheet(raw)


def _with_stylesheet(raw: bytes) -> bytes:
    # Relative href: works from the built-in server and from any server that serves the feeds directory.
    declaration, sep, rest = raw.partition(b"\n")
    if not declaration.startswith(b"<?xml"):
        return raw
    return declaration + sep + f'<?xml-stylesheet type="text/xsl" href="{XSL_NAME}"?>\n'.encode() + rest


def _json_feed(meta: Channel, entries: list[FeedEntry], base_url: str, newest: datetime) -> bytes:
    items = []
    for entry in entries:
        item: dict[str, Any] = {"id": entry.id}
        if entry.link:
            item["url"] = entry.link
        item["title"] = entry.title
        item["content_html"] = entry.content_html
        if entry.summary:
            item["summary"] = entry.summary
        item["date_published"] = entry.published.isoformat()
        item["date_modified"] = entry.updated.isoformat()
        item["authors"] = [{"name": entry.author}]
        item["tags"] = [label for _, label in entry.categories]
        item["language"] = "zh-CN"
        items.append(item)
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": meta.title,
        "home_page_url": base_url + "/",
        "feed_url": feed_url(base_url, meta.id, "json"),
        "description": plain_text(meta.description) or meta.name,
        "language": "zh-CN",
        "_feedbot": {"updated": newest.isoformat(), "generator": f"{SITE_NAME} {__version__}"},
        "items": items,
    }
    # ensure_ascii=False keeps Chinese readable; content_html was sanitized in feed_entry. "<", ">" and "&"
    # only occur inside strings: written as \u escapes they mean the same, and no page that embeds or
    # sniffs the file can take plain text for markup.
    text = json.dumps(document, ensure_ascii=False, indent=2)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (text + "\n").encode("utf-8")


# ---- files ---------------------------------------------------------------------------------------


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically replace ``path`` with ``data`` unless it already holds exactly these bytes."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PublishError(f"{path}: cannot read the feed file: {exc.strerror or exc}") from exc
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a separate web server must be able to read the feeds
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PublishError(f"{path}: cannot write the feed file: {exc.strerror or exc}") from exc
        raise
    return True


def write_feeds(feeds_dir: Path, topic_id: str, feeds: Mapping[str, bytes]) -> list[Path]:
    """Write one channel's feeds as <feeds_dir>/<topic>.<ext>; returns the files that changed."""
    changed = []
    for ext, data in feeds.items():
        if ext not in FORMATS:
            raise ValueError(f"unknown feed format {ext!r}")
        path = Path(feeds_dir) / f"{topic_id}.{ext}"
        if write_if_changed(path, data):
            changed.append(path)
    return changed


def stylesheet() -> bytes:
    """The XSL stylesheet that makes a feed opened in a browser read as a page."""
    return resources.files("feedbot").joinpath("data", XSL_NAME).read_bytes()


class ArticleSource(Protocol):
    """The part of feedbot.store.db.Store a rebuild reads (and where it sets aside what it cannot render)."""

    def articles(self, topic: str | None = None, limit: int = 50) -> list[StoredArticle]: ...

    def quarantine(self, source_id: str, key: str, *, url: str | None, reason: str, stage: str,
                   now: datetime) -> int: ...


def rebuild_all(store: ArticleSource, config: Any, tag_authority: str | None = None) -> list[Path]:
    """Rebuild every channel's feeds (and "all") from the store; returns the files that changed.

    An article that cannot be rendered is left out and quarantined; a channel that still fails keeps its
    old files while the others are rebuilt, and the failure is raised (as PublishError) at the end.
    """
    feeds_dir = Path(config.feeds_dir)
    limit = config.feeds.entry_limit
    changed: list[Path] = []
    skipped: dict[int, tuple[StoredArticle, str]] = {}
    failed: list[str] = []
    for item in channels(config.topics, config.chats):
        articles, also = _stories(store, None if item.id == ALL else item.id, limit)
        left_out: list[tuple[StoredArticle, str]] = []
        try:
            feeds = build_feeds(item.id, config.topics, articles, config.web.base_url, limit, config.chats,
                                tag_authority, skipped=left_out, reprints=also)
        except Exception as exc:  # keep the channel's old files; the other channels go on
            log.error("feeds: channel %s not rebuilt: %s: %s", item.id, type(exc).__name__, exc)
            failed.append(f"{item.id}: {type(exc).__name__}: {exc}")
            continue
        skipped.update((a.id, (a, why)) for a, why in left_out)
        changed += write_feeds(feeds_dir, item.id, feeds)
    for article, why in skipped.values():
        _set_aside(store, article, why)
    if write_if_changed(feeds_dir / XSL_NAME, stylesheet()):
        changed.append(feeds_dir / XSL_NAME)
    if failed:
        raise PublishError(f"{len(failed)} channel feed(s) not rebuilt: " + "; ".join(failed)[:500])
    return changed


def _stories(store: ArticleSource, topic: str | None, limit: int
             ) -> tuple[list[StoredArticle], Mapping[int, Sequence[Any]]]:
    """A channel's newest articles with reprints folded into their first-seen article (feedbot.dedupe)."""
    if not hasattr(store, "reprint_ids"):
        return store.articles(topic, limit), {}
    folded = store.reprint_ids()
    articles = [a for a in store.articles(topic, limit + len(folded)) if a.id not in folded][:limit]
    return articles, store.reprints_of([a.id for a in articles])


_PUBLISHED_TAG = re.compile(rb"<id>tag:([^,<]+),\d{4}:")


def published_tag_authority(feeds_dir: Path) -> str | None:
    """The tag: authority of the ids already in a written Atom feed (an install from before it was stored)."""
    for path in sorted(Path(feeds_dir).glob("*.atom")):
        try:
            with open(path, "rb") as f:
                match = _PUBLISHED_TAG.search(f.read(1 << 20))
        except OSError:
            continue
        if match:
            return match[1].decode("ascii", "replace")
    return None


def _set_aside(store: ArticleSource, article: StoredArticle, why: str) -> None:
    key = clean_text(article.key)
    try:
        count = store.quarantine(article.source_id, key, url=clean_url(article.url), reason=why, stage="feeds",
                                 now=utcnow())
    except Exception as exc:  # the feeds matter more than the record of what they left out
        log.error("feeds: article %d left out (%s), not recorded: %s", article.id, why, exc)
        return
    if count == 1:
        log.warning("feeds: article %d (%s %s) left out of the feeds and quarantined: %s", article.id,
                    article.source_id, key, why)

