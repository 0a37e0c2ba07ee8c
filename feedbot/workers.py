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


# How much lower a worker's priority is than the loop's, when the workers and the loop outnumber the cores.
WORKER_NICE = 10


def usable_cpus() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def auto_workers(cpus: int | None = None) -> int:
    """Worker processes for ``workers = "auto"``: one per core beyond the event loop's, at most four."""
    cpus = cpus if cpus is not None else usable_cpus()
    return max(0, min(cpus - 1, MAX_AUTO_WORKERS))


def worker_nice(workers: int, cpus: int | None = None) -> int:
    """The niceness workers take: WORKER_NICE when they and the loop outnumber the cores, else 0.

    The loop fetches, stores and answers the web and the watchdog; the workers' batches can wait. With a
    core each nothing competes; with more workers than spare cores, the loop keeps its core and the
    workers share what is left (a first cycle with 2 workers on 2 cores: 2.29 → 2.17 s, BENCHMARKS.md).
    """
    cpus = cpus if cpus is not None else usable_cpus()
    return WORKER_NICE if workers > 0 and workers + 1 > cpus else 0


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
