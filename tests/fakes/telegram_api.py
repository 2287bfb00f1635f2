"""A fake Telegram Bot API on a real local port: records every call, answers like api.telegram.org."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JSON = dict[str, Any]

# Real Telegram numbers messages per private chat in both directions, so the bot's messages (this fake) and the
# citizen's (the builders below) draw from one counter per chat.
_ids_lock = threading.Lock()
_message_ids: dict[str, itertools.count[int]] = {}
_update_ids = itertools.count(random.randint(100_000_000, 899_999_999))
_callback_ids = itertools.count(random.randint(10**17, 9 * 10**17))


def _next_message_id(chat_id: int | str) -> int:
    with _ids_lock:
        return next(_message_ids.setdefault(str(chat_id), itertools.count(1)))


def _digest(value: object) -> int:
    """A stable number for made-up ids (`hash()` of a str changes between runs)."""
    return zlib.crc32(repr(value).encode())


def _next_update_id() -> int:
    with _ids_lock:
        return next(_update_ids)


def _chat_id_value(chat_id: Any) -> int | str:
    """The chat id as Telegram echoes it: an int when numeric (PTB sends "123"), else the string as given."""
    text = str(chat_id)
    return int(text) if text.lstrip("-").isdigit() else text


def _error(status: int, description: str, parameters: JSON | None = None) -> JSONResponse:
    body: JSON = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)


class ApiError(Exception):
    """Raised by a handler to answer `{"ok": false, ...}` with this status and description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


