"""The prepare stage in worker processes: the same outcomes as the thread path, and a dead worker survived."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from feedbot.model import Entry
from feedbot.prepare import Preparer, RemoteTraceback, WorkerDied, prepare_all
from feedbot.settings.config import parse_config

NOW = datetime(2024, 6, 3, 4, tzinfo=UTC)
MARKET = ("全国碳市场第二个履约周期配额分配方案印发，重点排放单位须按时完成配额清缴。"
          "生态环境部表示，将加强碳排放数据质量监管，严厉打击数据造假，保障碳市场平稳运行。")
ADAPT = "《国家适应气候变化战略2035》提出，到2035年，气候适应型社会基本建成，极端天气风险防控能力显著提升。"


def entry(key: str, body: str, **extra) -> Entry:
    return Entry(source_id="src", key=key, url=f"http://news.test/{key}", title=f"条目{key}",
                 body_html=f"<p>{body}</p>", **extra)


@pytest.fixture(scope="module")
def topics():
    return parse_config({}, None, {}).topics


def batch(n: int, repeat: int = 1) -> list[Entry]:
    return [entry(f"k{i}", (MARKET if i % 2 else ADAPT) * repeat, published_at=NOW) for i in range(n)]


async def test_workers_give_what_the_thread_gives_including_an_items_failure(topics):
    entries = batch(6)
    # Bytes where the text of the body belongs: past the edge's checks (a poll cleans its entries first), normalize
    # is where it fails.
    entries.insert(3, Entry(source_id="src", key="broken", url="http://news.test/broken", title="条目broken",
                            body_html=b"<p>bytes</p>"))
    expected = prepare_all(entries, topics, NOW, cleaned=True)
    preparer = Preparer(topics, workers=2)
    try:
        got = await preparer.run(entries, NOW)
    finally:
        preparer.close()
    assert [o for o in got if not isinstance(o, Exception)] == [o for o in expected if not isinstance(o, Exception)]
    topics_found = {t for o in got if not isinstance(o, Exception) for t in o[1].topics}
    assert len(got) == 7 and {"carbon-market", "adaptation-2035"} <= topics_found
    failed = got[3]
    assert isinstance(failed, TypeError) and str(failed) == str(expected[3])
    # The worker's traceback comes along as the cause, so the quarantine log shows where it failed.
    assert isinstance(failed.__cause__, RemoteTraceback) and "normalize" in str(failed.__cause__)


async def test_zero_workers_runs_in_a_thread_and_starts_no_process(topics):
    preparer = Preparer(topics, workers=0)
    got = await preparer.run(batch(2), NOW)
    assert preparer._pool is None and len(got) == 2 and all(not isinstance(o, Exception) for o in got)


async def test_a_killed_worker_costs_a_retry_not_the_items(topics, caplog):
    """SIGKILL the worker once it is working on the batch, twice: the batch is retried whole, then item by item."""
    entries = batch(400, repeat=60)  # about a second of work per attempt, so the kills land mid-batch
    expected = prepare_all(entries, topics, NOW)
    preparer = Preparer(topics, workers=1)
    killed: list[int] = []
    seen: dict[int, int] = {}
    stop = threading.Event()

    def busy(pid: int) -> bool:  # on the batch: its CPU time grew by two clock ticks since we first saw it
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return False
        ticks = int(fields[11]) + int(fields[12])
        return ticks - seen.setdefault(pid, ticks) >= 2

    def killer() -> None:
        while len(killed) < 2 and not stop.is_set():
            pool = preparer._pool
            pids = [p.pid for p in (pool._processes or {}).values()] if pool is not None else []
            for pid in pids:
                if pid not in killed and busy(pid):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.002)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        got = await preparer.run(entries, NOW)
    finally:
        stop.set()
        thread.join()
        preparer.close()
    assert len(killed) == 2
    assert "(attempt 1); retrying in a fresh worker" in caplog.text
    assert "(attempt 2); retrying them one at a time" in caplog.text
    assert got == expected  # nothing lost, nothing quarantined: the kills were not the items' fault


async def test_items_that_keep_killing_workers_are_given_up_on_after_three_deaths(topics, monkeypatch):
    """The item-by-item pass stops after MAX_DEATHS_PER_BATCH deaths: the rest become WorkerDied outcomes."""
    preparer = Preparer(topics, workers=1)
    deaths = []

    async def dying_submit(entries, now):  # every submission breaks the pool, as a poison item would
        from concurrent.futures.process import BrokenProcessPool
        deaths.append(len(entries))
        raise BrokenProcessPool("worker killed")

    monkeypatch.setattr(preparer, "_submit", dying_submit)
    got = await preparer.run(batch(5), NOW)
    assert deaths == [5, 5, 1, 1, 1]  # the whole batch twice, then one item at a time until three died
    assert len(got) == 5 and all(isinstance(o, WorkerDied) for o in got)


async def test_close_stops_the_worker_processes(topics):
    preparer = Preparer(topics, workers=1)
    await preparer.run(batch(1), NOW)
    [pid] = [p.pid for p in preparer._pool._processes.values()]
    preparer.close()
    with pytest.raises(ProcessLookupError):
        for _ in range(100):  # shutdown(wait=True) joined it; give /proc a moment regardless
            os.kill(pid, 0)
            time.sleep(0.05)


def test_the_workers_key_is_validated(tmp_path):
    assert parse_config({}, None, {}).pipeline.workers is None
    assert parse_config({"pipeline": {"workers": 0}}, None, {}).pipeline.workers == 0
    assert parse_config({"pipeline": {"workers": "auto"}}, None, {}).as_dict()["pipeline"] == {"workers": "auto"}
    from feedbot.errors import ConfigError
    with pytest.raises(ConfigError, match=r"pipeline\.workers.*at most 16"):
        parse_config({"pipeline": {"workers": 17}}, None, {})
    with pytest.raises(ConfigError, match=r'pipeline\.workers.*"auto"'):
        parse_config({"pipeline": {"workers": "many"}}, None, {})


async def test_workers_that_cannot_start_leave_the_work_to_a_thread(topics, caplog):
    unpicklable = MappingProxyType(dict(topics))  # cannot be sent to a worker process: its start fails
    preparer = Preparer(unpicklable, workers=1)
    entries = batch(3)
    try:
        got = await preparer.run(entries, NOW)
    finally:
        preparer.close()
    assert "cannot start prepare worker processes (TypeError" in caplog.text
    assert preparer.workers == 0 and got == prepare_all(entries, topics, NOW)


DAEMON = """
import asyncio, sys
from multiprocessing import forkserver
from feedbot.prepare import Preparer
from feedbot.settings.config import parse_config
from tests.test_prepare import NOW, batch

