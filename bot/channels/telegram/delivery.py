"""Sending to Telegram chats through the civic outbox, paced to Telegram's per-chat limit."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.orm import Session, sessionmaker
from telegram import Bot
from telegram.error import BadRequest, Forbidden

from bot.channels.telegram.render import OutgoingMessage, markup_for
from civic.db import session_scope
from civic.models import Conversation, OutboxMessage
from civic.outbox import Undeliverable, deliver_now, enqueue, register_sender

logger = logging.getLogger(__name__)
CHANNEL = "telegram"
# Telegram asks for at most about one message per second in one chat (30/s overall is
# AIORateLimiter's job).
SECONDS_BETWEEN_MESSAGES = 1.0


class ChatPacer:
    """Spaces the messages of each chat by SECONDS_BETWEEN_MESSAGES, in the order they asked."""

    def __init__(self, interval: float = SECONDS_BETWEEN_MESSAGES) -> None:
        self.interval = interval
        self._next_slot: dict[int, float] = {}

    async def wait_turn(self, chat_id: int) -> None:
        now = time.monotonic()
        slot = max(now, self._next_slot.get(chat_id, 0.0))
        self._next_slot[chat_id] = slot + self.interval  # reserved before sleeping, so callers queue up
        if len(self._next_slot) > 10_000:
            self._next_slot = {chat: t for chat, t in self._next_slot.items() if t > now}
        if slot > now:
            await asyncio.sleep(slot - now)


class TelegramDelivery:
    """The outbox sender of channel `telegram`, plus enqueue-and-send for the replies of a turn."""

    def __init__(self, bot: Bot, session_factory: sessionmaker[Session]) -> None:
        self.bot = bot
        self.session_factory = session_factory
        self.pacer = ChatPacer()
        self._chat_ids: dict[int, int] = {}

    def register(self) -> None:
        register_sender(CHANNEL, self.send)

    async def send(self, message: OutboxMessage) -> None:
        """Delivers one outbox row; Undeliverable when the citizen blocked the bot or the chat is gone."""
        chat_id = await self._chat_id(message.conversation_id)
        await self.pacer.wait_turn(chat_id)
        try:
            await self.bot.send_message(chat_id, message.text, reply_markup=markup_for(message.data or {}))
        except Forbidden as error:  # blocked by the user, or kicked: retrying cannot help
            raise Undeliverable(error.message) from error
        except BadRequest as error:  # chat not found, malformed markup: the same request fails again
            raise Undeliverable(error.message) from error

    async def _chat_id(self, conversation_id: int) -> int:
        if conversation_id not in self._chat_ids:

            def read() -> int:
                with session_scope(self.session_factory) as session:
                    conversation = session.get(Conversation, conversation_id)
                    if conversation is None or conversation.channel != CHANNEL:
                        raise Undeliverable(f"conversation {conversation_id} is not a Telegram chat")
                    return int(conversation.external_id)

            if len(self._chat_ids) > 100_000:  # a cache, not a registry: start over rather than grow
                self._chat_ids.clear()
            self._chat_ids[conversation_id] = await asyncio.to_thread(read)
        return self._chat_ids[conversation_id]

    async def send_turn(self, conversation_id: int, messages: list[OutgoingMessage], dedupe_key: str) -> None:
        """Queues a turn's messages and sends them at once; the outbox worker retries what fails.

        The dedupe key is the update's: handling the same update again sends nothing twice.
        """

        def queue() -> list[OutboxMessage]:
            with session_scope(self.session_factory) as session:
                rows = []
                for index, message in enumerate(messages):
                    row = enqueue(
                        session,
                        conversation_id=conversation_id,
                        channel=CHANNEL,
                        kind="reply",
                        text=message.text,
                        data=message.data,
                        dedupe_key=f"{dedupe_key}:{index}",
                        held_for_caller=True,
                    )
                    if row is not None:
                        session.flush()
                        rows.append(row)
                for row in rows:
                    session.expunge(row)  # read by the sender after this transaction ends
                return rows

        for row in await asyncio.to_thread(queue):
            if not await deliver_now(self.session_factory, row):
                logger.info("reply %s to conversation %s left to the outbox worker", row.id, conversation_id)
