"""Drain benchmark: N messages over 4 chats against the Bot API double enforcing Telegram's flood limits.

Reports the makespan against the theoretical minimum under the double's limits (a sliding window of
20 per minute per chat, 30 per second overall; both windows scaled by --scale) and the number of 429s.
Targets: makespan within 10 % of the minimum, zero 429s.

    .venv/bin/python benchmarks/bench_drain.py [--messages 200] [--chats 4] [--scale 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedbot.outbox import Pacing  # noqa: E402
from feedbot.publish.telegram import TelegramPublisher  # noqa: E402
from feedbot.store import Store  # noqa: E402
from tests.doubles.botapi import BotApiDouble, Limits  # noqa: E402
from tests.telegram_helpers import CHATS, TOPICS, make_article, save, telegram_config  # noqa: E402


def theoretical_minimum(per_chat_messages: int, limits: Limits, chats: int) -> float:
    """Shortest first-to-last span the server's sliding windows allow (zero latency, perfect bursts)."""
    per_chat = (math.ceil(per_chat_messages / limits.per_chat) - 1) * limits.per_chat_window
    overall = (math.ceil(per_chat_messages * chats / limits.overall) - 1) * limits.overall_window
    return max(per_chat, overall)


async def bench(messages: int, chats: int, scale: float, min_gap: float) -> dict:
    topics = list(TOPICS)[:chats]
    limits = Limits().scaled(scale)
    with tempfile.TemporaryDirectory() as tmp:
        async with BotApiDouble(limits=limits) as api:
            config = telegram_config(Path(tmp), api, max_backlog=messages, chats={t: CHATS[t] for t in topics})
            store = Store(config.db_path)
            for n in range(messages):
                save(store, config, make_article(n), [topics[n % chats]])
            pub = TelegramPublisher(config, store, pacing=Pacing(min_gap=min_gap).scaled(scale))
            await pub.start()
            started = time.monotonic()
            stats = await pub.drain()
            wall = time.monotonic() - started
            await pub.close()
            store.close()
            arrivals = sorted(m.at for m in api.messages)
    per_chat = math.ceil(messages / chats)
    minimum = theoretical_minimum(per_chat, limits, chats)
    makespan = arrivals[-1] - arrivals[0]
    return {
        "messages": messages,
        "chats": chats,
        "scale": scale,
        "min_gap": min_gap,
        "delivered": len(arrivals),
        "makespan_s": round(makespan, 3),
        "theoretical_min_s": round(minimum, 3),
        "over_min_pct": round(100 * (makespan / minimum - 1), 1) if minimum else None,
        "drain_wall_s": round(wall, 3),
        "http_429": api.counts["429"],
        "stats_429": stats.rate_limited,
        "real_world_makespan_min": round(makespan / scale / 60, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--chats", type=int, default=4)
    parser.add_argument("--scale", type=float, default=0.05, help="multiply every flood-control window")
    parser.add_argument(
        "--min-gap",
        type=float,
        default=Pacing().min_gap,
        help="our own spacing between two messages to one chat, seconds before scaling",
    )
    args = parser.parse_args()
    result = asyncio.run(bench(args.messages, args.chats, args.scale, args.min_gap))
    print(
        f"drain: {result['delivered']}/{result['messages']} messages over {result['chats']} chats "
        f"(min gap {result['min_gap']} s), "
        f"makespan {result['makespan_s']} s vs theoretical minimum {result['theoretical_min_s']} s "
        f"(+{result['over_min_pct']} %, target ≤ 10 %), 429s: {result['http_429']} (target 0); "
        f"≈ {result['real_world_makespan_min']} min at real Telegram limits"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
