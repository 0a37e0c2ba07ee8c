"""The Telegram publisher: one Bot for the process, the outbox drained through it, private-chat commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from feedbot.clock import utcnow
from feedbot.errors import (
    DeliveryRejected,
    FloodWait,
    TargetBlocked,
    TelegramUnauthorized,
    TransientPublishError,
)
from feedbot.model import DigestPart, StoredArticle, Target
from feedbot.outbox import TELEGRAM, DrainStats, Outbox, Pacing, Sent
from feedbot.publish.channels import channels
from feedbot.publish.commands import POLL_TIMEOUT, CommandBot
from feedbot.publish.digests import DigestPlanner
from feedbot.publish.format import TELEGRAM_LIMIT, Message, format_article
from feedbot.settings.config import Config
from feedbot.settings.secrets import redact
from feedbot.store import Store

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 20.0
# Loggers that would print Bot API URLs (token inside) at DEBUG/INFO.
URL_LOGGERS = ("httpx", "httpcore", "telegram")
SHORTER_LIMITS = (3000, 2000, 1000)  # when Telegram still says "message is too long"


class _TokenFilter(logging.Filter):
    """Removes the token from records of libraries that log request URLs."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message or "/bot" in message:
            record.msg, record.args = redact(message, [self.token]), None
        return True


def protect_token(token: str) -> None:
    """Keep URL-logging libraries at WARNING and scrub the token from whatever they still log."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING or logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    for name in ("httpx", "telegram.Bot", "telegram.ext.Updater", "telegram.ext.Application"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _TokenFilter) and f.token == token for f in logger.filters):
            logger.addFilter(_TokenFilter(token))


def build_bot(config: Config, *, timeout: float = REQUEST_TIMEOUT) -> Bot:
    """The process's one Bot at ``telegram.api_base_url`` (requests go to <root>/bot<token>/<method>)."""
    if config.telegram.token is None:
        raise TelegramUnauthorized("no bot token: set FEEDBOT_TELEGRAM_TOKEN or the systemd credential")
    token = config.telegram.token.reveal()
    protect_token(token)
    # PTB 22 warns (inside RetryAfter's constructor) that retry_after becomes a timedelta; we handle both.
    warnings.filterwarnings("ignore", message=".*retry_after.*", category=PTBDeprecationWarning)
    request = HTTPXRequest(
        connection_pool_size=8,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        pool_timeout=timeout,
    )
    updates_request = HTTPXRequest(
        connection_pool_size=1,
        connect_timeout=timeout,
        read_timeout=timeout + POLL_TIMEOUT,
        write_timeout=timeout,
        pool_timeout=timeout,
    )
    return Bot(
        token,
        base_url=f"{config.telegram.api_base_url}/bot",
        request=request,
        get_updates_request=updates_request,
    )


def _numeric(address: str) -> bool:
    return address.lstrip("-").isdigit()


def _retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int becomes a timedelta one day
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _BadRequest(DeliveryRejected):
    """A 400 the sender may still fix (plain text, shorter)."""


def preview_options(setting: str | bool) -> LinkPreviewOptions:
    """``link_preview`` as Bot API LinkPreviewOptions: off, small or large, below or above the text."""
    if isinstance(setting, bool):  # the old `link_preview = true | false`
        setting = "large" if setting else "off"
    if setting == "off":
        return LinkPreviewOptions(is_disabled=True)
    size, _, where = setting.partition("-")
    return LinkPreviewOptions(is_disabled=False, prefer_small_media=size == "small",
                              prefer_large_media=size == "large", show_above_text=where == "above")


def in_window(window: tuple[int, int] | None, moment: datetime, tz: ZoneInfo) -> bool:
    """Whether ``moment`` falls in a local [start, end) window of minutes (which may wrap midnight)."""
    if window is None:
        return False
    local = moment.astimezone(tz)
    minute = local.hour * 60 + local.minute
    start, end = window
    return start <= minute < end if start < end else minute >= start or minute < end


