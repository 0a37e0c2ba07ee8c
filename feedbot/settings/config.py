"""TOML → frozen dataclasses, validated once; every error names the file and the key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from feedbot.errors import ConfigError, RulesError
from feedbot.model import ALL_CHANNEL
from feedbot.settings import topics as rules
from feedbot.settings.secrets import redact_url, url_secrets
from feedbot.settings.sourcekeys import LIST_KEYS, ListSelectors, apply_preset, parse_selectors
from feedbot.settings.topics import TopicRules
from feedbot.settings.values import (
    DURATION_RANGES,
    MODES,
    STYLES,
    DigestSchedule,
    Where,
    backfill,
    bounded_int,
    check_keys,
    choice,
    digest_schedule,
    expect,
    header_text,
    http_url,
    link_preview,
    listen,
    parse_duration,
    quiet_hours,
    suggest,
    thread_id,
    timezone_name,
)

__all__ = ["ChannelTelegram", "Config", "FeedsConfig", "FetchConfig", "ListSelectors", "Secret", "SourceConfig",
           "TelegramConfig", "WebConfig",
           "find_config", "load_config", "parse_config", "parse_duration", "read_token"]

DEFAULT_SOURCE_URL = "https://finews.withounder.com/category/zhongguohuanjingbao.html"
SEARCH_PATHS = (Path("feedbot.toml"), Path("/etc/feedbot/feedbot.toml"))
DAILY_0800 = DigestSchedule("daily", 8 * 60)
TOKEN_ENV = "FEEDBOT_TELEGRAM_TOKEN"
TOKEN_CREDENTIAL = "telegram_token"
SOURCE_KINDS = ("jekyll", "feed", "html")
_CHAT = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,}|-?\d+)$")
_SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


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

TOP_KEYS = ("state_dir", "log_level", "web", "fetch", "feeds", "telegram", "sources", "topics")
WEB_KEYS = ("listen", "base_url", "enabled")
FETCH_KEYS = ("timeout", "deadline", "max_body_bytes", "max_redirects", "per_host", "delay", "user_agent")
FEEDS_KEYS = ("entry_limit",)
TELEGRAM_KEYS = ("api_base_url", "max_backlog", "link_preview", "edit_window", "commands", "style", "mode",
                 "digest", "quiet_hours", "timezone")
# Per-channel Telegram keys under [topics.<id>] (the rest of the table is the topic's routing rules).
CHANNEL_KEYS = ("telegram_thread", "style", "mode", "digest", "quiet_hours", "link_preview")
SOURCE_KEYS = ("id", "kind", "url", "interval", "backfill", "outlet", "name", *LIST_KEYS)
LOG_LEVELS = ("debug", "info", "warning", "error")


def _parse_web(table: Mapping[str, Any], where: Where) -> WebConfig:
    check_keys(table, WEB_KEYS, where, "web.")
    host, port = listen(table.get("listen", "127.0.0.1:8080"), "web.listen", where)
    public_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    netloc = f"[{public_host}]" if ":" in public_host else public_host
    base_url = http_url(table["base_url"], "web.base_url", where) if "base_url" in table else f"http://{netloc}:{port}"
    enabled = expect(table.get("enabled", True), bool, "web.enabled", where, "true or false")
    return WebConfig(host=host, port=port, base_url=base_url.rstrip("/"), enabled=enabled)


def _parse_fetch(table: Mapping[str, Any], where: Where) -> FetchConfig:
    check_keys(table, FETCH_KEYS, where, "fetch.")
    d = FetchConfig()
    ua = table.get("user_agent")
    if ua is not None:
        header_text(ua, "fetch.user_agent", where)
    return FetchConfig(
        timeout=parse_duration(table.get("timeout", d.timeout), "fetch.timeout", where),
        deadline=parse_duration(table.get("deadline", d.deadline), "fetch.deadline", where),
        max_body_bytes=bounded_int(table.get("max_body_bytes", d.max_body_bytes), "fetch.max_body_bytes",
                                    where, 1024, 1 << 30),
        max_redirects=bounded_int(table.get("max_redirects", d.max_redirects), "fetch.max_redirects", where,
                                  maximum=30),
        per_host=bounded_int(table.get("per_host", d.per_host), "fetch.per_host", where, 1, 64),
        delay=parse_duration(table["delay"], "fetch.delay", where) if "delay" in table else d.delay,
        user_agent=ua,
    )


def _parse_telegram(table: Mapping[str, Any], where: Where, token: Secret | None) -> TelegramConfig:
    if "token" in table:
        raise where.error("telegram.token", f"the bot token never lives in the config file: set {TOKEN_ENV} "
                          f"or the systemd credential {TOKEN_CREDENTIAL!r} (LoadCredential=)")
    check_keys(table, TELEGRAM_KEYS, where, "telegram.")
    d = TelegramConfig()
    return TelegramConfig(
        token=token,
        api_base_url=http_url(table.get("api_base_url", d.api_base_url), "telegram.api_base_url", where).rstrip("/"),
        max_backlog=bounded_int(table.get("max_backlog", d.max_backlog), "telegram.max_backlog", where),
        link_preview=link_preview(table.get("link_preview", d.link_preview), "telegram.link_preview", where),
        edit_window=parse_duration(table.get("edit_window", d.edit_window), "telegram.edit_window", where),
        commands=expect(table.get("commands", d.commands), bool, "telegram.commands", where, "true or false"),
        style=choice(table.get("style", d.style), STYLES, "telegram.style", where),
        mode=choice(table.get("mode", d.mode), MODES, "telegram.mode", where),
        digest=digest_schedule(table["digest"], "telegram.digest", where) if "digest" in table else d.digest,
        quiet_hours=quiet_hours(table["quiet_hours"], "telegram.quiet_hours", where)
        if "quiet_hours" in table else d.quiet_hours,
        timezone=timezone_name(table.get("timezone", d.timezone), "telegram.timezone", where),
    )


def _channel_settings(body: dict[str, Any], key: str, where: Where, d: TelegramConfig) -> ChannelTelegram:
    """Pop the per-channel Telegram keys of one [topics.<id>] table, defaults from [telegram]."""
    own = {k: body.pop(k) for k in CHANNEL_KEYS if k in body}
    at = f"{key}."
    return ChannelTelegram(
        style=choice(own["style"], STYLES, at + "style", where) if "style" in own else d.style,
        mode=choice(own["mode"], MODES, at + "mode", where) if "mode" in own else d.mode,
        digest=digest_schedule(own["digest"], at + "digest", where) if "digest" in own else d.digest,
        thread=thread_id(own["telegram_thread"], at + "telegram_thread", where) if "telegram_thread" in own
        else None,
        quiet_hours=quiet_hours(own["quiet_hours"], at + "quiet_hours", where) if "quiet_hours" in own
        else d.quiet_hours,
        link_preview=link_preview(own["link_preview"], at + "link_preview", where) if "link_preview" in own
        else d.link_preview,
    )


def _parse_sources(items: Any, where: Where) -> tuple[SourceConfig, ...]:
    expect(items, list, "sources", where, "an array of tables ([[sources]])")
    seen: dict[str, int] = {}
    out = []
    for index, table in enumerate(items):
        prefix = f"sources[{index}]"
        expect(table, dict, prefix, where, "a table")
        check_keys(table, SOURCE_KEYS, where, prefix + ".")
        table = apply_preset(table, prefix, where)
        for required in ("id", "url"):
            if required not in table:
                raise where.error(f"{prefix}.{required}", "missing (every source needs an id and a url)")
        sid = expect(table["id"], str, f"{prefix}.id", where, "a string")
        if not _SOURCE_ID.match(sid):
            raise where.error(f"{prefix}.id", f"bad id {sid!r}: use lowercase letters, digits, - and _")
        if sid in seen:
            raise where.error(f"{prefix}.id", f"duplicate source id {sid!r} (also sources[{seen[sid]}])")
        seen[sid] = index
        kind = expect(table.get("kind", "feed"), str, f"{prefix}.kind", where, "a string")
        if kind not in SOURCE_KINDS:
            raise where.error(f"{prefix}.kind", f"unknown kind {kind!r}: expected one of "
                              f"{', '.join(SOURCE_KINDS)}{suggest(kind, SOURCE_KINDS)}")
        optional = {}
        for key in ("outlet", "name"):
            if key in table:
                optional[key] = expect(table[key], str, f"{prefix}.{key}", where, "a string")
        out.append(SourceConfig(
            id=sid,
            kind=kind,
            url=http_url(table["url"], f"{prefix}.url", where),
            interval=parse_duration(table.get("interval", "10m"), f"{prefix}.interval", where,
                                    DURATION_RANGES["interval"]),
            backfill=backfill(table.get("backfill", 20), f"{prefix}.backfill", where),
            selectors=parse_selectors(table, kind, f"{prefix}", where),
            **optional,
        ))
    return tuple(out)


def _parse_topics(table: Any, where: Where, telegram: TelegramConfig
                  ) -> tuple[dict[str, TopicRules], dict[str, str], dict[str, ChannelTelegram]]:
    expect(table, dict, "topics", where, "a table of topics ([topics.<id>])")
    defaults = rules.load_default_topics()
    chats: dict[str, str] = {}
    settings: dict[str, ChannelTelegram] = {}
    user_rules: dict[str, dict] = {}
    for tid, body in table.items():
        key = f"topics.{tid}"
        if tid == ALL_CHANNEL:
            raise where.error(key, f'the topic id "{ALL_CHANNEL}" is reserved (it names the feed of every topic)')
        expect(body, dict, key, where, "a table")
        body = dict(body)
        if "telegram_chat" in body:
            chat = body.pop("telegram_chat")
            if isinstance(chat, int) and not isinstance(chat, bool):
                chat = str(chat)
            expect(chat, str, f"{key}.telegram_chat", where, 'a chat ("@channel" or a numeric id)')
            if not _CHAT.match(chat):
                raise where.error(f"{key}.telegram_chat",
                                  f'bad chat {chat!r}: expected "@channelname" or a numeric chat id')
            chats[tid] = chat
        settings[tid] = _channel_settings(body, key, where, telegram)
        if settings[tid].thread is not None and tid not in chats:
            raise where.error(f"{key}.telegram_thread", "a forum topic needs its group: set telegram_chat too")
        if tid not in defaults and not body:
            raise where.error(key, f"unknown topic {tid!r}{suggest(tid, tuple(defaults))}; "
                              "a new topic needs its own rules (name, terms)")
        if body:
            user_rules[tid] = body
    try:
        topics = rules.merge_topics(defaults, user_rules, where.file) if user_rules else defaults
    except RulesError:
        raise
    return topics, chats, settings


def default_sources() -> tuple[SourceConfig, ...]:
    """The real source: the 中国环境报 category of the Jekyll news site."""
    return (SourceConfig(id="zhongguohuanjingbao", kind="jekyll", url=DEFAULT_SOURCE_URL, outlet="中国环境报"),)


def read_token(env: Mapping[str, str]) -> Secret | None:
    """The bot token from the environment or a systemd credential, never from the file."""
    value = env.get(TOKEN_ENV, "").strip()
    if not value and env.get("CREDENTIALS_DIRECTORY"):
        path = Path(env["CREDENTIALS_DIRECTORY"]) / TOKEN_CREDENTIAL
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            value = ""
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the credential: {exc.strerror}") from None
    return Secret(value) if value else None


def find_config(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """--config, then $FEEDBOT_CONFIG, then ./feedbot.toml, then /etc/feedbot/feedbot.toml."""
    if explicit:
        return Path(explicit)
    if env.get("FEEDBOT_CONFIG"):
        return Path(env["FEEDBOT_CONFIG"])
    return next((p for p in SEARCH_PATHS if p.is_file()), None)


def parse_config(data: Mapping[str, Any], path: Path | None, env: Mapping[str, str]) -> Config:
    """Validate a parsed TOML document into a Config."""
    where = Where(path)
    check_keys(data, TOP_KEYS, where, "")
    base = path.parent if path else Path.cwd()
    state_dir = Path(expect(data.get("state_dir", "state"), str, "state_dir", where, "a path string"))
    if not state_dir.is_absolute():
        state_dir = base / state_dir
    log_level = expect(data.get("log_level", "info"), str, "log_level", where, "a string").lower()
    if log_level not in LOG_LEVELS:
        raise where.error("log_level", f"expected one of {', '.join(LOG_LEVELS)}{suggest(log_level, LOG_LEVELS)}")
    sections: dict[str, Mapping[str, Any]] = {}
    for name in ("web", "fetch", "feeds", "telegram"):
        sections[name] = expect(data.get(name, {}), dict, name, where, f"a table ([{name}])")
    check_keys(sections["feeds"], FEEDS_KEYS, where, "feeds.")
    feeds = FeedsConfig(entry_limit=bounded_int(sections["feeds"].get("entry_limit", 50), "feeds.entry_limit",
                                                 where, 1, 100_000))
    telegram = _parse_telegram(sections["telegram"], where, read_token(env))
    topics, chats, channel_settings = _parse_topics(data.get("topics", {}), where, telegram)
    sources = _parse_sources(data["sources"], where) if "sources" in data else default_sources()
    return Config(
        path=path,
        state_dir=state_dir,
        web=_parse_web(sections["web"], where),
        fetch=_parse_fetch(sections["fetch"], where),
        feeds=feeds,
        telegram=telegram,
        sources=sources,
        topics=topics,
        chats=chats,
        channel_settings=channel_settings,
        log_level=log_level,
    )


def load_config(path: Path | None, env: Mapping[str, str]) -> Config:
    """Read and validate the configuration file (or the built-in defaults when path is None)."""
    if path is None:
        return parse_config({}, None, env)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts "(at line L, column C)" in its message: keep it, it is the useful part.
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    return parse_config(data, path.resolve(), env)

