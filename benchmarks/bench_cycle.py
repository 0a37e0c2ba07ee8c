"""Whole-process poll cycles against one loopback host: feedbot once vs newsboat, feedparser and rss2email.

Run: .venv/bin/python benchmarks/bench_cycle.py                 (300 feeds × 20 entries, 50 ms; ~2 minutes)
     .venv/bin/python benchmarks/bench_cycle.py --repeat 5      (feedbot and newsboat 5 times each, medians)
     .venv/bin/python benchmarks/bench_cycle.py --feeds 50      (smaller)
     .venv/bin/python benchmarks/bench_cycle.py --profile DIR   (also cProfile both feedbot cycles into DIR)

Every poller is a separate process started here and timed from outside (wall clock, and CPU from wait4:
user + system of the whole process, its threads and its descendants: feedbot's prepare workers are adopted
and reaped here, so their CPU counts). The feed server (benchmarks/rss_fixture.py) runs in another
process: one loopback port, `--latency` per request, ETag/304. Each poller gets its own state and
polls every feed twice: a first cycle (all new) and an unchanged cycle (all 304). feedbot's CPU per source
has the start-up of `feedbot once` (one unchanged source) taken off, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from rss_fixture import FeedServer  # noqa: E402

PYTHON = sys.executable
ENTRIES = 20
RAISED = 100  # fetch.per_host's maximum (the connector's total limit is 100 too)
RAISED_NAME = f"feedbot, per_host = {RAISED}"
NEWSBOAT = "newsboat, reload-threads 100"
FIRST_RATIO = f"first cycle, feedbot (per_host {RAISED}) / newsboat"
AGAIN_RATIO = f"unchanged cycle, feedbot (per_host {RAISED}) / newsboat"


def _serve(conn, latency: float) -> None:
    async def main() -> None:
        (port,) = await FeedServer(ENTRIES, latency).start(1)
        conn.send(port)
        await asyncio.Event().wait()

    asyncio.run(main())


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one process run to its end, its descendants' CPU included."""
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty process never blocks on a full pipe
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        cpu = usage.ru_utime + usage.ru_stime + reap_orphans()
        log.seek(0)
        stderr = log.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(f"  ! {' '.join(argv[:4])}… exited {code}: {stderr.strip()[-500:]}", file=sys.stderr)
    return wall, cpu, code


