"""Issue 12 case 13: values that used to pass check-config and then crash `run` are refused by check-config,
`once` and `run` alike — one line naming the file and the key, exit 2, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedbot.cli import cli

SOURCE = '[[sources]]\nid = "s"\nkind = "feed"\nurl = "{url}"\ninterval = {interval}\n'
QUIET_URL = "http://127.0.0.1:9/feed.xml"  # nothing listens: should a case pass by mistake, `once` ends quickly

# (case id, TOML body, key the error must name). {state} is a usable state dir unless the case sets its own.
VALUE_CASES = [
    ("interval-inf", SOURCE.format(url=QUIET_URL, interval="inf"), "sources[0].interval"),
    ("interval-nan", SOURCE.format(url=QUIET_URL, interval="nan"), "sources[0].interval"),
    ("interval-huge-days", SOURCE.format(url=QUIET_URL, interval='"99999999999d"'), "sources[0].interval"),
    ("interval-1e300", SOURCE.format(url=QUIET_URL, interval="1e300"), "sources[0].interval"),
    ("interval-too-short", SOURCE.format(url=QUIET_URL, interval='"0.001s"'), "sources[0].interval"),
    ("edit-window-huge", '[telegram]\nedit_window = "99999999999d"\n', "telegram.edit_window"),
    ("deadline-nan", "[fetch]\ndeadline = nan\n", "fetch.deadline"),
    ("timeout-1e300", "[fetch]\ntimeout = 1e300\n", "fetch.timeout"),
    ("delay-inf", "[fetch]\ndelay = inf\n", "fetch.delay"),
    ("user-agent-non-ascii", '[fetch]\nuser_agent = "feedbot 机器人"\n', "fetch.user_agent"),
    ("user-agent-newline", '[fetch]\nuser_agent = "feedbot\\r\\nX-Injected: 1"\n', "fetch.user_agent"),
    ("url-port-99999", SOURCE.format(url="http://127.0.0.1:99999/feed.xml", interval='"10m"'), "sources[0].url"),
    ("url-port-0", SOURCE.format(url="http://127.0.0.1:0/feed.xml", interval='"10m"'), "sources[0].url"),
    ("url-space", SOURCE.format(url="http://exa mple.org/feed.xml", interval='"10m"'), "sources[0].url"),
    ("url-ftp", SOURCE.format(url="ftp://example.org/feed.xml", interval='"10m"'), "sources[0].url"),
    ("base-url-port", '[web]\nbase_url = "https://feeds.example.org:70000"\n', "web.base_url"),
    ("max-backlog-huge", "[telegram]\nmax_backlog = 1000000000000000000\n", "telegram.max_backlog"),
    ("entry-limit-huge", "[feeds]\nentry_limit = 1000000000\n", "feeds.entry_limit"),
    ("backfill-huge", SOURCE.format(url=QUIET_URL, interval='"10m"') + "backfill = 10000000000\n",
     "sources[0].backfill"),
]


def state_cases(tmp: Path) -> list[tuple[str, str, str]]:
    a_file = tmp / "a-file"
    a_file.write_text("not a directory\n")
    return [
        ("state-dir-is-a-file", f'state_dir = "{a_file}"\n', "state_dir"),
        ("state-dir-under-a-file", f'state_dir = "{a_file}/state"\n', "state_dir"),
        ("state-dir-under-proc", 'state_dir = "/proc/feedbot-state"\n', "state_dir"),
        ("state-dir-feeds-is-a-file", "", "state_dir"),  # state/feeds exists as a file
    ]


def write(tmp_path: Path, case: str, body: str) -> Path:
    if not body.startswith("state_dir"):
        body = f'state_dir = "{tmp_path / "state"}"\n' + body
    if "[[sources]]" not in body:
        body += SOURCE.format(url=QUIET_URL, interval='"10m"')
    if case == "state-dir-feeds-is-a-file":
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "feeds").write_text("")
    path = tmp_path / "feedbot.toml"
    path.write_text(body, encoding="utf-8")
    return path


def assert_one_line_refusal(code: int, stderr: str, path: Path, key: str, command: str) -> None:
    assert code == 2, f"{command}: exit {code}\n{stderr}"
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, f"{command}: {stderr}"
    assert lines[0].startswith(f"feedbot: {path}: {key}: "), f"{command}: {lines[0]}"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")
            and k not in ("CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "JOURNAL_STREAM")}


def refused_everywhere(path: Path, key: str, *, user: list[str] | None = None) -> None:
    """check-config and once through click's runner, run as a real process (it would never end if let in)."""
    if user is None:
        for command in ("check-config", "once"):
            result = CliRunner().invoke(cli, ["--config", str(path), command], env={})
            assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
            assert_one_line_refusal(result.exit_code, result.stderr, path, key, command)
    for command in (["check-config"], ["once"], ["run"])[(0 if user else 2):]:
        try:
            done = subprocess.run([*(user or []), sys.executable, "-m", "feedbot", "--config", str(path), *command],
                                  capture_output=True, text=True, timeout=60, env=clean_env())
        except subprocess.TimeoutExpired:
            pytest.fail(f"`feedbot {command[0]}` accepted the configuration and kept running")
        assert_one_line_refusal(done.returncode, done.stderr, path, key, command[0])


@pytest.mark.parametrize(("case", "body", "key"), VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_bad_values_are_refused_in_one_line(tmp_path, case, body, key):
    path = write(tmp_path, case, body)
    refused_everywhere(path, key)
    assert not (tmp_path / "state").exists(), "nothing is written for a refused configuration"


STATE_CASE_IDS = ["state-dir-is-a-file", "state-dir-under-a-file", "state-dir-under-proc", "state-dir-feeds-is-a-file"]


@pytest.mark.parametrize("case_id", STATE_CASE_IDS)
def test_unusable_state_dirs_are_refused_in_one_line(tmp_path, case_id):
    case, body, key = next(c for c in state_cases(tmp_path) if c[0] == case_id)
    refused_everywhere(write(tmp_path, case, body), key)


def test_a_state_dir_under_a_read_only_parent_is_refused(tmp_path):
    """As an unprivileged user (root writes through a 0555 directory, so the check drops to nobody)."""
    base = Path(tempfile.mkdtemp(prefix="feedbot-ro-"))
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)
        path = base / "feedbot.toml"
        path.write_text(f'state_dir = "{locked}/state"\n' + SOURCE.format(url=QUIET_URL, interval='"10m"'))
        path.chmod(0o644)
        user = None
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            assert setpriv, "setpriv (util-linux) drops root for this check"
            user = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        refused_everywhere(path, "state_dir", user=user)
        done = subprocess.run([*(user or []), sys.executable, "-m", "feedbot", "--config", str(path), "check-config"],
                              capture_output=True, text=True, env=clean_env())
        assert "cannot create" in done.stderr and "Permission denied" in done.stderr, done.stderr
        assert not (locked / "state").exists()
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base)
