"""One writer per state directory: an flock on `<state_dir>/feedbot.lock`, held for the process lifetime.

Two processes on one state dir (a cron `once` next to the service, two `run`s) would both send every
message; the second one is refused with the holder's pid. flock is released by the kernel when the
process dies, so a SIGKILL never leaves a stale lock behind (the pid written in the file is only a
hint for the message).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from feedbot.errors import StateError, StateLocked

LOCK_NAME = "feedbot.lock"


class StateDirLock:
    """An exclusive, non-blocking lock on a state directory."""

    def __init__(self, state_dir: Path | str):
        self.path = Path(state_dir) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise StateLocked naming the holder's pid (StateError when the dir is unusable)."""
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot open the lock file: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            holder = f"pid {pid}" if pid else "another process"
            raise StateLocked(
                f"{self.path.parent}: already in use by another feedbot process ({holder}); stop it first "
                "(is the service running? use `systemctl stop feedbot`, or point this command at another state_dir)",
                pid=pid) from None
        except OSError as exc:
            os.close(fd)
            raise StateError(f"{self.path}: cannot lock: {exc.strerror or exc}") from exc
        with contextlib.suppress(OSError):  # the pid is a hint for the refusal message only
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (closing the descriptor releases the flock)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    return None
