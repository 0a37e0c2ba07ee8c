"""Which targets want which channel: Telegram chats with a token, else the console."""

from __future__ import annotations

from feedbot.model import Target
from feedbot.settings.config import Config

TELEGRAM = "telegram"
CONSOLE = "console"


def targets_for(config: Config) -> dict[str, list[Target]]:
    """topic → targets: the topic's Telegram chat with a token, else the console for every topic."""
    if config.telegram.token is not None:
        return {topic: [Target(TELEGRAM, chat)] for topic, chat in config.chats.items() if topic in config.topics}
    return {topic: [Target(CONSOLE, topic)] for topic in config.topics}
