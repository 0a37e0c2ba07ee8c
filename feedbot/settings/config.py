"""TOML → frozen dataclasses, validated once; every error names the file and the key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from feedbot.errors import ConfigError, RulesError
from feedbot.model import ALL_CHANNEL
from feedbot.settings import topics as rules
from feedbot.settings.schema import (
    ChannelTelegram,
    Config,
    FeedsConfig,
    FetchConfig,
    PipelineConfig,
    Secret,
    SourceConfig,
    TelegramConfig,
    WebConfig,
)
from feedbot.settings.sourcekeys import LIST_KEYS, ListSelectors, apply_preset, parse_selectors
from feedbot.settings.topics import TopicRules
from feedbot.settings.values import (
    DURATION_RANGES,
    MODES,
    STYLES,
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
TOKEN_ENV = "FEEDBOT_TELEGRAM_TOKEN"
TOKEN_CREDENTIAL = "telegram_token"
SOURCE_KINDS = ("jekyll", "feed", "html")
_CHAT = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,}|-?\d+)$")
_SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


TOP_KEYS = ("state_dir", "log_level", "web", "fetch", "feeds", "pipeline", "telegram", "sources", "topics")
WEB_KEYS = ("listen", "base_url", "enabled")
FETCH_KEYS = ("timeout", "deadline", "max_body_bytes", "max_redirects", "per_host", "delay", "user_agent")
FEEDS_KEYS = ("entry_limit",)
PIPELINE_KEYS = ("workers",)
MAX_WORKERS = 16
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
        per_host=bounded_int(table.get("per_host", d.per_host), "fetch.per_host", where, 1, 100),
        delay=parse_duration(table["delay"], "fetch.delay", where) if "delay" in table else d.delay,
        user_agent=ua,
    )


def _parse_pipeline(table: Mapping[str, Any], where: Where) -> PipelineConfig:
    check_keys(table, PIPELINE_KEYS, where, "pipeline.")
    workers = table.get("workers", "auto")
    if workers == "auto":
        return PipelineConfig(workers=None)
    if isinstance(workers, str):
        raise where.error("pipeline.workers", f'expected "auto" or a number from 0 to {MAX_WORKERS}, got {workers!r}')
    return PipelineConfig(workers=bounded_int(workers, "pipeline.workers", where, 0, MAX_WORKERS))


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
    for name in ("web", "fetch", "feeds", "pipeline", "telegram"):
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
        pipeline=_parse_pipeline(sections["pipeline"], where),
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

