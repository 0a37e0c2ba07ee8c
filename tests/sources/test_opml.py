"""OPML import: a reader's subscriptions become [[sources]] blocks; what /opml exports imports back."""

from __future__ import annotations

import tomllib

from click.testing import CliRunner

from feedbot.cli import cli
from feedbot.settings.config import parse_config
from feedbot.web.pages import render_opml

READER_EXPORT = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0"><head><title>My feeds</title></head><body>
  <outline text="气候" title="气候">
    <outline type="rss" text="碳市场新闻" title="碳市场新闻" xmlUrl="https://news.example.cn/carbon/rss.xml"
             htmlUrl="https://news.example.cn/carbon/"/>
    <outline type="rss" text="Already polled" xmlUrl="https://finews.example.org/feed.xml"/>
  </outline>
  <outline type="rss" text="碳市场新闻 (again)" xmlUrl="https://news.example.cn/carbon/rss.xml"/>
  <outline type="rss" text="Other" xmlUrl="https://blog.example.org/atom.xml"/>
  <outline text="a folder without feeds"/>
</body></opml>
"""


def test_import_prints_blocks_for_new_feeds_only(tmp_path, write_config):
    opml = tmp_path / "reader.opml"
    opml.write_text(READER_EXPORT, encoding="utf-8")
    path = write_config('[[sources]]\nid = "finews"\nkind = "feed"\nurl = "https://finews.example.org/feed.xml"\n')
    done = CliRunner().invoke(cli, ["--config", str(path), "sources", "import", str(opml)])
    assert done.exit_code == 0, done.output
    blocks = tomllib.loads(done.stdout)["sources"]
    assert [(b["kind"], b["url"], b.get("name")) for b in blocks] == [
        ("feed", "https://news.example.cn/carbon/rss.xml", "碳市场新闻"),
        ("feed", "https://blog.example.org/atom.xml", "Other"),
    ]
    # --write appends them and the file still loads
    done = CliRunner().invoke(cli, ["--config", str(path), "sources", "import", "--write", str(opml)])
    assert done.exit_code == 0, done.output
    config = parse_config(tomllib.loads(path.read_text(encoding="utf-8")), path, {})
    assert config.sources[0].id == "finews" and len(config.sources) == 3


def test_export_and_import_are_in_step(tmp_path):
    config = parse_config({"web": {"base_url": "https://feeds.example.org"}}, None, {})
    opml = tmp_path / "feedbot.opml"
    opml.write_bytes(render_opml(config))
    done = CliRunner().invoke(cli, ["sources", "import", str(opml)])
    assert done.exit_code == 0, done.output
    urls = {b["url"] for b in tomllib.loads(done.stdout)["sources"]}
    assert "https://feeds.example.org/feeds/carbon-market.xml" in urls
    assert len(urls) == len(config.topics) + 1  # every channel and "all"


def test_not_an_opml_file_is_one_line(tmp_path):
    bad = tmp_path / "x.opml"
    bad.write_text("<html><body>no</body></html>", encoding="utf-8")
    done = CliRunner().invoke(cli, ["sources", "import", str(bad)])
    assert done.exit_code == 2
    assert "not an OPML file" in done.output and len(done.output.strip().splitlines()) == 1
