"""The 120 line's dialogue: a caller's turn (speech, keys or silence) → the gateway → the next TwiML."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot.gateway import Gateway, Inbound, Outcome
from bot.metrics import ASR_DECODE_SECONDS, PHONE_GATE_REFUSALS
from bot.rasa_client import RasaClient, RasaUnavailable
from civic import takeover
from civic.conversations import record_message, request_handoff
from civic.db import in_thread, utcnow
from civic.media import store_audio
from civic.models import Conversation, PhoneCall
from civic.phone_calls import (
    ACTIVE,
    BRIDGED,
    ENDED,
    QUEUED,
    bridge_to_operator,
    end_call,
    get_call,
    has_report_content,
    keep_draft,
    queue_for_operator,
    start_call,
)
from civic.settings import Settings
from telephony import phone_texts as say
from telephony import twiml
from telephony.asr import Recognizers
from telephony.audio import PHONE_RATE, phone_to_model_rate, wav_bytes
from telephony.expectations import (
    OPERATOR_KEY,
    Choice,
    Expectation,
    after_reply,
    best_choice,
    case_number_from_keys,
    district_choices,
    main_menu,
    menu_text,
)
from telephony.transcripts import FIELD_OF_RESPONSE
from telephony.understanding import listen_closed, listen_free

log = logging.getLogger(__name__)
T = TypeVar("T")
# Twilio's answer when a call is no longer in progress (the caller hung up while we were thinking).
CALL_NOT_IN_PROGRESS = 21220
MISSES_BEFORE_OFFER = 2
SILENCES_BEFORE_OFFER = 2
SILENCES_BEFORE_GOODBYE = 3


@dataclass(frozen=True)
class Speech:
    """What the caller said in one turn: 8 kHz int16 samples, and when (monotonic) their speech ended."""

    samples: np.ndarray
    ended_at: float


@dataclass(frozen=True)
class Keys:
    digits: str


@dataclass(frozen=True)
class Silence:
    pass


CallerTurn = Speech | Keys | Silence


@dataclass(frozen=True)
class CallState:
    """A phone call's row as the turn logic needs it, read in one transaction."""

    call_sid: str
    conversation_id: int
    status: str
    turn: int
    expectation: Expectation
    silences: int
    misses: int
    seconds: float  # since the call started

    @classmethod
    def of(cls, call: PhoneCall) -> CallState:
        return cls(
            call_sid=call.call_sid,
            conversation_id=call.conversation_id,
            status=call.status,
            turn=call.turn,
            expectation=Expectation.from_json(call.expectation),
            silences=call.silences,
            misses=call.misses,
            seconds=(utcnow() - call.started_at).total_seconds(),
        )


@dataclass(frozen=True)
class TurnResult:
    """The TwiML that answers a turn, what was heard, and what the call does next."""

    twiml: str
    next: Literal["listen", "hand_off", "hang_up"]
    heard: str = ""
    prompt: str = ""


class CallGone(Exception):
    """The call ended before its new TwiML reached Twilio."""