class TelegramSender:
    """Formats one article for one chat and sends or edits it; maps Bot API errors to outbox errors."""

    def __init__(self, bot: Bot, config: Config, *, clock: Callable[[], datetime] = utcnow):
        self.bot = bot
        self.config = config
        self.token = config.telegram.token.reveal() if config.telegram.token else ""
        self.outlets = {s.id: s.outlet for s in config.sources if s.outlet}
        self.channels = {c.id: c for c in channels(config.topics, config.chats)}
        self.tz = ZoneInfo(config.telegram.timezone)
        self.clock = clock  # quiet hours are judged on it (tests move it)

    def _format(self, article: StoredArticle, topic: str, limit: int = TELEGRAM_LIMIT) -> Message:
        hashtag = self.channels[topic].hashtag if topic in self.channels else topic
        return format_article(
            article, topic, hashtag, outlet=self.outlets.get(article.source_id), limit=limit,
            style=self.config.channel(topic).style,
        )

    def _extra(self, target: Target, topic: str | None, *, new: bool) -> dict[str, Any]:
        """Per-channel request options: link preview; for a new message its forum topic and quiet hours."""
        settings = self.config.channel(topic) if topic else None
        extra: dict[str, Any] = {
            "link_preview_options": preview_options(settings.link_preview if settings else "off")}
        if new and target.thread is not None:
            extra["message_thread_id"] = target.thread
        if new and settings is not None and in_window(settings.quiet_hours, self.clock(), self.tz):
            extra["disable_notification"] = True
        return extra

    def _clean(self, text: str) -> str:
        return redact(text, [self.token])

    async def _call(self, method: str, **kwargs: Any) -> Any:
        """One Bot API call with every library error turned into an outbox error (token-free messages)."""
        try:
            return await getattr(self.bot, method)(**kwargs)
        except RetryAfter as exc:
            seconds = _retry_after_seconds(exc)
            raise FloodWait(f"429 Too Many Requests: retry after {seconds:g} s", seconds) from None
        except InvalidToken:
            raise TelegramUnauthorized(
                "Telegram rejected the bot token (401 Unauthorized); the Telegram "
                "publisher is stopped, feeds keep working"
            ) from None
        except Forbidden as exc:
            raise TargetBlocked(f"403 {self._clean(exc.message)}") from None
        except ChatMigrated as exc:
            raise TargetBlocked(
                f"the group became a supergroup: set telegram_chat = {exc.new_chat_id}"
            ) from None
        except BadRequest as exc:
            text = self._clean(exc.message)
            if "chat not found" in text.lower():
                raise TargetBlocked(f"400 {text} (check telegram_chat)") from None
            if "thread not found" in text.lower():  # the forum topic was deleted
                raise TargetBlocked(f"400 {text} (check telegram_thread)") from None
            raise _BadRequest(f"400 {text}") from None
        except TimedOut as exc:
            raise TransientPublishError(f"timed out: {self._clean(str(exc))}") from None
        except NetworkError as exc:
            raise TransientPublishError(f"network error: {self._clean(str(exc))}") from None
        except TelegramError as exc:
            raise TransientPublishError(f"Bot API error: {self._clean(str(exc))}") from None

    async def _deliver(self, method: str, chat: str, message: Message, **extra: Any) -> tuple[Any, Sent]:
        """Send or edit as HTML; on "can't parse entities" once more as plain text."""
        try:
            result = await self._call(
                method,
                chat_id=chat,
                text=message.html,
                parse_mode=ParseMode.HTML,
                **extra,
            )
            return result, Sent(message_id=getattr(result, "message_id", None))
        except _BadRequest as exc:
            if "can't parse entities" not in str(exc).lower():
                raise
            log.warning("telegram: %s: HTML rejected (%s); sending as plain text", chat, exc)
            result = await self._call(
                method, chat_id=chat, text=message.plain, **extra
            )
            return result, Sent(
                message_id=getattr(result, "message_id", None),
                note=f"sent as plain text: {exc}",
                plain_fallback=True,
            )

    async def _with_shrinking(
        self, method: str, chat: str, article: StoredArticle, topic: str, **extra: Any
    ) -> Sent:
        try:
            return (await self._deliver(method, chat, self._format(article, topic), **extra))[1]
        except _BadRequest as exc:
            if "too long" not in str(exc).lower():
                raise
            last = exc
        for limit in SHORTER_LIMITS:  # our count and the server's disagree: give it room
            try:
                _, sent = await self._deliver(method, chat, self._format(article, topic, limit), **extra)
            except _BadRequest as exc:
                if "too long" not in str(exc).lower():
                    raise
                last = exc
                continue
            note = f"shortened to {limit} characters" + (f"; {sent.note}" if sent.note else "")
            return Sent(sent.message_id, note=note, plain_fallback=sent.plain_fallback, shortened=True)
        raise DeliveryRejected(str(last))

    async def send(self, target: Target, article: StoredArticle, topic: str) -> Sent:
        """Post a new message to the target's chat (and forum topic), silently in its quiet hours."""
        return await self._with_shrinking("send_message", target.address, article, topic,
                                          **self._extra(target, topic, new=True))

    async def send_digest(self, target: Target, part: DigestPart) -> Sent:
        """Post one message of a digest (its text fixed when the digest was made)."""
        extra = self._extra(target, part.topic, new=True)
        extra["link_preview_options"] = LinkPreviewOptions(is_disabled=True)  # a list of links: no preview
        _, sent = await self._deliver("send_message", target.address, Message(part.html, part.plain), **extra)
        return sent

    async def edit(self, target: Target, message_id: int, article: StoredArticle, topic: str) -> Sent:
        """Replace the text of a message already posted; an unchanged text is fine."""
        try:
            sent = await self._with_shrinking(
                "edit_message_text", target.address, article, topic, message_id=message_id,
                **self._extra(target, topic, new=False)
            )
        except DeliveryRejected as exc:
            if "not modified" in str(exc).lower():
                return Sent(message_id, note="edit: message is not modified")
            raise
        return Sent(message_id, note=sent.note, plain_fallback=sent.plain_fallback, shortened=sent.shortened)


