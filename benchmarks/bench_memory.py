"""Memory and size: peak RSS of `feedbot run` with 1,000 sources and 100,000 stored articles, database size
per 10,000 articles, and `feedbot once` start-up time to its first HTTP request.

Run: .venv/bin/python benchmarks/bench_memory.py            (1,000 sources, 100,000 articles; ~2 minutes)
     .venv/bin/python benchmarks/bench_memory.py --quick    (100 sources, 10,000 articles)

The feed server and the Bot API double run in a separate process; the daemon is the real
`python -m feedbot --config X run` process, its peak RSS read from /proc/PID/status (VmHWM).
Targets (issue 8): peak RSS ≤ 150 MB; start-up to the first request ≤ 1.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rss_fixture import FeedServer, rss_feed  # noqa: E402 - benchmarks/ is sys.path[0] when run as a script

from feedbot.classify.scoring import classify  # noqa: E402
from feedbot.model import Entry  # noqa: E402
from feedbot.settings.topics import load_default_topics  # noqa: E402
from feedbot.sources.normalize import normalize  # noqa: E402
from feedbot.store import Store  # noqa: E402
from feedbot.store.bulk import bulk_load  # noqa: E402
from tests.doubles.site import fixture_posts  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "dev.jsonl"
CHATS = {"carbon-market": "@bench_cm", "adaptation-2035": "@bench_ad", "climate-finance": "@bench_cf",
         "carbon-manager": "@bench_mgr"}
TOKEN = "123456789:BENCHtokenBENCHtokenBENCHtokenBENC"
RSS_TARGET_MB = 150.0
STARTUP_TARGET_S = 1.5


# ---- the server process: 1,000 RSS feeds (ETag/304) and the Bot API double --------------------------


def _serve(conn, ports: int, entries: int) -> None:
    from tests.doubles.botapi import BotApiDouble

    server = FeedServer(entries)

    async def main() -> None:
        bound = await server.start(ports)
        double = BotApiDouble(TOKEN)
        await double.start()
        conn.send((bound, double.base_url))
        await asyncio.Event().wait()

    asyncio.run(main())


# ---- the database ----------------------------------------------------------------------------------


def sample_entries() -> list[tuple[str, str]]:
    """(title, body_html) of real articles: the shared corpus when present, else the sample site's posts."""
    if CORPUS.exists():
        rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [(r["title"], r["body_html"]) for r in rows if r.get("body_html")]
    return [(p.title, "".join(f"<p>{x}</p>" for x in p.paragraphs)) for p in fixture_posts()]


def prepared(source_ids: list[str], count: int):
    """`count` normalized, classified articles over the sources: the corpus articles again and again, each
    with its own key, URL, title and time (the classification is computed once per corpus article)."""
    topics = load_default_topics()
    base = []
    for n, (title, body) in enumerate(sample_entries()):
        article = normalize(Entry("x", f"k{n}", f"https://x/{n}", title, body, outlet="中国环境报"))
        base.append((article, classify(article, topics)))
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for n in range(count):
        article, classification = base[n % len(base)]
        sid = source_ids[n % len(source_ids)]
        url = f"https://news.example.org/{sid}/{n}.html"
        when = start + timedelta(minutes=30 * n)
        digest = hashlib.sha256(f"{article.content_hash}{n}".encode()).hexdigest()
        yield replace(article, source_id=sid, key=url, url=url, title=f"{article.title}（{n}）", published_at=when,
                      content_hash=digest), classification


def targets() -> dict[str, list[str]]:
    return {topic: [f"telegram:{chat}"] for topic, chat in CHATS.items()}


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def build_database(path: Path, source_ids: list[str], count: int) -> dict:
    started = time.perf_counter()
    store = Store(path)
    store.sync_sources((sid, "feed", "http://placeholder/") for sid in source_ids)
    batch = 10_000
    items = prepared(source_ids, count)
    loaded = 0
    while loaded < count:
        chunk = [next(items) for _ in range(min(batch, count - loaded))]
        loaded += bulk_load(store, chunk, targets())
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return {"articles": count, "bytes": db_bytes(path), "seconds": time.perf_counter() - started}


def real_path_size(directory: Path, count: int) -> dict:
    """The same articles stored one by one through Store.save_article (the pipeline's path)."""
    path = directory / "realpath.db"
    store = Store(path)
    started = time.perf_counter()
    for article, classification in prepared(["s0"], count):
        store.save_article(article, classification, targets())
    seconds = time.perf_counter() - started
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return {"articles": count, "bytes": db_bytes(path), "seconds": seconds}