@dataclass
class Call:
    """One request to the Bot API. `status` is the HTTP status answered (0 while still in flight)."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 0
    result: Any = None


@dataclass
class _Failure:
    status: int
    retry_after: int


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes


_BLOCKABLE = {"sendMessage", "sendPhoto", "sendChatAction", "editMessageText", "editMessageReplyMarkup"}
_FAILURE_DESCRIPTIONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}


class FakeTelegramAPI:
    """Speaks `POST|GET /bot{token}/{method}` and `GET /file/bot{token}/{file_path}` like the Bot API 9.x.

    Parameters arrive JSON, urlencoded or multipart. PTB sends every non-string value JSON-encoded as a string
    ("123", '{"inline_keyboard": ...}'), so string values that look like a JSON object or array are decoded; other
    strings (chat_id, offset, ...) are recorded as sent. Uploaded files are recorded as bytes.
    """

    def __init__(
        self, token: str = "123456:TEST-token", bot_id: int = 123456, username: str = "seoul_civic_test_bot"
    ) -> None:
        self.token = token
        self.bot_id = bot_id
        self.username = username
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] | None = None
        self.commands: list[Any] = []
        self._lock = threading.Lock()
        self._updates: list[JSON] = []
        self._blocked: set[str] = set()
        self._failures: dict[str, list[_Failure]] = {}
        self._files: dict[str, _StoredFile] = {}
        self._file_numbers = itertools.count(1)
        self._messages: dict[tuple[str, int], JSON] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": lambda params: self.commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": lambda params: True,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "getFile": self._get_file,
        }
        self._canonical = {name.lower(): name for name in [*self._handlers, "getUpdates"]}
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self.endpoint, methods=["GET", "POST"]),
                Route("/file/bot{token}/{file_path:path}", self.download, methods=["GET"]),
            ]
        )

    # ---- test-side API (called from the test thread) -------------------------------------------------------------

    @property
    def bot_user(self) -> JSON:
        """The bot as a Telegram User (the `from` of every message it sends)."""
        return {"id": self.bot_id, "is_bot": True, "first_name": "Seoul Civic", "username": self.username}

    def calls_to(self, method: str, chat_id: int | str | None = None) -> list[Call]:
        """Recorded calls of `method` (case-insensitive), optionally only those to `chat_id` (compared as str)."""
        wanted = method.lower()
        with self._lock:
            calls = list(self.calls)
        return [
            call
            for call in calls
            if call.method.lower() == wanted and (chat_id is None or str(call.params.get("chat_id")) == str(chat_id))
        ]

    def sent_messages(self, chat_id: int | str) -> list[Call]:
        """sendMessage and sendPhoto calls to `chat_id` that were delivered (answered 200), in order."""
        with self._lock:
            calls = list(self.calls)
        return [
            call
            for call in calls
            if call.method in ("sendMessage", "sendPhoto")
            and call.status == HTTPStatus.OK
            and str(call.params.get("chat_id")) == str(chat_id)
        ]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        """Polls `predicate` every 0.05 s; raises TimeoutError listing the recorded methods if it stays false."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                with self._lock:
                    counts = Counter(call.method for call in self.calls)
                summary = ", ".join(f"{method}×{n}" for method, n in counts.items()) or "no calls"
                raise TimeoutError(f"condition not met within {timeout} s; recorded: {summary}")
            time.sleep(0.05)

    def reset(self) -> None:
        """Forgets calls, updates, files, messages, webhook, commands, blocked chats and pending failures."""
        with self._lock:
            self.calls.clear()
            self._updates.clear()
            self._blocked.clear()
            self._failures.clear()
            self._files.clear()
            self._messages.clear()
            self.webhook = None
            self.commands = []

    def add_file(self, file_id: str, content: bytes) -> str:
        """Registers a file for getFile and download; returns its file_path ("photos/file_N.jpg")."""
        with self._lock:
            path = f"photos/file_{next(self._file_numbers)}.jpg"
            self._files[file_id] = _StoredFile(file_id, f"AQAD{_digest(file_id) % 10**10}", path, content)
        return path

    def push_update(self, update: JSON) -> JSON:
        """Queues an update for getUpdates (assigning update_id if missing); returns it."""
        if "update_id" not in update:
            update = {"update_id": _next_update_id(), **update}
        with self._lock:
            self._updates.append(update)
        return update

    def block_chat(self, chat_id: int | str) -> None:
        """From now on, sending or editing to this chat answers 403 "bot was blocked by the user"."""
        with self._lock:
            self._blocked.add(str(chat_id))

    def unblock_chat(self, chat_id: int | str) -> None:
        with self._lock:
            self._blocked.discard(str(chat_id))

    def fail_next(self, method: str, status: int = 429, retry_after: int = 1) -> None:
        """The next call of `method` answers `status` (429 with retry_after, 500, 502, ...); once per call."""
        with self._lock:
            self._failures.setdefault(method.lower(), []).append(_Failure(status, retry_after))

    # ---- HTTP side (runs on the server's event loop) -------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = self._canonical.get(str(request.path_params["method"]).lower())
        if method is None:
            return _error(404, "Not Found: method not found")
        try:
            params = await _read_params(request)
        except ValueError:
            return _error(400, "Bad Request: can't parse request body")
        call = Call(method=method, params=params, at=time.monotonic())
        with self._lock:
            self.calls.append(call)
            failures = self._failures.get(method.lower())
            failure = failures.pop(0) if failures else None
        response = await self._answer(call, failure, request)
        call.status = response.status_code
        return response

    async def _answer(self, call: Call, failure: _Failure | None, request: Request) -> JSONResponse:
        method, params = call.method, call.params
        if failure is not None:
            if failure.status == 429:
                description = f"Too Many Requests: retry after {failure.retry_after}"
                return _error(429, description, {"retry_after": failure.retry_after})
            phrase = _FAILURE_DESCRIPTIONS.get(failure.status) or _phrase(failure.status)
            return _error(failure.status, phrase)
        try:
            if method in _BLOCKABLE and "chat_id" in params:
                with self._lock:
                    blocked = str(params["chat_id"]) in self._blocked
                if blocked:
                    raise ApiError(403, "Forbidden: bot was blocked by the user")
            if method == "getUpdates":
                result = await self._get_updates(params, request)
            else:
                result = self._handlers[method](params)
        except ApiError as exc:
            return _error(exc.status, exc.description)
        call.result = result
        return JSONResponse({"ok": True, "result": result})

    async def download(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        path = str(request.path_params["file_path"])
        if ".." in path.split("/") or "\\" in path:
            return _error(404, "Not Found")
        with self._lock:
            stored = next((f for f in self._files.values() if f.file_path == path), None)
        if stored is None:
            return _error(404, "Not Found")
        return Response(stored.content, media_type="application/octet-stream")

    # ---- methods ---------------------------------------------------------------------------------------------------

    def _get_me(self, params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _set_webhook(self, params: JSON) -> bool:
        url = params.get("url") or ""
        with self._lock:
            if not url:
                self.webhook = None
            else:
                self.webhook = {
                    "url": url,
                    "secret_token": params.get("secret_token"),
                    "allowed_updates": params.get("allowed_updates"),
                }
        return True

    def _delete_webhook(self, params: JSON) -> bool:
        with self._lock:
            self.webhook = None
            if str(params.get("drop_pending_updates", "")).lower() == "true":
                self._updates.clear()
        return True

    def _get_webhook_info(self, params: JSON) -> JSON:
        with self._lock:
            webhook = self.webhook
            pending = len(self._updates)
        info: JSON = {"url": webhook["url"] if webhook else "", "has_custom_certificate": False}
        info["pending_update_count"] = pending
        if webhook and webhook.get("allowed_updates") is not None:
            info["allowed_updates"] = webhook["allowed_updates"]
        return info

    def _set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: commands must be an array")
        self.commands = commands
        return True

    def _delete_my_commands(self, params: JSON) -> bool:
        self.commands = []
        return True

    def _send_chat_action(self, params: JSON) -> bool:
        _require_chat(params)
        if not params.get("action"):
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    def _answer_callback_query(self, params: JSON) -> bool:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    def _new_message(self, params: JSON) -> JSON:
        chat_id = _require_chat(params)
        message: JSON = {
            "message_id": _next_message_id(chat_id),
            "from": self.bot_user,
            "chat": _chat(chat_id),
            "date": int(time.time()),
        }
        markup = params.get("reply_markup")
        _check_markup(markup)
        if isinstance(markup, dict) and "inline_keyboard" in markup:  # Telegram echoes inline keyboards only
            message["reply_markup"] = markup
        return message

    def _store(self, message: JSON) -> JSON:
        with self._lock:
            self._messages[(str(message["chat"]["id"]), message["message_id"])] = message
        return message

    def _send_message(self, params: JSON) -> JSON:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            _require_chat(params)
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        message = self._new_message(params)
        message["text"] = text
        return self._store(message)

    def _send_photo(self, params: JSON) -> JSON:
        photo = params.get("photo")
        if not photo:
            _require_chat(params)
            raise ApiError(400, "Bad Request: there is no photo in the request")
        message = self._new_message(params)
        if isinstance(photo, bytes):
            file_id = f"AgACAgUAAxkBAAI{next(self._file_numbers)}"
            self.add_file(file_id, photo)
        else:
            file_id = str(photo)
        message["photo"] = _photo_sizes(file_id, ((90, 90, 1200), (320, 320, 15000), (1280, 960, 120000)))
        caption = params.get("caption")
        if caption:
            if len(str(caption)) > 1024:
                raise ApiError(400, "Bad Request: message caption is too long")
            message["caption"] = caption
        return self._store(message)

    def _edited(self, params: JSON) -> JSON | None:
        """The stored message to edit (made up if this fake never saw it), or None for inline messages."""
        if params.get("inline_message_id"):
            return None
        chat_id = _require_chat(params)
        try:
            message_id = int(params["message_id"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Bad Request: message identifier is not specified") from None
        with self._lock:
            message = self._messages.get((str(_chat_id_value(chat_id)), message_id))
        if message is None:
            message = {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": _chat(chat_id),
                "date": int(time.time()),
                "text": "...",
            }
        message = {key: value for key, value in message.items() if key != "reply_markup"}
        markup = params.get("reply_markup")
        _check_markup(markup)
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    def _edit_message_text(self, params: JSON) -> JSON | bool:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        message = self._edited(params)
        if message is None:
            return True
        message["text"] = text
        message.pop("photo", None)
        message.pop("caption", None)
        return self._store(message)

    def _edit_message_reply_markup(self, params: JSON) -> JSON | bool:
        message = self._edited(params)
        return True if message is None else self._store(message)

    def _delete_message(self, params: JSON) -> bool:
        chat_id = _require_chat(params)
        with self._lock:
            self._messages.pop((str(_chat_id_value(chat_id)), int(params.get("message_id") or 0)), None)
        return True

    def _get_file(self, params: JSON) -> JSON:
        with self._lock:
            stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    async def _get_updates(self, params: JSON, request: Request) -> list[JSON]:
        with self._lock:
            if self.webhook is not None:
                raise ApiError(
                    409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook first"
                )
        offset = _int(params.get("offset"), 0)
        limit = min(max(_int(params.get("limit"), 100), 1), 100)
        timeout = max(_int(params.get("timeout"), 0), 0)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if offset > 0:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                pending = self._updates[offset:] if offset < 0 else list(self._updates)
            if pending or time.monotonic() >= deadline or await request.is_disconnected():
                return pending[:limit]
            await asyncio.sleep(min(0.05, max(deadline - time.monotonic(), 0)))


# ---- request parsing -----------------------------------------------------------------------------------------------


async def _read_params(request: Request) -> JSON:
    params: JSON = {key: _decode(value) for key, value in request.query_params.items()}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await request.body()
        if body.strip():
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("JSON body is not an object")
            params.update({key: _decode(value) for key, value in data.items()})
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        async with request.form(max_part_size=50 * 1024 * 1024) as form:
            for key, value in form.multi_items():
                params[key] = await value.read() if isinstance(value, UploadFile) else _decode(value)
    return params


def _decode(value: Any) -> Any:
    """A string holding a JSON object or array (reply_markup, commands, allowed_updates) decoded; else as is."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _require_chat(params: JSON) -> int | str:
    chat_id = params.get("chat_id")
    if chat_id is None or str(chat_id).strip() == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    return _chat_id_value(chat_id)


def _check_markup(markup: Any) -> None:
    if not isinstance(markup, dict):
        return
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            if len(str(button.get("callback_data", "")).encode()) > 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown Error"


def _chat(chat_id: int | str, chat_type: str = "private") -> JSON:
    if chat_type == "private" and not (isinstance(chat_id, int) and chat_id < 0):
        return {"id": chat_id, "type": "private", "first_name": "Citizen"}
    return {"id": chat_id, "type": "group" if chat_type == "private" else chat_type, "title": "Seoul Civic Test Group"}


# ---- builders of incoming updates ----------------------------------------------------------------------------------


def _photo_sizes(file_id: str, sizes: Iterable[tuple[int, int, int]]) -> list[JSON]:
    """PhotoSizes smallest to largest like Telegram: the largest is exactly `file_id`, smaller ones `{file_id}-s{i}`."""
    ordered = sorted(sizes, key=lambda size: size[0] * size[1])
    return [
        {
            "file_id": file_id if i == len(ordered) - 1 else f"{file_id}-s{i}",
            "file_unique_id": f"AQAD{_digest((file_id, i)) % 10**10}",
            "width": width,
            "height": height,
            "file_size": file_size,
        }
        for i, (width, height, file_size) in enumerate(ordered)
    ]


def _user(user_id: int, language_code: str | None) -> JSON:
    user: JSON = {"id": user_id, "is_bot": False, "first_name": "Citizen"}
    if language_code:
        user["language_code"] = language_code
    return user


def _message(chat_id: int, user_id: int | None, language_code: str | None, chat_type: str, **fields: Any) -> JSON:
    """A citizen's message in a private chat (id = chat_id) or a group (id = -|chat_id|)."""
    group_id = chat_id if chat_id < 0 else -chat_id
    chat = _chat(chat_id) if chat_type == "private" else _chat(group_id, chat_type)
    sender = user_id if user_id is not None else abs(chat_id)
    message: JSON = {
        "message_id": _next_message_id(chat["id"]),
        "from": _user(sender, language_code),
        "chat": chat,
        "date": int(time.time()),
    }
    message.update({key: value for key, value in fields.items() if value is not None})
    return message


def _update(**fields: Any) -> JSON:
    return {"update_id": _next_update_id(), **fields}


def text_update(
    chat_id: int,
    text: str,
    *,
    user_id: int | None = None,
    language_code: str | None = "ko",
    chat_type: str = "private",
) -> JSON:
    """A text message; a leading `/command` (with optional @bot) is marked as a bot_command entity."""
    entities = None
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        entities = [{"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}]
    message = _message(chat_id, user_id, language_code, chat_type, text=text, entities=entities)
    return _update(message=message)


def location_update(
    chat_id: int,
    latitude: float,
    longitude: float,
    *,
    horizontal_accuracy: float | None = None,
    user_id: int | None = None,
    language_code: str | None = "ko",
    chat_type: str = "private",
) -> JSON:
    """A shared location (the paperclip → Location, or a location request button)."""
    location: JSON = {"latitude": latitude, "longitude": longitude}
    if horizontal_accuracy is not None:
        location["horizontal_accuracy"] = horizontal_accuracy
    return _update(message=_message(chat_id, user_id, language_code, chat_type, location=location))


def photo_update(
    chat_id: int,
    file_id: str,
    *,
    sizes: Iterable[tuple[int, int, int]] = ((90, 90, 1200), (320, 320, 15000), (1280, 960, 120000)),
    caption: str | None = None,
    media_group_id: str | None = None,
    user_id: int | None = None,
    language_code: str | None = "ko",
    chat_type: str = "private",
) -> JSON:
    """A photo; `sizes` are (width, height, file_size); the largest PhotoSize has exactly `file_id`."""
    message = _message(
        chat_id,
        user_id,
        language_code,
        chat_type,
        photo=_photo_sizes(file_id, sizes),
        caption=caption,
        media_group_id=media_group_id,
    )
    return _update(message=message)


def contact_update(
    chat_id: int,
    phone_number: str,
    *,
    contact_user_id: int | None,
    first_name: str = "Citizen",
    user_id: int | None = None,
    language_code: str | None = "ko",
    chat_type: str = "private",
) -> JSON:
    """A shared contact; `contact_user_id` None means a contact who is not the sender nor on Telegram."""
    contact: JSON = {"phone_number": phone_number, "first_name": first_name}
    if contact_user_id is not None:
        contact["user_id"] = contact_user_id
    return _update(message=_message(chat_id, user_id, language_code, chat_type, contact=contact))


def callback_update(
    chat_id: int,
    data: str,
    *,
    message_id: int,
    message_text: str = "...",
    reply_markup: JSON | None = None,
    user_id: int | None = None,
    language_code: str | None = "ko",
    chat_type: str = "private",
    bot_id: int = 123456,
    bot_username: str = "seoul_civic_test_bot",
) -> JSON:
    """A press on an inline button with `data`, under the bot's message `message_id`."""
    group_id = chat_id if chat_id < 0 else -chat_id
    chat = _chat(chat_id) if chat_type == "private" else _chat(group_id, chat_type)
    sender = user_id if user_id is not None else abs(chat_id)
    message: JSON = {
        "message_id": message_id,
        "from": {"id": bot_id, "is_bot": True, "first_name": "Seoul Civic", "username": bot_username},
        "chat": chat,
        "date": int(time.time()) - 1,
        "text": message_text,
    }
    if reply_markup is not None:
        message["reply_markup"] = reply_markup
    with _ids_lock:
        query_id = str(next(_callback_ids))
    query: JSON = {
        "id": query_id,
        "from": _user(sender, language_code),
        "chat_instance": str(-(_digest((chat["id"], bot_id)) % 10**18)),
        "data": data,
        "message": message,
    }
    return _update(callback_query=query)


def sticker_update(
    chat_id: int,
    *,
    file_id: str = "CAACAgIAAxkBAAIBsticker",
    emoji: str = "👍",
    user_id: int | None = None,
    language_code: str | None = "ko",
    chat_type: str = "private",
) -> JSON:
    """A regular static sticker."""
    sticker: JSON = {
        "file_id": file_id,
        "file_unique_id": f"AgAD{_digest(file_id) % 10**8}",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": emoji,
        "file_size": 20000,
    }
    return _update(message=_message(chat_id, user_id, language_code, chat_type, sticker=sticker))


def voice_update(
    chat_id: int,
    *,
    file_id: str = "AwACAgUAAxkBAAIBvoice",
    duration: int = 3,
    user_id: int | None = None,
    language_code: str | None = "ko",
    chat_type: str = "private",
) -> JSON:
    """A voice note (OGG/Opus)."""
    voice: JSON = {
        "file_id": file_id,
        "file_unique_id": f"AgAD{_digest(file_id) % 10**8}",
        "duration": duration,
        "mime_type": "audio/ogg",
        "file_size": 4000 * duration,
    }
    return _update(message=_message(chat_id, user_id, language_code, chat_type, voice=voice))


def document_update(
    chat_id: int,
    file_id: str,
    mime_type: str,
    file_name: str,
    *,
    file_size: int = 50000,
    caption: str | None = None,
    user_id: int | None = None,
    language_code: str | None = "ko",
    chat_type: str = "private",
) -> JSON:
    """A file sent as a document (e.g. an uncompressed photo, a PDF)."""
    document: JSON = {
        "file_id": file_id,
        "file_unique_id": f"AgAD{_digest(file_id) % 10**8}",
        "file_name": file_name,
        "mime_type": mime_type,
        "file_size": file_size,
    }
    message = _message(chat_id, user_id, language_code, chat_type, document=document, caption=caption)
    return _update(message=message)


def edited_text_update(
    chat_id: int,
    text: str,
    message_id: int,
    *,
    user_id: int | None = None,
    language_code: str | None = "ko",
    chat_type: str = "private",
) -> JSON:
    """The citizen edited their earlier text message `message_id`."""
    message = _message(chat_id, user_id, language_code, chat_type, text=text)
    message["message_id"] = message_id
    message["date"] = int(time.time()) - 60
    message["edit_date"] = int(time.time())
    return _update(edited_message=message)


__all__ = [
    "Call",
    "FakeTelegramAPI",
    "callback_update",
    "contact_update",
    "document_update",
    "edited_text_update",
    "location_update",
    "photo_update",
    "sticker_update",
    "text_update",
    "voice_update",
]
