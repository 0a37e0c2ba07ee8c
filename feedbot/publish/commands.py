"""The bot's private-chat commands: /start, /help, /topics, /latest, answered by long polling."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from telegram import Bot, BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import InvalidToken, TelegramError

from feedbot.clock import SHANGHAI, utcnow
from feedbot.errors import TelegramUnauthorized
from feedbot.publish.channels import ALL, Channel
from feedbot.publish.digests import DigestPlanner, current_period
from feedbot.publish.format import TELEGRAM_LIMIT, trim_excerpt, visible_units
from feedbot.store import Store

log = logging.getLogger("feedbot.publish.telegram")

POLL_TIMEOUT = 30  # seconds a getUpdates long poll waits on the server
LATEST_COUNT = 5
COMMANDS = (
    ("start", "关于本机器人"),
    ("help", "用法"),
    ("topics", "频道列表与订阅链接"),
    ("latest", "某个频道的最新 5 篇：/latest <频道>"),
    ("digest", "某个频道本期（至今）的摘要：/digest <频道>"),
)
LATEST_TITLE = 150  # characters of a title in /latest: five of them always fit one message


class CommandBot:
    """Answers commands in private chats from the store and the channel catalogue."""

    def __init__(self, bot: Bot, store: Store, catalogue: Sequence[Channel], base_url: str, *,
                 clean: Callable[[str], str], digests: DigestPlanner | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.bot = bot
        self.digests = digests  # renders /digest (the schedules of every channel)
        self.clock = clock
        self.store = store
        self.channels = [c for c in catalogue if c.id != ALL]
        self.base_url = base_url
        self._clean = clean  # redacts the token from library messages

    async def run(self, stop: asyncio.Event, *, poll_timeout: int = POLL_TIMEOUT) -> None:
        """Answer /start, /help, /topics, /latest in private chats (long polling) until ``stop`` is set."""
        with contextlib.suppress(TelegramError):
            await self.bot.delete_webhook()  # getUpdates answers 409 while a webhook is set
            await self.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
        offset: int | None = None
        failures = 0
        while not stop.is_set():
            poll = asyncio.create_task(
                self.bot.get_updates(offset=offset, timeout=poll_timeout, allowed_updates=["message"])
            )
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({poll, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if poll not in done:
                poll.cancel()
                with contextlib.suppress(BaseException):
                    await poll
                break
            try:
                updates = poll.result()
            except InvalidToken:
                raise TelegramUnauthorized("Telegram rejected the bot token (401 Unauthorized)") from None
            except TelegramError as exc:
                failures += 1
                log.warning("telegram: polling for commands failed: %s", self._clean(str(exc)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(60.0, 2.0**failures))
                continue
            failures = 0
            for update in updates:
                offset = update.update_id + 1
                try:
                    await self.answer(update)
                except TelegramError as exc:
                    log.warning("telegram: could not answer a command: %s", self._clean(str(exc)))
        if offset is not None:  # confirm what was answered, so a restart doesn't answer it again
            with contextlib.suppress(TelegramError):
                await self.bot.get_updates(offset=offset, timeout=0)

    async def answer(self, update: Update) -> bool:
        """Reply to one command in a private chat; other updates are ignored. True when it replied."""
        message = update.message
        if message is None or message.chat.type != "private" or not message.text:
            return False
        words = message.text.split()
        if not words[0].startswith("/"):
            return False
        command = words[0][1:].split("@")[0].lower()
        replies = self.digest_reply(words[1:]) if command == "digest" else [self.command_reply(command, words[1:])]
        for reply in replies:
            await self.bot.send_message(
                chat_id=message.chat.id,
                text=reply,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        return True

    def _topic(self, args: list[str]) -> str | None:
        wanted = (args[0] if args else "").lstrip("#").lower()
        return next((c.id for c in self.channels
                     if wanted in (c.id.lower(), c.name.lower(), c.hashtag.lstrip("#").lower())), None)

    def digest_reply(self, args: list[str]) -> list[str]:
        """/digest <channel>: the current period so far, as the digest would list it (one or more messages)."""
        esc = html.escape
        topic = self._topic(args)
        if topic is None or self.digests is None:
            names = ", ".join(f"<code>{esc(c.id)}</code>" for c in self.channels)
            return [f"用法：/digest &lt;频道&gt;，频道：{names}"]
        period = current_period(self.digests.schedules[topic], self.digests.tz, self.clock())
        _, messages = self.digests.render(topic, period)
        if not messages:
            name = next(c.name for c in self.channels if c.id == topic)
            return [f"<b>{esc(name)}</b>：本期（{esc(period.label)}）还没有文章。"]
        return [m.html for m in messages]

    def command_reply(self, command: str, args: list[str]) -> str:
        """The HTML answer to one command."""
        esc = html.escape
        if command == "topics":
            lines = ["<b>频道</b>"]
            for item in self.channels:
                feed = item.feed_url(self.base_url, "atom")
                parts = [f"<b>{esc(item.name)}</b> (<code>{esc(item.id)}</code>)"]
                if item.telegram_url:
                    parts.append(f'Telegram: <a href="{esc(item.telegram_url)}">{esc(item.chat or "")}</a>')
                parts.append(f'Atom: <a href="{esc(feed)}">{esc(feed)}</a>')
                lines.append("\n".join(parts))
            return "\n\n".join(lines)
        if command == "latest":
            return self._latest(args)
        names = ", ".join(f"<code>{esc(c.id)}</code>" for c in self.channels)
        intro = "本机器人把中国气候政策新闻按频道整理，发到 Telegram 频道和 RSS/Atom 订阅源。\n\n"
        return (
            (intro if command == "start" else "")
            + "/topics — 频道列表与订阅链接\n/latest &lt;频道&gt; — 该频道最新 5 篇\n"
            + "/digest &lt;频道&gt; — 该频道本期至今的摘要\n\n频道："
            + names
        )

    def _latest(self, args: list[str]) -> str:
        esc = html.escape
        topic = self._topic(args)
        if topic is None:
            names = ", ".join(f"<code>{esc(c.id)}</code>" for c in self.channels)
            return f"用法：/latest &lt;频道&gt;，频道：{names}"
        articles = self.store.articles(topic, limit=LATEST_COUNT)
        name = next(c.name for c in self.channels if c.id == topic)
        if not articles:
            return f"<b>{esc(name)}</b>：还没有文章。"
        lines = [f"<b>{esc(name)}</b> 最新 {len(articles)} 篇："]
        for number, article in enumerate(articles, 1):
            moment = article.published_at or article.first_seen_at
            when = moment.astimezone(SHANGHAI).strftime("%m-%d") if moment else ""
            title = esc(trim_excerpt(" ".join(article.title.split()), LATEST_TITLE) or "(无标题)", quote=False)
            link = f'<a href="{esc(article.url, quote=True)}">{title}</a>' if article.url else title
            line = f"{number}. {link} {when}".rstrip()
            if visible_units("\n".join([*lines, line])) > TELEGRAM_LIMIT:  # one message, always
                break
            lines.append(line)
        return "\n".join(lines)