async def main():
    preparer = Preparer(parse_config({}, None, {}).topics, workers=1)
    await preparer.run(batch(2), NOW)
    [worker] = preparer._pool._processes
    print(worker, forkserver._forkserver._forkserver_pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_a_daemon_killed_with_sigkill_leaves_no_worker_or_forkserver_behind(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        worker, server = map(int, daemon.stdout.readline().split())
    finally:
        daemon.kill()
        daemon.wait()
    deadline = time.monotonic() + 10
    alive = {worker, server}
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if Path(f"/proc/{pid}").exists()
                 and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"}
        time.sleep(0.05)
    assert not alive, f"left running after the daemon's SIGKILL: {alive} (worker {worker}, forkserver {server})"


async def test_warm_up_starts_the_workers_before_the_first_batch(topics):
    preparer = Preparer(topics, workers=1)
    try:
        preparer.warm_up()
        await asyncio.shield(preparer._starting)
        pool = await preparer._ready()
        assert len(pool._processes) == 1  # spawned by the warm-up, before any batch
        got = await preparer.run(batch(2), NOW)
        assert preparer._pool is pool and got == prepare_all(batch(2), topics, NOW)
    finally:
        preparer.close()


async def test_a_preparer_closed_while_its_workers_start_stops_them(topics):
    preparer = Preparer(topics, workers=1)
    preparer.warm_up()
    starting = preparer._starting
    preparer.close()
    with pytest.raises(RuntimeError, match="closed"):  # the start saw the close and shut its pool down
        await starting
    assert preparer._pool is None


async def test_once_on_a_new_state_dir_starts_the_workers_before_it_creates_the_database(tmp_path, monkeypatch):
    from feedbot.daemon import Daemon

    config = parse_config({"state_dir": str(tmp_path / "state"), "pipeline": {"workers": 1},
                           "web": {"enabled": False},
                           # a closed loopback port: the poll fails at once, the run ends
                           "sources": [{"id": "s", "kind": "feed", "url": "http://127.0.0.1:9/feed.xml"}]},
                          None, {})
    seen: list[bool] = []
    warm_up = Preparer.warm_up

    def recording(self):  # what the warm-up found on disk: the database not yet created
        seen.append(config.db_path.exists())
        warm_up(self)

    monkeypatch.setattr(Preparer, "warm_up", recording)
    assert await Daemon(config, {}).run_once() == 1  # every source failed
    assert seen and seen[0] is False


@pytest.mark.parametrize("extra", [0, 1], ids=["a core each", "more workers than spare cores"])
async def test_workers_run_below_the_loop_when_they_outnumber_the_spare_cores(topics, extra):
    from feedbot.workers import WORKER_NICE, usable_cpus

    workers = max(1, usable_cpus() - 1) + extra
    if extra == 0 and usable_cpus() < 2:
        pytest.skip("one core: every worker shares the loop's core")
    preparer = Preparer(topics, workers=workers)
    try:
        assert len(await preparer.run(batch(2), NOW)) == 2
        pids = list(preparer._pool._processes)  # the pool's worker processes
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        niceness = {os.getpriority(os.PRIO_PROCESS, pid) - mine for pid in pids}
    finally:
        preparer.close()
    assert len(pids) == workers
    assert niceness == ({WORKER_NICE} if extra else {0})
