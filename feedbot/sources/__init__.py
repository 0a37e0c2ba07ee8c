"""Source kinds: `jekyll` (category page + post pages), `html` (any news list page) and `feed` (RSS/Atom)."""

from __future__ import annotations

from feedbot.settings.config import SourceConfig
from feedbot.sources.base import PageRecord, PageValidators, PollResult, Source
from feedbot.sources.feed import FeedSource
from feedbot.sources.html import HtmlSource
from feedbot.sources.http import Fetcher
from feedbot.sources.jekyll import JekyllSource

__all__ = ["FeedSource", "HtmlSource", "JekyllSource", "PageRecord", "PageValidators", "PollResult", "Source",
           "make_source"]


def make_source(config: SourceConfig, fetcher: Fetcher) -> JekyllSource | HtmlSource | FeedSource:
    """The adapter for a configured source, by its kind."""
    if config.kind == "jekyll":
        return JekyllSource(config, fetcher)
    if config.kind == "html":
        return HtmlSource(config, fetcher)
    if config.kind == "feed":
        return FeedSource(config, fetcher)
    raise ValueError(f"unknown source kind {config.kind!r}")
