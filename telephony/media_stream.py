"""The Twilio Media Streams WebSocket of one caller turn: frames in, endpointing, DTMF, the turn out."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from civic.db import in_thread
from civic.settings import Settings
from telephony import stream_tokens
from telephony.audio import FRAME_BYTES, mulaw_to_pcm
from telephony.endpointing import Endpointer
from telephony.expectations import OPERATOR_KEY, Expectation
from telephony.phone_line import CallerTurn, Keys, PhoneLine, Silence, Speech
from telephony.stream_tokens import StreamGrant
from telephony.twilio_auth import websocket_signature_ok

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 5.0  # Twilio sends `connected` and `start` at once; a client that does not is not Twilio
STOP_TIMEOUT_SECONDS = 10.0  # after our answer Twilio ends the stream; we do not wait longer
MAX_MESSAGE_CHARS = 16 * 1024  # a 20 ms media message is ~300 characters
MAX_MEDIA_BYTES = 10 * FRAME_BYTES  # more than 200 ms in one message is not Twilio's framing
MAX_BAD_MESSAGES = 50
MAX_KEYS = 12
KEY_PAUSE_SECONDS = 0.8  # ends "1" while "10" is also a choice: people key "1","0" within ~0.5 s
CASE_NUMBER_KEY_PAUSE_SECONDS = 4.0
CASE_NUMBER_MAX_KEYS = 10
DTMF_DIGITS = frozenset("0123456789*#")


class StreamClosed(Exception):
    """The socket closed or the stream could not go on."""


async def _grant(line: PhoneLine, token: str, settings: Settings) -> StreamGrant | None:
    """The token's grant, spent now: None if it is missing, forged, expired or was used before."""
    grant = stream_tokens.verify(token, settings)
    if grant is None:
        log.warning("twilio media stream refused: missing, forged or expired stream token")
        return None
    if not await in_thread(line.session_factory, lambda session: stream_tokens.spend(session, grant)):
        log.warning("twilio media stream refused: stream token already used (a replay)")
        return None
    return grant


async def serve_media_stream(websocket: WebSocket, line: PhoneLine, settings: Settings, token: str) -> None:
    """One stream, from the signed upgrade with its single-use token to Twilio's `stop`."""
    # Both before accept(): the server answers a refused upgrade with HTTP 403. The signature first, so a
    # forger cannot spend (and so deny) a real caller's token.
    if not websocket_signature_ok(websocket, settings) or (grant := await _grant(line, token, settings)) is None:
        await websocket.close(code=1008)
        return
    await websocket.accept()
    try:
        await MediaStream(websocket, line, settings, grant).run()
    except (WebSocketDisconnect, StreamClosed):
        pass
    finally:
        if websocket.client_state.name == "CONNECTED":
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # Twilio may have closed first
                await websocket.close()


