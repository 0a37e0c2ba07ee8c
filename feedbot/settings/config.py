"""TOML → frozen dataclasses, validated once; every error names the file and the key."""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from feedbot.errors import ConfigError, RulesError
from feedbot.model import ALL_CHANNEL
from feedbot.settings import topics as rules
from feedbot.settings.topics import TopicRules

DEFAULT_SOURCE_URL = "https://finews.withounder.com/category/zhongguohuanjingbao.html"
SEARCH_PATHS = (Path("feedbot.toml"), Path("/etc/feedbot/feedbot.toml"))
TOKEN_ENV = "FEEDBOT_TELEGRAM_TOKEN"
TOKEN_CREDENTIAL = "telegram_token"
SOURCE_KINDS = ("jekyll", "feed")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
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
    link_preview: bool = False
    edit_window: float = 48 * 3600.0  # seconds
    commands: bool = True  # answer /start, /topics, /latest in private chats


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
    log_level: str = "info"

    @property
    def db_path(self) -> Path:
        """The SQLite state file."""
        return self.state_dir / "feedbot.db"

    @property
    def feeds_dir(self) -> Path:
        """Where the generated feed files are written."""
        return self.state_dir / "feeds"

    def as_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain data, secrets redacted (for `check-config`)."""
        token = self.telegram.token
        return {
            "config_file": str(self.path) if self.path else None,
            "state_dir": str(self.state_dir),
            "log_level": self.log_level,
            "web": _plain(self.web),
            "fetch": _plain(self.fetch),
            "feeds": _plain(self.feeds),
            "telegram": {**_plain(self.telegram), "token": "********" if token else None},
            "sources": [_plain(s) for s in self.sources],
            "topics": {
                tid: {"name": t.name, "telegram_chat": self.chats.get(tid)} for tid, t in self.topics.items()
            },
        }


def _plain(obj: Any) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Secret):
            value = "********"
        out[f.name] = value
    return out


# ---- parsing helpers -------------------------------------------------------------------------


class _Where:
    """Builds error messages that name the file and the key."""

    def __init__(self, path: Path | None):
        self.file = str(path) if path else "<built-in defaults>"

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {key}: {message}")


def _suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: _Where, prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise where.error(f"{prefix}{key}", f"unknown key{_suggest(key, allowed)}")


def _type_name(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def _expect(value: Any, kind: type | tuple[type, ...], key: str, where: _Where, what: str) -> Any:
    # bool is an int subclass in Python, but `max_backlog = true` is a mistake, not a 1.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise where.error(key, f"expected {what}, got {_type_name(value)} ({value!r})")
    if not isinstance(value, kind):
        raise where.error(key, f"expected {what}, got {_type_name(value)} ({value!r})")
    return value


def parse_duration(value: Any, key: str = "duration", where: _Where | None = None) -> float:
    """'10m' → 600.0 seconds; accepts s, m, h, d suffixes, or a bare number of seconds."""
    where = where or _Where(None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise where.error(key, f'bad duration {value!r}: use a number with s, m, h or d, e.g. "10m"')
    if seconds <= 0:
        raise where.error(key, f"bad duration {value!r}: must be more than zero")
    return seconds


def _url(value: Any, key: str, where: _Where) -> str:
    _expect(value, str, key, where, "a URL string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise where.error(key, f"bad URL {value!r}: expected an absolute http:// or https:// URL")
    return value


def _positive_int(value: Any, key: str, where: _Where, minimum: int = 0) -> int:
    _expect(value, int, key, where, "an integer")
    if value < minimum:
        raise where.error(key, f"must be at least {minimum}, got {value}")
    return value


def _listen(value: Any, key: str, where: _Where) -> tuple[str, int]:
    _expect(value, str, key, where, 'a "host:port" string')
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port (tests)
        raise where.error(key, f'bad listen address {value!r}: expected "host:port", e.g. "127.0.0.1:8080"')
    if host not in ("localhost", "") and not re.match(r"^[A-Za-z0-9.-]+$", host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise where.error(key, f"bad listen host {host!r}") from None
    return host or "0.0.0.0", int(port)


def _backfill(value: Any, key: str, where: _Where) -> int | date | None:
    if value is False or value == "all":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise where.error(key, f'expected a number of posts, a date (2024-01-31) or "all", got {value!r}')


# ---- the tables ------------------------------------------------------------------------------

TOP_KEYS = ("state_dir", "log_level", "web", "fetch", "feeds", "telegram", "sources", "topics")
WEB_KEYS = ("listen", "base_url", "enabled")
FETCH_KEYS = ("timeout", "deadline", "max_body_bytes", "max_redirects", "per_host", "delay", "user_agent")
FEEDS_KEYS = ("entry_limit",)
TELEGRAM_KEYS = ("api_base_url", "max_backlog", "link_preview", "edit_window", "commands")
SOURCE_KEYS = ("id", "kind", "url", "interval", "backfill", "outlet", "name")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _parse_web(table: Mapping[str, Any], where: _Where) -> WebConfig:
    _check_keys(table, WEB_KEYS, where, "web.")
    host, port = _listen(table.get("listen", "127.0.0.1:8080"), "web.listen", where)
    public_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    netloc = f"[{public_host}]" if ":" in public_host else public_host
    base_url = _url(table["base_url"], "web.base_url", where) if "base_url" in table else f"http://{netloc}:{port}"
    enabled = _expect(table.get("enabled", True), bool, "web.enabled", where, "true or false")
    return WebConfig(host=host, port=port, base_url=base_url.rstrip("/"), enabled=enabled)


def _parse_fetch(table: Mapping[str, Any], where: _Where) -> FetchConfig:
    _check_keys(table, FETCH_KEYS, where, "fetch.")
    d = FetchConfig()
    ua = table.get("user_agent")
    if ua is not None:
        _expect(ua, str, "fetch.user_agent", where, "a string")
    return FetchConfig(
        timeout=parse_duration(table.get("timeout", d.timeout), "fetch.timeout", where),
        deadline=parse_duration(table.get("deadline", d.deadline), "fetch.deadline", where),
        max_body_bytes=_positive_int(table.get("max_body_bytes", d.max_body_bytes), "fetch.max_body_bytes",
                                     where, 1024),
        max_redirects=_positive_int(table.get("max_redirects", d.max_redirects), "fetch.max_redirects", where),
        per_host=_positive_int(table.get("per_host", d.per_host), "fetch.per_host", where, 1),
        delay=parse_duration(table["delay"], "fetch.delay", where) if "delay" in table else d.delay,
        user_agent=ua,
    )


def _parse_telegram(table: Mapping[str, Any], where: _Where, token: Secret | None) -> TelegramConfig:
    if "token" in table:
        raise where.error("telegram.token", f"the bot token never lives in the config file: set {TOKEN_ENV} "
                          f"or the systemd credential {TOKEN_CREDENTIAL!r} (LoadCredential=)")
    _check_keys(table, TELEGRAM_KEYS, where, "telegram.")
    d = TelegramConfig()
    return TelegramConfig(
        token=token,
        api_base_url=_url(table.get("api_base_url", d.api_base_url), "telegram.api_base_url", where).rstrip("/"),
        max_backlog=_positive_int(table.get("max_backlog", d.max_backlog), "telegram.max_backlog", where),
        link_preview=_expect(table.get("link_preview", d.link_preview), bool, "telegram.link_preview", where,
                             "true or false"),
        edit_window=parse_duration(table.get("edit_window", d.edit_window), "telegram.edit_window", where),
        commands=_expect(table.get("commands", d.commands), bool, "telegram.commands", where, "true or false"),
    )


def _parse_sources(items: Any, where: _Where) -> tuple[SourceConfig, ...]:
    _expect(items, list, "sources", where, "an array of tables ([[sources]])")
    seen: dict[str, int] = {}
    out = []
    for index, table in enumerate(items):
        prefix = f"sources[{index}]"
        _expect(table, dict, prefix, where, "a table")
        _check_keys(table, SOURCE_KEYS, where, prefix + ".")
        for required in ("id", "url"):
            if required not in table:
                raise where.error(f"{prefix}.{required}", "missing (every source needs an id and a url)")
        sid = _expect(table["id"], str, f"{prefix}.id", where, "a string")
        if not _SOURCE_ID.match(sid):
            raise where.error(f"{prefix}.id", f"bad id {sid!r}: use lowercase letters, digits, - and _")
        if sid in seen:
            raise where.error(f"{prefix}.id", f"duplicate source id {sid!r} (also sources[{seen[sid]}])")
        seen[sid] = index
        kind = _expect(table.get("kind", "feed"), str, f"{prefix}.kind", where, "a string")
        if kind not in SOURCE_KINDS:
            raise where.error(f"{prefix}.kind", f"unknown kind {kind!r}: expected one of "
                              f"{', '.join(SOURCE_KINDS)}{_suggest(kind, SOURCE_KINDS)}")
        optional = {}
        for key in ("outlet", "name"):
            if key in table:
                optional[key] = _expect(table[key], str, f"{prefix}.{key}", where, "a string")
        out.append(SourceConfig(
            id=sid,
            kind=kind,
            url=_url(table["url"], f"{prefix}.url", where),
            interval=parse_duration(table.get("interval", "10m"), f"{prefix}.interval", where),
            backfill=_backfill(table.get("backfill", 20), f"{prefix}.backfill", where),
            **optional,
        ))
    return tuple(out)


def _parse_topics(table: Any, where: _Where) -> tuple[dict[str, TopicRules], dict[str, str]]:
    _expect(table, dict, "topics", where, "a table of topics ([topics.<id>])")
    defaults = rules.load_default_topics()
    chats: dict[str, str] = {}
    user_rules: dict[str, dict] = {}
    for tid, body in table.items():
        key = f"topics.{tid}"
        if tid == ALL_CHANNEL:
            raise where.error(key, f'the topic id "{ALL_CHANNEL}" is reserved (it names the feed of every topic)')
        _expect(body, dict, key, where, "a table")
        body = dict(body)
        if "telegram_chat" in body:
            chat = body.pop("telegram_chat")
            if isinstance(chat, int) and not isinstance(chat, bool):
                chat = str(chat)
            _expect(chat, str, f"{key}.telegram_chat", where, 'a chat ("@channel" or a numeric id)')
            if not _CHAT.match(chat):
                raise where.error(f"{key}.telegram_chat",
                                  f'bad chat {chat!r}: expected "@channelname" or a numeric chat id')
            chats[tid] = chat
        if tid not in defaults and not body:
            raise where.error(key, f"unknown topic {tid!r}{_suggest(tid, tuple(defaults))}; "
                              "a new topic needs its own rules (name, terms)")
        if body:
            user_rules[tid] = body
    try:
        topics = rules.merge_topics(defaults, user_rules, where.file) if user_rules else defaults
    except RulesError:
        raise
    return topics, chats


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
    where = _Where(path)
    _check_keys(data, TOP_KEYS, where, "")
    base = path.parent if path else Path.cwd()
    state_dir = Path(_expect(data.get("state_dir", "state"), str, "state_dir", where, "a path string"))
    if not state_dir.is_absolute():
        state_dir = base / state_dir
    log_level = _expect(data.get("log_level", "info"), str, "log_level", where, "a string").lower()
    if log_level not in LOG_LEVELS:
        raise where.error("log_level", f"expected one of {', '.join(LOG_LEVELS)}{_suggest(log_level, LOG_LEVELS)}")
    sections: dict[str, Mapping[str, Any]] = {}
    for name in ("web", "fetch", "feeds", "telegram"):
        sections[name] = _expect(data.get(name, {}), dict, name, where, f"a table ([{name}])")
    _check_keys(sections["feeds"], FEEDS_KEYS, where, "feeds.")
    feeds = FeedsConfig(entry_limit=_positive_int(sections["feeds"].get("entry_limit", 50), "feeds.entry_limit",
                                                  where, 1))
    topics, chats = _parse_topics(data.get("topics", {}), where)
    sources = _parse_sources(data["sources"], where) if "sources" in data else default_sources()
    return Config(
        path=path,
        state_dir=state_dir,
        web=_parse_web(sections["web"], where),
        fetch=_parse_fetch(sections["fetch"], where),
        feeds=feeds,
        telegram=_parse_telegram(sections["telegram"], where, read_token(env)),
        sources=sources,
        topics=topics,
        chats=chats,
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

