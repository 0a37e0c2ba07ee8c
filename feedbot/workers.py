"""The prepare stage's process server: startable from the command line before the rest of feedbot is imported.

Worker processes fork from a forkserver that imported the classifier once. Starting that server costs a fresh
interpreter's imports (~0.15 s); begun first thing, they run on another core while the daemon itself still
imports and opens its database, and the first batch finds its workers ready (BENCHMARKS.md, "cycle-notes").
Only the standard library is imported here, so starting early costs the caller nothing.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import forkserver

MAX_AUTO_WORKERS = 4
# What the server imports once, before any worker forks from it.
PRELOAD = ("feedbot.prepare", "feedbot.classify.scoring", "feedbot.sources.normalize")


def auto_workers(cpus: int | None = None) -> int:
    """Worker processes for ``workers = "auto"``: one per core beyond the event loop's, at most four."""
    cpus = cpus if cpus is not None else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return max(0, min(cpus - 1, MAX_AUTO_WORKERS))


def worker_count(configured: int | None) -> int:
    """The configured number of workers, or ``auto_workers()`` for "auto" (None)."""
    return auto_workers() if configured is None else configured


def context() -> multiprocessing.context.ForkServerContext:
    """The forkserver context, its server preloading the prepare stage."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def start_server(workers: int) -> None:
    """Start the server now when there will be workers; a failure here is left to the pool's start, which reports it."""
    if workers <= 0:
        return
    try:
        context()  # sets the preload list the server is started with
        forkserver.ensure_running()
    except Exception:  # reported (and the thread path taken) where the pool starts
        pass
