"""Polling benchmark: category-page parsing, 304 polls, and 1,000 RSS sources on loopback with latency.

Run: .venv/bin/python benchmarks/bench_poll.py            (1,000 sources; ~1-2 minutes)
     .venv/bin/python benchmarks/bench_poll.py --quick    (100 sources; seconds)
     .venv/bin/python benchmarks/bench_poll.py --profile /tmp/304.prof   (cProfile of the all-304 cycle)

The servers run in a separate process, so the CPU figures are the client's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import feedparser
from rss_fixture import FeedServer

from feedbot.model import SourceState
from feedbot.settings.config import FetchConfig, SourceConfig
from feedbot.sources.feed import FeedSource
from feedbot.sources.http import Fetcher
from feedbot.sources.jekyll import JekyllSource, parse_category

ENTRIES_PER_FEED = 20


# ---- the server process ----------------------------------------------------------------------


def _serve(conn, ports: int, latency: float, category_posts: int) -> None:
    from aiohttp import web

    from tests.doubles.site import SampleSite

    server = FeedServer(ENTRIES_PER_FEED, latency)

    async def bump(request: web.Request) -> web.Response:
        every = int(request.query["every"])
        for source in range(0, int(request.query["sources"]), every):
            server.versions[source] = server.versions.get(source, 0) + 1
        return web.Response(text="ok")

    async def main() -> None:
        bound = await server.start(ports, [("/_bump", bump)])
        jekyll = SampleSite(posts=[])
        for n in range(category_posts):
            jekyll.add_post(f"第{n}篇 关于碳市场和气候投融资的报道", ["正文。"])
        await jekyll.start()
        conn.send((bound, jekyll.category_url))
        await asyncio.Event().wait()

    asyncio.run(main())


# ---- measurements ----------------------------------------------------------------------------


class Clock:
    """Wall and process-CPU time of a block."""

    def __enter__(self) -> Clock:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


async def poll_all(sources: list[FeedSource], states: list[SourceState | None]) -> list:
    return await asyncio.gather(*(s.poll(st, set()) for s, st in zip(sources, states, strict=True)),
                                return_exceptions=True)


def states_from(results: list, urls: list[str]) -> list[SourceState]:
    return [SourceState(id=f"s{i}", kind="feed", url=url, etag=r.etag, last_modified=r.last_modified,
                        last_ok_at=datetime.now(UTC)) for i, (r, url) in enumerate(zip(results, urls, strict=True))]


async def bench_feeds(urls: list[str], control: str, baseline_sample: int, connections: int,
                      profile: str | None = None) -> list[tuple[str, str]]:
    rows = []
    config = FetchConfig(timeout=20, deadline=60, per_host=4)
    async with Fetcher(config, max_connections=connections) as fetcher:
        sources = [FeedSource(SourceConfig(id=f"s{i}", kind="feed", url=url, backfill=None), fetcher)
                   for i, url in enumerate(urls)]
        with Clock() as cold:
            results = await poll_all(sources, [None] * len(urls))
        failures = [r for r in results if isinstance(r, Exception)]
        assert not failures, failures[:3]
        entries = sum(len(r.entries) for r in results)
        rows.append(("cycle, every feed new (fetch + feedparser)",
                     f"{cold.wall:.2f} s wall, {cold.cpu * 1000 / len(urls):.2f} ms CPU/source, {entries} entries"))
        states = states_from(results, urls)

        profiler = cProfile.Profile() if profile else None
        with Clock() as steady:
            if profiler:
                profiler.enable()
            results = await poll_all(sources, states)
            if profiler:
                profiler.disable()
        assert all(r.not_modified for r in results), "expected 304s"
        per_source = steady.cpu * 1000 / len(urls)
        verdict = "under profiler" if profiler else ("meets" if per_source < 1 else "MISSES")
        rows.append(("cycle, all 304 (conditional GET)",
                     f"{steady.wall:.2f} s wall, {per_source:.3f} ms CPU/source ({verdict} the < 1 ms target)"))
        if profiler:
            profiler.dump_stats(profile)

        await fetcher.get(f"{control}/_bump?every=10&sources={len(urls)}")
        with Clock() as mixed:
            results = await poll_all(sources, states)
        changed = sum(not r.not_modified for r in results)
        rows.append((f"cycle, {changed} of {len(urls)} changed",
                     f"{mixed.wall:.2f} s wall, {mixed.cpu * 1000 / len(urls):.2f} ms CPU/source"))

    sample = urls[:baseline_sample]
    with Clock() as seq:
        for url in sample:
            parsed = feedparser.parse(url)
            assert len(parsed.entries) == ENTRIES_PER_FEED, url
    per_feed = seq.wall / len(sample)
    baseline = per_feed * len(urls)
    note = "" if len(sample) == len(urls) else f" (measured on {len(sample)}, scaled)"
    rows.append(("sequential feedparser.parse(url) loop",
                 f"{baseline:.1f} s wall{note}, {seq.cpu * 1000 / len(sample):.1f} ms CPU/feed"))
    rows.append(("speed-up: steady cycle (all 304) vs sequential", f"{baseline / steady.wall:.0f}x"))
    rows.append(("speed-up: 10%-changed cycle vs sequential", f"{baseline / mixed.wall:.0f}x"))
    rows.append(("speed-up: all-new cycle vs sequential", f"{baseline / cold.wall:.1f}x"))
    return rows


async def bench_category(category_url: str, posts: int) -> list[tuple[str, str]]:
    rows = []
    async with Fetcher(FetchConfig()) as fetcher:
        page = await fetcher.get(category_url)
        text = page.text
        runs = []
        for _ in range(21):
            t0 = time.perf_counter()
            links = parse_category(text, category_url)
            runs.append(time.perf_counter() - t0)
        assert len(links) == posts
        rows.append((f"parse category page of {posts} posts ({len(page.content) // 1024} KiB)",
                     f"{statistics.median(runs) * 1000:.1f} ms median of 21"))
        source = JekyllSource(SourceConfig(id="c", kind="jekyll", url=category_url), fetcher, recheck=0)
        known = {link.key for link in links}
        with Clock() as full:
            result = await source.poll(None, known)
        assert not result.entries
        state = SourceState(id="c", kind="jekyll", url=category_url, etag=result.etag,
                            last_modified=result.last_modified, last_ok_at=datetime.now(UTC))
        rows.append(("poll, page changed, nothing new (fetch + parse)",
                     f"{full.wall * 1000:.1f} ms wall, {full.cpu * 1000:.1f} ms CPU"))
        walls, cpus = [], []
        for _ in range(20):
            with Clock() as unchanged:
                result = await source.poll(state, known)
            assert result.not_modified and result.listed == 0
            walls.append(unchanged.wall)
            cpus.append(unchanged.cpu)
        rows.append(("poll, page unchanged (304, nothing parsed)",
                     f"{statistics.median(walls) * 1000:.2f} ms wall, {statistics.median(cpus) * 1000:.2f} ms CPU"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=1000, help="RSS sources to poll (default 1000)")
    parser.add_argument("--ports", type=int, default=50, help="loopback servers (hosts) the sources spread over")
    parser.add_argument("--latency", type=float, default=0.05, help="added latency per request, seconds")
    parser.add_argument("--category-posts", type=int, default=5000)
    parser.add_argument("--baseline-sample", type=int, default=200,
                        help="feeds the sequential feedparser loop really fetches (scaled to --sources); 0 = all")
    parser.add_argument("--connections", type=int, default=50, help="the Fetcher's connection pool size")
    parser.add_argument("--quick", action="store_true", help="100 sources, 5 ports, 50-feed baseline")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the all-304 cycle to FILE")
    args = parser.parse_args()
    if args.quick:
        args.sources, args.ports, args.baseline_sample = 100, 5, 50
    sample = args.sources if args.baseline_sample <= 0 else min(args.baseline_sample, args.sources)

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child, args.ports, args.latency, args.category_posts),
                             daemon=True)
    server.start()
    try:
        ports, category_url = parent.recv()
        urls = [f"http://127.0.0.1:{ports[i % len(ports)]}/feed/{i}.xml" for i in range(args.sources)]
        control = f"http://127.0.0.1:{ports[0]}"
        rows = [("setup", f"{args.sources} RSS sources ({ENTRIES_PER_FEED} entries each) on {len(ports)} loopback "
                          f"hosts, {args.latency * 1000:.0f} ms latency, per_host=4, {args.connections} connections")]
        rows += asyncio.run(bench_feeds(urls, control, sample, args.connections, args.profile))
        rows += asyncio.run(bench_category(category_url, args.category_posts))
    finally:
        server.terminate()
        server.join(5)
    width = max(len(name) for name, _ in rows)
    print(f"{'measurement'.ljust(width)}  result")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
