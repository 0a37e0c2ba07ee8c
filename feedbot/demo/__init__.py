"""`feedbot demo`: the whole pipeline offline, against the bundled sample site on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path

from feedbot.daemon import Daemon
from feedbot.demo.site import SampleSite
from feedbot.settings.config import TOKEN_ENV, Config, parse_config

log = logging.getLogger("feedbot.demo")


def demo_config(site: SampleSite, state_dir: Path, port: int, env: Mapping[str, str]) -> Config:
    """A configuration that polls the sample site every 20 s and prints messages instead of sending them."""
    data = {
        "state_dir": str(state_dir),
        "web": {"listen": f"127.0.0.1:{port}"},
        "sources": [{"id": "sample-zhongguohuanjingbao", "kind": "jekyll", "url": site.category_url,
                     "interval": "20s", "backfill": "all", "outlet": "中国环境报"}],
        "fetch": {"delay": "0.05s"},
    }
    # The demo never talks to Telegram, whatever the environment holds.
    return parse_config(data, None, {k: v for k, v in env.items() if k not in (TOKEN_ENV, "CREDENTIALS_DIRECTORY")})


async def run_demo(state_dir: Path, port: int, env: Mapping[str, str], duration: float | None) -> int:
    """Serve the sample site, run the daemon against it, print the index URL; stop after ``duration`` seconds."""
    async with SampleSite() as site:
        config = demo_config(site, state_dir, port, env)
        daemon = Daemon(config, env)
        print(f"sample news site:  {site.category_url}", flush=True)
        print(f"state:             {state_dir}", flush=True)
        task = asyncio.create_task(daemon.run_forever())
        while daemon.web is None and not task.done():
            await asyncio.sleep(0.05)
        if daemon.web is not None:
            print(f"index page:        http://127.0.0.1:{daemon.web.port}/   (Ctrl-C to stop)", flush=True)
        if duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), duration)
            daemon.request_stop()
        return await task
