"""Start-up CPU of `feedbot once`: one unchanged feed source on a populated state dir, and what it imports.

Run: .venv/bin/python benchmarks/bench_startup.py                 (median of 5 runs, top 15 imports)
     .venv/bin/python benchmarks/bench_startup.py --runs 9 --top 30

A loopback feed server (benchmarks/rss_fixture.py) serves one RSS feed with ETag/304 from another process.
`feedbot once` runs once to populate a temporary state dir, then `--runs` more times against the unchanged
feed: each is timed from outside (CPU from wait4: user + system of the whole process). One more run under
`python -X importtime` gives the slowest imports, cumulative (a module and everything it imported first).

The runs read bytecode from a cache in the temporary directory (PYTHONPYCACHEPREFIX), as an installed feedbot
does, even where PYTHONDONTWRITEBYTECODE is set; `--from-source` runs them with PYTHONDONTWRITEBYTECODE=1 and
no cache of their own, as a checkout without __pycache__ runs: feedbot's own modules are compiled every time.
"""

from __future__ import annotations

import argparse
import asyncio
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


def _serve(conn) -> None:
    async def main() -> None:
        (port,) = await FeedServer(ENTRIES).start(1)
        conn.send(port)
        await asyncio.Event().wait()

    asyncio.run(main())


def write_config(directory: Path, url: str) -> Path:
    """A feedbot.toml with one feed source and no web server, its state beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "feedbot.toml"
    path.write_text("\n".join([f'state_dir = "{directory / "state"}"', "[web]", "enabled = false",
                               "[[sources]]", 'id = "f0"', 'kind = "feed"', f'url = "{url}"']) + "\n")
    return path


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process run to its end; a failure stops the benchmark."""
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty process never blocks on a full pipe
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        log.seek(0)
        stderr = log.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv)} failed: {stderr.strip()[-800:]}")
    return wall, usage.ru_utime + usage.ru_stime


def import_times(argv: list[str], env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """(cumulative µs, module) of the slowest imports of one run under -X importtime."""
    done = subprocess.run([PYTHON, "-X", "importtime", *argv[1:]], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--from-source", action="store_true", help="compile feedbot's modules on every run")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        port = parent.recv()
        config = write_config(work, f"http://127.0.0.1:{port}/feed/0.xml")
        argv = [PYTHON, "-m", "feedbot", "--config", str(config), "once"]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
        if args.from_source:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        timed(argv, env)  # stores the feed's entries (later runs see it unchanged: 304) and fills the cache
        runs = [timed(argv, env) for _ in range(args.runs)]
        imports = import_times(argv, env, args.top)
    finally:
        server.terminate()
        server.join(5)
        shutil.rmtree(work, ignore_errors=True)

    cpu = statistics.median(c for _, c in runs)
    wall = statistics.median(w for w, _ in runs)
    mode = "feedbot compiled from source" if args.from_source else "bytecode cached"
    print(f"feedbot once, one unchanged feed source, {mode}: {cpu:.3f} s CPU (median of {args.runs}; "
          f"min {min(c for _, c in runs):.3f}), {wall:.3f} s wall")
    print(f"top {args.top} imports (cumulative, one run under -X importtime):")
    for micros, name in imports:
        print(f"  {micros / 1000:8.1f} ms  {name}")
    print("BENCH_JSON " + json.dumps({"title": "Start-up of `feedbot once` (one unchanged feed source)", "rows": [
        {"measurement": f"CPU of the whole process ({mode})", "feedbot": f"{cpu:.3f} s (median of {args.runs})",
         "target": "", "ratio": ""},
        {"measurement": "wall clock", "feedbot": f"{wall:.3f} s", "target": "", "ratio": ""},
        *({"measurement": f"import {name} (cumulative)", "feedbot": f"{micros / 1000:.1f} ms", "target": "",
           "ratio": ""} for micros, name in imports[:5]),
    ]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
