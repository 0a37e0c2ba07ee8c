"""deploy/: the systemd unit passes systemd's own checks; the example configuration is valid."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

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
                    "ConfigurationDirectory=feedbot", "LoadCredential=telegram_token:", "NoNewPrivileges=yes",
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
