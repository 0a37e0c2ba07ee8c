"""Source kinds: `jekyll` (category page + post pages), `html` (any news list page) and `feed` (RSS/Atom)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from feedbot.sources.base import PageRecord, PageValidators, PollResult, Source

if TYPE_CHECKING:
    from feedbot.settings.config import SourceConfig
    from feedbot.sources.feed import FeedSource
    from feedbot.sources.html import HtmlSource
    from feedbot.sources.http import Fetcher
    from feedbot.sources.jekyll import JekyllSource

__all__ = ["FeedSource", "HtmlSource", "JekyllSource", "PageRecord", "PageValidators", "PollResult", "Source",
           "make_source"]

# Each kind's module is imported when it is first needed: every submodule import (edge, normalize …) runs
# this file, and a process with feed sources only never loads the HTML parsers (or the HTTP client, unless
# it polls).


def make_source(config: SourceConfig, fetcher: Fetcher) -> JekyllSource | HtmlSource | FeedSource:
    """The adapter for a configured source, by its kind."""
    if config.kind == "jekyll":
        from feedbot.sources.jekyll import JekyllSource

        return JekyllSource(config, fetcher)
    if config.kind == "html":
        from feedbot.sources.html import HtmlSource

        return HtmlSource(config, fetcher)
    if config.kind == "feed":
        from feedbot.sources.feed import FeedSource

        return FeedSource(config, fetcher)
    raise ValueError(f"unknown source kind {config.kind!r}")


def __getattr__(name: str) -> Any:
    """FeedSource, HtmlSource and JekyllSource, imported on first use."""
    if name == "FeedSource":
        from feedbot.sources.feed import FeedSource

        return FeedSource
    if name == "HtmlSource":
        from feedbot.sources.html import HtmlSource

        return HtmlSource
    if name == "JekyllSource":
        from feedbot.sources.jekyll import JekyllSource

        return JekyllSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
