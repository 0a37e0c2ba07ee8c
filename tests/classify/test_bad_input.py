"""Issue 12 case 15 (classify): undecodable bytes or a lone surrogate stop `feedbot classify` with one line
naming the file and line — exit 1, no traceback, nothing half-written for the bad line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from feedbot.cli import cli

GOOD = json.dumps({"id": "ok", "title": "全国碳市场扩容", "body_html": "<p>碳排放权交易配额清缴。</p>"},
                  ensure_ascii=False).encode() + b"\n"
CASES = [
    ("binary", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, 1, "not UTF-8 (byte 0x89 at column 1)"),
    ("latin-1-on-line-2", GOOD + '{"id": "x", "title": "café", "body_html": "<p>x</p>"}\n'.encode("latin-1"), 2,
     "not UTF-8 (byte 0xe9 at column 26)"),
    ("lone-surrogate-title", GOOD + b'{"id": "s", "title": "\\ud800", "body_html": "<p>x</p>"}\n', 2,
     "'title' holds a lone surrogate (\\ud800), not text"),
    ("lone-surrogate-body", b'\n{"id": "s", "title": "t", "body_html": "<p>\\udfff</p>"}\n', 2,
     "'body_html' holds a lone surrogate (\\udfff), not text"),
    ("lone-surrogate-id", b'{"id": "\\udc80", "title": "t", "body_html": "<p>x</p>"}\n', 1,
     "'id' holds a lone surrogate (\\udc80), not text"),
]


@pytest.mark.parametrize(("case", "data", "line", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_text_is_one_line_naming_the_line(tmp_path, case, data, line, message):
    path = tmp_path / f"{case}.jsonl"
    path.write_bytes(data)
    result = CliRunner().invoke(cli, ["classify", str(path)])
    assert result.exit_code == 1, result.output
    assert result.stderr == f"feedbot: {path}:{line}: {message}\n"
    # Articles before the bad line were classified and printed, one line each.
    assert len(result.stdout.splitlines()) == (1 if data.startswith(GOOD) else 0)


def test_bad_text_on_stdin_names_the_line():
    done = subprocess.run([sys.executable, "-m", "feedbot", "classify"], input=GOOD + b'{"id": 1, "title": "\xff"}\n',
                          capture_output=True)
    assert done.returncode == 1
    assert done.stderr.decode() == "feedbot: <stdin>:2: not UTF-8 (byte 0xff at column 21)\n"
    assert json.loads(done.stdout)["id"] == "ok"
