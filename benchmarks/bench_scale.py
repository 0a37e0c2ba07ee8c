"""The daemon at scale: `feedbot run` with thousands of feed sources on loopback, mostly 304, some changed.

Run: .venv/bin/python benchmarks/bench_scale.py                                   (10,000 sources, 10 min)
     .venv/bin/python benchmarks/bench_scale.py --sources 1000 --interval 60 --duration 180   (compressed)

Set-up: a feed server process (aiohttp, `--hosts` loopback ports, `--latency` per answer, ETag/304) serves
`--sources` RSS feeds of `--entries` entries. A warm-up `feedbot once` stores every feed (not measured), so
the daemon starts in the steady state: every source has validators and a next check spread over the
interval. Then `feedbot run` (the real daemon: scheduler, drain, feeds and watchdog loops, web server) runs
for `--duration` seconds while the server changes `--changed` of the feeds per interval (one new entry
each, at random moments), the rest answer 304.

Measured from outside, after a settling period (`--settle`, start-up and the first scheduler tick excluded):
CPU share of one core (utime + stime of the daemon and its prepare workers from /proc, over the measured
wall time), peak RSS (VmHWM, summed over the daemon and its workers: an upper bound), and every poll's
lateness against its scheduled time (the daemon logs it at debug level when the poll starts: `poll <id>
started <s> s after its scheduled time`), as p50 / p99 / max.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
LATE = re.compile(r"poll (\S+) started (-?[0-9.]+) s after its scheduled time")
PARAGRAPH = ("生态环境部有关负责人表示，将持续完善全国碳排放权交易市场制度体系，"
             "强化排放数据质量管理，稳步扩大行业覆盖范围。")


def rss(source: int, entries: int, head: int) -> bytes:
    """Feed ``source`` whose newest entry is number ``head``: a change adds one entry and drops the oldest."""
    start = datetime(2024, 5, 1, tzinfo=UTC)
    items = []
    for n in range(head, max(head - entries, -1), -1):
        link = f"https://news{source}.example.org/{n}.html"
        items.append(f"<item><title>第{source}号源 第{n}条 碳市场动态</title><link>{link}</link><guid>{link}</guid>"
                     f"<pubDate>{format_datetime(start + timedelta(minutes=n))}</pubDate>"
                     f"<description>&lt;p&gt;{PARAGRAPH}&lt;/p&gt;</description></item>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>源{source}</title><link>https://news{source}.example.org/</link><description>d</description>"
            + "".join(items) + "</channel></rss>").encode()


def _serve(conn, sources: int, entries: int, hosts: int, latency: float, interval: float, changed: float) -> None:
    from aiohttp import web

    heads = [entries - 1] * sources
    cache: dict[int, tuple[int, bytes, str]] = {}
    counts = {"200": 0, "304": 0}

    async def feed(request):
        if latency:
            await asyncio.sleep(latency)
        n = int(request.match_info["n"])
        if cache.get(n, (None,))[0] != heads[n]:
            body = rss(n, entries, heads[n])
            cache[n] = (heads[n], body, f'"{n}-{heads[n]}"')
        _, body, etag = cache[n]
        if request.headers.get("If-None-Match") == etag:
            counts["304"] += 1
            return web.Response(status=304, headers={"ETag": etag})
        counts["200"] += 1
        return web.Response(body=body, headers={"ETag": etag, "Content-Type": "application/rss+xml"})

    async def changer() -> None:
        rng = random.Random(7)
        per_second = sources * changed / interval
        while True:  # changes at random moments, `changed` of the feeds per interval on average
            await asyncio.sleep(rng.expovariate(per_second))
            heads[rng.randrange(sources)] += 1

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{n}.xml", feed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ports = []
        for _ in range(hosts):
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
            await site.start()
            ports.append(site._server.sockets[0].getsockname()[1])
        conn.send(ports)
        tasks = []
        while True:  # never block the loop on the pipe: the server answers all the while
            await asyncio.sleep(0.2)
            if conn.poll():
                message = conn.recv()
                if message == "start changes":
                    tasks.append(asyncio.create_task(changer()))
                elif message == "counts":
                    conn.send(dict(counts))

    asyncio.run(main())


def tree(pid: int) -> list[int]:
    """The daemon and its descendants (the forkserver and the prepare workers it forks)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(parents.get(current, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the daemon's threads and of its live descendants."""
    total = 0.0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def peak_rss_mb(pid: int) -> float:
    """VmHWM summed over the daemon and its descendants (an upper bound: shared pages count in each)."""
    total = 0
    for member in tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return total / 1024


def write_config(work: Path, ports: list[int], sources: int, interval: float) -> Path:
    lines = [f'state_dir = "{work / "state"}"', "[web]", 'listen = "127.0.0.1:0"',
             'base_url = "http://127.0.0.1/"']
    for n in range(sources):
        port = ports[n % len(ports)]
        lines += ["[[sources]]", f'id = "s{n}"', 'kind = "feed"', f'url = "http://127.0.0.1:{port}/feed/{n}.xml"',
                  f'interval = "{interval:g}s"']
    path = work / "feedbot.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=600.0, help="each source's poll interval, seconds")
    parser.add_argument("--duration", type=float, default=None,
                        help="measured seconds (default: 1.15 intervals, so the window holds every source's next "
                             "poll: the warm-up set them all one interval ± 10 %% jitter ahead)")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after start-up not measured")
    parser.add_argument("--entries", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--changed", type=float, default=0.10, help="share of the feeds changed per interval")
    args = parser.parse_args()
    duration = args.duration or args.interval * 1.15

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child, args.sources, args.entries, args.hosts, args.latency,
                                                  args.interval, args.changed), daemon=True)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_SOCKET", "WATCHDOG", "FEEDBOT_"))}
    try:
        ports = parent.recv()
        config = write_config(work, ports, args.sources, args.interval)
        began = time.monotonic()
        warm = subprocess.run([PYTHON, "-m", "feedbot", "--config", str(config), "-q", "once"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        warm_seconds = time.monotonic() - began
        if warm.returncode != 0:
            raise SystemExit(f"warm-up `feedbot once` failed ({warm.returncode}): {warm.stderr[-500:]}")
        parent.send("start changes")
        log_path = work / "daemon.log"
        with open(log_path, "w") as log:
            daemon = subprocess.Popen([PYTHON, "-m", "feedbot", "--config", str(config), "-v", "run"], cwd=ROOT,
                                      env=env, stdout=log, stderr=log)
        try:
            time.sleep(args.settle)
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited ({daemon.returncode}): {log_path.read_text()[-800:]}")
            cpu0, wall0 = cpu_seconds(daemon.pid), time.monotonic()
            mark = log_path.stat().st_size
            samples = []
            while time.monotonic() - wall0 < duration:
                time.sleep(min(10.0, duration - (time.monotonic() - wall0)) or 0.1)
                samples.append((time.monotonic() - wall0, cpu_seconds(daemon.pid)))
            cpu1, wall1 = cpu_seconds(daemon.pid), time.monotonic()
            peak = peak_rss_mb(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        parent.send("counts")
        counts = parent.recv() if parent.poll(5) else {}
        with open(log_path, errors="replace") as log:
            log.seek(mark)
            measured = log.read()
        lateness = [float(m.group(2)) for m in LATE.finditer(measured)]
        errors = measured.count(" ERROR ")
        warnings = measured.count(" WARNING ")
    finally:
        server.terminate()
        server.join(5)
        shutil.rmtree(work, ignore_errors=True)

    share = (cpu1 - cpu0) / (wall1 - wall0)
    windows = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(samples) if b[0] > a[0]]
    p99 = percentile(lateness, 0.99)
    print(f"setup: {args.sources} feed sources on {args.hosts} loopback hosts, {args.latency * 1000:.0f} ms latency, "
          f"interval {args.interval:g} s, {args.changed:.0%} of the feeds changed per interval, {args.entries} "
          f"entries per feed; warm-up `feedbot once` {warm_seconds:.1f} s; measured {wall1 - wall0:.0f} s after "
          f"{args.settle:g} s of settling")
    print(f"polls started in the measured window: {len(lateness)} ({len(lateness) / (wall1 - wall0):.1f}/s); "
          f"server answers over the whole run: {counts}")
    print(f"log lines in the window: {errors} ERROR, {warnings} WARNING")
    print(f"CPU per 10 s window (share of one core): max {max(windows, default=float('nan')):.1%}")
    rows = [
        {"measurement": "CPU, share of one core (average)", "feedbot": f"{share:.1%}", "target": "≤ 10 %",
         "ratio": f"{share / 0.10:.2f} of target"},
        {"measurement": "peak RSS (VmHWM, daemon + workers)", "feedbot": f"{peak:.0f} MB", "target": "≤ 200 MB",
         "ratio": f"{peak / 200:.2f} of target"},
        {"measurement": "poll lateness against schedule, p50", "feedbot": f"{percentile(lateness, 0.5):.3f} s",
         "target": "", "ratio": ""},
        {"measurement": "poll lateness against schedule, p99", "feedbot": f"{p99:.3f} s", "target": "≤ 5 s",
         "ratio": f"{p99 / 5:.2f} of target"},
        {"measurement": "poll lateness, max", "feedbot": f"{max(lateness, default=float('nan')):.3f} s",
         "target": "", "ratio": ""},
        {"measurement": "polls started in the window / sources", "feedbot": f"{len(lateness)} / {args.sources}",
         "target": "", "ratio": ""},
        {"measurement": "CPU per poll (window CPU / polls)",
         "feedbot": f"{(cpu1 - cpu0) * 1000 / max(len(lateness), 1):.2f} ms", "target": "", "ratio": ""},
    ]
    for row in rows:
        print(f"{row['measurement']:40} {row['feedbot']:>12}   target {row['target'] or '—'}")
    print("BENCH_JSON " + json.dumps({
        "title": f"Daemon at scale: {args.sources:,} feed sources, interval {args.interval:g} s, "
                 f"{duration:g} s measured", "rows": rows}, ensure_ascii=False))


if __name__ == "__main__":
    main()
