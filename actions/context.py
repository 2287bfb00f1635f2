"""What every action needs: the conversation behind a tracker, its language, and the civic database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from rasa_sdk import Tracker
from sqlalchemy.orm import Session

from civic.conversations import get_or_create_conversation
from civic.db import get_session_factory, in_thread
from civic.language import LANGUAGES, detect_language

T = TypeVar("T")
# Channels whose adapters go through bot/gateway; anything else reached Rasa directly.
GATEWAY_CHANNELS = {"web", "telegram", "phone"}


@dataclass(frozen=True)
class Caller:
    """Who is talking, as the gateway (server-side metadata) or Rasa's sender id says."""

    channel: str
    external_id: str
    metadata: dict[str, Any]


def caller_of(tracker: Tracker) -> Caller:
    metadata = dict(tracker.latest_message.get("metadata") or {})
    channel = metadata.get("channel")
    if channel in GATEWAY_CHANNELS and metadata.get("external_id"):
        return Caller(channel, str(metadata["external_id"]), metadata)
    # `rasa shell` and plain REST clients: the sender id is the conversation.
    return Caller("rest", tracker.sender_id, metadata)


def language_of(tracker: Tracker) -> str:
    language = tracker.get_slot("language")
    if language in LANGUAGES:
        return str(language)
    return detect_language(tracker.latest_message.get("text") or "") or "ko"


def conversation_id_of(session: Session, tracker: Tracker) -> int:
    caller = caller_of(tracker)
    conversation = get_or_create_conversation(
        session, channel=caller.channel, external_id=caller.external_id, language=language_of(tracker)
    )
    return conversation.id


async def in_session(work: Callable[[Session], T]) -> T:
    """Runs blocking database work in a thread, inside one committed transaction."""

    return await in_thread(get_session_factory(), work)


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    values = [e.get("value") for e in tracker.latest_message.get("entities", []) if e.get("entity") == entity]
    return str(values[-1]) if values and values[-1] else None
