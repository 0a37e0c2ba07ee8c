"""Start-up stays light: `feedbot once` on an unchanged feed imports none of the heavy modules it does not use.

Each case runs a fresh interpreter (sys.modules of this test process says nothing) and lists what it imported.
An eager import re-added anywhere on the path (a module-level `import sqlite_utils`, the classifier imported by
the App) shows up here; benchmarks/bench_startup.py measures what they cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Never needed by `once` on unchanged sources, nor by importing the command: each is imported where it is used.
HEAVY = (
    "sqlite_utils",  # migrating an existing file only (a new one is created from feedbot/data/schema.sql)
    "numpy",  # the near-duplicate signatures of new articles only (and sqlite_utils would import it)
    "prometheus_client",  # the daemon's web server only
    "telegram",  # a configured Telegram token only
    "apscheduler",  # `feedbot run` only
    "jinja2",
    "feedbot.classify",  # new or changed articles only (in worker processes when the daemon has them)
    "opencc",  # the classifier's
    "ahocorasick",  # the classifier's
    "fastfeedparser",  # a feed that changed only
    "feedparser",  # a feed the fast parser declines only
    "feedbot.sources.html",  # list-page sources only
    "feedbot.sources.jekyll",  # Jekyll sources only
    "feedbot.sources.probe",  # `feedbot probe` only
    "readability",  # list-page sources only
    "cssselect",  # list-page selectors only
    "feedbot.web",  # the daemon's web server only
    "lxml",  # parsing a feed that changed, sanitizing, writing feeds: none of it when nothing changed
    "feedgen",  # writing feeds, skipped when nothing changed since they were written
    "feedbot.publish.feeds",
)
FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title><link>https://news.example.org/</link><description>d</description>
<item><title>\xe5\x85\xa8\xe5\x9b\xbd\xe7\xa2\xb3\xe5\xb8\x82\xe5\x9c\xba</title>
<link>https://news.example.org/1.html</link><guid>https://news.example.org/1.html</guid>
<pubDate>Wed, 01 May 2024 08:00:00 GMT</pubDate><description>&lt;p&gt;body&lt;/p&gt;</description></item>
</channel></rss>"""
ETAG = '"v1"'


class _Feed(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)
            self.send_header("ETag", ETAG)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", ETAG)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(FEED)))
        self.end_headers()
        self.wfile.write(FEED)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def feed_url() -> Iterator[str]:
    """An RSS feed on loopback that answers 304 to its ETag."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    finally:
        server.shutdown()
        server.server_close()


def imported_by(code: str, tmp_path: Path) -> set[str]:
    """The modules a fresh interpreter has imported once ``code`` ran (a sys.exit in it included)."""
    script = ("import atexit, json, sys\n"
              "atexit.register(lambda: print('MODULES ' + json.dumps(sorted(sys.modules))))\n" + code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    assert done.returncode == 0 and lines, done.stderr[-2000:]
    return set(json.loads(lines[-1][len("MODULES "):]))


def once(config: Path) -> str:
    return f"from feedbot.cli import main\nsys.argv = ['feedbot', '--config', {str(config)!r}, 'once']\nmain()\n"


def heavy(modules: set[str], extra: tuple[str, ...] = ()) -> list[str]:
    """The modules of HEAVY (and ``extra``), or of their packages, that were imported."""
    names = (*HEAVY, *extra)
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("workers", [0, 1])
def test_once_on_an_unchanged_feed_imports_nothing_heavy(tmp_path, feed_url, workers):
    config = tmp_path / "feedbot.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n[web]\nenabled = false\n[pipeline]\nworkers = {workers}\n'
                      f'[[sources]]\nid = "f"\nkind = "feed"\nurl = "{feed_url}"\n', encoding="utf-8")
    first = imported_by(once(config), tmp_path)  # migrates, parses and classifies the new entry
    assert "fastfeedparser" in first and "sqlite_utils" not in first  # a new state dir: the schema script
    # The classifier runs where the prepare stage runs: in the daemon's thread, or only in a worker process.
    assert ("feedbot.classify.scoring" in first) == (workers == 0)
    again = imported_by(once(config), tmp_path)  # the feed answers 304
    assert {"aiohttp", "feedbot.sources.feed", "feedbot.store", "feedbot.publish.channels"} <= again
    assert heavy(again) == []


def test_once_without_sources_opens_no_http_client(tmp_path):
    config = tmp_path / "feedbot.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\nsources = []\n[web]\nenabled = false\n',
                      encoding="utf-8")
    assert "sqlite_utils" not in imported_by(once(config), tmp_path)  # a new state dir: the schema script
    modules = imported_by(once(config), tmp_path)
    assert {"feedbot.store", "feedbot.publish.channels"} <= modules
    assert heavy(modules, ("aiohttp", "feedbot.sources.http")) == []


def test_importing_the_command_imports_no_client_or_feed_writer(tmp_path):
    modules = imported_by("import feedbot.cli\nimport feedbot.__main__\n", tmp_path)
    # Nor the App: `run` and a first `once` start the workers' server before importing it (feedbot.workers).
    assert heavy(modules, ("aiohttp", "feedgen", "feedbot.sources.feed", "feedbot.ops.status", "feedbot.app",
                           "feedbot.daemon", "feedbot.prepare")) == []
