"""`feedbot demo`: the whole pipeline offline, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.doubles.site import SampleSite


def test_demo_routes_the_sample_articles_to_channels_and_serves_the_index(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    env["FEEDBOT_TELEGRAM_TOKEN"] = "123456789:AAH-thisMustNotBeUsedByTheDemo_abcdef"
    result = subprocess.run(
        [sys.executable, "-m", "feedbot", "demo", "--state-dir", str(tmp_path / "demo"), "--port", "0",
         "--duration", "6"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "index page:        http://127.0.0.1:" in out
    for hashtag in ("#carbon-market", "#adaptation-2035", "#climate-finance", "#carbon-manager"):
        assert f"[would send to {hashtag}]" in out
    listed = len(SampleSite().category_posts())  # the sample site's 中国环境报 posts
    assert f": {listed} new, 0 updated" in result.stderr
    assert (tmp_path / "demo" / "feeds" / "carbon-market.atom").stat().st_size > 0
    assert "api.telegram.org" not in result.stderr and "thisMustNotBeUsed" not in out + result.stderr
