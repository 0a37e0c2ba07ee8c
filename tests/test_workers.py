"""The workers' process server starts on request, from the standard library alone, before feedbot is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from feedbot.workers import auto_workers, worker_count

ROOT = Path(__file__).resolve().parents[1]

# Lists this process's children by their command line after start_server(n), and what it had imported.
PROBE = """
import json, os, sys, time
from feedbot.workers import start_server
start_server(int(sys.argv[1]))
me = str(os.getpid())
def children():
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            if stat[1] == me:
                out.append(open(f"/proc/{pid}/cmdline").read().replace("\\0", " "))
        except OSError:
            pass
    return out
print(json.dumps({"children": children(), "prepare_imported": "feedbot.prepare" in sys.modules}))
"""


def test_auto_workers_leaves_a_core_to_the_event_loop():
    assert [auto_workers(n) for n in (1, 2, 3, 8, 64)] == [0, 1, 2, 4, 4]
    assert worker_count(3) == 3 and worker_count(0) == 0
    assert worker_count(None) == auto_workers()


def probe(workers: int) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, str(workers)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists child processes through /proc")
def test_start_server_starts_the_forkserver_without_importing_the_prepare_stage_here():
    started = probe(1)
    assert [c for c in started["children"] if "multiprocessing.forkserver" in c], started
    assert started["prepare_imported"] is False  # the server imports it, in its own process
    assert probe(0)["children"] == []  # no workers configured: no server


def test_workers_yield_to_the_loop_only_when_they_and_the_loop_outnumber_the_cores():
    from feedbot.workers import WORKER_NICE, worker_nice

    # (workers, cores): a core each for the loop and every worker → no change; more → the workers yield.
    cases = {(1, 2): 0, (3, 4): 0, (4, 8): 0, (2, 2): WORKER_NICE, (4, 4): WORKER_NICE, (1, 1): WORKER_NICE,
             (0, 1): 0}
    assert {case: worker_nice(*case) for case in cases} == cases
