"""Turns gateway replies into Telegram messages (merged text, inline keyboards) and back into markup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup

from bot.channels.telegram.texts import INPUT_PLACEHOLDER, SHARE_LOCATION, VERIFY_PHONE, text_for
from bot.gateway import Reply
from civic.i18n import LANGUAGE_NAMES

MAX_TEXT = 4096  # Telegram's limit for one message
BUTTONS_PER_ROW = 2
BUTTON_PREFIX = "b"
LANGUAGE_PREFIX = "lang"


@dataclass(frozen=True)
class OutgoingMessage:
    """One Telegram message as the outbox stores it: text plus a JSON description of its keyboard."""

    text: str
    data: dict[str, Any]


def button_data(reply_id: int, index: int) -> str:
    # Callback data is capped at 64 bytes and comes back from the client: carry only a reference to
    # the button in our transcript, never the Rasa payload itself.
    return f"{BUTTON_PREFIX}:{reply_id}:{index}"


def parse_button_data(data: str) -> tuple[int, int] | None:
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != BUTTON_PREFIX or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return int(parts[1]), int(parts[2])


def merge_replies(replies: list[Reply], *, reply_keyboard_language: str | None = None) -> list[OutgoingMessage]:
    """A turn's replies as as few messages as possible (Telegram allows about one per second per chat).

    Texts are joined; the buttons of every reply go on the last message's inline keyboard. A main
    reply keyboard (location and phone buttons) can only go on a message without inline buttons.
    """
    texts = [reply.text for reply in replies if reply.text.strip()]
    buttons = [
        {"text": button["title"][:64] or "…", "callback_data": button_data(reply.id, index)}
        for reply in replies
        for index, button in enumerate(reply.buttons)
    ]
    if not texts and not buttons:
        return []
    chunks = split_text("\n\n".join(texts) or "…")
    secret = any(reply.secret for reply in replies)
    # A secret text (a vote receipt) is wiped from the outbox once Telegram has it.
    messages = [OutgoingMessage(chunk, {"secret": True} if secret else {}) for chunk in chunks]
    last = messages[-1]
    if buttons:
        rows = [buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
        last.data["inline_keyboard"] = rows
    elif reply_keyboard_language:
        last.data["reply_keyboard"] = reply_keyboard_language
    return messages


def split_text(text: str) -> list[str]:
    """Chunks of at most MAX_TEXT characters, cut at line breaks where possible."""
    chunks = []
    while len(text) > MAX_TEXT:
        cut = text.rfind("\n", 0, MAX_TEXT)
        cut = cut if cut > MAX_TEXT // 2 else MAX_TEXT
        chunks.append(text[:cut])
        text = text[cut:].lstrip("\n")
    chunks.append(text)
    return chunks


def language_picker() -> dict[str, Any]:
    row = [{"text": name, "callback_data": f"{LANGUAGE_PREFIX}:{code}"} for code, name in LANGUAGE_NAMES.items()]
    return {"inline_keyboard": [row]}


def markup_for(data: dict[str, Any]) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    """The reply_markup an outbox message's data describes."""
    if data.get("inline_keyboard"):
        rows = data["inline_keyboard"]
        return InlineKeyboardMarkup(
            [[InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row] for row in rows]
        )
    if data.get("buttons") and data.get("transcript_id"):  # the bot's question queued after a hand-back
        reply_id = int(data["transcript_id"])
        buttons = [
            InlineKeyboardButton(str(b.get("title", ""))[:64] or "…", callback_data=button_data(reply_id, i))
            for i, b in enumerate(data["buttons"])
        ]
        return InlineKeyboardMarkup([buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)])
    language = data.get("reply_keyboard")
    if language:
        return main_keyboard(str(language))
    return None


def main_keyboard(language: str) -> ReplyKeyboardMarkup:
    """Always-there buttons for what text can't carry: the location and the citizen's own number."""
    return ReplyKeyboardMarkup(
        [
            [
                KeyboardButton(text_for(SHARE_LOCATION, language), request_location=True),
                KeyboardButton(text_for(VERIFY_PHONE, language), request_contact=True),
            ]
        ],
        resize_keyboard=True,
        is_persistent=True,
        input_field_placeholder=text_for(INPUT_PLACEHOLDER, language),
    )
