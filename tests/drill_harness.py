"""Fault drills: the real `feedbot run` process against the loopback site and Bot API double, and what it lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import feedparser

from feedbot.store import Store
from tests.doubles.botapi import BotApiDouble
from tests.doubles.site import SamplePost, SampleSite, fixture_posts

CHATS = {"carbon-market": "@drill_cm", "adaptation-2035": "@drill_ad", "climate-finance": "@drill_cf",
         "carbon-manager": "@drill_mgr"}
REPORT_ENV = "FEEDBOT_DRILL_REPORT"  # a JSON-lines file the drills append their figures to (run_all reads it)
SOURCE_ID = "hjb"


def _templates() -> tuple[list[SamplePost], SamplePost]:
    """Fixture posts that route to exactly one channel each (in CHATS order), and the one about all four."""
    posts = fixture_posts()
    by_title = {p.title[:6]: p for p in posts}
    single = [by_title["全国碳市场第"], by_title["多地开展气候"], by_title["气候投融资试"], by_title["碳排放管理员"]]
    return single, by_title["落实“1+N"]


def add_drill_posts(site: SampleSite, first: int, count: int) -> list[SamplePost]:
    """Posts numbered first…first+count-1: each about one channel in turn, every 20th about all four."""
    single, everything = _templates()
    added = []
    for n in range(first, first + count):
        template = everything if n % 20 == 19 else single[n % len(single)]
        added.append(site.add_post(f"【演练{n:04d}】{template.title}", template.paragraphs))
    return added


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(directory: Path, site: SampleSite, double: BotApiDouble | None, *, interval: str = "1s",
                 state_dir: Path | None = None, sources: str | None = None, fetch: str = "") -> Path:
    """A config for the drill: one jekyll source (or `sources`), the four channels, a big backlog and feeds."""
    chats = ("\n".join(f'[topics.{t}]\ntelegram_chat = "{c}"' for t, c in CHATS.items())
             if double is not None else "")
    telegram = f'[telegram]\napi_base_url = "{double.base_url}"\nmax_backlog = 10000\ncommands = false\n' \
        if double is not None else ""
    sources = sources or (f'[[sources]]\nid = "{SOURCE_ID}"\nkind = "jekyll"\nurl = "{site.category_url}"\n'
                          f'interval = "{interval}"\nbackfill = "all"\n')
    path = directory / "feedbot.toml"
    path.write_text(f"""
