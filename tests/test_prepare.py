"""The prepare stage in worker processes: the same outcomes as the thread path, and a dead worker survived."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime

import pytest

from feedbot.model import Entry
from feedbot.prepare import Preparer, RemoteTraceback, WorkerDied, auto_workers, prepare_all
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
    entries.insert(3, entry("broken", MARKET, published_at="2024-06-01"))  # a string where a datetime belongs
    expected = prepare_all(entries, topics, NOW)
    preparer = Preparer(topics, workers=2)
    try:
        got = await preparer.run(entries, NOW)
    finally:
        preparer.close()
    assert [o for o in got if not isinstance(o, Exception)] == [o for o in expected if not isinstance(o, Exception)]
    topics_found = {t for o in got if not isinstance(o, Exception) for t in o[1].topics}
    assert len(got) == 7 and {"carbon-market", "adaptation-2035"} <= topics_found
    failed = got[3]
    assert isinstance(failed, AttributeError) and str(failed) == str(expected[3])
    # The worker's traceback comes along as the cause, so the quarantine log shows where it failed.
    assert isinstance(failed.__cause__, RemoteTraceback) and "normalize" in str(failed.__cause__)


async def test_zero_workers_runs_in_a_thread_and_starts_no_process(topics):
    preparer = Preparer(topics, workers=0)
    got = await preparer.run(batch(2), NOW)
    assert preparer._pool is None and len(got) == 2 and all(not isinstance(o, Exception) for o in got)


async def test_a_killed_worker_costs_a_retry_not_the_items(topics, caplog):
    """SIGKILL each worker that starts on the batch, twice: the batch is retried whole, then item by item."""
    entries = batch(120, repeat=60)  # a few seconds of work, so the kills land mid-batch
    expected = prepare_all(entries, topics, NOW)
    preparer = Preparer(topics, workers=1)
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        while len(killed) < 2 and not stop.is_set():
            pool = preparer._pool
            pids = [p.pid for p in (pool._processes or {}).values()] if pool is not None else []
            fresh = [pid for pid in pids if pid not in killed]
            if fresh:
                time.sleep(0.3)  # let it start on the batch
                os.kill(fresh[0], signal.SIGKILL)
                killed.append(fresh[0])
            time.sleep(0.01)

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


def test_auto_workers_leaves_a_core_to_the_event_loop():
    assert [auto_workers(n) for n in (1, 2, 3, 8, 64)] == [0, 1, 2, 4, 4]


def test_the_workers_key_is_validated(tmp_path):
    assert parse_config({}, None, {}).pipeline.workers is None
    assert parse_config({"pipeline": {"workers": 0}}, None, {}).pipeline.workers == 0
    assert parse_config({"pipeline": {"workers": "auto"}}, None, {}).as_dict()["pipeline"] == {"workers": "auto"}
    from feedbot.errors import ConfigError
    with pytest.raises(ConfigError, match=r"pipeline\.workers.*at most 16"):
        parse_config({"pipeline": {"workers": 17}}, None, {})
    with pytest.raises(ConfigError, match=r'pipeline\.workers.*"auto"'):
        parse_config({"pipeline": {"workers": "many"}}, None, {})
