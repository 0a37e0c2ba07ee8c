"""A loopback Bot API server that answers like Telegram: JSON shapes, HTML checks, flood control, faults.

Use it as an async context manager in tests (``async with BotApiDouble(token) as api: api.base_url``),
from another thread (``start_in_thread``), or as a process: ``python -m tests.doubles.botapi --port N``
(GET /_double/state returns what it recorded, POST /_double/command queues a private-chat command).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

MAX_TEXT = 4096
BOT_USER = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "feedbot double",
    "username": "feedbot_double_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
# Telegram's HTML subset: tag → attributes it accepts.
ALLOWED_TAGS = {
    "b": (),
    "strong": (),
    "i": (),
    "em": (),
    "u": (),
    "ins": (),
    "s": (),
    "strike": (),
    "del": (),
    "span": ("class",),
    "tg-spoiler": (),
    "a": ("href",),
    "code": ("class",),
    "pre": (),
    "blockquote": ("expandable",),
    "tg-emoji": ("emoji-id",),
}
ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*/?>"
)
_ATTR = re.compile(r"([A-Za-z-]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+))?")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]+);")


class ParseEntitiesError(ValueError):
    """Not valid Telegram HTML; the message is what follows "can't parse entities: "."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode_entities(raw: str, base_offset: int) -> str:
    out, pos = [], 0
    while True:
        amp = raw.find("&", pos)
        if amp < 0:
            out.append(raw[pos:])
            return "".join(out)
        out.append(raw[pos:amp])
        match = _ENTITY.match(raw, amp)
        if not match:
            raise ParseEntitiesError(
                f"Character entity expected at byte offset {base_offset + len(raw[:amp].encode())}"
            )
        name = match.group(1)
        if name.startswith("#"):
            code = int(name[2:], 16) if name[1:2] in "xX" else int(name[1:])
            if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise ParseEntitiesError(f"Invalid character entity at byte offset {base_offset + amp}")
            out.append(chr(code))
        elif name in NAMED_ENTITIES:
            out.append(NAMED_ENTITIES[name])
        else:
            raise ParseEntitiesError(f'Unsupported HTML entity "&{name};" at byte offset {base_offset + amp}')
        pos = match.end()


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode: the visible text and its entities, or ParseEntitiesError."""
    out: list[str] = []
    units = 0
    stack: list[tuple[str, int, dict[str, str]]] = []
    entities: list[dict[str, Any]] = []
    pos = 0
    while pos < len(text):
        lt = text.find("<", pos)
        chunk = text[pos:] if lt < 0 else text[pos:lt]
        if chunk:
            decoded = _decode_entities(chunk, len(text[:pos].encode()))
            out.append(decoded)
            units += utf16_len(decoded)
        if lt < 0:
            break
        offset = len(text[:lt].encode())
        match = _TAG.match(text, lt)
        if not match:
            raise ParseEntitiesError(f"Unsupported start tag at byte offset {offset}")
        closing, name, attrs_raw = match.group(1), match.group(2).lower(), match.group(3)
        if name not in ALLOWED_TAGS:
            kind = "end" if closing else "start"
            raise ParseEntitiesError(f'Unsupported {kind} tag "{name}" at byte offset {offset}')
        if closing:
            if not stack or stack[-1][0] != name:
                raise ParseEntitiesError(
                    f'Unmatched end tag at byte offset {offset}, expected "</{stack[-1][0]}>", '
                    f'found "</{name}>"'
                    if stack
                    else f"Unexpected end tag at byte offset {offset}"
                )
            open_name, start, attrs = stack.pop()
            entity: dict[str, Any] = {
                "type": ENTITY_TYPES[open_name],
                "offset": start,
                "length": units - start,
            }
            if open_name == "a":
                entity["url"] = attrs.get("href", "")
            if open_name == "blockquote" and "expandable" in attrs:  # Bot API 7.4: collapsed until tapped
                entity["type"] = "expandable_blockquote"
            if entity["length"] > 0:
                entities.append(entity)
        else:
            attrs = {}
            for attr in _ATTR.finditer(attrs_raw):
                key, value = attr.group(1).lower(), attr.group(2) or ""
                if value[:1] in "\"'":
                    value = value[1:-1]
                attrs[key] = _decode_entities(value, offset)
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise ParseEntitiesError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
            if name == "a" and not attrs.get("href"):
                raise ParseEntitiesError(f"Can't find href attribute of the tag a at byte offset {offset}")
            stack.append((name, units, attrs))
        pos = match.end()
    if stack:
        raise ParseEntitiesError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), entities


@dataclass
class Limits:
    """Flood control as the double enforces it (Telegram: 20 per minute per group/channel, 30 per second)."""

    per_chat: int = 20
    per_chat_window: float = 60.0
    overall: int = 30
    overall_window: float = 1.0
    integer_retry_after: bool = True  # Telegram sends whole seconds; scaled-down tests need fractions

    def scaled(self, factor: float) -> Limits:
        """The same limits with every window multiplied by ``factor`` (0.05: one minute becomes 3 s)."""
        return Limits(
            self.per_chat,
            self.per_chat_window * factor,
            self.overall,
            self.overall_window * factor,
            integer_retry_after=factor >= 1,
        )


@dataclass
class Recorded:
    """A message the double accepted."""

    chat_id: str
    message_id: int
    text: str  # as sent
    parsed_text: str  # as shown (entities parsed)
    parse_mode: str | None
    preview_disabled: bool | None
    at: float
    edits: list[str] = field(default_factory=list)  # parsed texts of later edits
    thread_id: int | None = None  # message_thread_id: the forum topic it went to
    silent: bool = False  # disable_notification
    preview: dict[str, Any] | None = None  # link_preview_options as sent
    entities: list[dict[str, Any]] = field(default_factory=list)


class BotApiDouble:
    """The fake Bot API server; every knob is an attribute tests may change between requests."""

    def __init__(
        self,
        token: str = "123456789:TESTtokenTESTtokenTESTtokenTESTtok",
        *,
        limits: Limits | None = None,
        forbidden_chats: tuple[str, ...] = (),
        fail_rate: float = 0.0,
        seed: int = 1,
        response_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        # Knobs that make the double disagree with our own checks, to exercise the fallbacks.
        self.refuse_html = False  # every HTML text gets "can't parse entities"
        self.max_text = MAX_TEXT
        self.token = token
        self.limits = limits or Limits()
        self.forbidden_chats = set(forbidden_chats)
        self.fail_rate = fail_rate
        self.random = random.Random(seed)
        self.response_delay = response_delay
        self.host, self.port = host, port
        self.messages: list[Recorded] = []
        self.counts: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (method, params) of every request
        self._by_id: dict[tuple[str, int], Recorded] = {}
        self._next_id: Counter[str] = Counter()
        self._chat_log: dict[str, deque[float]] = {}
        self._overall_log: deque[float] = deque()
        self._updates: list[dict[str, Any]] = []
        self._update_id = 100
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.my_commands: list[dict[str, str]] = []
        # Chats as Telegram knows them: "@username" (any case) ↔ numeric id; old group id → supergroup id.
        self.chat_ids: dict[str, int] = {}
        self.migrated_chats: dict[str, int] = {}
        self.getme_result: Any = BOT_USER  # a test may make getMe answer something malformed
        # Forum supergroups: chat id → its topics (message_thread_id); a send to another thread is a 400.
        self.forum_topics: dict[str, set[int]] = {}

    # ---- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The server root, as ``telegram.api_base_url`` expects it."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/_double/state", self._state)
        app.router.add_post("/_double/command", self._command)
        # A long-polling getUpdates must not hold up shutdown once its client is gone.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # port 0 → the one the OS picked
        self._new_update = asyncio.Event()
        return self.base_url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- what tests look at -------------------------------------------------------------------

    def sent_to(self, chat_id: str) -> list[Recorded]:
        """Accepted messages of one chat, in arrival order."""
        return [m for m in self.messages if m.chat_id == str(chat_id)]

    def create_forum_topic(self, chat_id: str, thread_id: int) -> None:
        """Make ``thread_id`` a topic of the forum supergroup ``chat_id``."""
        self.forum_topics.setdefault(str(chat_id), set()).add(thread_id)

    def delete_forum_topic(self, chat_id: str, thread_id: int) -> None:
        """Delete a topic: later sends to it answer 400 "message thread not found"."""
        self.forum_topics.get(str(chat_id), set()).discard(thread_id)

    def register_chat(self, username: str, chat_id: int) -> None:
        """Make "@username" (any case) and chat_id the same chat, as getChat tells."""
        self.chat_ids[username.lower()] = chat_id

    def delivered_to(self, chat: str) -> list[Recorded]:
        """Accepted messages of one chat under any of its spellings (@Name, @name, its numeric id)."""
        wanted = self._chat(chat)["id"]
        return [m for m in self.messages if self._chat(m.chat_id)["id"] == wanted]

    def push_command(
        self, text: str, *, user_id: int = 4242, chat_type: str = "private", chat_id: int | None = None
    ) -> int:
        """Queue a message update (e.g. '/latest carbon-market') as if a user wrote to the bot."""
        self._update_id += 1
        chat_id = chat_id if chat_id is not None else user_id
        chat = {"id": chat_id, "type": chat_type}
        chat.update(
            {"first_name": "Tester", "username": "tester"} if chat_type == "private" else {"title": "A group"}
        )
        entities = (
            [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            if text.startswith("/")
            else []
        )
        self._updates.append(
            {
                "update_id": self._update_id,
                "message": {
                    "message_id": self._update_id,
                    "date": int(time.time()),
                    "chat": chat,
                    "text": text,
                    "entities": entities,
                    "from": {"id": user_id, "is_bot": False, "first_name": "Tester", "username": "tester"},
                },
            }
        )
        self._new_update.set()
        return self._update_id

    def snapshot(self) -> dict[str, Any]:
        """Everything recorded, as JSON-able data."""
        return {
            "messages": [asdict(m) for m in self.messages],
            "counts": dict(self.counts),
            "pending_updates": len(self._updates),
        }

    # ---- the API ------------------------------------------------------------------------------

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def _command(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {"update_id": self.push_command(body["text"], user_id=body.get("user_id", 4242))}
        )

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        for key in ("link_preview_options", "reply_markup", "allowed_updates", "commands", "entities"):
            if isinstance(params.get(key), str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(params[key])
        return params

    @staticmethod
    def _error(code: int, description: str, **parameters: Any) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.requests.append((method, params))
        if request.match_info["token"] != self.token:
            self.counts["401"] += 1
            return self._error(401, "Unauthorized")
        handler = getattr(self, "_api_" + method.lower(), None)
        if handler is None:
            return self._error(404, "Not Found")
        if method.lower() in ("sendmessage", "editmessagetext"):
            # Like Telegram, a slow send still lands when the client gave up or went away meanwhile.
            return await asyncio.shield(self._slow_send(handler, params))
        return await handler(params)

    async def _slow_send(self, handler: Any, params: dict[str, Any]) -> web.Response:
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        if self.fail_rate and self.random.random() < self.fail_rate:
            self.counts["502"] += 1
            return web.json_response({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502)
        return await handler(params)

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        chat = str(chat_id)
        if chat.startswith("@"):  # usernames are case-insensitive
            name = chat.lower()
            return {
                "id": self.chat_ids.get(name, -1000000000000 - zlib.crc32(name.encode()) % 10**9),
                "type": "channel",
                "title": name[1:],
                "username": name[1:],
            }
        number = int(chat)
        if number > 0:
            return {"id": number, "type": "private", "first_name": "Tester"}
        names = [name for name, known in self.chat_ids.items() if known == number]
        if names:
            return {"id": number, "type": "channel", "title": names[0][1:], "username": names[0][1:]}
        return {"id": number, "type": "channel", "title": f"Channel {number}"}

    def _migrated(self, chat_id: str) -> web.Response | None:
        if chat_id in self.migrated_chats:
            return self._error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                               migrate_to_chat_id=self.migrated_chats[chat_id])
        return None

    def _check_text(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]] | web.Response:
        text = params.get("text", "")
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        parse_mode = (params.get("parse_mode") or "").upper()
        entities: list[dict[str, Any]] = []
        if parse_mode == "HTML":
            if self.refuse_html:
                self.counts["400 parse"] += 1
                return self._error(
                    400, 'Bad Request: can\'t parse entities: Unsupported start tag "b" at byte offset 0'
                )
            try:
                text, entities = parse_html(text)
            except ParseEntitiesError as exc:
                self.counts["400 parse"] += 1
                return self._error(400, f"Bad Request: can't parse entities: {exc}")
        elif parse_mode:
            return self._error(400, f"Bad Request: unsupported parse_mode {parse_mode}")
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if utf16_len(text) > self.max_text:
            self.counts["400 too long"] += 1
            return self._error(400, "Bad Request: message is too long")
        return text, entities

    def _flood(self, chat: str) -> web.Response | None:
        """429 when the chat's per-minute budget or the overall per-second budget is spent."""
        now = time.monotonic()
        lim = self.limits
        log = self._chat_log.setdefault(chat, deque())
        while log and log[0] <= now - lim.per_chat_window:
            log.popleft()
        while self._overall_log and self._overall_log[0] <= now - lim.overall_window:
            self._overall_log.popleft()
        wait = 0.0
        if len(log) >= lim.per_chat:
            wait = log[-lim.per_chat] + lim.per_chat_window - now
        if len(self._overall_log) >= lim.overall:
            wait = max(wait, self._overall_log[-lim.overall] + lim.overall_window - now)
        if wait > 0:
            self.counts["429"] += 1
            retry: float = max(1, int(wait + 0.999)) if lim.integer_retry_after else round(wait + 0.005, 3)
            return self._error(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        log.append(now)
        self._overall_log.append(now)
        return None

    def _preview_disabled(self, params: dict[str, Any]) -> bool | None:
        options = params.get("link_preview_options")
        if isinstance(options, dict):
            return bool(options.get("is_disabled"))
        if "disable_web_page_preview" in params:
            return str(params["disable_web_page_preview"]).lower() == "true"
        return None

    def _message_json(
        self,
        chat: dict[str, Any],
        record: Recorded,
        entities: list[dict[str, Any]],
        edit_date: int | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": record.message_id,
            "date": int(record.at),
            "chat": chat,
            "text": record.edits[-1] if record.edits else record.parsed_text,
        }
        if record.thread_id is not None:
            body["message_thread_id"] = record.thread_id
            body["is_topic_message"] = True
        if entities:
            body["entities"] = entities
        if chat["type"] == "channel":
            body["sender_chat"] = chat
        else:
            body["from"] = BOT_USER
        if edit_date:
            body["edit_date"] = edit_date
        return body

    async def _api_getme(self, params: dict[str, Any]) -> web.Response:
        return self._ok(self.getme_result)

    async def _api_logout(self, params: dict[str, Any]) -> web.Response:
        return self._ok(True)

    async def _api_deletewebhook(self, params: dict[str, Any]) -> web.Response:
        return self._ok(True)

    async def _api_setmycommands(self, params: dict[str, Any]) -> web.Response:
        self.my_commands = list(params.get("commands") or [])
        return self._ok(True)

    async def _api_getchat(self, params: dict[str, Any]) -> web.Response:
        chat_id = str(params.get("chat_id", ""))
        self.counts["getChat"] += 1
        if chat_id in self.forbidden_chats:
            return self._error(403, "Forbidden: bot is not a member of the channel chat")
        migrated = self._migrated(chat_id)
        if migrated:
            return migrated
        # getChat answers a ChatFullInfo: a few more fields than the Chat inside a message.
        return self._ok({**self._chat(chat_id), "accent_color_id": 0, "max_reaction_count": 11})

    async def _api_sendmessage(self, params: dict[str, Any]) -> web.Response:
        chat_id = str(params.get("chat_id", ""))
        if not chat_id:
            return self._error(400, "Bad Request: chat_id is empty")
        if chat_id in self.forbidden_chats:
            self.counts["403"] += 1
            return self._error(403, "Forbidden: bot is not a member of the channel chat")
        migrated = self._migrated(chat_id)
        if migrated:
            return migrated
        thread = params.get("message_thread_id")
        if thread not in (None, ""):
            thread = int(thread)
            if thread not in self.forum_topics.get(chat_id, set()):
                self.counts["400 thread"] += 1
                return self._error(400, "Bad Request: message thread not found")
        else:
            thread = None
        checked = self._check_text(params)
        if isinstance(checked, web.Response):
            return checked
        limited = self._flood(chat_id)
        if limited:
            return limited
        parsed, entities = checked
        self._next_id[chat_id] += 1
        record = Recorded(
            chat_id=chat_id,
            message_id=self._next_id[chat_id],
            text=params["text"],
            parsed_text=parsed,
            parse_mode=params.get("parse_mode"),
            preview_disabled=self._preview_disabled(params),
            at=time.time(),
            thread_id=thread,
            silent=str(params.get("disable_notification", "")).lower() == "true",
            preview=params.get("link_preview_options") if isinstance(params.get("link_preview_options"), dict)
            else None,
            entities=entities,
        )
        self.messages.append(record)
        self._by_id[(chat_id, record.message_id)] = record
        self.counts["sent"] += 1
        return self._ok(self._message_json(self._chat(chat_id), record, entities))

    async def _api_editmessagetext(self, params: dict[str, Any]) -> web.Response:
        chat_id = str(params.get("chat_id", ""))
        if chat_id in self.forbidden_chats:
            self.counts["403"] += 1
            return self._error(403, "Forbidden: bot is not a member of the channel chat")
        record = self._by_id.get((chat_id, int(params.get("message_id") or 0)))
        if record is None:
            return self._error(400, "Bad Request: message to edit not found")
        checked = self._check_text(params)
        if isinstance(checked, web.Response):
            return checked
        parsed, entities = checked
        current = record.edits[-1] if record.edits else record.parsed_text
        if parsed == current:
            self.counts["400 not modified"] += 1
            return self._error(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        limited = self._flood(chat_id)
        if limited:
            return limited
        record.edits.append(parsed)
        self.counts["edited"] += 1
        return self._ok(self._message_json(self._chat(chat_id), record, entities, edit_date=int(time.time())))

    async def _api_getupdates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        if not self._updates and timeout > 0:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout)
        limit = int(params.get("limit") or 100)
        return self._ok(self._updates[:limit])


def start_in_thread(double: BotApiDouble) -> tuple[threading.Thread, asyncio.AbstractEventLoop]:
    """Run the double on its own event loop in a daemon thread; returns once it listens."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(double.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(double.stop())

    thread = threading.Thread(target=run, name="botapi-double", daemon=True)
    thread.start()
    ready.wait(10)
    return thread, loop


def stop_thread(thread: threading.Thread, loop: asyncio.AbstractEventLoop) -> None:
    """Stop a double started with start_in_thread."""
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=BotApiDouble().token)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the flood-control windows")
    parser.add_argument("--forbidden", action="append", default=[], help="a chat the bot is not a member of")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of sends answered 502")
    args = parser.parse_args(argv)

    async def serve() -> None:
        double = BotApiDouble(
            args.token,
            limits=Limits().scaled(args.scale),
            forbidden_chats=tuple(args.forbidden),
            fail_rate=args.fail_rate,
            port=args.port,
        )
        await double.start()
        print(f"listening on {double.base_url}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
