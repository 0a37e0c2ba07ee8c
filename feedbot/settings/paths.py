"""Is the state directory usable? Checked before anything starts, so a bad one is a one-line config error."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from feedbot.settings.config import Config
from feedbot.settings.values import Where


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor or "/")


def _reason(exc: OSError, existing: Path) -> str:
    if exc.errno == errno.ENOENT:  # the parent exists, yet mkdir says it does not: /proc, /sys and the like
        return f"{existing} does not accept new directories"
    return exc.strerror or type(exc).__name__


def check_state_dir(config: Config, *, create: bool) -> None:
    """Refuse a state_dir that is not a directory feedbot can write; ``create`` makes it (run, once), else
    only proves it could be made (check-config: a directory created and removed again)."""
    error = Where(config.path).error
    state = config.state_dir
    existing = _nearest_existing(state)
    if not existing.is_dir():
        what = "a file" if existing.is_file() else "not a directory"
        where = "is" if existing == state else f"cannot be created: {existing} is"
        raise error("state_dir", f"{state} {where} {what}")
    try:
        if existing != state:
            if create:
                state.mkdir(parents=True, exist_ok=True)
            else:
                os.rmdir(tempfile.mkdtemp(prefix=".feedbot-check-", dir=existing))
                return
        # Write access is what matters (a root-owned 0755 dir passes os.access for root only): prove it.
        fd, probe = tempfile.mkstemp(prefix=".feedbot-check-", dir=state)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        verb = "cannot create" if existing != state else "cannot write in"
        raise error("state_dir", f"{verb} {state}: {_reason(exc, existing)}") from None
    feeds = config.feeds_dir
    if feeds.exists() and not feeds.is_dir():
        raise error("state_dir", f"{feeds} (where the feeds are written) is not a directory")