class CallControl:
    """Twilio's Calls resource: replaces a live call's TwiML with the bot's answer."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def redirect(self, call_sid: str, document: str) -> None:
        try:
            await asyncio.to_thread(self.client.calls(call_sid).update, twiml=document)
        except TwilioRestException as error:
            if error.code == CALL_NOT_IN_PROGRESS or error.status == 404:
                raise CallGone(call_sid) from None
            raise


class PhoneLine:
    """Turns of every call: read the call's state, understand the caller, ask the bot, save, answer."""

    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: sessionmaker[Session],
        gateway: Gateway,
        rasa: RasaClient,
        recognizers: Recognizers,
        calls: CallControl,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.gateway = gateway
        self.rasa = rasa
        self.recognizers = recognizers
        self.calls = calls

    async def _db(self, work: Callable[[Session], T]) -> T:
        return await in_thread(self.session_factory, work)

    # ---- webhooks ------------------------------------------------------------------------------------------------

    async def incoming(self, call_sid: str, caller: str | None) -> str:
        """TwiML for a new call (or Twilio's retry of the same webhook): greet, then listen."""
        greeting = main_menu(say.GREETING)

        def start(session: Session) -> CallState:
            call = start_call(session, call_sid=call_sid, caller=caller, expectation=greeting.to_json())
            session.flush()
            if call.turn == 0 and call.status == ACTIVE:
                conversation = session.get(Conversation, call.conversation_id)
                assert conversation is not None
                record_message(
                    session,
                    conversation=conversation,
                    direction="out",
                    sender="system",
                    text=say.GREETING,
                    dedupe_key=f"{call_sid}:greeting",
                )
            return CallState.of(call)

        state = await self._db(start)
        return self._current_twiml(state)

    async def resume(self, call_sid: str) -> str:
        """TwiML when a call's stream ended without our answer: ask the same question again."""
        state = await self._db(lambda s: _state(s, call_sid))
        if state is None:
            return twiml.goodbye(say.ALREADY_ENDED, self.settings)
        if state.status == ACTIVE:
            expectation, silences = state.expectation, state.silences
            state = await self._db(lambda s: _advance(s, call_sid, expectation, silences=silences))
        return self._current_twiml(state)

    def _current_twiml(self, state: CallState) -> str:
        if state.status == BRIDGED:
            return twiml.goodbye(say.OPERATOR_DONE, self.settings)
        if state.status == QUEUED:
            return twiml.hand_off(say.HANDING_OFF, self.settings)
        if state.status == ENDED:
            return twiml.goodbye(say.ALREADY_ENDED, self.settings)
        return twiml.listen(state.expectation.prompt, call_sid=state.call_sid, turn=state.turn, settings=self.settings)

    async def call_ended(self, call_sid: str, reason: str) -> None:
        """The call is over (Twilio's status callback, or the stream's stop): keep an unfinished report."""
        state = await self._db(lambda s: _state(s, call_sid))
        if state is None or state.status == ENDED:
            return
        slots = await self._slots(call_sid)

        def finish(session: Session) -> int | None:
            call = get_call(session, call_sid, for_update=True)
            if call is None or not end_call(session, call, reason):
                return None
            if has_report_content(slots):
                keep_draft(session, conversation_id=call.conversation_id, channel="phone", slots=slots, reason=reason)
            conversation = session.get(Conversation, call.conversation_id)
            if conversation is None or conversation.held_by_user_id is None:
                return None
            takeover.release(session, None, conversation.id)  # the caller hung up on the operator
            return conversation.id

        conversation_id = await self._db(finish)
        if conversation_id is not None:
            await self._resume_bot(conversation_id, call_sid)

    # ---- operators -----------------------------------------------------------------------------------------------

    async def bridge(self, conversation_id: int, desk_phone: str) -> bool:
        """Takes the caller of `conversation_id` out of Twilio's queue to the operator's desk line.

        False when the caller is gone (hung up while waiting); the call is then ended here.
        """
        call_sid = await self._db(lambda s: _queued_call_sid(s, conversation_id))
        if call_sid is None:
            return False
        try:
            await self.calls.redirect(call_sid, twiml.bridge(say.CONNECTING_OPERATOR, desk_phone, self.settings))
        except CallGone:
            await self.call_ended(call_sid, "hangup")
            return False

        def mark(session: Session) -> None:
            call = get_call(session, call_sid, for_update=True)
            if call is not None and call.status == QUEUED:
                bridge_to_operator(session, call)

        await self._db(mark)
        return True

    async def operator_done(self, call_sid: str) -> str:
        """TwiML when the operator's leg ends (Twilio's <Dial action>): thank the caller and hang up."""
        await self.call_ended(call_sid, "operator")
        return twiml.goodbye(say.OPERATOR_DONE, self.settings)

    async def _resume_bot(self, conversation_id: int, call_sid: str) -> None:
        try:
            await self.gateway.resume_bot(conversation_id, f"phone:{call_sid}")
        except RasaUnavailable:
            log.warning("could not resume the bot's tracker of a finished call")

    # ---- the media stream ----------------------------------------------------------------------------------------

    async def expectation_for(self, call_sid: str, turn: int) -> Expectation | None:
        """What the stream of `turn` listens for; None when that stream is stale or the call is not active."""
        state = await self._db(lambda s: _state(s, call_sid))
        if state is None or state.status != ACTIVE or state.turn != turn:
            return None
        return state.expectation

    async def answer(self, call_sid: str, turn: int, caller_turn: CallerTurn) -> TurnResult | None:
        """Takes the turn and sends its TwiML to the live call; None when the turn was stale."""
        result = await self.take_turn(call_sid, turn, caller_turn)
        if result is None:
            return None
        try:
            await self.calls.redirect(call_sid, result.twiml)
        except CallGone:
            await self.call_ended(call_sid, "hangup")
            return result
        if isinstance(caller_turn, Speech):
            log.info(
                "call turn answered %.0f ms after the caller stopped speaking",
                (time.monotonic() - caller_turn.ended_at) * 1000,
            )
        if result.next == "hang_up":
            await self.call_ended(call_sid, "bot_goodbye")
        return result

    async def take_turn(self, call_sid: str, turn: int, caller_turn: CallerTurn) -> TurnResult | None:
        """The TwiML that answers `caller_turn`, with the call's state saved; nothing is sent to Twilio."""
        state = await self._db(lambda s: _state(s, call_sid))
        if state is None or state.status != ACTIVE or state.turn != turn:
            return None
        if state.seconds > self.settings.phone_max_call_seconds:
            return await self._hand_off(state, "long_call", say.TOO_LONG)
        if isinstance(caller_turn, Silence):
            return await self._silence(state)
        if isinstance(caller_turn, Keys):
            return await self._keys(state, caller_turn.digits)
        return await self._speech(state, caller_turn)

    async def _keys(self, state: CallState, digits: str) -> TurnResult:
        expectation = state.expectation
        keys = digits.rstrip("#")
        if keys == OPERATOR_KEY or (keys.startswith(OPERATOR_KEY) and not expectation.case_number_keys):
            return await self._hand_off(state, "caller_pressed_0", say.HANDING_OFF)
        if expectation.case_number_keys and keys.isdigit():
            today = utcnow().astimezone(ZoneInfo(self.settings.timezone)).date()
            number = case_number_from_keys(keys, today)
            # Keyed digits are a status question: said as a command with the number, not left to the NLU,
            # which can read a bare case number as a withdrawal.
            inbound = Inbound("phone", state.call_sid, text=number, command="status", case_number=number)
            return await self._to_bot(state, inbound, heard=f"[{digits}]")
        choice = expectation.by_key(keys)
        if choice is None:
            if not expectation.choices:
                return await self._again(state, say.KEYS_NOT_EXPECTED, miss=True, heard=f"[{digits}]")
            return await self._again(state, f"{keys}번은 없는 번호예요.", miss=True, heard=f"[{digits}]")
        return await self._to_bot(state, self._choice_inbound(state, choice, choice.label), heard=f"[{digits}]")

    async def _speech(self, state: CallState, speech: Speech) -> TurnResult:
        expectation = state.expectation
        audio = phone_to_model_rate(speech.samples)
        # A caller in another language shows it in the first answer, or by not being understood; listening
        # for it on every turn would cost every turn a second decoding.
        detect = state.turn == 0 or state.misses > 0
        listen = listen_closed if expectation.kind == "grammar" else listen_free
        heard = await listen(self.recognizers, expectation, audio, detect_language=detect)
        ASR_DECODE_SECONDS.labels(heard.transcript.engine).observe(heard.transcript.seconds)
        if heard.outcome == "foreign":
            sentence = say.FOREIGN_LANGUAGE[heard.transcript.language]
            return await self._again(
                state,
                say.FOREIGN_LANGUAGE_KO,
                miss=True,
                heard=heard.text,
                foreign=(heard.transcript.language, sentence),
            )
        if heard.outcome == "operator":
            # "상담원" works at any point; where the bot offered an operator button, Rasa takes the choice.
            return await self._hand_off(state, "caller_asked", say.HANDING_OFF, heard=heard.text)
        if heard.outcome == "empty":
            return await self._again(state, say.NOT_HEARD, miss=True)
        if heard.outcome == "refused":
            log.info("answer not believed (%s)", heard.verdict.reason)  # never the words: they may be a guess
            PHONE_GATE_REFUSALS.labels(heard.verdict.reason).inc()
            return await self._not_believed(state, speech)
        recording = await self._keep(state, speech)
        if heard.choice is not None:
            inbound = self._choice_inbound(state, heard.choice, heard.text, attachment_ids=(recording,))
        else:
            inbound = Inbound("phone", state.call_sid, text=heard.text, attachment_ids=(recording,))
        return await self._to_bot(state, inbound, heard=heard.text)

    async def _keep(self, state: CallState, speech: Speech, to_transcribe: str | None = None) -> str:
        """Stores the caller's turn as a WAV for the operators; flagged when they must type what was said."""
        wav = wav_bytes(speech.samples, PHONE_RATE)

        def store(session: Session) -> str:
            attachment = store_audio(session, conversation_id=state.conversation_id, wav=wav)
            attachment.to_transcribe = to_transcribe
            return attachment.id

        return await self._db(store)

    async def _not_believed(self, state: CallState, speech: Speech) -> TurnResult:
        """The gate refused the words: a place or description goes on as a recording, anything else is asked
        once more (with its keys) and then handed to an operator with the recording."""
        expectation = state.expectation
        field = FIELD_OF_RESPONSE.get(expectation.response or "") if expectation.kind == "free" else None
        if field is not None:
            recording = await self._keep(state, speech, to_transcribe=field)
            marker = say.UNHEARD_MARKERS[field]
            inbound = Inbound("phone", state.call_sid, text=marker, attachment_ids=(recording,))
            return await self._to_bot(state, inbound, heard=marker, lead=say.KEPT_FOR_OPERATOR)
        if state.misses >= 1:
            recording = await self._keep(state, speech)
            return await self._hand_off(
                state, "not_understood", say.HANDING_OFF_NOT_UNDERSTOOD, attachment_ids=(recording,)
            )
        lead = say.NOT_CAUGHT
        if expectation.response == "utter_ask_district":
            lead = f"{lead} {say.NOT_CAUGHT_DISTRICT}"
        return await self._again(state, lead, miss=True)

    def _choice_inbound(
        self, state: CallState, choice: Choice, heard: str, attachment_ids: tuple[str, ...] = ()
    ) -> Inbound:
        if choice.payload == "/deny" and best_choice(heard, district_choices()) is not None:
            # "아니요, 구로구요" at the read-back: a correction the bot's NLU reads from the words, not a bare no.
            return Inbound("phone", state.call_sid, text=heard, attachment_ids=attachment_ids)
        return Inbound(
            "phone",
            state.call_sid,
            text=choice.text or heard,
            payload=choice.payload,
            command=choice.command,
            attachment_ids=attachment_ids,
        )

    async def _to_bot(self, state: CallState, inbound: Inbound, *, heard: str, lead: str = "") -> TurnResult:
        # One message id per turn: a retried turn (a reconnecting stream) is answered from the transcript.
        inbound = replace(inbound, client_message_id=f"{state.call_sid}:{state.turn}")
        outcome = await self.gateway.handle(inbound)
        if outcome.status == "unavailable":
            return await self._hand_off(state, "bot_unavailable", say.UNAVAILABLE, heard=heard)
        spoken, expectation, hand_off, hang_up = speak(outcome)
        if lead and expectation is not None:
            spoken = f"{lead} {spoken}"
            expectation = replace(expectation, prompt=spoken)
        if hand_off:
            return await self._hand_off(state, "caller_asked", say.HANDING_OFF, heard=heard, recorded=True)
        if expectation is None:
            return await self._again(state, say.NOT_UNDERSTOOD, miss=True, heard=heard)
        if hang_up:
            await self._db(lambda s: _advance(s, state.call_sid, expectation))
            return TurnResult(twiml.goodbye(spoken, self.settings), "hang_up", heard, spoken)
        saved = await self._db(lambda s: _advance(s, state.call_sid, expectation))
        return TurnResult(
            twiml.listen(spoken, call_sid=saved.call_sid, turn=saved.turn, settings=self.settings),
            "listen",
            heard,
            spoken,
        )

    async def _again(
        self,
        state: CallState,
        lead: str,
        *,
        miss: bool,
        heard: str = "",
        foreign: tuple[str, str] | None = None,
    ) -> TurnResult:
        """Ask the same question again after `lead`; offer the operator after repeated misses."""
        misses = state.misses + 1 if miss else state.misses
        if misses >= MISSES_BEFORE_OFFER and foreign is None:
            lead = f"{lead} 상담원과 통화하시려면 0번을 누르시거나 상담원이라고 말씀해 주세요."
        text = f"{lead} {state.expectation.prompt}"
        saved = await self._db(
            lambda s: _advance(s, state.call_sid, state.expectation, misses=misses, silences=state.silences)
        )
        return TurnResult(
            twiml.listen(text, call_sid=saved.call_sid, turn=saved.turn, settings=self.settings, foreign=foreign),
            "listen",
            heard,
            text,
        )

    async def _silence(self, state: CallState) -> TurnResult:
        silences = state.silences + 1
        if silences >= SILENCES_BEFORE_GOODBYE:
            await self.call_ended(state.call_sid, "silence")
            return TurnResult(twiml.goodbye(say.GOODBYE_SILENCE, self.settings), "hang_up", "", say.GOODBYE_SILENCE)
        lead = say.OFFER_OPERATOR_SILENCE if silences >= SILENCES_BEFORE_OFFER else say.NOT_HEARD
        text = f"{lead} {state.expectation.prompt}"
        saved = await self._db(
            lambda s: _advance(s, state.call_sid, state.expectation, misses=state.misses, silences=silences)
        )
        return TurnResult(
            twiml.listen(text, call_sid=saved.call_sid, turn=saved.turn, settings=self.settings), "listen", "", text
        )

    async def _hand_off(
        self,
        state: CallState,
        reason: str,
        text: str,
        *,
        heard: str = "",
        recorded: bool = False,
        attachment_ids: tuple[str, ...] = (),
    ) -> TurnResult:
        """Queue the caller for a 120 operator with the conversation, its transcript and the filled slots."""
        slots = await self._slots(state.call_sid)

        def queue(session: Session) -> None:
            call = get_call(session, state.call_sid, for_update=True)
            conversation = session.get(Conversation, state.conversation_id)
            if call is None or conversation is None:
                return
            if not recorded or conversation.handoff_requested_at is None:
                request_handoff(session, conversation=conversation, reason=f"phone: {reason}")
            record_message(
                session,
                conversation=conversation,
                direction="out",
                sender="system",
                text=text,
                data={"handoff": reason, "slots": slots, "attachment_ids": list(attachment_ids)},
                dedupe_key=f"{state.call_sid}:handoff",
            )
            if has_report_content(slots):
                keep_draft(session, conversation_id=conversation.id, channel="phone", slots=slots, reason=reason)
            queue_for_operator(session, call)

        await self._db(queue)
        return TurnResult(twiml.hand_off(text, self.settings), "hand_off", heard, text)

    async def _slots(self, call_sid: str) -> dict[str, object]:
        try:
            return await self.rasa.slots(f"phone:{call_sid}")
        except RasaUnavailable:
            return {}