class MediaStream:
    """Reads one stream's messages; hands exactly one caller turn to the phone line."""

    def __init__(self, websocket: WebSocket, line: PhoneLine, settings: Settings, grant: StreamGrant) -> None:
        self.websocket = websocket
        self.grant = grant
        self.line = line
        self.settings = settings
        self.bad_messages = 0
        self.last_sequence = -1

    async def _next(self, timeout: float | None) -> dict[str, Any] | None:
        """The next well-formed message, or None on timeout; malformed ones are counted and skipped."""
        while True:
            try:
                async with asyncio.timeout(timeout):
                    text = await self.websocket.receive_text()
            except TimeoutError:
                return None
            except KeyError:  # a binary frame: receive_text reads message["text"]
                text = ""
            message = self._parse(text)
            if message is not None:
                return message
            self.bad_messages += 1
            if self.bad_messages > MAX_BAD_MESSAGES:
                log.warning("media stream closed after %d malformed messages", self.bad_messages)
                raise StreamClosed

    @staticmethod
    def _parse(text: str) -> dict[str, Any] | None:
        if not text or len(text) > MAX_MESSAGE_CHARS:
            return None
        try:
            message = json.loads(text)
        except ValueError:
            return None
        return message if isinstance(message, dict) and isinstance(message.get("event"), str) else None

    async def _start(self) -> tuple[str, int] | None:
        """Call SID and turn from the `start` message, if it is ours and comes in time."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            message = await self._next(left)
            if message is None:
                break
            if message["event"] == "connected":
                continue
            if message["event"] != "start":
                continue  # media before start is out of order: nothing to attribute it to
            start = message.get("start")
            if not isinstance(start, dict):
                return None
            if start.get("accountSid") != self.settings.twilio_account_sid:
                log.warning("media stream refused: start message of another account")
                return None
            media_format = start.get("mediaFormat") or {}
            if (
                media_format.get("encoding", "audio/x-mulaw") != "audio/x-mulaw"
                or int(media_format.get("sampleRate", 8000)) != 8000
            ):
                log.warning("media stream refused: not 8 kHz μ-law")
                return None
            parameters = start.get("customParameters") or {}
            call_sid = start.get("callSid")
            try:
                turn = int(parameters.get("turn", ""))
            except (TypeError, ValueError):
                return None
            if not isinstance(call_sid, str) or (call_sid, turn) != (self.grant.call_sid, self.grant.turn):
                # A token is for one call's one turn: it cannot open another call's (or another turn's) stream.
                log.warning("media stream refused: start message not for the call and turn of its token")
                return None
            return call_sid, turn
        log.warning("media stream closed: no start message within %.0f s", START_TIMEOUT_SECONDS)
        return None

    async def run(self) -> None:
        started = await self._start()
        if started is None:
            return
        call_sid, turn = started
        expectation = await self.line.expectation_for(call_sid, turn)
        if expectation is None:
            return  # a stale stream (an earlier turn) or a call that is over
        caller_turn = await self._listen(expectation)
        if caller_turn is None:
            await self.line.call_ended(call_sid, "hangup")
            return
        await self.line.answer(call_sid, turn, caller_turn)
        await self._until_stop()

    async def _listen(self, expectation: Expectation) -> CallerTurn | None:
        """The caller's turn: an utterance, keys, or silence; None when the call ended first."""
        end_ms = (
            self.settings.phone_end_of_answer_ms
            if expectation.kind == "grammar"
            else self.settings.phone_end_of_speech_ms
        )
        endpointer = Endpointer(end_silence_ms=end_ms, max_utterance_s=self.settings.phone_max_utterance_seconds)
        no_answer_at = time.monotonic() + self.settings.phone_no_answer_seconds
        keys = ""
        keys_done_at: float | None = None
        while True:
            now = time.monotonic()
            if keys_done_at is not None:
                timeout = keys_done_at - now
            elif endpointer.speaking:
                timeout = self.settings.phone_max_utterance_seconds
            else:
                timeout = no_answer_at - now
            message = await self._next(max(0.0, timeout))
            if message is None:
                if keys:
                    return Keys(keys)
                if not endpointer.speaking:
                    return Silence()
                continue
            event = message["event"]
            if event == "stop":
                return None
            if event == "dtmf":
                digit = str((message.get("dtmf") or {}).get("digit", ""))
                if digit not in DTMF_DIGITS or len(keys) >= MAX_KEYS:
                    continue  # mashing beyond any answer's length is ignored
                keys += digit
                if digit == "#" or self._keys_complete(keys, expectation):
                    return Keys(keys)
                pause = CASE_NUMBER_KEY_PAUSE_SECONDS if expectation.case_number_keys else KEY_PAUSE_SECONDS
                keys_done_at = time.monotonic() + pause
                continue
            if event == "media" and not keys:
                samples = self._samples(message)
                if samples is None:
                    continue
                utterance = endpointer.feed(samples, time.monotonic())
                if utterance is not None:
                    return Speech(utterance.samples, utterance.speech_ended_at)

    @staticmethod
    def _keys_complete(keys: str, expectation: Expectation) -> bool:
        """Whether no longer key can follow: 0 alone is the operator; "1" waits while "10" is a choice."""
        if expectation.case_number_keys:
            return len(keys) >= CASE_NUMBER_MAX_KEYS  # year and number; shorter ones end with # or a pause
        if keys == OPERATOR_KEY:
            return True
        longer = [c.key for c in expectation.choices if c.key and c.key != keys and c.key.startswith(keys)]
        return not longer

    def _samples(self, message: dict[str, Any]) -> Any:
        media = message.get("media")
        if not isinstance(media, dict) or media.get("track", "inbound") != "inbound":
            return None
        try:
            sequence = int(message.get("sequenceNumber", self.last_sequence + 1))
        except (TypeError, ValueError):
            sequence = self.last_sequence + 1
        if sequence <= self.last_sequence:
            return None  # a duplicate or late frame: audio already past
        try:
            payload = base64.b64decode(str(media.get("payload", "")), validate=True)
        except (binascii.Error, ValueError):
            self.bad_messages += 1
            return None
        if not payload or len(payload) > MAX_MEDIA_BYTES:
            self.bad_messages += 1
            return None
        self.last_sequence = sequence
        return mulaw_to_pcm(payload)

    async def _until_stop(self) -> None:
        """After the answer Twilio stops this stream to play the new TwiML; wait for that, briefly."""
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            message = await self._next(left)
            if message is None or message["event"] == "stop":
                return
