"""Channel digests: the periods of a schedule, the digest messages (split at Telegram's limit), and the planner.

Rule after an outage (the process down, or Telegram unreachable): only the most recent completed period
gets a digest. Periods missed in between are recorded as ``missed`` (never sent), and an older digest none
of whose messages went out is ``dropped`` when a newer one is made — a follower gets at most one digest per
planning round, never a burst of stale ones; the articles stay in the feeds and the digest feed.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from feedbot.model import StoredArticle, Target
from feedbot.publish.channels import channels
from feedbot.publish.format import TELEGRAM_LIMIT, Message, make_hashtag, trim_excerpt, utf16_units, visible_units
from feedbot.settings.config import Config
from feedbot.settings.values import DigestSchedule
from feedbot.store import Store

log = logging.getLogger(__name__)
WEEKDAY_NAMES = "一二三四五六日"
MAX_MISSED = 400  # periods walked back when recording missed ones (a year of daily digests)


@dataclass(frozen=True)
class Period:
    """One digest period [start, end) in UTC; ``key`` names it for the store and the feed."""

    key: str
    start: datetime
    end: datetime
    tz: ZoneInfo

    @property
    def label(self) -> str:
        """'2026-11-28 08:00 – 11-29 08:00' in local time."""
        a, b = self.start.astimezone(self.tz), self.end.astimezone(self.tz)
        return f"{a:%Y-%m-%d %H:%M} – {b:%m-%d %H:%M}"


def _boundary(schedule: DigestSchedule, tz: ZoneInfo, now: datetime) -> datetime:
    """The latest scheduled send time at or before ``now`` (local)."""
    local = now.astimezone(tz)
    at = time(schedule.minute_of_day // 60, schedule.minute_of_day % 60)
    moment = datetime.combine(local.date(), at, tzinfo=tz)
    if schedule.every == "weekly":
        moment -= timedelta(days=(local.weekday() - schedule.weekday) % 7)
    if moment > local:
        moment -= timedelta(days=1 if schedule.every == "daily" else 7)
    return moment


def _period(schedule: DigestSchedule, end: datetime) -> Period:
    length = timedelta(days=1 if schedule.every == "daily" else 7)
    tz = end.tzinfo
    start = datetime.combine((end - length).date(), end.timetz())  # wall clock, across a DST change too
    return Period(f"{schedule.every}:{end.date().isoformat()}", start.astimezone(ZoneInfo("UTC")),
                  end.astimezone(ZoneInfo("UTC")), tz)  # type: ignore[arg-type]


def last_completed(schedule: DigestSchedule, tz: ZoneInfo, now: datetime) -> Period:
    """The newest period that has ended by ``now``."""
    return _period(schedule, _boundary(schedule, tz, now))


def current_period(schedule: DigestSchedule, tz: ZoneInfo, now: datetime) -> Period:
    """The period ``now`` is in (what /digest shows so far)."""
    end = _boundary(schedule, tz, now) + timedelta(days=1 if schedule.every == "daily" else 7)
    return _period(schedule, end)


def previous(schedule: DigestSchedule, period: Period) -> Period:
    """The period before."""
    return _period(schedule, period.start.astimezone(period.tz))


# ---- the messages ---------------------------------------------------------------------------------


def _line(article: StoredArticle, outlet: str | None, tz: ZoneInfo) -> tuple[str, str]:
    esc = html.escape
    title = trim_excerpt(" ".join(article.title.split()), 200) or "(无标题)"
    moment = article.published_at or article.first_seen_at
    meta = " · ".join(p for p in (article.outlet or outlet, f"{moment.astimezone(tz):%m-%d}") if p)
    link = article.original_url
    head = f"<b>{esc(title, quote=False)}</b>"
    if link:
        head = f'<a href="{esc(link, quote=True)}">{head}</a>'
    return f"• {head} — {esc(meta, quote=False)}", f"• {title} — {meta}" + (f"\n  {link}" if link else "")


def format_digest(name: str, hashtag: str, period: Period, articles: Sequence[StoredArticle], *,
                  outlets: Mapping[str, str] | None = None, weekly: bool = False,
                  limit: int = TELEGRAM_LIMIT) -> list[Message]:
    """A digest as messages of at most ``limit`` UTF-16 units each, split between lines, never inside one.

    Articles in the order the channel received them; a weekly digest is grouped by the day received.
    """
    outlets = outlets or {}
    kind = "周报" if weekly else "日报"
    tag = make_hashtag(hashtag)
    blocks: list[tuple[str, str]] = []  # (html, plain) lines; day headings start with "\n"
    day = None
    for article in articles:
        received = article.first_seen_at.astimezone(period.tz).date()
        if weekly and received != day:
            day = received
            heading = f"{received:%m-%d} 周{WEEKDAY_NAMES[received.weekday()]}"
            blocks.append((f"\n<b>{heading}</b>", f"\n{heading}"))
        blocks.append(_line(article, outlets.get(article.source_id), period.tz))

    def header(number: int, total: int) -> tuple[str, str]:
        suffix = f"（{number}/{total}）" if total > 1 else ""
        title = f"{name} · {kind}{suffix}"
        sub = f"{period.label} · 共 {len(articles)} 篇"
        return f"<b>{html.escape(title, quote=False)}</b>\n{html.escape(sub)}\n", f"{title}\n{sub}\n"

    footer = ("\n" + tag, "\n" + tag) if tag else ("", "")
    room = limit - max(visible_units(header(99, 99)[0]), utf16_units(header(99, 99)[1])) \
        - max(visible_units(footer[0]), utf16_units(footer[1]))
    chunks: list[list[tuple[str, str]]] = [[]]
    used = 0
    for block in blocks:
        size = max(visible_units(block[0]), utf16_units(block[1])) + 1
        if chunks[-1] and used + size > room:
            chunks.append([])
            used = 0
        chunks[-1].append(block)
        used += size
    out = []
    for number, chunk in enumerate(chunks, 1):
        head = header(number, len(chunks))
        body_html = "\n".join(b[0] for b in chunk).lstrip("\n")
        body_plain = "\n".join(b[1] for b in chunk).lstrip("\n")
        out.append(Message(html=head[0] + body_html + footer[0], plain=head[1] + body_plain + footer[1]))
    return out


# ---- the planner ----------------------------------------------------------------------------------


@dataclass
class PlanStats:
    """What one planning round recorded."""

    made: list[str] = field(default_factory=list)  # "target period parts"
    empty: int = 0
    missed: int = 0
    dropped: int = 0


class DigestPlanner:
    """Records each digest target's newest completed period once (the outbox drains its messages)."""

    def __init__(self, store: Store, targets: Mapping[str, list[Target]], *, schedules: Mapping[str, DigestSchedule],
                 tz: ZoneInfo, names: Mapping[str, tuple[str, str]], outlets: Mapping[str, str]):
        self.store = store
        self.targets = targets
        self.schedules = schedules
        self.tz = tz
        self.names = names  # topic → (name, hashtag)
        self.outlets = outlets

    @classmethod
    def for_config(cls, config: Config, store: Store, targets: Mapping[str, list[Target]]) -> DigestPlanner:
        """The planner of a configuration's digest targets."""
        catalogue = {c.id: c for c in channels(config.topics, config.chats)}
        return cls(store, targets, schedules={t: config.channel(t).digest for t in targets},
                   tz=ZoneInfo(config.telegram.timezone),
                   names={t: (catalogue[t].name, catalogue[t].hashtag) for t in targets if t in catalogue},
                   outlets={s.id: s.outlet for s in config.sources if s.outlet})

    def render(self, topic: str, period: Period) -> tuple[list[StoredArticle], list[Message]]:
        """The articles a channel received in a period and its digest messages (none when it had nothing)."""
        articles = self.store.received_articles(topic, period.start, period.end)
        if not articles:
            return articles, []
        name, hashtag = self.names.get(topic, (topic, ""))
        return articles, format_digest(name, hashtag, period, articles, outlets=self.outlets,
                                       weekly=self.schedules[topic].every == "weekly")

    def plan(self, now: datetime) -> PlanStats:
        """Record what is due at ``now``; safe to call as often as wanted (a period is recorded once)."""
        stats = PlanStats()
        for topic, targets in self.targets.items():
            schedule = self.schedules[topic]
            period = last_completed(schedule, self.tz, now)
            for target in targets:
                known = self.store.digest_periods(target)
                if period.key in known:
                    continue
                last_end = self.store.last_digest_end(target)
                if last_end is not None:
                    older = previous(schedule, period)
                    for _ in range(MAX_MISSED):
                        if older.end <= last_end or older.key in known:
                            break
                        self.store.record_digest(target, topic, older.key, older.start, older.end, status="missed",
                                                 note="missed while feedbot or Telegram was down")
                        stats.missed += 1
                        older = previous(schedule, older)
                articles, messages = self.render(topic, period)
                if not messages:
                    self.store.record_digest(target, topic, period.key, period.start, period.end, status="empty")
                    stats.empty += 1
                    continue
                stats.dropped += self.store.drop_unsent_digests(
                    target, before=period.end, reason=f"superseded by the digest of {period.key}")
                if self.store.record_digest(target, topic, period.key, period.start, period.end,
                                            parts=[(m.html, m.plain) for m in messages], articles=len(articles)):
                    stats.made.append(f"{target} {period.key} {len(messages)}")
                    log.info("digest: %s: %s with %d article(s) in %d message(s)", target, period.key,
                             len(articles), len(messages))
        return stats
