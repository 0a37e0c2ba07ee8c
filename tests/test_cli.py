"""The CLI shell: version, check-config, status, exit codes, unbuilt commands."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from feedbot import __version__
from feedbot.cli import cli
from feedbot.model import Classification, TopicMatch
from feedbot.store import Store
from tests.store.test_store import make_article

TOKEN = "123456789:AAH-realLookingTokenValue_abcdefghijkl"


def run(args, env=None, input=None):
    return CliRunner().invoke(cli, args, env=env or {}, input=input, catch_exceptions=False)


def test_version_through_python_m():
    out = subprocess.run([sys.executable, "-m", "feedbot", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"feedbot, version {__version__}"


def test_check_config_prints_resolved_config_with_token_redacted(write_config):
    path = write_config('[topics.carbon-market]\ntelegram_chat = "@cm_chan"\n')
    result = run(["--config", str(path), "check-config"], env={"FEEDBOT_TELEGRAM_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert f"configuration OK: {path.resolve()}" in result.output
    assert '"@cm_chan"' in result.output and "********" in result.output
    assert TOKEN not in result.output
    as_json = json.loads(run(["--config", str(path), "check-config", "--json"],
                             env={"FEEDBOT_TELEGRAM_TOKEN": TOKEN}).output)
    assert as_json["topics"]["carbon-market"]["telegram_chat"] == "@cm_chan"
    assert as_json["telegram"]["token"] == "********"


def test_bad_config_exits_2_and_writes_nothing(write_config, tmp_path):
    path = write_config('state_dir = "st"\n[web]\nlisen = "127.0.0.1:1"\n')
    result = run(["--config", str(path), "status"])
    assert result.exit_code == 2
    assert 'web.lisen: unknown key (did you mean "listen"?)' in result.output
    assert not (tmp_path / "st").exists()


def test_status_without_state_says_so(write_config, tmp_path):
    path = write_config('state_dir = "st"\n')
    result = run(["--config", str(path), "status"])
    assert result.exit_code == 1 and "no state yet" in result.output


def test_status_table_and_json(write_config, tmp_path):
    path = write_config('state_dir = "st"\n[topics.carbon-market]\ntelegram_chat = "@cm_chan"\n')
    store = Store(tmp_path / "st" / "feedbot.db")
    store.sync_sources([("zhongguohuanjingbao", "jekyll", "https://finews.withounder.com/category/x.html")])
    store.save_article(make_article(), Classification((TopicMatch("carbon-market", 9.0, True, (), "x"),)),
                       {"carbon-market": ["telegram:@cm_chan"]})
    store.close()
    result = run(["--config", str(path), "status"])
    assert result.exit_code == 0, result.output
    assert "zhongguohuanjingbao" in result.output and "never polled" in result.output
    assert "telegram:@cm_chan" in result.output
    report = json.loads(run(["--config", str(path), "status", "--json"]).output)
    assert report["articles"]["total"] == 1
    assert {t["id"]: t["articles"] for t in report["topics"]}["carbon-market"] == 1
    assert report["deliveries"]["telegram:@cm_chan"]["by_status"] == {"pending": 1}


def test_status_times_read_relative_to_now():
    from datetime import datetime

    from feedbot.ops.status import SHANGHAI, relative

    now = datetime(2026, 11, 24, 10, 0, 0, tzinfo=SHANGHAI)
    assert relative("2026-11-24T09:57:00+08:00", now) == "09:57:00 (3m ago)"
    assert relative("2026-11-24T02:00:00+00:00", now) == "10:00:00 (0s ago)"
    assert relative("2026-11-24T12:00:00+08:00", now) == "12:00:00 (in 2h)"
    assert relative("2026-11-20T10:00:00+08:00", now) == "11-20 10:00 (4d ago)"
    assert relative(None, now) == "-"
