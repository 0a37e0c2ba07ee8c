"""The channel catalogue: what feeds, messages, commands and pages know of a channel, defined once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from feedbot.errors import ConfigError
from feedbot.model import ALL_CHANNEL

ALL = ALL_CHANNEL
ALL_NAME = "全部频道"
SITE_NAME = "feedbot"
FEED_FORMATS = ("xml", "atom", "json")  # file extensions: RSS 2.0, Atom 1.0, JSON Feed 1.1
XSL_NAME = "feed.xsl"  # the stylesheet beside the feeds: a feed opened in a browser reads as a page


class TopicLike(Protocol):
    """What a channel needs of a topic (feedbot.settings.topics.TopicRules has it)."""

    id: str
    name: str
    description: str
    hashtag: str


@dataclass(frozen=True)
class Channel:
    """One published channel: a topic, or "all"."""

    id: str
    name: str
    description: str
    chat: str | None = None  # Telegram chat (e.g. "@my_carbon_market")
    hashtag_text: str = ""  # "#碳市场"-style tag for messages; empty for "all"

    @property
    def title(self) -> str:
        """The feed title readers show."""
        return f"{self.name} · {SITE_NAME}"

    @property
    def telegram_url(self) -> str | None:
        """https://t.me/<name> for a public @channel; None for a numeric chat id."""
        if self.chat and self.chat.startswith("@"):
            return f"https://t.me/{self.chat[1:]}"
        return None

    @property
    def hashtag(self) -> str:
        """The tag a message ends with: the topic's hashtag, else its name."""
        return self.hashtag_text or self.name

    def feed_url(self, base_url: str, ext: str) -> str:
        """The public URL of one of this channel's feed files."""
        return feed_url(base_url, self.id, ext)


def feed_url(base_url: str, topic_id: str, ext: str) -> str:
    """The public URL of one feed file."""
    return f"{base_url.rstrip('/')}/feeds/{topic_id}.{ext}"


def channels(topics: Mapping[str, TopicLike], chats: Mapping[str, str] | None = None) -> list[Channel]:
    """Every configured topic as a channel, then "all"."""
    chats = chats or {}
    if ALL in topics:
        raise ConfigError(f'topics.{ALL}: "{ALL}" is the name of the channel of every article; rename the topic')
    out = [Channel(tid, t.name, t.description or t.name, chats.get(tid), getattr(t, "hashtag", "") or "")
           for tid, t in topics.items()]
    names = "、".join(t.name for t in topics.values())
    out.append(Channel(ALL, ALL_NAME, f"所有频道的文章合集：{names}。"))
    return out


def channel(topic_id: str, topics: Mapping[str, TopicLike], chats: Mapping[str, str] | None = None) -> Channel:
    """The channel of one topic id (or "all"); KeyError for an unknown id."""
    for item in channels(topics, chats):
        if item.id == topic_id:
            return item
    raise KeyError(topic_id)


def channel_files(topic_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Every feed file name of these channels → (topic id, extension): what a rebuild writes, what the web serves."""
    return {f"{tid}.{ext}": (tid, ext) for tid in topic_ids for ext in FEED_FORMATS}


def all_written(config: Any) -> bool:
    """Whether every file a feed rebuild writes is in the feeds directory (one deleted: rebuild)."""
    feeds_dir = Path(config.feeds_dir)
    names = [*channel_files(item.id for item in channels(config.topics, config.chats)), XSL_NAME]
    return all((feeds_dir / name).is_file() for name in names)
