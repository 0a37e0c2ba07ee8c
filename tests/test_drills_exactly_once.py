"""Exactly once when the operator errs (issue 12: 6, 7): real `feedbot` processes, the site and Bot API doubles.

The quick versions run in the normal suite; the long drill is `make drill` (-m drill). Figures go to
$FEEDBOT_DRILL_REPORT like the other drills.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from tests.doubles.botapi import BotApiDouble
from tests.doubles.site import SampleSite
from tests.drill_harness import DaemonProcess, add_drill_posts, outcome, record, wait_for_outcome, write_config


async def run_beside(config: Path, workdir: Path, token: str, command: str) -> tuple[int, str]:
    """Another `feedbot <command>` on the same config (a cron `once`, a second `run`); (exit code, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_") and k != "NOTIFY_SOCKET"}
    env["FEEDBOT_TELEGRAM_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feedbot", "--config", str(config), command, env=env, cwd=workdir,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 90)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"`feedbot {command}` beside the service neither ran nor was refused") from None
    return proc.returncode, err.decode(errors="replace")


async def two_processes_drill(workdir: Path, *, waves: int, per_wave: int, attempts_per_wave: int,
                              restart_midway: bool, timeout: float = 180.0) -> tuple[object, dict]:
    """The service runs; posts arrive in waves; between them a cron `once` and a second `run` try the same state dir."""
    began = time.monotonic()
    refusals: list[tuple[str, int, str, int]] = []  # (command, exit code, stderr, holder pid)
    async with SampleSite(posts=[]) as site, BotApiDouble(response_delay=0.05) as double:
        config = write_config(workdir, site, double)
        daemon = DaemonProcess(config, workdir, double.token)
        try:
            add_drill_posts(site, 0, per_wave)
            await daemon.start()
            for wave in range(1, waves):
                add_drill_posts(site, wave * per_wave, per_wave)
                for n in range(attempts_per_wave):
                    command = ("once", "run")[n % 2]
                    code, err = await run_beside(config, workdir, double.token, command)
                    refusals.append((command, code, err, daemon.proc.pid))
                if restart_midway and wave == waves // 2:
                    await daemon.terminate()
                    await daemon.start()
            result = await wait_for_outcome(workdir / "state", site, double, timeout, daemon)
            final_code = await daemon.terminate()
        finally:
            await daemon.ensure_stopped()
        result = outcome(workdir / "state", site, double, feeds=True)
        refused = [r for r in refusals if r[1] != 0 and f"pid {r[3]}" in r[2] and len(r[2].strip().splitlines()) == 1]
        figures = {"posts": result.posts, "waves": waves, "attempts_beside": len(refusals),
                   "refused_naming_pid": len(refused), "restarted_midway": restart_midway,
                   "seconds": round(time.monotonic() - began, 1), **result.figures(), "final_exit_code": final_code,
                   "sent_by_double": len(double.messages),
                   "refusal_example": refusals[0][2].strip() if refusals else None}
    return result, figures, refusals


async def test_a_cron_once_and_a_second_run_beside_the_service_are_refused_and_nothing_goes_twice(tmp_path):
    result, figures, refusals = await two_processes_drill(tmp_path, waves=2, per_wave=6, attempts_per_wave=2,
                                                          restart_midway=False, timeout=90)
    record("quick: `once` + second `run` beside the service, 12 posts", figures)
    for command, code, err, pid in refusals:
        assert code != 0, f"`feedbot {command}` ran beside the service:\n{err}"
        assert f"pid {pid}" in err and "already in use by another feedbot process" in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not result.lost_messages and result.duplicates == 0, figures
    assert result.statuses.keys() <= {"sent"}, result.statuses


@pytest.mark.drill
async def test_drill_cron_once_every_wave_beside_a_restarting_service(tmp_path):
    result, figures, refusals = await two_processes_drill(tmp_path, waves=6, per_wave=10, attempts_per_wave=4,
                                                          restart_midway=True, timeout=300)
    record("two processes on one state dir: 60 posts in 6 waves, 20 `once`/`run` beside, 1 restart", figures)
    assert figures["refused_naming_pid"] == len(refusals) == 20, figures
    assert not result.lost_messages and result.duplicates == 0, figures
    assert result.statuses.keys() <= {"sent"} and figures["final_exit_code"] == 0, figures


async def test_sigterm_while_the_bot_api_answers_slowly_records_the_send_and_sends_nothing_twice(tmp_path):
    # The double answers each send after 15 s; the stop grace for polls is 10 s: the send in flight is waited for.
    async with SampleSite(posts=[]) as site, BotApiDouble(response_delay=15.0) as double:
        add_drill_posts(site, 0, 1)
        daemon = DaemonProcess(write_config(tmp_path, site, double), tmp_path, double.token)
        try:
            await daemon.start()
            deadline = time.monotonic() + 60
            while not any(method == "sendMessage" for method, _ in double.requests):
                assert time.monotonic() < deadline, daemon.log_tail()
                await asyncio.sleep(0.1)
            stopping = time.monotonic()
            code = await daemon.signal(15, timeout=60)
            stop_seconds = time.monotonic() - stopping
            assert code == 0, daemon.log_tail()
            after_stop = outcome(tmp_path / "state", site, double)
            assert after_stop.statuses == {"sent": 1}, (after_stop.statuses, daemon.log_tail())
            double.response_delay = 0
            await daemon.start()
            result = await wait_for_outcome(tmp_path / "state", site, double, 60, daemon)
            await asyncio.sleep(2)  # a resend, if any, would come now
            final = outcome(tmp_path / "state", site, double)
            await daemon.terminate()
        finally:
            await daemon.ensure_stopped()
    record("quick: SIGTERM while the Bot API answers after 15 s (stop grace 10 s), 1 post", {
        "posts": final.posts, "stored": final.stored, "expected_messages": final.expected_messages,
        "lost_messages": len(final.lost_messages), "duplicates": final.duplicates, "outbox": final.statuses,
        "status_after_stop": after_stop.statuses, "exit_code_after_sigterm": code,
        "stop_took_s": round(stop_seconds, 1), "sent_by_double": len(double.messages)})
    assert result.complete and final.duplicates == 0 and len(double.messages) == 1, final
