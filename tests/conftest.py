"""Shared test helpers: system programs, config files, a fresh state directory."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def require_program(name: str, why: str) -> str:
    """Path of a system program; skip with the reason where it is missing (fail in CI, which installs it)."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed ({why}); `apt-get install` it, as .ci/run does"
    if os.environ.get("FEEDBOT_REQUIRE_SYSTEM_TOOLS"):
        pytest.fail(message)
    pytest.skip(message)


def require_shared(relative: str) -> Path:
    """A file of ../shared (beside the checkout in CI); skip with the reason in a user's clone."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared sits beside the checkout only in CI and dev sessions)")
    return path


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a TOML config into tmp_path and return its path."""

    def write(body: str, name: str = "feedbot.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body), encoding="utf-8")
        return path

    return write


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """An environment without feedbot's variables, HOME in tmp_path."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FEEDBOT_") and k not in ("CREDENTIALS_DIRECTORY", "JOURNAL_STREAM", "NOTIFY_SOCKET")}
    env["HOME"] = str(tmp_path)
    return env


@pytest.fixture
async def site():
    """The loopback copy of the Jekyll news site, with the fixture posts."""
    from tests.doubles.site import SampleSite

    async with SampleSite() as running:
        yield running


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests keep files worth looking at afterwards (screenshots)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def store(tmp_path: Path):
    """A fresh, migrated state database in tmp_path."""
    from feedbot.store import Store

    opened = Store(tmp_path / "feedbot.db")
    yield opened
    opened.close()
