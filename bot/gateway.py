"""The one entry of every channel: record, deduplicate, route to Rasa, record the replies."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.json_logs import conversation_ref, log_event
from bot.messages import gateway_message
from bot.metrics import TURN_SECONDS
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.text import clean_text, neutralize_commands
from civic.cases import normalize_case_number
from civic.conversations import get_or_create_conversation, queue_on_transcript, record_message
from civic.db import in_thread, utcnow
from civic.language import detect_language
from civic.models import Attachment, Conversation, Message
from civic.settings import get_settings
from civic.turn_tokens import TOKEN_FIELD, sign_turn

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Payloads the gateway itself sends for non-text input; never accepted from citizens' text.
PHOTO_PAYLOAD = "/share_photo"
LOCATION_PAYLOAD = "/share_location"
# The key of a Rasa REST reply that names its domain response (nlu/rest_channel.py); gateway texts have none.
RESPONSE_NAME = "utter_action"
# Channel commands (Telegram's menu, phone menu keys) and the intents they stand for: a fixed
# allow-list, so a command can never smuggle entities or another intent into Rasa.
COMMAND_PAYLOADS = {
    "start": "/greet",
    "report": "/report_complaint",
    "status": "/check_status",
    "myreports": "/list_my_reports",
    "cancel": "/cancel_report",
    "help": "/help",
    "operator": "/request_human",
    "polls": "/list_polls",
}

# Channels whose bot speaks one language whatever the text looks like (a transcript with Latin letters).
FIXED_LANGUAGES = {"phone": "ko"}

# The ballot is secret: the transcript keeps that a citizen voted, never what they chose (the option
# button's title and payload) nor the receipt that would find their ballot in the public log.
VOTE_CHOICE = re.compile(r'^/vote\{.*"option"')
RECEIPT_ID = re.compile(r"\b[0-9a-f]{32}\b")
VOTE_CHOICE_STORED = "🗳"
RECEIPT_STORED = "[receipt]"


@dataclass(frozen=True)
class Inbound:
    """One citizen turn as a channel adapter hands it over."""

    channel: str
    external_id: str
    text: str = ""
    payload: str | None = None
    client_message_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    attachment_ids: tuple[str, ...] = ()
    command: str | None = None  # a key of COMMAND_PAYLOADS
    case_number: str | None = None  # with command "status": the case asked about (keyed on the phone)


@dataclass(frozen=True)
class Reply:
    id: int
    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    sender: str = "bot"
    secret: bool = False  # the text carries something the transcript keeps only redacted (a receipt)
    response: str | None = None  # the domain response it is (`utter_…`), whatever its wording; None for gateway texts


@dataclass(frozen=True)
class Outcome:
    """What became of the turn: answered by the bot, refused by the gateway, or Rasa was down."""

    status: Literal["answered", "refused", "unavailable", "in_progress", "noted", "held"]
    replies: list[Reply]
    language: str
    error: str | None = None


@dataclass
class _Turn:
    conversation_id: int
    message_id: int
    language: str
    previous_replies: list[Reply] | None  # set when this turn was already answered (a retry)
    in_progress: bool = False
    held: bool = False  # an operator holds the conversation: the turn is theirs, not the bot's
    resume_bot: bool = False  # a takeover ended without Rasa's tracker being resumed yet
    offered_payloads: set[str] = field(default_factory=set)
    attachment_ids: tuple[str, ...] = ()  # only those uploaded in this conversation


def server_metadata(sender: str, facts: dict[str, Any]) -> dict[str, Any]:
    """A turn's server-side facts for Rasa, with the token that lets the actions believe them.

    The facts also travel in the clear for Rasa's own components (the language detector reads `language`);
    actions read identity, coordinates and photos only from the token.
    """
    token = sign_turn(facts, sender=sender, key=get_settings().metadata_signing_key)
    return {**facts, TOKEN_FIELD: token}


class Gateway:
    """Channel adapters call `handle`; the gateway owns the transcript and the Rasa round trip."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        rasa: RasaClient,
        max_chars: int,
        interrupted_after: timedelta = timedelta(seconds=30),
    ) -> None:
        self.session_factory = session_factory
        self.rasa = rasa
        self.max_chars = max_chars
        # A turn still "received" after this was interrupted (its web worker died): a retry takes it up again.
        self.interrupted_after = interrupted_after

    async def _db(self, work: Callable[[Session], T]) -> T:
        return await in_thread(self.session_factory, work)

    async def handle(self, inbound: Inbound) -> Outcome:
        return await self._timed(inbound, self._handle(inbound))

    async def _timed(self, inbound: Inbound, turn: Awaitable[Outcome]) -> Outcome:
        """The turn, timed per channel and logged as one line: hashed conversation, outcome, latency; no text."""
        started = time.perf_counter()
        status = "failed"
        error: str | None = "exception"
        try:
            outcome = await turn
            status, error = outcome.status, outcome.error
            return outcome
        finally:
            seconds = time.perf_counter() - started
            TURN_SECONDS.labels(inbound.channel, status).observe(seconds)
            log_event(
                "turn",
                channel=inbound.channel,
                conversation=conversation_ref(f"{inbound.channel}:{inbound.external_id}"),
                outcome=status,
                error=error,
                latency_ms=round(seconds * 1000, 1),
            )

    async def _handle(self, inbound: Inbound) -> Outcome:
        text = clean_text(inbound.text)
        turn = await self._db(lambda s: self._record_inbound(s, inbound, text))
        if turn.previous_replies is not None:
            return Outcome("answered", turn.previous_replies, turn.language)
        if turn.held:
            return Outcome("held", [], turn.language)
        if turn.in_progress:
            reply = Reply(0, gateway_message("in_progress", turn.language), sender="system")
            return Outcome("in_progress", [reply], turn.language, "in_progress")
        if len(text) > self.max_chars:
            return await self._refuse(turn, "too_long", limit=self.max_chars)
        rasa_text = self._rasa_text(inbound, text, turn)
        if rasa_text is None:
            return await self._refuse(turn, "empty")
        sender = f"{inbound.channel}:{inbound.external_id}"
        metadata = server_metadata(
            sender,
            {
                "channel": inbound.channel,
                "external_id": inbound.external_id,
                "conversation_id": turn.conversation_id,
                "client_message_id": inbound.client_message_id,
                "latitude": inbound.latitude,
                "longitude": inbound.longitude,
                "attachment_ids": list(turn.attachment_ids),
                # Rasa's language detector falls back on this when the text tells nothing (a number, a button).
                "language": turn.language,
            },
        )
        try:
            if turn.resume_bot:
                await self.resume_bot(turn.conversation_id, sender)
            answers = await self.rasa.send(sender=sender, text=rasa_text, metadata=metadata)
        except RasaUnavailable as error:
            logger.warning("Rasa unavailable for conversation %s: %s", conversation_ref(sender), error)
            replies = await self._db(lambda s: self._record_replies(s, turn, [], "unanswered", "unavailable"))
            return Outcome("unavailable", replies, turn.language, "unavailable")
        replies = await self._db(lambda s: self._record_replies(s, turn, answers, "answered", None))
        return Outcome("answered", replies, turn.language)

    async def note(self, inbound: Inbound, message_key: str, **values: object) -> Outcome:
        """Records the citizen's turn and answers it with a gateway message, without Rasa.

        For what the channel handles itself: a verified phone number, an edited message, a sticker.
        """
        return await self._timed(inbound, self._note(inbound, message_key, **values))

    async def _note(self, inbound: Inbound, message_key: str, **values: object) -> Outcome:
        turn = await self._db(lambda s: self._record_inbound(s, inbound, clean_text(inbound.text)))
        if turn.previous_replies is not None:
            return Outcome("noted", turn.previous_replies, turn.language)
        text = gateway_message(message_key, turn.language, **values)
        replies = await self._db(
            lambda s: self._record_replies(s, turn, [{"text": text}], "answered", None, sender="system")
        )
        return Outcome("noted", replies, turn.language)

    async def resume_bot(self, conversation_id: int, sender: str) -> None:
        """Resumes Rasa's tracker after a takeover and remembers it did (RasaUnavailable if Rasa is down)."""
        await self.rasa.resume(sender)

        def resumed(session: Session) -> None:
            conversation = session.get(Conversation, conversation_id)
            if conversation is not None and conversation.held_by_user_id is None:
                conversation.rasa_paused = False

        await self._db(resumed)

    async def resume_report(self, conversation_id: int, *, key: str) -> list[Reply]:
        """After an operator hands back: the bot asks for what the citizen's report still misses.

        No citizen turn starts this, so the replies are queued in the outbox (with the transcript) for the
        citizen's channel; `key` (the hand-back's) makes a repeated hand-back ask once.
        """
        conversation = await self._db(lambda s: s.get(Conversation, conversation_id))
        if conversation is None or conversation.channel == "phone":
            return []  # a caller's call is over by the time the operator hands back
        lang = conversation.language
        sender = f"{conversation.channel}:{conversation.external_id}"
        metadata = server_metadata(
            sender,
            {
                "channel": conversation.channel,
                "external_id": conversation.external_id,
                "conversation_id": conversation.id,
                "language": lang,
            },
        )
        answers = await self.rasa.send(
            sender=sender,
            text=COMMAND_PAYLOADS["report"] + json.dumps({"language": lang}),
            metadata=metadata,
        )
        return await self._db(lambda s: self._queue_replies(s, conversation_id, answers, key))

    def _queue_replies(
        self, session: Session, conversation_id: int, answers: list[dict[str, Any]], key: str
    ) -> list[Reply]:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        replies = []
        for index, answer in enumerate(answers):
            text = answer.get("text") or ""
            buttons = [
                {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                for b in answer.get("buttons") or []
            ]
            if not text and not buttons:
                continue
            response = answer.get(RESPONSE_NAME)
            message = queue_on_transcript(
                session,
                conversation=conversation,
                sender="bot",
                kind="reply",
                text=text,
                dedupe_key=f"{key}:{index}",
                transcript_data={"buttons": buttons, "response": response},
                outbox_data={"buttons": buttons},
            )
            if message is None:
                continue  # this hand-back's question was already asked
            replies.append(Reply(message.id, text, buttons, response=response))
        return replies

    def _rasa_text(self, inbound: Inbound, text: str, turn: _Turn) -> str | None:
        # A button payload counts only if the bot offered that very button; anything else is text.
        if inbound.payload and inbound.payload in turn.offered_payloads:
            return inbound.payload
        if inbound.command in COMMAND_PAYLOADS:
            # Rasa keeps only the payload's own entities, so the conversation's language rides along.
            entities = {"language": turn.language}
            number = normalize_case_number(inbound.case_number or "")
            if inbound.command == "status" and number is not None:
                entities["case_id"] = number  # canonical, so nothing of the caller's choosing reaches Rasa
            return COMMAND_PAYLOADS[inbound.command] + json.dumps(entities)
        if text:
            return neutralize_commands(text)
        if inbound.latitude is not None and inbound.longitude is not None:
            return LOCATION_PAYLOAD
        if turn.attachment_ids:
            return PHOTO_PAYLOAD
        return None

    async def _refuse(self, turn: _Turn, error: str, **values: object) -> Outcome:
        text = gateway_message(error, turn.language, **values)
        replies = await self._db(
            lambda s: self._record_replies(s, turn, [{"text": text}], "answered", error, sender="system")
        )
        return Outcome("refused", replies, turn.language, error)

    def _record_inbound(self, session: Session, inbound: Inbound, text: str) -> _Turn:
        conversation = get_or_create_conversation(session, channel=inbound.channel, external_id=inbound.external_id)
        # A command's text ("/start") says nothing about the citizen's language; the phone line speaks Korean.
        language = (
            FIXED_LANGUAGES.get(inbound.channel)
            or (None if inbound.command else detect_language(text))
            or conversation.language
        )
        conversation.language = language
        attachments = owned_attachments(session, conversation.id, inbound.attachment_ids)
        data: dict[str, Any] = {"payload": inbound.payload, "attachment_ids": list(attachments)}
        if inbound.latitude is not None:
            data["location"] = [inbound.latitude, inbound.longitude]
        stored_text = text[: self.max_chars] + ("…" if len(text) > self.max_chars else "")
        if inbound.payload and VOTE_CHOICE.match(inbound.payload):
            stored_text, data["payload"] = VOTE_CHOICE_STORED, "/vote"
        offered = offered_payloads(session, conversation)
        message = record_message(
            session,
            conversation=conversation,
            direction="in",
            sender="citizen",
            text=stored_text,
            data=data,
            dedupe_key=inbound.client_message_id,
        )
        if message is not None:
            session.flush()
            if conversation.held_by_user_id is not None:
                message.status = "to_operator"  # the operator reads it in the console; Rasa never sees it
                return _Turn(conversation.id, message.id, language, None, held=True)
            return _Turn(
                conversation.id,
                message.id,
                language,
                None,
                offered_payloads=offered,
                attachment_ids=attachments,
                resume_bot=conversation.rasa_paused,
            )
        # A retry of a message we have: replay its answer, or try again if Rasa was down.
        original = session.execute(
            select(Message).where(
                Message.conversation_id == conversation.id, Message.dedupe_key == inbound.client_message_id
            )
        ).scalar_one()
        if original.status in ("answered", "to_operator"):
            return _Turn(conversation.id, original.id, language, replies_to(session, original))
        if original.status == "received" and utcnow() - original.created_at < self.interrupted_after:
            return _Turn(conversation.id, original.id, language, None, in_progress=True)
        original.status = "received"
        return _Turn(conversation.id, original.id, language, None, offered_payloads=offered, attachment_ids=attachments)

    def _record_replies(
        self,
        session: Session,
        turn: _Turn,
        answers: list[dict[str, Any]],
        status: str,
        error: str | None,
        sender: str = "bot",
    ) -> list[Reply]:
        conversation = session.get(Conversation, turn.conversation_id)
        inbound = session.get(Message, turn.message_id)
        assert conversation is not None and inbound is not None
        inbound.status = status
        if error == "unavailable":
            answers = [{"text": gateway_message("unavailable", turn.language)}]
            sender = "system"
        replies = []
        for answer in answers:
            if not answer.get("text") and not answer.get("buttons"):
                continue  # images and custom payloads have no web rendering yet
            buttons = [
                {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                for b in answer.get("buttons") or []
            ]
            text = answer.get("text") or ""
            response = answer.get(RESPONSE_NAME)
            stored = RECEIPT_ID.sub(RECEIPT_STORED, text)
            message = record_message(
                session,
                conversation=conversation,
                direction="out",
                sender=sender,
                text=stored,
                data={"buttons": buttons, "reply_to": inbound.id, "error": error, "response": response},
            )
            assert message is not None
            session.flush()
            # The channel still gets the whole text once; only what is stored is redacted.
            replies.append(Reply(message.id, text, buttons, sender, secret=stored != text, response=response))
        return replies


def owned_attachments(session: Session, conversation_id: int, ids: tuple[str, ...]) -> tuple[str, ...]:
    if not ids:
        return ()
    rows = session.execute(
        select(Attachment.id).where(Attachment.id.in_(ids), Attachment.conversation_id == conversation_id)
    ).scalars()
    owned = set(rows)
    return tuple(i for i in ids if i in owned)


def replies_to(session: Session, inbound: Message) -> list[Reply]:
    rows = session.execute(
        select(Message)
        .where(Message.conversation_id == inbound.conversation_id, Message.direction == "out", Message.id > inbound.id)
        .order_by(Message.id)
    ).scalars()
    return [
        Reply(m.id, m.text, list(m.data.get("buttons") or []), m.sender, response=m.data.get("response"))
        for m in rows
        if m.data.get("reply_to") == inbound.id
    ]


def offered_payloads(session: Session, conversation: Conversation) -> set[str]:
    """Payloads of the buttons in the bot's latest turn."""
    latest = session.execute(
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.direction == "out", Message.sender == "bot")
        .order_by(Message.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is None:
        return set()
    turn = session.execute(
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.direction == "out", Message.id <= latest.id)
        .order_by(Message.id.desc())
        .limit(20)
    ).scalars()
    payloads: set[str] = set()
    for message in turn:
        if message.data.get("reply_to") != latest.data.get("reply_to"):
            break
        payloads.update(b["payload"] for b in message.data.get("buttons") or [])
    return payloads
