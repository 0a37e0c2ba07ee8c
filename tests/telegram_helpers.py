"""Builders for the outbox and Telegram tests: a Config with the Bot API double, numbered articles, saving them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedbot.model import Article, Classification, TopicMatch
from feedbot.outbox import targets_for
from feedbot.settings.config import (
    Config,
    FeedsConfig,
    FetchConfig,
    Secret,
    SourceConfig,
    TelegramConfig,
    WebConfig,
)
from feedbot.settings.topics import TopicRules
from feedbot.store import Store
from tests.doubles.botapi import BotApiDouble

SCALE = 0.05  # one minute of flood control becomes 3 s
TOPICS = {
    "carbon-market": ("碳市场", "#碳市场"),
    "adaptation-2035": ("适应气候变化战略2035", "#适应气候变化战略2035"),
    "climate-finance": ("气候投融资试点", "#气候投融资试点"),
    "carbon-manager": ("碳排放管理员", "#碳排放管理员"),
}
CHATS = {
    "carbon-market": "@carbon_market_test",
    "adaptation-2035": "-1001234567890",
    "climate-finance": "@climate_finance_test",
    "carbon-manager": "-1009876543210",
}
T0 = datetime(2022, 3, 1, tzinfo=UTC)


def telegram_config(
    state_dir: Path,
    api: BotApiDouble | None,
    *,
    token: str | None = None,
    chats: dict[str, str] | None = None,
    **telegram,
) -> Config:
    """A Config for tests: the four channels, the double as the Bot API server."""
    topics = {
        tid: TopicRules(id=tid, name=name, description="", hashtag=tag, terms=((name, 1.0),))
        for tid, (name, tag) in TOPICS.items()
    }
    telegram.setdefault("style", "full")  # these tests are about the whole-excerpt message; styles: test_styles.py
    if api is not None:
        telegram.setdefault("api_base_url", api.base_url)
        token = token or api.token
    return Config(
        path=None,
        state_dir=state_dir,
        web=WebConfig(base_url="https://feeds.example.org"),
        fetch=FetchConfig(),
        feeds=FeedsConfig(),
        topics=topics,
        telegram=TelegramConfig(token=Secret(token) if token else None, **telegram),
        sources=(
            SourceConfig(
                id="zhongguohuanjingbao", kind="jekyll", url="https://x.example.org/", outlet="中国环境报"
            ),
        ),
        chats=CHATS if chats is None else chats,
    )


def make_article(
    n: int,
    *,
    title: str | None = None,
    excerpt: str | None = None,
    version: str = "v1",
    published_at: datetime | None = None,
) -> Article:
    """Article n, published n minutes after T0."""
    return Article(
        source_id="zhongguohuanjingbao",
        key=f"NW{n:04d}",
        url=f"https://x.example.org/NW{n:04d}.html",
        title=title or f"第{n}篇 碳市场新闻",
        body_html="<p>正文。</p>",
        text=f"第{n}篇正文。",
        paragraphs=(f"第{n}篇正文。",),
        sections=(),
        content_hash=f"{n}-{version}",
        published_at=published_at or T0 + timedelta(minutes=n),
        outlet="中国环境报",
    )


def save(store: Store, config: Config, article: Article, topics: Iterable[str], excerpt: str | None = None):
    """Store an article classified into ``topics``, with the deliveries the pipeline would create."""
    matches = tuple(
        TopicMatch(
            topic=t,
            score=10.0,
            matched=True,
            excerpt=excerpt if excerpt is not None else f"{article.title}的摘要。",
        )
        for t in topics
    )
    return store.save_article(article, Classification(matches=matches), targets_for(config))