def become_subreaper() -> None:
    """Adopt orphaned descendants (feedbot's forkserver and prepare workers), so their CPU is counted too."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_orphans(timeout: float = 10.0) -> float:
    """CPU seconds of the adopted descendants of the last poller, waited for (the feed server is not one)."""
    cpu = 0.0
    deadline = time.monotonic() + timeout
    while True:
        orphans = [pid for pid in _children() if pid not in KEEP]
        if not orphans:
            return cpu
        for pid in orphans:
            if time.monotonic() > deadline:
                os.kill(pid, 9)
            try:
                done, _, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if done:
                cpu += usage.ru_utime + usage.ru_stime
        time.sleep(0.01)


def _children() -> list[int]:
    me = str(os.getpid())
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                out.append(int(entry))
    return out


# An installed feedbot has its bytecode compiled (pip does it): a PYTHONDONTWRITEBYTECODE in the benchmark's
# environment would make every feedbot process compile its modules again.
PYTHON_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
WORKERS: int | None = None  # [pipeline] workers; None leaves the default ("auto")
KEEP: set[int] = set()  # children that are not pollers (the feed server)


def feedbot_config(directory: Path, urls: list[str], per_host: int | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f'state_dir = "{directory / "state"}"', "[web]", "enabled = false"]
    if WORKERS is not None:
        lines += ["[pipeline]", f"workers = {WORKERS}"]
    if per_host is not None:
        lines += ["[fetch]", f"per_host = {per_host}"]
    for n, url in enumerate(urls):
        lines += ["[[sources]]", f'id = "f{n}"', 'kind = "feed"', f'url = "{url}"']
    path = directory / "feedbot.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_feedbot(work: Path, urls: list[str], per_host: int | None, profile: Path | None) -> list[tuple]:
    config = feedbot_config(work / f"feedbot-{per_host or 'default'}", urls, per_host)
    rows = []
    for cycle in ("first", "unchanged"):
        argv = [PYTHON, "-m", "feedbot", "--config", str(config), "once"]
        if profile:
            argv = [PYTHON, "-m", "cProfile", "-o", str(profile / f"feedbot-{per_host or 'default'}-{cycle}.prof"),
                    "-m", "feedbot", "--config", str(config), "once"]
        rows.append((cycle, *timed(argv, ROOT, PYTHON_ENV)))
    return rows


def median_rows(runs: list[list[tuple]]) -> list[tuple]:
    """Per cycle, the median wall and the median CPU over the runs (exit code: the worst)."""
    out = []
    for cycle_rows in zip(*runs, strict=True):
        out.append((cycle_rows[0][0], statistics.median(r[1] for r in cycle_rows),
                    statistics.median(r[2] for r in cycle_rows), max((r[3] for r in cycle_rows), key=abs)))
    return out


def run_newsboat(work: Path, urls: list[str], threads: int) -> list[tuple]:
    home = work / "newsboat"
    home.mkdir(parents=True)
    (home / "urls").write_text("\n".join(urls) + "\n")
    (home / "config").write_text(f"reload-threads {threads}\nuser-agent \"newsboat-bench\"\n")
    argv = ["newsboat", "-x", "reload", "-u", str(home / "urls"), "-c", str(home / "cache.db"),
            "-C", str(home / "config")]
    env = {**os.environ, "HOME": str(home)}
    return [(cycle, *timed(argv, home, env)) for cycle in ("first", "unchanged")]


def run_feedparser_loop(work: Path, urls: list[str]) -> list[tuple]:
    script = work / "loop.py"
    script.write_text("import feedparser, sys\nfor url in sys.argv[1:]:\n    assert feedparser.parse(url).entries\n")
    return [("first", *timed([PYTHON, str(script), *urls], work, PYTHON_ENV))]


def run_rss2email(work: Path, urls: list[str]) -> list[tuple]:
    home = work / "r2e"
    home.mkdir()
    feeds = "".join(f"\n[feed.f{n}]\nurl = {url}\n" for n, url in enumerate(urls))
    (home / "r2e.cfg").write_text("[DEFAULT]\nto = bench@example.org\nfrom = r2e@example.org\n" + feeds)
    argv = ["r2e", "-c", str(home / "r2e.cfg"), "-d", str(home / "r2e.json"), "run", "--no-send"]
    return [(cycle, *timed(argv, home)) for cycle in ("first", "unchanged")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--profile", metavar="DIR", type=Path, help="cProfile the feedbot cycles into DIR")
    parser.add_argument("--skip-peers", action="store_true", help="feedbot only")
    parser.add_argument("--repeat", type=int, default=3, help="runs of feedbot and newsboat (medians reported)")
    parser.add_argument("--workers", type=int, help='feedbot\'s [pipeline] workers (default: "auto")')
    args = parser.parse_args()
    global WORKERS
    WORKERS = args.workers
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child, args.latency), daemon=True)
    server.start()
    KEEP.add(server.pid)
    become_subreaper()
    work = Path(tempfile.mkdtemp(prefix="bench-cycle-"))
    results: dict[str, list[tuple]] = {}
    try:
        port = parent.recv()
        urls = [f"http://127.0.0.1:{port}/feed/{n}.xml" for n in range(args.feeds)]
        # the start-up baseline: `feedbot once` with one source, unchanged (an empty config means the default source)
        single = [PYTHON, "-m", "feedbot", "--config", str(feedbot_config(work / "single", urls[:1], None)), "once"]
        timed(single, ROOT, PYTHON_ENV)  # also writes the bytecode caches an installed feedbot has
        startup = min(timed(single, ROOT, PYTHON_ENV)[1] for _ in range(3))
        # feedbot and newsboat alternate --repeat times, each on a fresh state (the 2 cores are shared with
        # other machines: a single run can be 30 % off); each cell is the median, each ratio the median of the
        # runs' ratios.
        newsboat = shutil.which("newsboat") and not args.skip_peers
        runs: dict[str, list[list[tuple]]] = {RAISED_NAME: [], NEWSBOAT: []}
        for n in range(args.repeat):
            runs[RAISED_NAME].append(run_feedbot(work / f"run{n}", urls, RAISED, args.profile if n == 0 else None))
            if newsboat:
                runs[NEWSBOAT].append(run_newsboat(work / f"run{n}", urls, 100))
            print(f"  run {n + 1}: " + "; ".join(
                f"{name}: " + ", ".join(f"{c} {w:.2f} s / {cpu:.2f} s" for c, w, cpu, _ in rows[-1])
                for name, rows in runs.items() if rows), file=sys.stderr)
        results[RAISED_NAME] = median_rows(runs[RAISED_NAME])
        if newsboat:
            results[NEWSBOAT] = median_rows(runs[NEWSBOAT])
            pair_ratios = {FIRST_RATIO: [fb[0][1] / nb[0][1] for fb, nb in zip(*runs.values(), strict=True)],
                           AGAIN_RATIO: [fb[1][1] / nb[1][1] for fb, nb in zip(*runs.values(), strict=True)]}
        results["feedbot, default per_host"] = run_feedbot(work, urls, None, args.profile)
        if not args.skip_peers:
            results["sequential feedparser.parse(url)"] = run_feedparser_loop(work, urls)
            if shutil.which("r2e"):
                results["rss2email, run --no-send"] = run_rss2email(work, urls)
    finally:
        server.terminate()
        server.join(5)
        shutil.rmtree(work, ignore_errors=True)

    print(f"setup: {args.feeds} RSS feeds × {ENTRIES} entries on one loopback host, {args.latency * 1000:.0f} ms "
          f"latency, ETag/304; feedbot start-up CPU (one unchanged source) {startup:.2f} s, taken off feedbot's "
          "CPU/source")
    print(f"{'poller':36}  {'first cycle wall / CPU':>24}  {'unchanged wall / CPU per source':>32}")
    for name, rows in results.items():
        cells = {cycle: (wall, cpu, code) for cycle, wall, cpu, code in rows}
        base = startup if name.startswith("feedbot") else 0.0
        first = cells.get("first")
        again = cells.get("unchanged")
        first_cell = f"{first[0]:.2f} s / {first[1]:.2f} s" + ("" if first[2] == 0 else " (failed)")
        again_cell = "—" if again is None else (
            f"{again[0]:.2f} s / {max(again[1] - base, 0) * 1000 / (args.feeds - bool(base)):.2f} ms"
            + ("" if again[2] == 0 else " (failed)"))
        print(f"{name:36}  {first_cell:>24}  {again_cell:>32}")
    fb = results[RAISED_NAME]
    ratios = {}
    if NEWSBOAT in results:
        ratios[FIRST_RATIO] = statistics.median(pair_ratios[FIRST_RATIO])
        ratios[AGAIN_RATIO] = statistics.median(pair_ratios[AGAIN_RATIO])
    if "sequential feedparser.parse(url)" in results:
        loop = results["sequential feedparser.parse(url)"]
        ratios["sequential feedparser loop / feedbot first cycle"] = loop[0][1] / fb[0][1]
    if "rss2email, run --no-send" in results:
        ratios["rss2email first cycle / feedbot first cycle"] = results["rss2email, run --no-send"][0][1] / fb[0][1]
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    rows = []
    for name, cycles in results.items():
        cells = {cycle: (wall, cpu, code) for cycle, wall, cpu, code in cycles}
        base = startup if name.startswith("feedbot") else 0.0
        for cycle, (wall, cpu, code) in cells.items():
            per_source = max(cpu - base, 0) * 1000 / (args.feeds - bool(base))
            per = "" if cycle == "first" else f", {per_source:.2f} ms CPU/source"
            row = {"measurement": f"{name}: {cycle} cycle", "feedbot": f"{wall:.2f} s wall, {cpu:.2f} s CPU{per}"
                   + ("" if code == 0 else " (failed)"), "target": "", "ratio": ""}
            if name == RAISED_NAME and cycle == "first":
                row["target"] = "≤ 1.5 s wall and ≤ 1.2 × newsboat"
                row["ratio"] = f"{wall / 1.5:.2f} of 1.5 s" + (
                    f"; {ratios[FIRST_RATIO]:.2f} × newsboat"
                    if FIRST_RATIO in ratios else "")
            elif name == RAISED_NAME:
                row["target"] = "≤ 0.6 s wall, ≤ 1 ms CPU/source"
                row["ratio"] = f"{wall / 0.6:.2f} of 0.6 s"
            elif name == "feedbot, default per_host" and cycle == "unchanged":
                row["target"] = f"bounded by politeness: ⌈{args.feeds}/4⌉ × {args.latency * 1000:.0f} ms = " \
                                f"{-(-args.feeds // 4) * args.latency:.2f} s + start-up"
            rows.append(row)
    rows.append({"measurement": "feedbot start-up CPU (`once`, one unchanged source)", "feedbot": f"{startup:.2f} s",
                 "target": "", "ratio": ""})
    for name, value in ratios.items():
        rows.append({"measurement": name, "feedbot": f"{value:.2f}", "target": "", "ratio": ""})
    print("BENCH_JSON " + json.dumps({
        "title": f"Whole-process poll cycle: {args.feeds} feeds × {ENTRIES} entries, one loopback host, "
                 f"{args.latency * 1000:.0f} ms", "rows": rows}, ensure_ascii=False))


if __name__ == "__main__":
    main()
