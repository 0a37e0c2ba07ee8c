"""The console publisher: without a bot token, print what would be sent (one block per message)."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from feedbot.model import StoredArticle, Target
from feedbot.outbox import CONSOLE, DrainStats, Outbox, Pacing, Sent
from feedbot.publish.channels import channels
from feedbot.publish.format import format_article
from feedbot.settings.config import Config
from feedbot.store import Store

RULE = "─" * 40


class ConsoleSender:
    """Writes the plain-text version of each message to a stream."""

    def __init__(self, config: Config, stream: TextIO | None = None):
        self.config = config
        self.stream = stream
        self.outlets = {s.id: s.outlet for s in config.sources if s.outlet}
        self.channels = {c.id: c for c in channels(config.topics, config.chats)}
        self.count = 0

    def _block(self, header: str, article: StoredArticle, topic: str) -> str:
        hashtag = self.channels[topic].hashtag if topic in self.channels else topic
        message = format_article(article, topic, hashtag, outlet=self.outlets.get(article.source_id))
        return f"{RULE}\n{header}\n{message.plain}\n"

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(text)
        stream.flush()

    async def send(self, target: Target, article: StoredArticle, topic: str) -> Sent:
        """Print one message."""
        self.count += 1
        chat = self.config.chats.get(topic) or f"#{target.address}"
        self._write(self._block(f"[would send to {chat}]", article, topic))
        return Sent(message_id=self.count)

    async def edit(self, target: Target, message_id: int, article: StoredArticle, topic: str) -> Sent:
        """Print the new version of an edited message."""
        chat = self.config.chats.get(topic) or f"#{target.address}"
        self._write(self._block(f"[would edit message {message_id} in {chat}]", article, topic))
        return Sent(message_id=message_id)


class ConsolePublisher:
    """Same interface as TelegramPublisher, for ``console:<topic>`` targets."""

    def __init__(self, config: Config, store: Store, *, stream: TextIO | None = None):
        self.sender = ConsoleSender(config, stream)
        self.outbox = Outbox.for_kind(config, store, self.sender, CONSOLE, pacing=Pacing.unlimited())

    async def start(self) -> str:
        """Nothing to check."""
        return "console"

    async def drain(
        self, stop: asyncio.Event | None = None, budget_seconds: float | None = None
    ) -> DrainStats:
        """Print pending messages (see Outbox.drain)."""
        return await self.outbox.drain(stop, budget_seconds)

    async def run_commands(self, stop: asyncio.Event) -> None:
        """No chat to answer in: wait for stop."""
        await stop.wait()

    async def close(self) -> None:
        """Nothing to close."""
