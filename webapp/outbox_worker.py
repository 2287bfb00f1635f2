"""Delivers the civic outbox while the web app runs, with the web chat's sender registered."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.orm import Session, sessionmaker

from civic.conversations import record_message
from civic.db import session_scope
from civic.models import Conversation, OutboxMessage
from civic.outbox import deliver_due, register_sender

logger = logging.getLogger(__name__)


WEB_CHANNELS = ("web", "rest")


def register_web_senders(session_factory: sessionmaker[Session]) -> None:
    """Web chat (and plain REST) citizens read their transcript, so delivering = appending to it."""

    async def append_to_transcript(message: OutboxMessage) -> None:
        if (message.data or {}).get("transcript_id"):
            return  # written to the transcript with the outbox row (operator messages, the bot after a hand-back)

        def write() -> None:
            with session_scope(session_factory) as session:
                conversation = session.get(Conversation, message.conversation_id)
                if conversation is None:
                    raise LookupError(f"conversation {message.conversation_id} is gone")
                # The outbox row's dedupe key makes a re-delivery after a crash a no-op.
                record_message(
                    session,
                    conversation=conversation,
                    direction="out",
                    sender="bot",
                    text=message.text,
                    data={"outbox_id": message.id, "kind": message.kind},
                    dedupe_key=f"outbox:{message.id}",
                )

        await asyncio.to_thread(write)

    for channel in WEB_CHANNELS:
        register_sender(channel, append_to_transcript)


async def run_outbox_worker(
    session_factory: sessionmaker[Session], poll_seconds: float, wakeup: asyncio.Event | None = None
) -> None:
    """Delivers due messages every `poll_seconds`, or at once when `wakeup` is set (an operator just wrote)."""
    wakeup = wakeup or asyncio.Event()
    while True:
        wakeup.clear()
        try:
            await deliver_due(session_factory)
        except Exception:  # the worker must outlive one bad batch
            logger.exception("outbox delivery round failed")
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the shutdown's cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_seconds):
                await wakeup.wait()
