"""A/B of `feedbot once` between source trees: first and unchanged cycle, the trees alternated in each round.

Run: .venv/bin/python benchmarks/ab_cycle.py HEAD~1 .              (5 rounds: a commit against the work tree)
     .venv/bin/python benchmarks/ab_cycle.py --rounds 9 v1 v2 v3   (any git revisions, or directories)

One change at a time is judged here, not in bench_cycle.py: on 2 shared cores one run varies by ±10 % and
two runs an hour apart by more, so only trees measured side by side, alternately, in one run compare. Each
revision is exported with `git archive` and run with PYTHONPATH pointing at it, in this repo's venv (a
module the older tree lacks is then found in the work tree's editable install: compare trees whose
modules match, as neighbouring commits do). Same set-up as bench_cycle.py: 300 RSS feeds × 20 entries on
one loopback host, 50 ms a request, `[fetch] per_host = 100`; a fresh state directory per round.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_cycle  # noqa: E402


def tree(revision: str, into: Path) -> Path:
    """A directory holding the revision's files: the directory itself, or a `git archive` export."""
    if Path(revision).is_dir():
        return Path(revision).resolve()
    out = into / revision.replace("/", "_")
    out.mkdir()
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revisions", nargs="+", help="git revisions or directories (`.`: the work tree)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        trees = {rev: tree(rev, Path(scratch)) for rev in args.revisions}
        ours, theirs = multiprocessing.Pipe()
        server = multiprocessing.Process(target=bench_cycle._serve, args=(theirs, args.latency), daemon=True)
        bench_cycle.become_subreaper()  # the forkserver and workers' CPU counts too
        server.start()
        bench_cycle.KEEP.add(server.pid)
        port = ours.recv()
        urls = [f"http://127.0.0.1:{port}/feed/{i}.xml" for i in range(args.feeds)]
        runs: dict[str, list[tuple[float, float, float, float]]] = {rev: [] for rev in args.revisions}
        try:
            for round_ in range(args.rounds):
                for rev, path in trees.items():
                    config = bench_cycle.feedbot_config(Path(scratch) / f"r{round_}-{len(runs[rev])}-{id(path)}",
                                                        urls, bench_cycle.RAISED)
                    env = {**bench_cycle.PYTHON_ENV, "PYTHONPATH": str(path)}
                    argv = [bench_cycle.PYTHON, "-m", "feedbot", "--config", str(config), "once"]
                    first_wall, first_cpu, _ = bench_cycle.timed(argv, path, env)
                    again_wall, again_cpu, _ = bench_cycle.timed(argv, path, env)
                    runs[rev].append((first_wall, first_cpu, again_wall, again_cpu))
        finally:
            server.kill()
    print(f"{args.feeds} feeds × {bench_cycle.ENTRIES} entries, {args.latency * 1000:.0f} ms, per_host "
          f"{bench_cycle.RAISED}; medians of {args.rounds} alternated rounds")
    print(f"{'tree':30s} {'first wall':>10s} {'first CPU':>10s} {'unchanged wall':>15s} {'unchanged CPU':>14s}")
    for rev, rows in runs.items():
        first_wall, first_cpu, again_wall, again_cpu = (statistics.median(col) for col in zip(*rows, strict=True))
        print(f"{rev:30s} {first_wall:9.2f}s {first_cpu:9.2f}s {again_wall:14.2f}s {again_cpu:13.2f}s")


if __name__ == "__main__":
    main()
