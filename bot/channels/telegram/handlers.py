"""What the bot does with each kind of Telegram update, in a private chat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from telegram import Message as TelegramMessage
from telegram import PhotoSize, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.channels.telegram.delivery import CHANNEL, TelegramDelivery
from bot.channels.telegram.render import (
    LANGUAGE_PREFIX,
    OutgoingMessage,
    language_picker,
    merge_replies,
    parse_button_data,
)
from bot.channels.telegram.texts import BUTTON_EXPIRED, CHOOSE_LANGUAGE, PRIVATE_ONLY, text_for
from bot.gateway import COMMAND_PAYLOADS, Gateway, Inbound, Outcome
from civic.conversations import get_or_create_conversation
from civic.db import in_thread
from civic.i18n import LANGUAGE_NAMES
from civic.language import LANGUAGES
from civic.media import UnsupportedMedia, store_photo
from civic.models import Conversation, Message
from civic.phones import get_or_create_citizen, normalize_phone

logger = logging.getLogger(__name__)
T = TypeVar("T")
Context = ContextTypes.DEFAULT_TYPE
GATEWAY_COMMANDS = ["report", "status", "myreports", "polls", "cancel", "help"]


class TelegramHandlers:
    """Registers one handler per kind of update; each turns it into a gateway turn and sends the replies."""

    def __init__(
        self,
        *,
        gateway: Gateway,
        delivery: TelegramDelivery,
        session_factory: sessionmaker[Session],
        max_photo_bytes: int,
    ) -> None:
        self.gateway = gateway
        self.delivery = delivery
        self.session_factory = session_factory
        self.max_photo_bytes = max_photo_bytes
        self._last_media_group: dict[int, str] = {}

    def register(self, application: Application) -> None:
        application.add_handler(TypeHandler(Update, self.private_chats_only), group=-1)
        application.add_handler(MessageHandler(filters.UpdateType.EDITED, self.on_edited))
        application.add_handler(CommandHandler("start", self.on_start))
        application.add_handler(CommandHandler("language", self.on_language))
        application.add_handler(CommandHandler(GATEWAY_COMMANDS, self.on_command))
        application.add_handler(CallbackQueryHandler(self.on_callback))
        application.add_handler(MessageHandler(filters.CONTACT, self.on_contact))
        application.add_handler(MessageHandler(filters.LOCATION, self.on_location))
        application.add_handler(MessageHandler(filters.PHOTO | filters.Document.IMAGE, self.on_photo))
        application.add_handler(MessageHandler(filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE, self.on_voice))
        application.add_handler(MessageHandler(filters.TEXT, self.on_text))
        application.add_handler(MessageHandler(filters.ALL, self.on_other))

    # -- helpers ---------------------------------------------------------------------------------

    async def _db(self, work: Callable[[Session], T]) -> T:
        return await in_thread(self.session_factory, work)

    async def _conversation(self, update: Update) -> tuple[int, str]:
        """The chat's conversation id and language; a new one starts in the Telegram client's language."""
        chat_id = str(update.effective_chat.id)  # type: ignore[union-attr]
        user = update.effective_user
        client_language = (user.language_code or "")[:2] if user else ""

        def work(session: Session) -> tuple[int, str]:
            existing = session.execute(
                select(Conversation).where(Conversation.channel == CHANNEL, Conversation.external_id == chat_id)
            ).scalar_one_or_none()
            if existing is not None:
                return existing.id, existing.language
            language = client_language if client_language in LANGUAGES else "ko"
            conversation = get_or_create_conversation(session, channel=CHANNEL, external_id=chat_id, language=language)
            session.flush()
            return conversation.id, conversation.language

        return await self._db(work)

    def _inbound(self, update: Update, **fields: object) -> Inbound:
        return Inbound(
            channel=CHANNEL,
            external_id=str(update.effective_chat.id),  # type: ignore[union-attr]
            client_message_id=f"tg:{update.update_id}",
            **fields,  # type: ignore[arg-type]
        )

    async def _turn(self, update: Update, inbound: Inbound, *, send: bool = True, keyboard: bool = False) -> Outcome:
        conversation_id, _ = await self._conversation(update)
        outcome = await self.gateway.handle(inbound)
        if send:
            await self._send(update, conversation_id, outcome, keyboard=keyboard)
        return outcome

    async def _note(self, update: Update, message_key: str, *, keyboard: bool = False, **values: object) -> None:
        conversation_id, _ = await self._conversation(update)
        outcome = await self.gateway.note(self._inbound(update), message_key, **values)
        await self._send(update, conversation_id, outcome, keyboard=keyboard)

    async def _send(self, update: Update, conversation_id: int, outcome: Outcome, *, keyboard: bool = False) -> None:
        messages = merge_replies(outcome.replies, reply_keyboard_language=outcome.language if keyboard else None)
        await self.delivery.send_turn(conversation_id, messages, dedupe_key=f"tg-turn:{update.update_id}")

    def _typing(self, update: Update) -> None:
        # Only for slow turns (a photo download): a text turn answers faster than the indicator shows,
        # and every call counts against Telegram's 30 requests/s. Best effort and not awaited.
        bot, chat_id = self.delivery.bot, update.effective_chat.id  # type: ignore[union-attr]

        async def typing() -> None:
            with contextlib.suppress(TelegramError, TimeoutError):
                async with asyncio.timeout(5):
                    await bot.send_chat_action(chat_id, ChatAction.TYPING)

        task = asyncio.get_running_loop().create_task(typing())
        task.add_done_callback(lambda _: None)

    # -- handlers --------------------------------------------------------------------------------

    async def private_chats_only(self, update: Update, context: Context) -> None:
        chat = update.effective_chat
        if chat is None or chat.type == ChatType.PRIVATE:
            return
        message = update.effective_message
        # In groups the bot only hears commands and mentions; answer those, once each, and stop.
        if message is not None and update.message is not None and (message.text or "").startswith("/"):
            with contextlib.suppress(TelegramError):
                await context.bot.send_message(chat.id, PRIVATE_ONLY)
        raise ApplicationHandlerStop

    async def on_start(self, update: Update, context: Context) -> None:
        conversation_id, _ = await self._conversation(update)
        outcome = await self.gateway.handle(self._inbound(update, text="/start", command="start"))
        greeting = merge_replies(outcome.replies, reply_keyboard_language=outcome.language)
        picker = OutgoingMessage(CHOOSE_LANGUAGE, language_picker())
        await self.delivery.send_turn(conversation_id, [*greeting, picker], dedupe_key=f"tg-turn:{update.update_id}")

    async def on_language(self, update: Update, context: Context) -> None:
        conversation_id, _ = await self._conversation(update)
        picker = OutgoingMessage(CHOOSE_LANGUAGE, language_picker())
        await self.delivery.send_turn(conversation_id, [picker], dedupe_key=f"tg-turn:{update.update_id}")

    async def on_command(self, update: Update, context: Context) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        command = message.text.split()[0].lstrip("/").split("@")[0].lower()
        arguments = " ".join(context.args or [])
        if arguments:  # "/status SR-2026-000123" is the same as sending the number
            await self._turn(update, self._inbound(update, text=arguments))
        elif command in COMMAND_PAYLOADS:
            await self._turn(update, self._inbound(update, text=message.text, command=command))

    async def on_text(self, update: Update, context: Context) -> None:
        message = update.effective_message
        assert message is not None
        await self._turn(update, self._inbound(update, text=message.text or ""))

    async def on_callback(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        data = query.data or ""
        if data.startswith(f"{LANGUAGE_PREFIX}:"):
            await self._choose_language(update, data.split(":", 1)[1])
            return
        button = parse_button_data(data)
        conversation_id, language = await self._conversation(update)
        offered = await self._db(lambda s: offered_button(s, conversation_id, button)) if button else None
        if offered is None:
            await _answer(query, text_for(BUTTON_EXPIRED, language))
            return
        await _answer(query)
        await _remove_buttons(query.message)
        title, payload = offered
        await self._turn(update, self._inbound(update, text=title, payload=payload))

    async def _choose_language(self, update: Update, language: str) -> None:
        query = update.callback_query
        assert query is not None
        if language not in LANGUAGES:
            await _answer(query)
            return

        chat_id = str(update.effective_chat.id)  # type: ignore[union-attr]

        def work(session: Session) -> None:
            get_or_create_conversation(session, channel=CHANNEL, external_id=chat_id, language=language)

        await self._db(work)
        await _answer(query, LANGUAGE_NAMES[language])
        await _remove_buttons(query.message)
        conversation_id, _ = await self._conversation(update)
        outcome = await self.gateway.note(self._inbound(update, text=LANGUAGE_NAMES[language]), "language_set")
        await self._send(update, conversation_id, outcome, keyboard=True)

    async def on_location(self, update: Update, context: Context) -> None:
        message = update.effective_message
        assert message is not None and message.location is not None
        location = message.location
        await self._turn(update, self._inbound(update, latitude=location.latitude, longitude=location.longitude))

    async def on_photo(self, update: Update, context: Context) -> None:
        message = update.effective_message
        assert message is not None
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        file_id = self._pick_file(message)
        if file_id is None:
            await self._note(update, "unsupported_file", limit_mb=self.max_photo_bytes // (1024 * 1024))
            return
        conversation_id, _ = await self._conversation(update)
        self._typing(update)
        try:
            telegram_file = await context.bot.get_file(file_id)
            content = bytes(await telegram_file.download_as_bytearray())
            attachment_id = await self._db(
                lambda s: (
                    store_photo(s, conversation_id=conversation_id, content=content, max_bytes=self.max_photo_bytes).id
                )
            )
        except UnsupportedMedia:
            await self._note(update, "unsupported_file", limit_mb=self.max_photo_bytes // (1024 * 1024))
            return
        # An album arrives as one update per photo: answer its first photo, keep the others quietly.
        group = message.media_group_id
        repeat = group is not None and self._last_media_group.get(chat_id) == group
        if group is not None:
            if len(self._last_media_group) > 10_000:  # only the latest album per chat matters
                self._last_media_group.clear()
            self._last_media_group[chat_id] = group
        inbound = self._inbound(update, text=message.caption or "", attachment_ids=(attachment_id,))
        await self._turn(update, inbound, send=not repeat)

    def _pick_file(self, message: TelegramMessage) -> str | None:
        """The largest photo size within the limit (Telegram lists sizes smallest first), or the image document."""
        if message.photo:
            fitting: list[PhotoSize] = [p for p in message.photo if (p.file_size or 0) <= self.max_photo_bytes]
            return fitting[-1].file_id if fitting else None
        document = message.document
        if document is not None and (document.file_size or 0) <= self.max_photo_bytes:
            return document.file_id
        return None

    async def on_contact(self, update: Update, context: Context) -> None:
        message = update.effective_message
        user = update.effective_user
        assert message is not None and message.contact is not None and user is not None
        contact = message.contact
        # A forwarded or typed-in card of someone else proves nothing; only the "share my number" button does.
        if contact.user_id != user.id:
            await self._note(update, "contact_not_yours", keyboard=True)
            return
        try:
            phone = normalize_phone(contact.phone_number)
        except ValueError:
            await self._note(update, "invalid_phone")
            return
        chat_id = str(update.effective_chat.id)  # type: ignore[union-attr]

        def verify(session: Session) -> None:
            citizen = get_or_create_citizen(session, phone=phone)
            conversation = get_or_create_conversation(session, channel=CHANNEL, external_id=chat_id)
            conversation.citizen_id = citizen.id

        await self._db(verify)
        await self._note(update, "phone_verified", last4=phone[-4:])

    async def on_edited(self, update: Update, context: Context) -> None:
        edited = update.edited_message
        if edited is None or edited.location is not None:
            return  # live-location updates arrive as edits every few seconds: not the citizen's doing
        await self._note(update, "edited")

    async def on_voice(self, update: Update, context: Context) -> None:
        await self._note(update, "voice_not_supported")

    async def on_other(self, update: Update, context: Context) -> None:
        if update.effective_message is None:
            return
        await self._note(update, "unsupported_message")


def offered_button(session: Session, conversation_id: int, button: tuple[int, int] | None) -> tuple[str, str] | None:
    """(title, payload) of button `index` of our message `reply_id` in this conversation, if it exists."""
    if button is None:
        return None
    reply_id, index = button
    message = session.get(Message, reply_id)
    if message is None or message.conversation_id != conversation_id or message.direction != "out":
        return None
    buttons = message.data.get("buttons") or []
    if index >= len(buttons):
        return None
    return str(buttons[index]["title"]), str(buttons[index]["payload"])


async def _answer(query: object, text: str | None = None) -> None:
    # Telegram shows a spinner on the button until the query is answered; failing to answer is cosmetic.
    with contextlib.suppress(TelegramError):
        await query.answer(text)  # type: ignore[attr-defined]


async def _remove_buttons(message: object) -> None:
    """Takes the inline keyboard off a message once used, so a second tap cannot answer twice."""
    if isinstance(message, TelegramMessage):
        with contextlib.suppress(TelegramError):
            await message.edit_reply_markup(None)
