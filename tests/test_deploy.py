"""deploy/: the systemd unit passes systemd's own checks; the example configuration is valid."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from feedbot.settings.config import load_config
from tests.conftest import require_program

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's feedbot (verify checks that the binary exists)."""
    feedbot = shutil.which("feedbot", path=str(Path(sys.executable).parent)) or shutil.which("feedbot")
    assert feedbot, "the feedbot console script is installed with the package"
    text = (DEPLOY / "feedbot.service").read_text()
    assert "ExecStart=/opt/feedbot/venv/bin/feedbot " in text
    path = tmp_path / "feedbot.service"
    path.write_text(text.replace("/opt/feedbot/venv/bin/feedbot", feedbot))
    return path


def test_unit_verifies_cleanly(tmp_path):
    analyze = require_program("systemd-analyze", "checks the systemd unit")
    unit = unit_for_this_machine(tmp_path)
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "feedbot.service" in line or "Unknown" in line or "Invalid" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_unit_exposure_is_at_most_1_5(tmp_path):
    analyze = require_program("systemd-analyze", "rates the unit's hardening")
    unit = unit_for_this_machine(tmp_path)
    result = subprocess.run([analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True)
    match = re.search(r"Overall exposure level for feedbot\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 1.5, result.stdout


def test_unit_has_the_promised_settings():
    text = (DEPLOY / "feedbot.service").read_text()
    for setting in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "DynamicUser=yes", "StateDirectory=feedbot",
                    "ConfigurationDirectory=feedbot", "LoadCredential=telegram_token:", "SetCredential=telegram_token:",
                    "NoNewPrivileges=yes",
                    "ProtectSystem=strict", "SystemCallFilter=@system-service"):
        assert setting in text, setting
    # Every setting line is explained by a comment somewhere above it in its block.
    assert text.count("\n#") >= 20


def test_example_configuration_is_valid_and_has_the_real_source():
    config = load_config(DEPLOY / "feedbot.toml", {})
    assert config.sources[0].url == "https://finews.withounder.com/category/zhongguohuanjingbao.html"
    assert config.sources[0].kind == "jekyll"
    assert set(config.chats) == {"carbon-market", "adaptation-2035", "climate-finance", "carbon-manager"}
    assert config.state_dir == Path("/var/lib/feedbot") and config.telegram.token is None


def _unit_settings(name: str) -> list[str]:
    prefix = f"{name}="
    return [line[len(prefix):] for line in (DEPLOY / "feedbot.service").read_text().splitlines()
            if line.startswith(prefix)]


def test_a_missing_token_file_has_a_blank_fallback_that_means_no_token(tmp_path):
    """LoadCredential= alone fails the unit (243/CREDENTIALS) without the file; SetCredential= of the same ID is
    systemd's fallback, and feedbot must read that fallback as "no token"."""
    loaded = dict(setting.split(":", 1) for setting in _unit_settings("LoadCredential"))
    fallback = dict(setting.split(":", 1) for setting in _unit_settings("SetCredential"))
    assert loaded == {"telegram_token": "/etc/feedbot/telegram_token"}
    assert set(fallback) == {"telegram_token"}
    value = fallback["telegram_token"].encode().decode("unicode_escape")  # systemd unescapes C-style
    assert value.strip() == ""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "telegram_token").write_text(value)
    config = tmp_path / "feedbot.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    done = subprocess.run([sys.executable, "-m", "feedbot", "--config", str(config), "check-config", "--json"],
                          capture_output=True, text=True, env={**env, "CREDENTIALS_DIRECTORY": str(credentials)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["telegram"]["token"] is None


def test_the_readme_matches_the_unit():
    readme = (DEPLOY / "README.md").read_text()
    unit = (DEPLOY / "feedbot.service").read_text()
    assert "SetCredential=telegram_token:\\n" in unit and "SetCredential=telegram_token:\\n" in readme
    # nginx cannot read a 0700 state dir under /var/lib/private: the guide proxies and says why.
    assert "UMask=0077" in unit and "StateDirectoryMode=0700" in unit
    assert "proxy_pass http://127.0.0.1:8080;" in readme
    assert "can serve `/var/lib/private/feedbot/feeds/` directly" not in readme


@pytest.mark.parametrize(("umask", "dirs", "files"), [(0o077, 0o700, None), (0o022, 0o755, 0o644)],
                         ids=["unit-umask-0077", "shell-umask-0022"])
async def test_state_and_feed_modes_are_what_the_guide_promises(tmp_path, umask, dirs, files):
    """Under the unit's UMask=0077 the state (database, feeds) is private to the service; under umask 022 the
    feeds directory and files are world-readable, so any web server can serve state/feeds/ directly."""
    from tests.doubles.site import SampleSite

    async with SampleSite() as site:
        config = tmp_path / "feedbot.toml"
        config.write_text(f'state_dir = "{tmp_path / "state"}"\n[fetch]\ndelay = "0.01s"\n[[sources]]\nid = "hjb"\n'
                          f'kind = "jekyll"\nurl = "{site.category_url}"\nbackfill = "all"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")
               and k not in ("CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET")}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "feedbot", "--config", str(config), "once", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, preexec_fn=lambda: os.umask(umask))
        output, _ = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, output.decode()
    state, feeds = tmp_path / "state", tmp_path / "state" / "feeds"
    written = sorted(feeds.iterdir())
    assert any(p.name == "all.atom" for p in written)
    assert stat.S_IMODE(state.stat().st_mode) == dirs
    assert stat.S_IMODE(feeds.stat().st_mode) == dirs
    if umask == 0o077:  # nothing in the state dir is open to group or others
        assert all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in state.iterdir() if p.is_dir())
        assert stat.S_IMODE((state / "feedbot.db").stat().st_mode) & 0o077 == 0
    if files is not None:
        assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {files}