# ---- the daemon ------------------------------------------------------------------------------------


def write_config(path: Path, state_dir: Path, urls: list[str], bot_api: str | None, interval: str = "10m") -> Path:
    lines = [f'state_dir = "{state_dir}"', "[web]", "enabled = false"]
    lines += ["[fetch]", "per_host = 8"]
    for n, url in enumerate(urls):
        lines += ["[[sources]]", f'id = "s{n}"', 'kind = "feed"', f'url = "{url}"', f'interval = "{interval}"']
    if bot_api:
        for topic, chat in CHATS.items():
            lines += [f"[topics.{topic}]", f'telegram_chat = "{chat}"']
        lines += ["[telegram]", f'api_base_url = "{bot_api}"', "commands = false"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def polled_sources(db: Path) -> int:
    store = Store(db)
    try:
        return sum(s.last_checked_at is not None for s in store.source_states())
    finally:
        store.close()


def run_daemon(config: Path, workdir: Path, sources: int, settle: float) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    env["FEEDBOT_TELEGRAM_TOKEN"] = TOKEN
    log = open(workdir / "daemon.log", "wb")  # noqa: SIM115 - closed below
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "feedbot", "--config", str(config), "run"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    samples = []
    try:
        db = workdir / "state" / "feedbot.db"
        cycle = None
        while time.monotonic() - started < 600:
            if proc.poll() is not None:
                raise RuntimeError(f"feedbot exited with {proc.returncode}; see {workdir / 'daemon.log'}")
            samples.append(proc_status(proc.pid)["VmRSS"])
            if cycle is None and polled_sources(db) >= sources:
                cycle = time.monotonic() - started
                settle_until = time.monotonic() + settle
            if cycle is not None and time.monotonic() >= settle_until:
                break
            time.sleep(0.5)
        status = proc_status(proc.pid)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    store = Store(workdir / "state" / "feedbot.db")
    stored = store.article_counts()["all"]
    failing = [s for s in store.source_states() if s.failures]
    store.close()
    errors = Counter(re.sub(r"https?://\S+", "URL", s.last_error or "?") for s in failing).most_common(2)
    return {"peak_rss": status["VmHWM"], "rss_end": status["VmRSS"], "first_cycle_s": cycle, "exit": code,
            "articles_after": stored, "rss_samples_max": max(samples), "failed_sources": len(failing),
            "errors": errors}


# ---- start-up to the first request -----------------------------------------------------------------


class _FirstRequest(BaseHTTPRequestHandler):
    first: float | None = None
    body = rss_feed(0, 3)

    def do_GET(self) -> None:
        if _FirstRequest.first is None:
            _FirstRequest.first = time.time()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def startup_times(workdir: Path, runs: int, telegram: bool) -> list[float]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FirstRequest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/feed/0.xml"
    # The Bot API points at a closed port: `once` fails to send at the end, after what is measured.
    config = write_config(workdir / f"once-{telegram}.toml", workdir / f"once-state-{telegram}", [url],
                          "http://127.0.0.1:9" if telegram else None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    if telegram:
        env["FEEDBOT_TELEGRAM_TOKEN"] = TOKEN
    times = []
    try:
        for _ in range(runs):
            _FirstRequest.first = None
            began = time.time()
            subprocess.run([sys.executable, "-m", "feedbot", "--config", str(config), "once"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, cwd=workdir)
            if _FirstRequest.first is None:
                raise RuntimeError("`feedbot once` never fetched the feed")
            times.append(_FirstRequest.first - began)
    finally:
        server.shutdown()
    return times


def heaviest_imports(workdir: Path, telegram: bool, top: int = 8) -> list[tuple[str, float]]:
    """Top-level imports by cumulative time (python -X importtime) of one `feedbot once`."""
    config = workdir / f"once-{telegram}.toml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    if telegram:
        env["FEEDBOT_TELEGRAM_TOKEN"] = TOKEN
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "feedbot", "--config", str(config), "once"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=workdir)
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(2)) <= 1:  # top level (indent 1)
            rows.append((m.group(3), int(m.group(1)) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top]


# ---- main --------------------------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=5, help="items in each served feed (new on the first poll)")
    parser.add_argument("--ports", type=int, default=20)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to keep running after the first cycle")
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100 sources, 10,000 articles, 3 start-up runs")
    args = parser.parse_args()
    if args.quick:
        args.sources, args.articles, args.startup_runs, args.ports = 100, 10_000, 3, 5

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # Start-up first, on an idle machine (no server process yet).
        for telegram in (False, True):
            times = startup_times(workdir, args.startup_runs, telegram)
            median = statistics.median(times)
            what = "with the Telegram publisher" if telegram else "feeds only (no chat configured)"
            rows.append({"measurement": f"`feedbot once` start-up to first request, {what}",
                         "feedbot": f"{median:.2f} s (median of {len(times)}; min {min(times):.2f})",
                         "target": f"≤ {STARTUP_TARGET_S} s", "ratio": f"{median / STARTUP_TARGET_S:.2f}× target",
                         "ok": median <= STARTUP_TARGET_S})
            if median > STARTUP_TARGET_S or telegram:
                heavy = ", ".join(f"{name} {sec * 1000:.0f} ms" for name, sec in heaviest_imports(workdir, telegram))
                rows.append({"measurement": f"  heaviest top-level imports ({'telegram' if telegram else 'feeds'})",
                             "feedbot": heavy, "target": "", "ratio": "", "ok": None})

        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        server = context.Process(target=_serve, args=(child, args.ports, args.entries), daemon=True)
        server.start()
        try:
            ports, bot_api = parent.recv()
            urls = [f"http://127.0.0.1:{ports[n % len(ports)]}/feed/{n}.xml" for n in range(args.sources)]
            source_ids = [f"s{n}" for n in range(args.sources)]
            state = workdir / "state"
            built = build_database(state / "feedbot.db", source_ids, args.articles)
            per10k = built["bytes"] / args.articles * 10_000
            rows.append({"measurement": f"database size, {args.articles:,} articles bulk-loaded (classified, "
                                        "one delivery per channel)",
                         "feedbot": f"{mb(built['bytes'])}; {mb(per10k)} per 10,000 articles",
                         "target": "", "ratio": "", "ok": None})
            real = real_path_size(workdir, 2000)
            rows.append({"measurement": "database size, 2,000 articles via Store.save_article (the pipeline path)",
                         "feedbot": f"{mb(real['bytes'] / real['articles'] * 10_000)} per 10,000 articles; "
                                    f"{real['articles'] / real['seconds']:,.0f} saves/s",
                         "target": "", "ratio": "", "ok": None})
            config = write_config(workdir / "feedbot.toml", state, urls, bot_api)
            daemon = run_daemon(config, workdir, args.sources, args.settle)
            peak = daemon["peak_rss"]
            rows.append({"measurement": f"`feedbot run` peak RSS (VmHWM): {args.sources:,} feed sources, "
                                        f"{args.articles:,} stored articles, first cycle +{args.settle:.0f} s",
                         "feedbot": f"{peak / 2**20:.1f} MiB ({mb(peak)}); RSS at the end {mb(daemon['rss_end'])}",
                         "target": f"≤ {RSS_TARGET_MB:.0f} MB", "ratio": f"{peak / 1e6 / RSS_TARGET_MB:.2f}× target",
                         "ok": peak / 1e6 <= RSS_TARGET_MB})
            rows.append({"measurement": "  first cycle (every source polled once, new items stored)",
                         "feedbot": f"{daemon['first_cycle_s']:.1f} s from start; "
                                    f"{daemon['articles_after'] - args.articles:,} new articles "
                                    f"(of {args.sources * args.entries:,} served); "
                                    f"{daemon['failed_sources']} source(s) failed {daemon['errors']}; "
                                    f"exit {daemon['exit']}",
                         "target": "", "ratio": "", "ok": None})
        finally:
            server.terminate()
            server.join(5)

    width = max(len(r["measurement"]) for r in rows)
    for r in rows:
        flag = "" if r["ok"] is None else ("  ✓" if r["ok"] else "  ✗ over target")
        print(f"{r['measurement'].ljust(width)}  {r['feedbot']}{'  (' + r['target'] + ')' if r['target'] else ''}"
              f"{flag}")
    print("BENCH_JSON " + json.dumps({"title": "Memory, size and start-up", "rows": rows}, ensure_ascii=False))


if __name__ == "__main__":
    main()
