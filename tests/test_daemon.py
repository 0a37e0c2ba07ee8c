"""The real `feedbot run` process against the loopback site and Bot API double, watched over NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time

import feedparser
import httpx
import pytest

from tests.doubles.botapi import BotApiDouble
from tests.doubles.site import SampleSite

CHATS = {"carbon-market": "@cm_chan", "adaptation-2035": "@ad_chan", "climate-finance": "@cf_chan",
         "carbon-manager": "@mgr_chan"}
NEW_POST = ["全国碳市场将于年内纳入建材行业，重点排放单位须提前做好碳排放数据报送和配额清缴准备。",
            "生态环境部强调，将严格核查碳排放数据质量，对数据造假行为依法从严处理，保障碳市场健康运行。"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NotifyListener:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        with contextlib.suppress(BlockingIOError):
            while True:
                self.messages.append(self.sock.recv(65536).decode())
        return self.messages

    async def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.drain():
                if needle in message:
                    return message
            await asyncio.sleep(0.05)
        raise AssertionError(f"{needle!r} not received within {timeout}s; got {self.messages}")


async def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def write_config(tmp_path, site: SampleSite, double: BotApiDouble, port: int):
    topics = "\n".join(f'[topics.{t}]\ntelegram_chat = "{c}"' for t, c in CHATS.items())
    path = tmp_path / "feedbot.toml"
    path.write_text(f"""
state_dir = "state"
[web]
listen = "127.0.0.1:{port}"
[fetch]
delay = "0.01s"
[[sources]]
id = "hjb"
kind = "jekyll"
url = "{site.category_url}"
interval = "2s"
backfill = "all"
{topics}
[telegram]
api_base_url = "{double.base_url}"
max_backlog = 100
""", encoding="utf-8")
    return path


async def start(config, tmp_path, token: str, notify_path: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    env.update({"FEEDBOT_TELEGRAM_TOKEN": token, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "4000000",
                "PYTHONUNBUFFERED": "1"})
    log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115 - closed by the caller via the process
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "feedbot", "--config", str(config), "run",
                                                env=env, stdout=log, stderr=log, cwd=tmp_path)


async def stop(proc, timeout: float = 10.0) -> tuple[int, float]:
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), timeout)
    return code, time.monotonic() - began


@pytest.mark.slow
async def test_daemon_end_to_end_ready_deliver_feeds_metrics_sigterm_restart(tmp_path):
    async with SampleSite() as site, BotApiDouble() as double:
        port = free_port()
        config = write_config(tmp_path, site, double, port)
        notify = NotifyListener(str(tmp_path / "notify.sock"))
        base = f"http://127.0.0.1:{port}"
        proc = await start(config, tmp_path, double.token, notify.path)
        try:
            await notify.wait_for("READY=1", 20)
            async with httpx.AsyncClient(timeout=5) as http:
                # Everything the site had is delivered once the first poll and drain are done.
                async def first_round():
                    return len(double.messages) >= 4 and all(double.sent_to(c) for c in CHATS.values())
                await wait_until(first_round, 60, "the first messages to every chat")

                post = site.add_post("全国碳市场扩围：建材行业将纳入", NEW_POST)

                async def delivered():
                    return any(post.title in m.parsed_text for m in double.sent_to("@cm_chan"))
                await wait_until(delivered, 60, "the new post in the carbon-market chat")

                async def in_feed():
                    feed = feedparser.parse((await http.get(f"{base}/feeds/carbon-market.atom")).content)
                    return any(e.title == post.title for e in feed.entries)
                await wait_until(in_feed, 20, "the new post in the carbon-market Atom feed")

                metrics = await http.get(f"{base}/metrics")
                assert metrics.status_code == 200
                assert 'feedbot_polls_total{result="ok",source="hjb"}' in metrics.text
                assert "feedbot_outbox_depth" in metrics.text
                health = await http.get(f"{base}/healthz")
                assert health.status_code == 200
            notify.drain()
            assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in notify.messages)
            assert "WATCHDOG=1" in notify.messages
            code, took = await stop(proc)
            assert code == 0 and took < 10
            assert any("STOPPING=1" in m for m in notify.drain())
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

        sent_before = [(m.chat_id, m.parsed_text) for m in double.messages]
        assert len(sent_before) == len(set(sent_before)), "a message was sent twice"
        # A restart re-sends nothing.
        notify.messages.clear()
        proc = await start(config, tmp_path, double.token, notify.path)
        try:
            await notify.wait_for("READY=1", 20)
            await asyncio.sleep(5)  # at least two poll intervals and a drain
            code, _ = await stop(proc)
            assert code == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert [(m.chat_id, m.parsed_text) for m in double.messages] == sent_before
        log = (tmp_path / "daemon.log").read_text()
        assert double.token not in log
        assert double.token.split(":")[1] not in log