def speak(outcome: Outcome) -> tuple[str, Expectation | None, bool, bool]:
    """The replies as one spoken text, what to expect next, and whether to hand off or hang up."""
    parts: list[str] = []
    hand_off = hang_up = False
    last_name: str | None = None
    last_buttons: list[dict[str, str]] = []
    for reply in outcome.replies:
        name = reply.response  # by name, never by its wording: domain.yml may reword any text
        if name in say.UNSPOKEN:
            continue
        if name == "utter_handoff_recorded":
            hand_off = True
            continue
        hang_up = hang_up or name == "utter_goodbye"
        parts.append(
            say.PHONE_FORMS.get(name or "")
            or say.unheard_read_back(say.spoken(reply.text)) + say.PHONE_SUFFIXES.get(name or "", "")
        )
        last_name, last_buttons = name, reply.buttons
    if not parts:
        return "", None, hand_off, hang_up
    body = " ".join(part for part in parts if part)
    expectation = after_reply(body, last_buttons, last_name)
    prompt = " ".join(p for p in (body, menu_text(expectation)) if p)
    return prompt, replace(expectation, prompt=prompt), hand_off, hang_up


def _queued_call_sid(session: Session, conversation_id: int) -> str | None:
    conversation = session.get(Conversation, conversation_id)
    call = None if conversation is None else takeover.phone_call_of(session, conversation)
    return call.call_sid if call is not None and call.status == QUEUED else None


def _state(session: Session, call_sid: str) -> CallState | None:
    call = get_call(session, call_sid)
    return None if call is None else CallState.of(call)


def _advance(
    session: Session, call_sid: str, expectation: Expectation, *, misses: int = 0, silences: int = 0
) -> CallState:
    """Saves what the next turn expects and moves the call to it (its new stream carries the new number)."""
    call = get_call(session, call_sid, for_update=True)
    assert call is not None
    call.turn += 1
    call.expectation = expectation.to_json()
    call.misses, call.silences = misses, silences
    call.updated_at = utcnow()
    session.flush()
    return CallState.of(call)


__all__ = ["CallControl", "CallGone", "Keys", "PhoneLine", "Silence", "Speech", "TurnResult"]
