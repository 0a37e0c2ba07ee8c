"""Which targets want which channel: Telegram chats with a token, else the console."""

from __future__ import annotations

from feedbot.model import Target
from feedbot.settings.config import Config

TELEGRAM = "telegram"
CONSOLE = "console"


def normalize_chat(chat: str) -> str:
    """A chat as the outbox keys it: a target is the chat, not its spelling (Telegram usernames ignore case)."""
    chat = chat.strip()
    return chat.lower() if chat.startswith("@") else chat


def find_targets(targets: dict[str, list[Target]], text: str) -> list[Target]:
    """The configured targets an operator means by ``text``: a topic id, "@chan", a chat id or a stored key."""
    text = text.strip()
    if text in targets:
        return list(targets[text])
    kind, sep, rest = text.partition(":")
    address = rest if sep and kind.isalpha() else text
    address, _, thread = address.partition("#")
    address = normalize_chat(address)
    return [t for ts in targets.values() for t in ts
            if t.address == address and (not thread or str(t.thread) == thread) and (not sep or t.kind == kind)]


def telegram_target(config: Config, topic: str) -> Target:
    """The chat (and forum topic) of a channel, as the outbox keys it."""
    return Target(TELEGRAM, normalize_chat(config.chats[topic]), config.channel(topic).thread)


def targets_for(config: Config) -> dict[str, list[Target]]:
    """topic → targets of one message per article: the topic's Telegram chat (and forum topic) with a token
    unless the channel only wants digests, else the console for every topic."""
    if config.telegram.token is not None:
        return {topic: [telegram_target(config, topic)] for topic in config.chats
                if topic in config.topics and config.channel(topic).instant}
    return {topic: [Target(CONSOLE, topic)] for topic in config.topics}


def digest_targets_for(config: Config) -> dict[str, list[Target]]:
    """topic → Telegram targets that get the channel's digest (mode "digest" or "both"; a token needed)."""
    if config.telegram.token is None:
        return {}
    return {topic: [telegram_target(config, topic)] for topic in config.chats
            if topic in config.topics and config.channel(topic).digests}
