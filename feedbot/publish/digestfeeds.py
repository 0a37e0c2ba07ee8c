"""Each channel's digest as a feed (`<channel>-digest.xml|.atom|.json`): one entry per completed period.

Built from what the channel received (first stored) in each period, like the Telegram digest; entry ids
name the channel and the period, so they never change; a period that received nothing has no entry.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from feedbot.clock import utcnow
from feedbot.model import StoredArticle
from feedbot.publish.channels import Channel, channels
from feedbot.publish.digests import Period, last_completed, previous
from feedbot.publish.feeds import EPOCH, FeedEntry, _json_feed, _xml_feed, tag_authority_of, write_feeds

PERIODS = 30  # entries per digest feed
DIGEST_SUFFIX = "-digest"


def digest_feed_ids(topic_ids: Sequence[str]) -> list[str]:
    """The file stems of the digest feeds ("carbon-market-digest"), for the web server's whitelist."""
    return [f"{tid}{DIGEST_SUFFIX}" for tid in topic_ids]


def _entry(item: Channel, period: Period, articles: list[StoredArticle], authority: str, weekly: bool) -> FeedEntry:
    esc = html.escape
    kind = "周报" if weekly else "日报"
    lines = []
    for article in articles:
        link = article.original_url
        title = esc(" ".join(article.title.split()) or "（无标题）", quote=False)
        moment = (article.published_at or article.first_seen_at).astimezone(period.tz)
        meta = " · ".join(p for p in (article.outlet, f"{moment:%Y-%m-%d}") if p)
        shown = f'<a href="{esc(link, quote=True)}">{title}</a>' if link else title
        lines.append(f"<li>{shown} — {esc(meta, quote=False)}</li>")
    end = period.end.astimezone(period.tz)
    return FeedEntry(
        id=f"tag:{authority},2024:{item.id}/digest/{period.key}",
        title=f"{item.name} · {kind} {period.label}（{len(articles)} 篇）",
        link=None,
        content_html=f"<ul>{''.join(lines)}</ul>",
        summary=f"{item.name}{kind}：{period.label} 收到 {len(articles)} 篇。",
        author="feedbot",
        categories=((item.id, item.name),),
        published=end,
        updated=end,
    )


def build_digest_feeds(store: Any, config: Any, item: Channel, now: datetime, authority: str) -> dict[str, bytes]:
    """One channel's digest feeds: the last PERIODS completed periods that received anything, newest first."""
    schedule = config.channel(item.id).digest
    tz = ZoneInfo(config.telegram.timezone)
    newest = last_completed(schedule, tz, now)
    periods = [newest]
    for _ in range(PERIODS - 1):
        periods.append(previous(schedule, periods[-1]))
    received = store.received_articles(item.id, periods[-1].start, newest.end)
    entries = []
    for period in periods:
        inside = [a for a in received if period.start <= a.first_seen_at < period.end]
        if inside:
            entries.append(_entry(item, period, inside, authority, schedule.every == "weekly"))
    meta = Channel(f"{item.id}{DIGEST_SUFFIX}", f"{item.name} · 摘要", f"{item.description}（按期汇总）")
    base_url = config.web.base_url.rstrip("/")
    stamp = max((e.updated for e in entries), default=EPOCH)
    return {"xml": _xml_feed("rss", meta, entries, base_url, stamp),
            "atom": _xml_feed("atom", meta, entries, base_url, stamp),
            "json": _json_feed(meta, entries, base_url, stamp)}


def rebuild_digest_feeds(store: Any, config: Any, tag_authority: str | None = None,
                         now: datetime | None = None) -> list[Path]:
    """Write every channel's digest feeds (only files whose bytes changed); returns the files written."""
    now = now or utcnow()
    authority = tag_authority or tag_authority_of(config.web.base_url)
    changed: list[Path] = []
    for item in channels(config.topics, config.chats):
        if item.id in config.topics:
            feeds = build_digest_feeds(store, config, item, now, authority)
            changed += write_feeds(Path(config.feeds_dir), f"{item.id}{DIGEST_SUFFIX}", feeds)
    return changed
