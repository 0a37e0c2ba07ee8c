"""The per-channel Telegram keys (issue 15): validated like every key, shown by check-config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from feedbot.errors import ConfigError
from feedbot.settings.config import load_config

FORUM = """
[telegram]
style = "headline"
link_preview = "small-above"
timezone = "Asia/Shanghai"

[topics.carbon-market]
telegram_chat = -1001234567890
telegram_thread = 42
mode = "both"
digest = "weekly mon 08:30"
quiet_hours = "23:00-07:00"
style = "lead"

[topics.climate-finance]
telegram_chat = -1001234567890
telegram_thread = 43
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feedbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_channel_keys_resolve_against_the_telegram_defaults(tmp_path):
    config = load_config(write(tmp_path, FORUM), {})
    market, finance = config.channel("carbon-market"), config.channel("climate-finance")
    assert (market.style, market.mode, market.thread, market.quiet_hours) == ("lead", "both", 42, (1380, 420))
    assert str(market.digest) == "weekly mon 08:30"
    assert (finance.style, finance.mode, finance.thread, finance.link_preview) == ("headline", "instant", 43,
                                                                                   "small-above")
    assert str(finance.digest) == "daily 08:00"  # the built-in default
    assert config.channel("carbon-manager").style == "headline"  # no table of its own: [telegram] defaults


def test_the_old_boolean_link_preview_still_works(tmp_path):
    config = load_config(write(tmp_path, "[telegram]\nlink_preview = true\n"), {})
    assert config.telegram.link_preview == "large"


@pytest.mark.parametrize(("text", "key"), [
    ('[telegram]\nstyle = "lede"\n', "telegram.style"),
    ('[telegram]\nmode = "daily"\n', "telegram.mode"),
    ('[telegram]\ntimezone = "Asia/Beijing"\n', "telegram.timezone"),
    ('[telegram]\ndigest = "hourly"\n', "telegram.digest"),
    ('[telegram]\nlink_preview = "huge"\n', "telegram.link_preview"),
    ('[topics.carbon-market]\ndigest = "daily 8am"\n', "topics.carbon-market.digest"),
    ('[topics.carbon-market]\ndigest = "weekly someday 08:00"\n', "topics.carbon-market.digest"),
    ('[topics.carbon-market]\nquiet_hours = "23:00"\n', "topics.carbon-market.quiet_hours"),
    ('[topics.carbon-market]\nquiet_hours = "07:00-07:00"\n', "topics.carbon-market.quiet_hours"),
    ('[topics.carbon-market]\ntelegram_chat = -100123\ntelegram_thread = 0\n', "topics.carbon-market.telegram_thread"),
    ('[topics.carbon-market]\ntelegram_chat = -100123\ntelegram_thread = "42"\n',
     "topics.carbon-market.telegram_thread"),
    ('[topics.carbon-market]\ntelegram_thread = 42\n', "topics.carbon-market.telegram_thread"),
])
def test_a_bad_value_names_the_file_and_the_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(f"{path.resolve()}: {key}: ")
    assert "\n" not in str(caught.value)


def test_check_config_shows_the_keys_and_refuses_with_exit_2(tmp_path):
    path = write(tmp_path, FORUM)
    ok = subprocess.run([sys.executable, "-m", "feedbot", "--config", str(path), "check-config"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    for line in ('telegram_thread = 42', 'mode = "both"', 'digest = "weekly mon 08:30"',
                 'quiet_hours = "23:00-07:00"', 'timezone = "Asia/Shanghai"', 'style = "lead"'):
        assert line in ok.stdout
    bad = write(tmp_path, FORUM.replace('mode = "both"', 'mode = "bothh"'))
    refused = subprocess.run([sys.executable, "-m", "feedbot", "--config", str(bad), "check-config"],
                             capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "topics.carbon-market.mode" in refused.stderr
