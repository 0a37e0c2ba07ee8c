"""The configuration as frozen dataclasses: what every stage receives, parsed once by settings/config.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from feedbot.settings.secrets import redact_url, url_secrets
from feedbot.settings.sourcekeys import ListSelectors
from feedbot.settings.topics import TopicRules
from feedbot.settings.values import (
    DigestSchedule,
)

DAILY_0800 = DigestSchedule("daily", 8 * 60)


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The real value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class WebConfig:
    """The built-in web server and the public URL of the feeds."""

    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"
    enabled: bool = True


@dataclass(frozen=True)
class SourceConfig:
    """One source to poll."""

    id: str
    kind: str
    url: str
    interval: float = 600.0  # seconds
    backfill: int | date | None = 20  # posts (or a date) the first poll fetches; None = everything
    outlet: str | None = None
    name: str | None = None
    selectors: ListSelectors | None = None  # kind "html": how to read the list page and its posts

    @property
    def display_url(self) -> str:
        """The URL as logs, status and pages show it: credentials replaced by ***."""
        return redact_url(self.url)


@dataclass(frozen=True)
class FetchConfig:
    """How feedbot behaves as an HTTP client."""

    timeout: float = 20.0  # connect/read timeout, seconds
    deadline: float = 60.0  # total time for one request, seconds
    max_body_bytes: int = 8 * 1024 * 1024  # decoded
    max_redirects: int = 5
    per_host: int = 4  # concurrent requests to one host
    delay: float = 0.5  # seconds between post-page requests to one host when backfilling
    user_agent: str | None = None  # default: feedbot/<version> (+project URL)


@dataclass(frozen=True)
class TelegramConfig:
    """The Telegram publisher."""

    token: Secret | None = None
    api_base_url: str = "https://api.telegram.org"
    max_backlog: int = 5
    link_preview: str = "off"  # off | small | large | small-above | large-above (true = large, false = off)
    edit_window: float = 48 * 3600.0  # seconds
    commands: bool = True  # answer /start, /topics, /latest, /digest in private chats
    # Defaults of the per-channel keys under [topics.<id>]:
    style: str = "lead"  # lead | full | headline
    mode: str = "instant"  # instant | digest | both
    digest: DigestSchedule = DAILY_0800
    quiet_hours: tuple[int, int] | None = None  # local minutes (start, end); may wrap midnight
    timezone: str = "Asia/Shanghai"  # the local time of digest schedules and quiet hours


@dataclass(frozen=True)
class ChannelTelegram:
    """One channel's Telegram settings, resolved against the [telegram] defaults."""

    style: str = "lead"
    mode: str = "instant"
    digest: DigestSchedule = DAILY_0800
    thread: int | None = None  # a forum topic of telegram_chat (message_thread_id)
    quiet_hours: tuple[int, int] | None = None
    link_preview: str = "off"

    @property
    def instant(self) -> bool:
        """Whether each article is sent as its own message."""
        return self.mode in ("instant", "both")

    @property
    def digests(self) -> bool:
        """Whether the channel gets a digest per period."""
        return self.mode in ("digest", "both")


@dataclass(frozen=True)
class PipelineConfig:
    """How the CPU stage of a poll (normalize, classify, fingerprint) runs."""

    workers: int | None = None  # worker processes; None = "auto" (one per spare core), 0 = a thread


@dataclass(frozen=True)
class FeedsConfig:
    """The generated feeds."""

    entry_limit: int = 50


@dataclass(frozen=True)
class Config:
    """The whole resolved configuration."""

    path: Path | None
    state_dir: Path
    web: WebConfig
    fetch: FetchConfig
    feeds: FeedsConfig
    telegram: TelegramConfig
    sources: tuple[SourceConfig, ...]
    topics: Mapping[str, TopicRules]
    chats: Mapping[str, str] = field(default_factory=dict)  # topic id -> Telegram chat
    channel_settings: Mapping[str, ChannelTelegram] = field(default_factory=dict)  # topic id -> its settings
    log_level: str = "info"
    pipeline: PipelineConfig = PipelineConfig()

    @property
    def db_path(self) -> Path:
        """The SQLite state file."""
        return self.state_dir / "feedbot.db"

    @property
    def feeds_dir(self) -> Path:
        """Where the generated feed files are written."""
        return self.state_dir / "feeds"

    def channel(self, topic: str) -> ChannelTelegram:
        """A channel's Telegram settings (the [telegram] defaults for one without its own)."""
        if topic in self.channel_settings:
            return self.channel_settings[topic]
        t = self.telegram
        return ChannelTelegram(t.style, t.mode, t.digest, None, t.quiet_hours, t.link_preview)

    def url_secrets(self) -> list[str]:
        """Passwords inside configured URLs, for the log redaction."""
        return url_secrets([s.url for s in self.sources] + [self.web.base_url, self.telegram.api_base_url])

    def as_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain data, secrets redacted (for `check-config`)."""
        token = self.telegram.token
        return {
            "config_file": str(self.path) if self.path else None,
            "state_dir": str(self.state_dir),
            "log_level": self.log_level,
            "web": {**_plain(self.web), "base_url": redact_url(self.web.base_url)},
            "fetch": _plain(self.fetch),
            "feeds": _plain(self.feeds),
            "pipeline": {"workers": "auto" if self.pipeline.workers is None else self.pipeline.workers},
            "telegram": {**_plain(self.telegram), "token": "********" if token else None,
                         "api_base_url": redact_url(self.telegram.api_base_url)},
            "sources": [_source_dict(s) for s in self.sources],
            "topics": {
                tid: {"name": t.name, "telegram_chat": self.chats.get(tid),
                      **{("telegram_thread" if k == "thread" else k): v for k, v in _plain(self.channel(tid)).items()}}
                for tid, t in self.topics.items()
            },
        }


def _source_dict(source: SourceConfig) -> dict[str, Any]:
    """A source as its TOML block: list-page selectors as keys of their own, unset ones left out."""
    out = {k: v for k, v in _plain(source).items() if k != "selectors"}
    out["url"] = source.display_url
    if source.selectors is not None:
        out.update({k: v for k, v in _plain(source.selectors).items() if v is not None})
    return out


def _plain(obj: Any) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, DigestSchedule):
            value = str(value)
        elif f.name == "quiet_hours":
            value = _window_text(value)
        elif isinstance(value, Secret):
            value = "********"
        out[f.name] = value
    return out


def _window_text(window: tuple[int, int] | None) -> str | None:
    if window is None:
        return None
    return "-".join(f"{m // 60:02d}:{m % 60:02d}" for m in window)


# ---- the tables ------------------------------------------------------------------------------
