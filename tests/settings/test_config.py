"""Configuration: defaults, every error with its message, secrets from env/credentials only."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest

from feedbot.errors import ConfigError
from feedbot.ops.logs import setup_logging
from feedbot.settings.config import DEFAULT_SOURCE_URL, Secret, find_config, load_config, parse_duration

TOKEN = "123456789:AAH-realLookingTokenValue_abcdefghijkl"


def load(path: Path | None, env: dict[str, str] | None = None):
    return load_config(path, env or {})


def test_defaults_without_a_file_poll_the_real_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load(None)
    assert [s.url for s in config.sources] == [DEFAULT_SOURCE_URL]
    assert config.sources[0].kind == "jekyll"
    assert config.state_dir == tmp_path / "state"
    assert config.web.host == "127.0.0.1" and config.web.port == 8080
    assert set(config.topics) == {"carbon-market", "adaptation-2035", "climate-finance", "carbon-manager"}
    assert config.telegram.token is None and config.telegram.max_backlog == 5


def test_full_example_is_parsed(write_config):
    path = write_config("""
        state_dir = "var"
        [web]
        listen = "0.0.0.0:9090"
        base_url = "https://feeds.example.org/"
        [[sources]]
        id = "zhongguohuanjingbao"
        kind = "jekyll"
        url = "https://finews.withounder.com/category/zhongguohuanjingbao.html"
        interval = "10m"
        backfill = 2024-01-31
        [[sources]]
        id = "other"
        url = "https://example.org/feed.xml"
        interval = "1.5h"
        backfill = 3
        [topics.carbon-market]
        telegram_chat = "@my_carbon_market"
        [topics.climate-finance]
        telegram_chat = -1001234567890
        [telegram]
        api_base_url = "http://127.0.0.1:8081"
        max_backlog = 2
    """)
    config = load(path)
    assert config.state_dir == path.parent / "var"
    assert (config.web.host, config.web.port, config.web.base_url) == ("0.0.0.0", 9090, "https://feeds.example.org")
    assert [s.interval for s in config.sources] == [600.0, 5400.0]
    assert config.sources[0].backfill == date(2024, 1, 31) and config.sources[1].backfill == 3
    assert config.sources[1].kind == "feed"
    assert config.chats == {"carbon-market": "@my_carbon_market", "climate-finance": "-1001234567890"}
    assert config.telegram.api_base_url == "http://127.0.0.1:8081" and config.telegram.max_backlog == 2


@pytest.mark.parametrize(("body", "message"), [
    ('stat_dir = "x"\n', 'stat_dir: unknown key (did you mean "state_dir"?)'),
    ('[web]\nlisten = "127.0.0.1:8080"\nbase_ur = "https://x.org"\n',
     'web.base_ur: unknown key (did you mean "base_url"?)'),
    ('[[sources]]\nid = "a"\nurl = "https://x.org/f"\nintervall = "5m"\n',
     'sources[0].intervall: unknown key (did you mean "interval"?)'),
    ('[telegram]\nmax_backlog = "five"\n', "telegram.max_backlog: expected an integer, got a string ('five')"),
    ('[telegram]\nmax_backlog = true\n', "telegram.max_backlog: expected an integer, got a boolean (True)"),
    ('[[sources]]\nid = "a"\nurl = "https://x.org/f"\ninterval = "10x"\n',
     "sources[0].interval: bad duration '10x': use a number with s, m, h or d"),
    ('[[sources]]\nid = "a"\nurl = "https://x.org/f"\ninterval = "0m"\n', "sources[0].interval: bad duration '0m'"),
    ('[[sources]]\nid = "a"\nurl = "ftp://x.org/f"\n', "sources[0].url: bad URL 'ftp://x.org/f'"),
    ('[[sources]]\nid = "a"\nurl = "not a url"\n', "sources[0].url: bad URL 'not a url'"),
    ('[telegram]\napi_base_url = "api.telegram.org"\n', "telegram.api_base_url: bad URL"),
    ('[[sources]]\nid = "a"\nurl = "https://x.org/1"\n[[sources]]\nid = "a"\nurl = "https://x.org/2"\n',
     "sources[1].id: duplicate source id 'a' (also sources[0])"),
    ('[[sources]]\nid = "a"\nkind = "jekyl"\nurl = "https://x.org/1"\n',
     'sources[0].kind: unknown kind \'jekyl\': expected one of jekyll, feed, html (did you mean "jekyll"?)'),
    ('[[sources]]\nkind = "feed"\nurl = "https://x.org/1"\n', "sources[0].id: missing"),
    ('[topics.carbon-markets]\ntelegram_chat = "@chan_name"\n',
     'topics.carbon-markets: unknown topic \'carbon-markets\' (did you mean "carbon-market"?)'),
    ('[topics.carbon-market]\ntelegram_chat = "my chan"\n', "topics.carbon-market.telegram_chat: bad chat 'my chan'"),
    ('[web]\nlisten = "localhost"\n', "web.listen: bad listen address 'localhost'"),
    ('[telegram]\ntoken = "123:abc"\n', "telegram.token: the bot token never lives in the config file"),
    ('log_level = "loud"\n', "log_level: expected one of debug, info, warning, error"),
    ('[topics.all]\nname = "全部"\n', 'topics.all: the topic id "all" is reserved'),
])
def test_invalid_config_names_file_and_key(write_config, body, message):
    path = write_config(body)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path.resolve()}: ")
    assert message in str(caught.value)


def test_toml_syntax_error_has_line_and_column(write_config):
    path = write_config('state_dir = "state"\n[web\nlisten = 1\n')
    with pytest.raises(ConfigError, match=r"TOML syntax error: .*line 2, column 5"):
        load(path)


def test_unreadable_file_is_named(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope.toml: cannot read the configuration file"):
        load(missing)
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    with pytest.raises(ConfigError, match=r"dir.toml: cannot read"):
        load(directory)


def test_duration_units():
    assert [parse_duration(v) for v in ("30s", "10m", "2h", "1d", 45)] == [30, 600, 7200, 86400, 45]


def test_config_search_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_config(None, {}) is None
    (tmp_path / "feedbot.toml").write_text("")
    assert find_config(None, {}) == Path("feedbot.toml")
    assert find_config(None, {"FEEDBOT_CONFIG": "/x/y.toml"}) == Path("/x/y.toml")
    assert find_config("given.toml", {"FEEDBOT_CONFIG": "/x/y.toml"}) == Path("given.toml")


def test_token_from_env_is_redacted_everywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load(None, {"FEEDBOT_TELEGRAM_TOKEN": TOKEN})
    assert config.telegram.token.reveal() == TOKEN
    assert TOKEN not in repr(config) and TOKEN not in str(config.telegram)
    assert TOKEN not in str(config.as_dict())
    assert config.as_dict()["telegram"]["token"] == "********"


def test_token_from_systemd_credential(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "telegram_token").write_text(TOKEN + "\n")
    config = load(None, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.telegram.token == Secret(TOKEN)
    # The environment wins over the credential.
    both = {"CREDENTIALS_DIRECTORY": str(creds), "FEEDBOT_TELEGRAM_TOKEN": "9:x"}
    assert load(None, both).telegram.token == Secret("9:x")


def test_token_never_reaches_a_log_line_or_traceback(capsys):
    import io

    stream = io.StringIO()
    setup_logging("debug", env={}, secrets=[TOKEN], stream=stream)
    log = logging.getLogger("feedbot.test")
    log.info("POST https://api.telegram.org/bot%s/sendMessage", TOKEN)
    log.info("unknown token shape https://api.telegram.org/bot987654321:ZZZ-anotherTokenValue_1234567890/getMe")
    try:
        raise RuntimeError(f"failed calling /bot{TOKEN}/getMe")
    except RuntimeError:
        log.exception("send failed")
    out = stream.getvalue()
    assert "sendMessage" in out and "send failed" in out and "RuntimeError" in out
    assert TOKEN not in out and "anotherTokenValue" not in out
    assert out.count("********") >= 3
    logging.getLogger().handlers.clear()


def test_journald_lines_have_no_timestamp():
    import io

    stream = io.StringIO()
    setup_logging("info", env={"JOURNAL_STREAM": "8:1234"}, stream=stream)
    logging.getLogger("feedbot.x").info("hello")
    assert stream.getvalue() == "INFO feedbot.x: hello\n"
    stream = io.StringIO()
    setup_logging("info", env={}, stream=stream)
    logging.getLogger("feedbot.x").info("hello")
    assert stream.getvalue().endswith("INFO feedbot.x: hello\n") and stream.getvalue()[:4].isdigit()
    logging.getLogger().handlers.clear()