state_dir = "{state_dir or directory / 'state'}"
[web]
listen = "127.0.0.1:{free_port()}"
[fetch]
delay = "0.01s"
{fetch}
[feeds]
entry_limit = 5000
{sources}
{chats}
{telegram}
""", encoding="utf-8")
    return path


class DaemonProcess:
    """Starts, kills and stops `python -m feedbot --config X run`; one log file across every start."""

    def __init__(self, config: Path, workdir: Path, token: str | None = None):
        self.config = config
        self.workdir = workdir
        self.token = token
        self.log_path = workdir / "daemon.log"
        self.notify_path = str(workdir / "notify.sock")
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.exit_codes: list[int] = []
        self.notifications = 0
        self._sock: socket.socket | None = None

    async def start(self, ready_timeout: float = 30.0) -> None:
        """Start the daemon and wait for READY=1 on the notify socket."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.notify_path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.notify_path)
        self._sock.setblocking(False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_") and k != "JOURNAL_STREAM"}
        env.update({"NOTIFY_SOCKET": self.notify_path, "PYTHONUNBUFFERED": "1"})
        if self.token:
            env["FEEDBOT_TELEGRAM_TOKEN"] = self.token
        with open(self.log_path, "ab") as log:
            log.write(f"==== start {self.starts + 1} ====\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "feedbot", "--config", str(self.config), "run",
                env=env, stdout=log, stderr=log, cwd=self.workdir)
        self.starts += 1
        ready = asyncio.Event()
        sock = self._sock

        def read_notifications() -> None:
            # Like systemd, keep reading: a full socket buffer would block the daemon's sd_notify send.
            with contextlib.suppress(BlockingIOError, OSError):
                while True:
                    message = sock.recv(65536)
                    self.notifications += 1
                    if b"READY=1" in message:
                        ready.set()

        asyncio.get_running_loop().add_reader(sock.fileno(), read_notifications)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if ready.is_set():
                return
            if self.proc.returncode is not None:
                raise AssertionError(f"feedbot exited with {self.proc.returncode} before READY=1:\n{self.log_tail()}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"no READY=1 within {ready_timeout}s:\n{self.log_tail()}")

    async def signal(self, signum: int, timeout: float = 20.0) -> int:
        """Send a signal and wait for the exit; returns the exit code."""
        assert self.proc is not None and self.proc.returncode is None, "the daemon is not running"
        self.proc.send_signal(signum)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        self.exit_codes.append(code)
        self._close_socket()
        return code

    async def kill(self) -> int:
        return await self.signal(signal.SIGKILL)

    async def terminate(self) -> int:
        return await self.signal(signal.SIGTERM)

    async def ensure_stopped(self) -> None:
        """Cleanup: SIGKILL whatever is still running (only our own child)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._close_socket()

    def _close_socket(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@dataclass
class Outcome:
    """What the site published against what feedbot stored, put in the feeds and delivered."""

    posts: int = 0
    stored: int = 0
    missing_in_db: list[str] = field(default_factory=list)
    missing_in_feeds: list[str] = field(default_factory=list)
    expected_messages: int = 0
    lost_messages: list[str] = field(default_factory=list)  # "chat title" never delivered
    duplicates: int = 0  # messages beyond the first, per (chat, article)
    statuses: dict[str, int] = field(default_factory=dict)  # outbox rows by status
    misrouted: list[str] = field(default_factory=list)  # a post missing a channel its template is about

    @property
    def complete(self) -> bool:
        return (not self.missing_in_db and not self.lost_messages and set(self.statuses) <= {"sent"}
                and self.stored == self.posts)

    def figures(self) -> dict:
        return {"posts": self.posts, "stored": self.stored, "missing_in_db": len(self.missing_in_db),
                "missing_in_feeds": len(self.missing_in_feeds), "expected_messages": self.expected_messages,
                "lost_messages": len(self.lost_messages), "duplicates": self.duplicates,
                "outbox": dict(self.statuses)}


def outcome(state_dir: Path, site: SampleSite, double: BotApiDouble | None, *, feeds: bool = False,
            source_ids: tuple[str, ...] = (SOURCE_ID,)) -> Outcome:
    """Compare the site, the database, (optionally) the feed files and the double's messages."""
    posts = site.category_posts()
    out = Outcome(posts=len(posts) * len(source_ids))
    db = state_dir / "feedbot.db"
    if not db.exists():
        out.missing_in_db = [p.title for p in posts]
        return out
    store = Store(db)
    try:
        stored = store.articles(None, limit=1_000_000)
        counts = store.article_counts()
        statuses: Counter[str] = Counter()
        for row in store.delivery_counts():
            statuses[row.status] += row.count
    finally:
        store.close()
    out.stored = counts.get("all", 0)
    out.statuses = dict(statuses)
    topics_of: dict[str, set[str]] = {}
    for article in stored:
        topics_of.setdefault(article.title, set()).update(article.excerpts)
    single, everything = _templates()
    wanted = {t.title: {topic} for t, topic in zip(single, CHATS, strict=True)}
    wanted[everything.title] = set(CHATS)
    out.missing_in_db = [p.title for p in posts if p.title not in topics_of]
    for p in posts:
        template = p.title.split("】", 1)[-1]
        if p.title in topics_of and not wanted.get(template, set()) <= topics_of[p.title]:
            out.misrouted.append(p.title)
    if feeds:
        in_feed: dict[str, set[str]] = {}
        for topic in [*CHATS, "all"]:
            parsed = feedparser.parse((state_dir / "feeds" / f"{topic}.atom").read_bytes())
            in_feed[topic] = {e.title for e in parsed.entries}
        for title, topics in topics_of.items():
            for topic in [*topics, "all"]:
                if title not in in_feed.get(topic, set()):
                    out.missing_in_feeds.append(f"{topic} {title}")
    if double is not None:
        for title, topics in topics_of.items():
            for topic in topics:
                chat = CHATS[topic]
                out.expected_messages += 1
                got = sum(title in m.parsed_text for m in double.sent_to(chat))
                if got == 0:
                    out.lost_messages.append(f"{chat} {title}")
                out.duplicates += max(0, got - 1)
    return out


async def wait_for_outcome(state_dir: Path, site: SampleSite, double: BotApiDouble | None, timeout: float,
                           daemon: DaemonProcess | None = None, **kwargs) -> Outcome:
    """Poll until everything the site published is stored and delivered; the last outcome either way."""
    deadline = time.monotonic() + timeout
    while True:
        result = outcome(state_dir, site, double, **kwargs)
        if result.complete or time.monotonic() > deadline:
            return result
        if daemon is not None and daemon.proc is not None and daemon.proc.returncode is not None:
            raise AssertionError(f"feedbot exited with {daemon.proc.returncode}:\n{daemon.log_tail()}")
        await asyncio.sleep(0.5)


def integrity(db: Path) -> str:
    """PRAGMA integrity_check of the database, through the store (ok means "ok")."""
    store = Store(db)
    try:
        return store.integrity_check()
    finally:
        store.close()


def record(name: str, figures: dict) -> None:
    """Append a drill's figures to $FEEDBOT_DRILL_REPORT (benchmarks/run_all.py renders them)."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"drill": name, "at": time.strftime("%Y-%m-%d %H:%M:%S"), **figures},
                           ensure_ascii=False, default=str) + "\n")


def as_dict(outcome_: Outcome) -> dict:
    return asdict(outcome_)


# ---- the drills (quick versions in tests/test_drills.py, full ones in tests/test_drills_long.py) ----


async def signal_drill(workdir: Path, *, signum: int, stops: int, articles: int, seed: int = 8,
                       gap: tuple[float, float] = (0.5, 4.0), timeout: float = 300.0,
                       send_delay: float = 0.25) -> tuple[Outcome, dict]:
    """Stop the daemon `stops` times at random moments (SIGKILL or SIGTERM) while posts arrive; then let it finish.

    The double takes `send_delay` seconds to answer a send (a far-away Bot API), so a stop often lands while
    a message is in flight: the case that can duplicate after SIGKILL and must not after SIGTERM.

    The posts arrive in waves (before the first start and after each of the first few stops), so the stops
    land while pages are fetched, articles classified and stored, feeds written and messages sent.
    """
    import random

    rng = random.Random(seed)
    waves = min(stops + 1, 5)
    sizes = [articles // waves + (i < articles % waves) for i in range(waves)]
    began = time.monotonic()
    codes: list[int] = []
    async with SampleSite(posts=[]) as site, BotApiDouble(response_delay=send_delay) as double:
        daemon = DaemonProcess(write_config(workdir, site, double), workdir, double.token)
        try:
            add_drill_posts(site, 0, sizes[0])
            await daemon.start()
            added = sizes[0]
            for n in range(stops):
                await asyncio.sleep(rng.uniform(*gap))
                codes.append(await daemon.signal(signum))
                if n + 1 < waves:
                    add_drill_posts(site, added, sizes[n + 1])
                    added += sizes[n + 1]
                await daemon.start()
            await wait_for_outcome(workdir / "state", site, double, timeout, daemon)
            final_code = await daemon.terminate()
        finally:
            await daemon.ensure_stopped()
        result = outcome(workdir / "state", site, double, feeds=True)
        log = daemon.log()
        figures = {
            "signal": signal.Signals(signum).name, "stops": stops, "starts": daemon.starts, "send_delay_s": send_delay,
            "seconds": round(time.monotonic() - began, 1), **result.figures(),
            "http_429": double.counts["429"], "sent_by_double": len(double.messages),
            "exit_codes_after_signal": dict(Counter(codes)), "final_exit_code": final_code,
            "requeued_on_start": log.count("in flight when the last process died"),
            "token_in_log": double.token in log or double.token.split(":")[1] in log,
            "integrity": integrity(workdir / "state" / "feedbot.db"),
        }
    return result, figures


async def bot_api_fault_drill(workdir: Path, *, articles: int, fail_rate: float = 0.1, per_chat: int = 4,
                              window: float = 6.0, timeout: float = 240.0) -> tuple[Outcome, dict]:
    """The Bot API double answers 502 to `fail_rate` of sends and allows fewer messages per chat than Telegram."""
    from tests.doubles.botapi import Limits

    began = time.monotonic()
    limits = Limits(per_chat=per_chat, per_chat_window=window, integer_retry_after=False)
    async with SampleSite(posts=[]) as site, BotApiDouble(limits=limits, fail_rate=fail_rate, seed=3) as double:
        daemon = DaemonProcess(write_config(workdir, site, double), workdir, double.token)
        try:
            add_drill_posts(site, 0, articles)
            await daemon.start()
            await wait_for_outcome(workdir / "state", site, double, timeout, daemon)
            final_code = await daemon.terminate()
        finally:
            await daemon.ensure_stopped()
        result = outcome(workdir / "state", site, double, feeds=True)
        figures = {"fail_rate": fail_rate, "double_limit": f"{per_chat} per {window:g} s per chat",
                   "seconds": round(time.monotonic() - began, 1), **result.figures(),
                   "http_502": double.counts["502"], "http_429": double.counts["429"],
                   "final_exit_code": final_code}
    return result, figures


async def locked_database_drill(workdir: Path, *, articles: int, hold: float = 5.0,
                                timeout: float = 120.0) -> tuple[Outcome, dict]:
    """Another process holds BEGIN EXCLUSIVE for `hold` seconds while new posts arrive."""
    import sqlite3

    async with SampleSite(posts=[]) as site, BotApiDouble() as double:
        state = workdir / "state"
        daemon = DaemonProcess(write_config(workdir, site, double), workdir, double.token)
        try:
            add_drill_posts(site, 0, articles // 2)
            await daemon.start()
            first = await wait_for_outcome(state, site, double, timeout, daemon)
            assert first.complete, first
            sent_before = len(double.messages)
            # The intruder: a plain sqlite3 connection, as `sqlite3 feedbot.db` or a backup script would be.
            intruder = sqlite3.connect(str(state / "feedbot.db"), isolation_level=None, timeout=30)
            intruder.execute("BEGIN EXCLUSIVE")
            locked_at = time.monotonic()
            add_drill_posts(site, articles // 2, articles - articles // 2)
            await asyncio.sleep(hold)
            sent_while_locked = len(double.messages) - sent_before
            intruder.execute("COMMIT")
            intruder.close()
            released_at = time.monotonic()
            await wait_for_outcome(state, site, double, timeout, daemon)
            caught_up = time.monotonic() - released_at
            alive = daemon.proc.returncode is None
            final_code = await daemon.terminate()
        finally:
            await daemon.ensure_stopped()
        result = outcome(state, site, double, feeds=True)
        log = daemon.log()
        figures = {"lock_held_s": round(released_at - locked_at, 1), "caught_up_after_release_s": round(caught_up, 1),
                   "messages_sent_while_locked": sent_while_locked, "daemon_alive_after_lock": alive,
                   "locked_errors_logged": log.count("database is locked"), "tracebacks": log.count("Traceback"),
                   **result.figures(), "final_exit_code": final_code}
    return result, figures


def mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` at path; the reason when that is not possible (not root, no CAP_SYS_ADMIN)."""
    import shutil
    import subprocess

    if os.geteuid() != 0:
        return "not root: mounting a tmpfs needs CAP_SYS_ADMIN"
    if not shutil.which("mount"):
        return "no mount program"
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else f"mount -t tmpfs failed: {done.stderr.strip() or done.returncode}"


def unmount(path: Path) -> None:
    import subprocess

    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill_disk(directory: Path) -> Path:
    """Write a filler file until the filesystem is full; returns it (delete it to free the space)."""
    filler = directory / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 1):  # then smaller and smaller, so not even one page fits
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


async def disk_full_drill(workdir: Path, mountpoint: Path, *, articles: int, full_for: float = 6.0,
                          timeout: float = 120.0) -> tuple[Outcome, dict]:
    """The state directory (a tmpfs mounted by the caller) fills up while posts arrive, then space returns."""
    async with SampleSite(posts=[]) as site, BotApiDouble() as double:
        daemon = DaemonProcess(write_config(workdir, site, double, state_dir=mountpoint), workdir, double.token)
        try:
            add_drill_posts(site, 0, articles // 2)
            await daemon.start()
            first = await wait_for_outcome(mountpoint, site, double, timeout, daemon)
            assert first.complete, first
            log_before = len(daemon.log())
            filler = fill_disk(mountpoint)
            add_drill_posts(site, articles // 2, articles - articles // 2)
            await asyncio.sleep(full_for)
            alive_while_full = daemon.proc.returncode is None
            during = outcome(mountpoint, site, double)
            filler.unlink()
            freed_at = time.monotonic()
            restarted = False
            if not alive_while_full:  # what systemd's Restart=on-failure would do
                await daemon.start()
                restarted = True
            await wait_for_outcome(mountpoint, site, double, timeout, daemon)
            recovered = time.monotonic() - freed_at
            final_code = await daemon.terminate()
        finally:
            await daemon.ensure_stopped()
        result = outcome(mountpoint, site, double, feeds=True)
        full_log = daemon.log()[log_before:]
        figures = {"full_for_s": full_for, "stored_while_full": during.stored - articles // 2,
                   "alive_while_full": alive_while_full, "restarted": restarted,
                   "recovered_after_s": round(recovered, 1),
                   "error_lines_while_full": sum("ERROR" in line or "WARNING" in line
                                                 for line in full_log.splitlines()),
                   "clear_error_lines": sum(("ERROR" in line or "WARNING" in line) and "raised an exception" not in line
                                            and ("full" in line or "space" in line)
                                            for line in full_log.splitlines()),
                   "tracebacks": full_log.count("Traceback"),
                   "token_in_log": double.token.split(":")[1] in daemon.log(),
                   "integrity": integrity(mountpoint / "feedbot.db"), **result.figures(),
                   "final_exit_code": final_code}
        figures["log_while_full"] = full_log[-3000:]
    return result, figures


# ---- source faults ---------------------------------------------------------------------------------

FEED_SOURCE_ID = "rss"
CATEGORY_PATH = "/category/zhongguohuanjingbao.html"
RSS_PATH = "/rss/zhongguohuanjingbao.xml"


def two_sources(site: SampleSite, interval: str) -> str:
    """The category page as a jekyll source and the category's RSS feed as a feed source."""
    return (f'[[sources]]\nid = "{SOURCE_ID}"\nkind = "jekyll"\nurl = "{site.category_url}"\n'
            f'interval = "{interval}"\nbackfill = "all"\n'
            f'[[sources]]\nid = "{FEED_SOURCE_ID}"\nkind = "feed"\nurl = "{site.rss_url}"\n'
            f'interval = "{interval}"\nbackfill = "all"\n')


def titles_by_source(state_dir: Path) -> dict[str, set[str]]:
    """Stored article titles per source."""
    store = Store(state_dir / "feedbot.db")
    try:
        out: dict[str, set[str]] = {}
        for article in store.articles(None, limit=1_000_000):
            out.setdefault(article.source_id, set()).add(article.title)
        return out
    finally:
        store.close()


def source_errors(state_dir: Path) -> dict[str, tuple[int, str | None]]:
    store = Store(state_dir / "feedbot.db")
    try:
        return {s.id: (s.failures, s.last_error) for s in store.source_states()}
    finally:
        store.close()


async def source_faults_in_process(workdir: Path, kinds: tuple[str, ...], *, polls: int = 3) -> list[dict]:
    """Each fault on both index pages for `polls` polls, a post added meanwhile, then healed: one poll stores it."""
    from feedbot.daemon import Daemon
    from feedbot.settings.config import load_config

    rows = []
    async with SampleSite(posts=[]) as site:
        add_drill_posts(site, 0, 4)
        config_path = write_config(workdir, site, None, sources=two_sources(site, "1m"),
                                   fetch='timeout = "1s"\ndeadline = "2s"')
        config = load_config(config_path, {})
        daemon = Daemon(config, {})
        await daemon.open(web=False)
        try:
            for sid in (SOURCE_ID, FEED_SOURCE_ID):
                assert (await daemon.poll(sid)).result == "ok"
            serial = 4
            for kind in kinds:
                began = time.monotonic()
                for path in (CATEGORY_PATH, RSS_PATH):
                    site.fault(path, kind, retry_after=1)
                results: dict[str, list[str]] = {SOURCE_ID: [], FEED_SOURCE_ID: []}
                post = add_drill_posts(site, serial, 1)[0]
                serial += 1
                for _ in range(polls):
                    reports = await asyncio.gather(daemon.poll(SOURCE_ID), daemon.poll(FEED_SOURCE_ID))
                    for report in reports:
                        results[report.source_id].append(report.result)
                errors = source_errors(config.state_dir)
                site.clear_faults()
                healed = await asyncio.gather(daemon.poll(SOURCE_ID), daemon.poll(FEED_SOURCE_ID))
                stored = titles_by_source(config.state_dir)
                rows.append({
                    "kind": kind, "seconds": round(time.monotonic() - began, 1),
                    "jekyll_polls": results[SOURCE_ID], "feed_polls": results[FEED_SOURCE_ID],
                    "jekyll_error": errors[SOURCE_ID][1], "feed_error": errors[FEED_SOURCE_ID][1],
                    "healed": [r.result for r in healed],
                    "jekyll_has_post": post.title in stored.get(SOURCE_ID, set()),
                    "feed_has_post": post.title in stored.get(FEED_SOURCE_ID, set()),
                    "stored_per_source": {k: len(v) for k, v in stored.items()}, "posts": serial,
                })
        finally:
            await daemon.close()
    return rows


async def source_faults_daemon(workdir: Path, kinds: tuple[str, ...], *, intervals: int = 3,
                               interval: float = 1.0, timeout: float = 60.0) -> list[dict]:
    """The real daemon (scheduler, backoff): each fault held `intervals` intervals, a post added, then healed."""
    rows = []
    async with SampleSite(posts=[]) as site:
        add_drill_posts(site, 0, 4)
        config = write_config(workdir, site, None, sources=two_sources(site, f"{interval}s"),
                              fetch='timeout = "1s"\ndeadline = "2s"')
        daemon = DaemonProcess(config, workdir)
        state = workdir / "state"

        async def all_stored() -> bool:
            stored = titles_by_source(state) if (state / "feedbot.db").exists() else {}
            titles = {p.title for p in site.category_posts()}
            return all(titles <= stored.get(sid, set()) for sid in (SOURCE_ID, FEED_SOURCE_ID))

        async def settle(what: str) -> float:
            began = time.monotonic()
            while not await all_stored():
                if time.monotonic() - began > timeout:
                    raise AssertionError(f"{what}: not stored within {timeout}s:\n{daemon.log_tail()}")
                if daemon.proc.returncode is not None:
                    raise AssertionError(f"feedbot exited with {daemon.proc.returncode}:\n{daemon.log_tail()}")
                await asyncio.sleep(0.25)
            return time.monotonic() - began

        try:
            await daemon.start()
            await settle("the first posts")
            serial = 4
            for kind in kinds:
                hits_before = site.hits[CATEGORY_PATH] + site.hits[RSS_PATH]
                for path in (CATEGORY_PATH, RSS_PATH):
                    site.fault(path, kind, retry_after=2)
                add_drill_posts(site, serial, 1)
                serial += 1
                await asyncio.sleep(intervals * interval)
                errors = source_errors(state)
                hits_during = site.hits[CATEGORY_PATH] + site.hits[RSS_PATH] - hits_before
                site.clear_faults()
                caught_up = await settle(kind)
                rows.append({"kind": kind, "index_requests_during_fault": hits_during,
                             "jekyll_failures": errors[SOURCE_ID][0], "jekyll_error": errors[SOURCE_ID][1],
                             "feed_failures": errors[FEED_SOURCE_ID][0], "feed_error": errors[FEED_SOURCE_ID][1],
                             "stored_after_heal_s": round(caught_up, 1), "lost": 0})
            code = await daemon.terminate()
            rows.append({"kind": "(exit)", "final_exit_code": code, "tracebacks": daemon.log().count("Traceback")})
        finally:
            await daemon.ensure_stopped()
    return rows