class TelegramPublisher:
    """The Telegram side of the daemon: ``start``, ``drain`` (repeatedly), ``run_commands``, ``close``."""

    def __init__(self, config: Config, store: Store, *, pacing: Pacing | None = None, bot: Bot | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.config = config
        self.store = store
        self.bot = bot or build_bot(config)
        self.sender = TelegramSender(self.bot, config, clock=clock)
        self.outbox = Outbox.for_kind(config, store, self.sender, TELEGRAM, pacing=pacing)
        self.commands = CommandBot(self.bot, store, channels(config.topics, config.chats), config.web.base_url,
                                   clean=self.sender._clean, clock=clock,
                                   digests=DigestPlanner.for_config(config, store, {t: [] for t in config.topics}))
        self._started = False

    async def start(self) -> str:
        """Check the token (getMe), open the connection pool, adopt respelled chats; returns the bot's @username."""
        try:
            await self.bot.initialize()
        except InvalidToken:  # PTB's own message here contains the token: never let it out
            raise TelegramUnauthorized(
                "Telegram rejected the bot token (401 Unauthorized); the Telegram "
                "publisher is stopped, feeds keep working"
            ) from None
        except TelegramError as exc:
            raise TransientPublishError(f"cannot reach the Bot API: {self.sender._clean(str(exc))}") from None
        except Exception as exc:  # a malformed getMe answer PTB cannot parse: retried, never a dead task
            raise TransientPublishError(
                f"the Bot API answered getMe with something unexpected ({type(exc).__name__}: "
                f"{self.sender._clean(str(exc))[:200]})") from None
        self._started = True
        await self.adopt_respelled_chats()
        return self.bot.username

    async def _chat_id(self, address: str) -> str | None:
        """The numeric id of a chat (getChat; a migrated group answers with its supergroup); None when unknown."""
        try:
            chat = await self.bot.get_chat(chat_id=address)
        except ChatMigrated as exc:
            return str(exc.new_chat_id)
        except Exception as exc:  # 403, chat not found, network: the send will say so; nothing to adopt now
            log.debug("telegram: getChat %s: %s", address, self.sender._clean(str(exc)))
            return None
        return str(chat.id) if getattr(chat, "id", None) is not None else None

    async def adopt_respelled_chats(self) -> int:
        """Rows stored under another spelling of a configured chat (@Chan, the id ChatMigrated named) move to it.

        A target is the chat, not how the config spells it: otherwise the new spelling looks like a new
        chat (seeded with the newest articles again) and the old rows are orphaned. Each configured
        username is resolved once (getChat) and remembered; old spellings are resolved when they appear.
        """
        configured = self.outbox.targets
        orphans = [t for t in self.store.target_keys(TELEGRAM) if t not in configured]
        ids: dict[tuple[str, int | None], Target] = {}
        for target in configured:
            chat_id = self.store.target_chat_id(target)
            if chat_id is None:
                # A configured numeric id is the chat itself; an older id (a migrated group) is an orphan below.
                chat_id = target.address if _numeric(target.address) else await self._chat_id(target.address)
                if chat_id is not None:
                    self.store.set_target_chat_id(target, chat_id)
            if chat_id is not None:
                ids[(chat_id, target.thread)] = target
        moved = 0
        for old in orphans:
            known = self.store.target_chat_id(old)
            # A numeric address "resolves" to itself: ask anyway, a migrated group answers with its new id.
            chat_id = known if known and known != old.address else await self._chat_id(old.address)
            if chat_id is None:
                continue
            new = ids.get((chat_id, old.thread))
            if new is None:
                self.store.set_target_chat_id(old, chat_id)  # another chat: don't ask again next start
                continue
            count = self.store.adopt_target(old, new)
            moved += count
            log.info("telegram: %s is the same chat as %s (id %s): %d outbox row(s) adopted, nothing resent",
                     old, new, chat_id, count)
        return moved
    async def drain(
        self, stop: asyncio.Event | None = None, budget_seconds: float | None = None
    ) -> DrainStats:
        """Deliver pending messages and edits (see Outbox.drain); raises TelegramUnauthorized on 401."""
        if not self._started:
            await self.start()
        return await self.outbox.drain(stop, budget_seconds)

    async def close(self) -> None:
        """Close the HTTP connections (a send still unanswered stays 'sending': see outbox/drain.py)."""
        self.outbox.closing = True
        with contextlib.suppress(Exception):
            await self.bot.shutdown()

    async def __aenter__(self) -> TelegramPublisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run_commands(self, stop: asyncio.Event, *, poll_timeout: int = POLL_TIMEOUT) -> None:
        """Answer private-chat commands until ``stop`` is set (see publish/commands.py)."""
        if not self._started:
            await self.start()
        await self.commands.run(stop, poll_timeout=poll_timeout)
