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
from civic.settings import get_settings
from civic.turn_tokens import TOKEN_FIELD, UnverifiedTurn, verify_turn

T = TypeVar("T")
# Channels whose adapters go through bot/gateway; anything else reached Rasa directly.
GATEWAY_CHANNELS = {"web", "telegram", "phone"}


@dataclass(frozen=True)
class Caller:
    """Who is talking, as the gateway's signed turn token says; `metadata` holds only its verified claims."""

    channel: str
    external_id: str
    metadata: dict[str, Any]


def verified_claims(tracker: Tracker) -> dict[str, Any]:
    """The claims of the latest turn's token (UnverifiedTurn if missing, forged, stale or someone else's)."""
    return claims_of(tracker.sender_id, tracker.latest_message.get("metadata") or {})


def claims_of(sender: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """What the gateway signed for this turn of `sender`; UnverifiedTurn otherwise.

    In development only, a turn with no token at all is `rasa shell` talking: it gets no claims, and so
    the "rest" conversation of its sender id, never a citizen of a real channel.
    """
    settings = get_settings()
    token = metadata.get(TOKEN_FIELD)
    if token is None and settings.environment == "development":
        return {}
    return verify_turn(
        token,
        sender=sender,
        key=settings.metadata_signing_key,
        max_age_seconds=settings.metadata_max_age_seconds,
    )


def caller_of(tracker: Tracker) -> Caller:
    claims = verified_claims(tracker)
    channel = claims.get("channel")
    if channel in GATEWAY_CHANNELS and claims.get("external_id"):
        return Caller(channel, str(claims["external_id"]), claims)
    # `rasa shell` in development: the sender id is the conversation, on a channel of its own.
    return Caller("rest", tracker.sender_id, claims)


__all__ = ["Caller", "UnverifiedTurn", "caller_of", "claims_of", "verified_claims"]


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
