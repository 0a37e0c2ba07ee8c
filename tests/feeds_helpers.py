"""Test data for the feed and web tests: a real config, a real Store filled with hand-built articles."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedbot.model import Article, Classification, Entry, TopicMatch
from feedbot.settings.config import Config, parse_config
from feedbot.sources.normalize import content_hash, normalize
from feedbot.store import Store
from feedbot.web.listen import WebServer, start_web
from feedbot.web.server import create_app

TOPICS = ("carbon-market", "adaptation-2035", "climate-finance", "carbon-manager")
HOSTILE_TITLE = '<script>alert("t")</script>碳市场<img src=x onerror=alert(1)>扩容'
HOSTILE_BODY = (
    '<p>全国碳市场扩容。<script>alert("b")</script></p>'
    '<p><img src="https://img.example.org/a.png" onerror="alert(2)">'
    '<a href="javascript:alert(3)">点此</a></p>'
    '<p onclick="alert(4)"><a href="https://ex.org/ok">正常链接</a></p><iframe src="https://evil.example"></iframe>'
)
HOSTILE_EXCERPT = '<script>alert("e")</script>配额<a href="javascript:alert(5)" onerror="x">履约</a>'
# Raw markers of live markup in feed bytes: XML escapes "<" in text, and the JSON feed writes it as \u003c,
# so these appear only as markup. (Words like "onerror" may be plain text a title really says.)
BAD_MARKERS = ("<script", "<iframe", "<img src=x")


def live_markup(fragment: str) -> list[str]:
    """What in an HTML fragment (or page) a browser would run: script/iframe elements, on* handlers, javascript:.

    Plain text that merely reads like markup ("<script>" escaped as &lt;script&gt;) is text, not markup.
    """
    from lxml import html as lxml_html

    if not fragment.strip():
        return []
    root = lxml_html.fromstring(f"<div>{fragment}</div>") if "<html" not in fragment[:200].lower() \
        else lxml_html.fromstring(fragment)
    found = [f"<{el.tag}>" for el in root.iter("script", "iframe", "object", "embed")
             if not (el.tag == "script" and el.get("type") == "application/ld+json")]
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        found += [f"{el.tag}@{name}" for name in el.attrib if name.lower().startswith("on")]
        found += [f"{el.tag}@{name}={value}" for name, value in el.attrib.items()
                  if name in ("href", "src") and value.strip().lower().startswith("javascript:")]
    return found


@dataclass(frozen=True)
class Item:
    """One stored test article and the topics it was filed under."""

    serial: int  # article(serial, ...) rebuilds the same source and key
    key: str
    title: str
    topics: tuple[str, ...]
    published_at: datetime


def feeds_config(
    state_dir: Path, base_url: str = "https://feeds.example.org", entry_limit: int = 50
) -> Config:
    """A real Config (parsed like a TOML file) with Telegram chats for two channels."""
    return parse_config(
        {
            "state_dir": str(state_dir),
            "web": {"listen": "127.0.0.1:8080", "base_url": base_url},
            "feeds": {"entry_limit": entry_limit},
            "topics": {
                "carbon-market": {"telegram_chat": "@my_carbon_market"},
                "climate-finance": {"telegram_chat": "-1001234567890"},
            },
        },
        None,
        {},
    )


def article(
    key: int | str,
    title: str,
    topics: tuple[str, ...],
    published_at: datetime | None,
    body_html: str | None = None,
    excerpt: str | None = None,
    outlet: str = "中国环境报",
    source_id: str = "zhongguohuanjingbao",
    updated_at: datetime | None = None,
    raw: bool = False,
) -> tuple[Article, Classification]:
    """An Article (through the real normalizer) and a Classification that files it under ``topics``.

    ``raw`` keeps the title and body exactly as given, as if the store held unsanitized HTML: the
    publishers must still not let it through.
    """
    url = f"https://news.example.org/zhongguohuanjingbao/2024/NW{key}.html"
    body = body_html if body_html is not None else f"<p>{title}的正文第一段。</p><p>第二段，关于{title}。</p>"
    entry = Entry(
        source_id=source_id,
        key=url,
        url=url,
        title=title,
        body_html=body,
        published_at=published_at,
        updated_at=updated_at,
        outlet=outlet,
    )
    normalized = normalize(entry)
    if raw:
        normalized = replace(normalized, title=title, body_html=body)
    matches = tuple(
        TopicMatch(
            topic=t,
            score=10.0 + i,
            matched=True,
            evidence=(),
            excerpt=excerpt if excerpt is not None else f"{title}：{t} 摘要",
        )
        for i, t in enumerate(topics)
    )
    return normalized, Classification(matches)


def edited(original: Article, new_title: str) -> Article:
    """The same article (same source and key) with a changed title."""
    return replace(original, title=new_title, content_hash=content_hash(new_title, original.text))


def fill_store(
    store: Store, now: datetime, per_topic: dict[str, int] | None = None, hostile: bool = True
) -> list[Item]:
    """Articles over the last weeks: per topic counts, one in every topic, one hostile; newest first."""
    per_topic = per_topic or {
        "carbon-market": 6,
        "adaptation-2035": 3,
        "climate-finance": 2,
        "carbon-manager": 1,
    }
    items: list[Item] = []
    serial = 1000
    for topic, count in per_topic.items():
        for n in range(count):
            serial += 1
            when = now - timedelta(days=3 * n + TOPICS.index(topic), hours=serial % 7)
            title = f"{topic} 第{n + 1}篇 新闻"
            art, cls = article(serial, title, (topic,), when)
            store.save_article(art, cls, {}, now=when)
            items.append(Item(serial, art.key, title, (topic,), when))
    serial += 1
    when = now - timedelta(days=10)
    art, cls = article(serial, "四个频道都相关的综合报道", TOPICS, when)
    store.save_article(art, cls, {}, now=when)
    items.append(Item(serial, art.key, "四个频道都相关的综合报道", TOPICS, when))
    if hostile:
        serial += 1
        when = now - timedelta(days=1)
        art, cls = article(
            serial,
            HOSTILE_TITLE,
            ("carbon-market",),
            when,
            body_html=HOSTILE_BODY,
            excerpt=HOSTILE_EXCERPT,
            raw=True,
        )
        store.save_article(art, cls, {}, now=when)
        # Title and excerpt are plain text: a reader sees them literally; only the body is HTML.
        items.append(Item(serial, art.key, HOSTILE_TITLE, ("carbon-market",), when))
    # An article no topic wanted stays out of every feed.
    art, cls = article(serial + 1, "与气候无关的新闻", (), now - timedelta(days=2))
    store.save_article(art, cls, {}, now=now)
    items.sort(key=lambda i: i.published_at, reverse=True)
    return items


def expected(items: list[Item], topic: str) -> list[Item]:
    """The items a channel's feed should hold, newest first."""
    return [i for i in items if topic == "all" or topic in i.topics]


def fixed_now() -> datetime:
    """A fixed instant for feed tests."""
    return datetime(2024, 6, 3, 4, 0, tzinfo=UTC)


@asynccontextmanager
async def serving(config: Config, store: Store, **hooks):
    """The real aiohttp app on a loopback port for the length of the block."""
    server: WebServer = await start_web(create_app(config, store, **hooks), "127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.close()
