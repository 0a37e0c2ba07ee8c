"""Source kinds: `jekyll` (category page + post pages) and `feed` (RSS/Atom via feedparser)."""

from __future__ import annotations

from feedbot.settings.config import SourceConfig
from feedbot.sources.base import PageRecord, PageValidators, PollResult, Source
from feedbot.sources.feed import FeedSource
from feedbot.sources.http import Fetcher
from feedbot.sources.jekyll import JekyllSource

__all__ = ["FeedSource", "JekyllSource", "PageRecord", "PageValidators", "PollResult", "Source", "make_source"]


def make_source(config: SourceConfig, fetcher: Fetcher) -> JekyllSource | FeedSource:
    """The adapter for a configured source, by its kind."""
    if config.kind == "jekyll":
        return JekyllSource(config, fetcher)
    if config.kind == "feed":
        return FeedSource(config, fetcher)
    raise ValueError(f"unknown source kind {config.kind!r}")
