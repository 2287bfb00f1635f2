"""A call simulator: plays Twilio to the 120 line, one caller turn per WAV file or `dtmf:DIGITS`.

    .venv/bin/python -m telephony.simulate [--fast] TURN...      TURN: file.wav | dtmf:123# | silence | hangup

It signs the voice webhook and the media stream's upgrade like Twilio, streams each WAV as 20 ms μ-law frames in
real time (or at once with --fast), and answers the bot's `calls(sid).update` as Twilio's REST API on
127.0.0.1:8790, so start the web app with TWILIO_API_BASE_URL=http://127.0.0.1:8790. The bot's replies are printed
as they come; the last line is one JSON object: call_sid, transcripts, replies, case number or null.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import secrets
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect

from civic.settings import get_settings
from telephony.audio import FRAME_BYTES, FRAME_MS, MULAW_SILENCE, PHONE_RATE, frame_rms, pcm_to_mulaw, read_wav, to_rate
from telephony.local_twilio import FakeTwilioAPI, local_twilio

DEFAULT_TWILIO_PORT = 8790
FRAME_SECONDS = FRAME_MS / 1000
REPLY_TIMEOUT_SECONDS = 30.0
SPEECH_RMS = 300.0  # frames louder than this count as the caller speaking (the end of speech is measured)
KEY_GAP_SECONDS = 0.15
SMS_WAIT_SECONDS = 4.0


@dataclass
class TurnReport:
    """One caller turn and how long the bot took: from the end of speech (or the last key) to its new TwiML."""

    turn: str
    latency_ms: float | None
    replies: list[str] = field(default_factory=list)


@dataclass
class CallReport:
    call_sid: str
    replies: list[str] = field(default_factory=list)
    turns: list[TurnReport] = field(default_factory=list)
    ended: str = "completed"  # completed (caller hung up), queued (for an operator), bot_hangup, no_reply
    transcripts: list[str] = field(default_factory=list)
    case_number: str | None = None
    sms: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Next:
    """What the TwiML leaves the call doing: streaming (with the turn parameter), queued, or hung up."""

    kind: str
    stream_url: str = ""
    parameters: dict[str, str] = field(default_factory=dict)


def wav_frames(path: Path) -> tuple[list[bytes], int]:
    """A WAV as 20 ms μ-law frames at 8 kHz, and the index of the last frame with speech in it."""
    samples, rate = read_wav(path)
    narrow = to_rate(samples, rate, PHONE_RATE)
    step = FRAME_BYTES
    chunks = [narrow[i : i + step] for i in range(0, len(narrow), step)]
    loud = [i for i, chunk in enumerate(chunks) if frame_rms(chunk) > SPEECH_RMS]
    frames = [pcm_to_mulaw(np.pad(chunk, (0, step - len(chunk)))) for chunk in chunks]
    return frames, (loud[-1] if loud else len(frames) - 1)


class CallSimulator:
    """One simulated call against a running web app, with `twilio` standing in for Twilio's REST API."""

    def __init__(
        self,
        *,
        web_url: str,
        public_base_url: str,
        account_sid: str,
        auth_token: str,
        twilio: FakeTwilioAPI,
        caller: str = "+821055501234",
        called: str = "+82212000120",
        fast: bool = False,
        on_reply: Callable[[str], None] | None = None,
    ) -> None:
        self.web_url = web_url.rstrip("/")
        self.public_base_url = public_base_url.rstrip("/")
        self.account_sid = account_sid
        self.validator = RequestValidator(auth_token)
        self.twilio = twilio
        self.caller = caller
        self.called = called
        self.fast = fast
        self.on_reply = on_reply or (lambda text: None)
        self.call_sid = "CA" + secrets.token_hex(16)
        self.report = CallReport(self.call_sid)
        self._updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sequence = 0
        self._step = _Next("hangup")
        self._http: httpx.AsyncClient
        self._listener: Callable[[str, dict[str, Any]], None]

    def _listen(self, loop: asyncio.AbstractEventLoop) -> Callable[[str, dict[str, Any]], None]:
        def heard(kind: str, record: dict[str, Any]) -> None:
            if kind == "call_update" and record["call_sid"] == self.call_sid:
                loop.call_soon_threadsafe(self._updates.put_nowait, record)
            elif kind == "message" and record["to"] == self.caller:
                loop.call_soon_threadsafe(self.report.sms.append, record["body"])

        return heard

    async def run(self, turns: list[str], http: httpx.AsyncClient, linger_seconds: float = 0.0) -> CallReport:
        """The whole call: dial, play `turns` while the bot listens, hang up; then wait for its SMS a while."""
        await self.dial(http)
        for turn in turns:
            if not self.listening or turn == "hangup":
                break
            await self.play(turn)
        return await self.hang_up(linger_seconds)

    @property
    def listening(self) -> bool:
        """Whether the call waits for the caller (rather than queued, hung up, or gone silent)."""
        return self._step.kind == "stream" and self.report.ended == "completed"

    async def dial(self, http: httpx.AsyncClient) -> list[str]:
        """Calls the line (Twilio's voice webhook); returns what the bot said first."""
        self._http = http
        self._listener = self._listen(asyncio.get_running_loop())
        self.twilio.listeners.append(self._listener)
        params = {"CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
        greeting: list[str] = []
        self._step = await self._execute(await self._webhook("/telephony/voice", params), greeting)
        return greeting

    async def play(self, turn: str) -> TurnReport:
        """One caller turn into a fresh stream, and the bot's answer to it."""
        report = TurnReport(turn, None)
        self.report.turns.append(report)
        update = await self._stream_turn(self._step, turn, report)
        if update is None:
            self.report.ended = "no_reply"
            return report
        self._step = await self._execute(update["params"].get("Twiml", ""), report.replies)
        if self._step.kind == "hangup":
            self.report.ended = "bot_hangup"
        elif self._step.kind == "queued":
            self.report.ended = "queued"
        return report

    async def hang_up(self, linger_seconds: float = 0.0) -> CallReport:
        """The caller hangs up (Twilio stops the stream and sends its status callback)."""
        try:
            if self.listening:
                await self._hang_up_on_stream(self._step)
            await self._webhook("/telephony/status", {"CallStatus": "completed", "CallDuration": "30"})
            deadline = time.monotonic() + linger_seconds
            while not self.report.sms and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        finally:
            self.twilio.listeners.remove(self._listener)
        return self.report

    async def _webhook(self, path: str, extra: dict[str, str]) -> str:
        params = {
            "AccountSid": self.account_sid,
            "CallSid": self.call_sid,
            "From": self.caller,
            "To": self.called,
            **extra,
        }
        signature = self.validator.compute_signature(self.public_base_url + path, params)
        response = await self._http.post(self.web_url + path, data=params, headers={"X-Twilio-Signature": signature})
        response.raise_for_status()
        return response.text

    async def _execute(self, document: str, replies: list[str]) -> _Next:
        """Runs TwiML like Twilio: <Say> is heard, <Connect><Stream> opens a stream, <Redirect> is followed."""
        root = ET.fromstring(document)
        for verb in root:
            if verb.tag == "Say":
                text = (verb.text or "").strip()
                replies.append(text)
                self.report.replies.append(text)
                self.on_reply(text)
            elif verb.tag == "Connect":
                stream = verb.find("Stream")
                if stream is not None:
                    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
                    return _Next("stream", stream.get("url", ""), parameters)
            elif verb.tag == "Enqueue":
                return _Next("queued")
            elif verb.tag == "Hangup":
                return _Next("hangup")
            elif verb.tag == "Redirect":
                path = urlsplit((verb.text or "").strip()).path
                return await self._execute(await self._webhook(path, {"CallStatus": "in-progress"}), replies)
        return _Next("hangup")  # TwiML that runs out ends the call

    @contextlib.asynccontextmanager
    async def _stream(self, step: _Next) -> Any:
        """The media stream of one turn: signed upgrade, `connected` and `start` sent."""
        target = urlsplit(step.stream_url)
        web = urlsplit(self.web_url)
        uri = f"{'wss' if web.scheme == 'https' else 'ws'}://{web.netloc}{target.path}"
        signature = self.validator.compute_signature(step.stream_url, {})
        async with connect(uri, additional_headers={"X-Twilio-Signature": signature}) as websocket:
            stream_sid = "MZ" + secrets.token_hex(16)
            self._sequence = 0
            await self._send(websocket, {"event": "connected", "protocol": "Call", "version": "1.0.0"})
            await self._send(
                websocket,
                {
                    "event": "start",
                    "streamSid": stream_sid,
                    "start": {
                        "accountSid": self.account_sid,
                        "callSid": self.call_sid,
                        "streamSid": stream_sid,
                        "tracks": ["inbound"],
                        "customParameters": step.parameters,
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    },
                },
            )
            yield websocket, stream_sid

    async def _send(self, websocket: ClientConnection, message: dict[str, Any]) -> None:
        self._sequence += 1
        await websocket.send(json.dumps({**message, "sequenceNumber": str(self._sequence)}))

    async def _media(self, websocket: ClientConnection, stream_sid: str, frame: bytes) -> None:
        payload = base64.b64encode(frame).decode("ascii")
        chunk = self._sequence
        media = {"track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * FRAME_MS), "payload": payload}
        await self._send(websocket, {"event": "media", "streamSid": stream_sid, "media": media})

    async def _stream_turn(self, step: _Next, turn: str, report: TurnReport) -> dict[str, Any] | None:
        """Plays one turn into a fresh stream; returns Twilio's call update carrying the bot's answer."""
        async with self._stream(step) as (websocket, stream_sid):
            ended_at = await self._play(websocket, stream_sid, turn)
            silence = asyncio.create_task(self._silence(websocket, stream_sid))
            try:
                update = await asyncio.wait_for(self._updates.get(), REPLY_TIMEOUT_SECONDS)
            except TimeoutError:
                update = None
            finally:
                silence.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await silence
            if update is not None and ended_at is not None:
                report.latency_ms = round((time.monotonic() - ended_at) * 1000, 1)
            with contextlib.suppress(Exception):
                await self._send(websocket, {"event": "stop", "streamSid": stream_sid, "stop": {}})
            return update

    async def _play(self, websocket: ClientConnection, stream_sid: str, turn: str) -> float | None:
        """Sends the turn; returns when (monotonic) its speech or keys ended, None for silence."""
        if turn.startswith("dtmf:"):
            pressed_at = time.monotonic()
            for index, digit in enumerate(turn.removeprefix("dtmf:")):
                if index and not self.fast:
                    await asyncio.sleep(KEY_GAP_SECONDS)
                await self._send(websocket, {"event": "dtmf", "streamSid": stream_sid, "dtmf": {"digit": digit}})
                pressed_at = time.monotonic()
            return pressed_at
        if turn == "silence":
            return None  # nothing but the silent frames that follow every turn
        frames, last_speech = wav_frames(Path(turn))
        started = time.monotonic()
        ended_at = started
        for index, frame in enumerate(frames):
            if not self.fast:
                await asyncio.sleep(max(0.0, started + index * FRAME_SECONDS - time.monotonic()))
            await self._media(websocket, stream_sid, frame)
            if index == last_speech:
                ended_at = time.monotonic()
        return ended_at

    async def _silence(self, websocket: ClientConnection, stream_sid: str) -> None:
        """The caller waiting for the answer: silent frames, paced like a phone line."""
        frame = bytes([MULAW_SILENCE]) * FRAME_BYTES
        started = time.monotonic()
        index = 0
        while True:
            await self._media(websocket, stream_sid, frame)
            index += 1
            await asyncio.sleep(max(0.0, started + index * FRAME_SECONDS - time.monotonic()))

    async def _hang_up_on_stream(self, step: _Next) -> None:
        """The caller hangs up while the bot listens: Twilio opens the stream, then stops it."""
        with contextlib.suppress(Exception):
            async with self._stream(step) as (websocket, stream_sid):
                await self._send(websocket, {"event": "stop", "streamSid": stream_sid, "stop": {}})


def read_back(report: CallReport) -> None:
    """Fills in what the bot heard and the case it filed, from the civic database the web app writes."""
    from sqlalchemy import select

    from civic.cases import cases_for_conversation
    from civic.conversations import transcript
    from civic.db import get_session_factory, session_scope
    from civic.models import Conversation

    with session_scope(get_session_factory()) as session:
        query = select(Conversation).where(Conversation.channel == "phone", Conversation.external_id == report.call_sid)
        conversation = session.execute(query).scalar_one_or_none()
        if conversation is None:
            return
        report.transcripts = [
            m.text for m in transcript(session, conversation.id) if m.direction == "in" and m.sender == "citizen"
        ]
        cases = cases_for_conversation(session, conversation.id)
        report.case_number = cases[0].number if cases else None


def asked_response(sessions: sessionmaker[Session], call_sid: str) -> str | None:
    """The domain response the line's current question is (its saved expectation); None at the main menu.

    A scripted caller answers by this name, not by the words it heard: the wording is domain.yml's and the line's.
    """
    from civic.phone_calls import get_call

    with sessions() as session:
        call = get_call(session, call_sid)
        return None if call is None else call.expectation.get("response")


async def simulate(turns: list[str], *, web_url: str, twilio_port: int, fast: bool) -> CallReport:
    settings = get_settings()
    with local_twilio(settings.twilio_account_sid, settings.twilio_auth_token, twilio_port) as twilio:
        simulator = CallSimulator(
            web_url=web_url,
            public_base_url=settings.public_base_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            twilio=twilio,
            fast=fast,
            on_reply=lambda text: print(f"bot: {text}", flush=True),
        )
        async with httpx.AsyncClient(timeout=60) as http:
            # The SMS with the case number leaves through the outbox within a second or two.
            return await simulator.run(turns, http, linger_seconds=SMS_WAIT_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("turns", nargs="+", metavar="TURN", help="file.wav | dtmf:DIGITS | silence | hangup")
    parser.add_argument("--web-url", default="http://127.0.0.1:8000", help="where the web app listens")
    parser.add_argument("--twilio-port", type=int, default=DEFAULT_TWILIO_PORT, help="port of the local Twilio API")
    parser.add_argument("--fast", action="store_true", help="send audio as fast as possible, not in real time")
    args = parser.parse_args(argv)
    for turn in args.turns:
        if not (turn.startswith("dtmf:") or turn in ("silence", "hangup") or Path(turn).is_file()):
            parser.error(f"not a WAV file, dtmf:DIGITS, silence or hangup: {turn}")
    report = asyncio.run(simulate(args.turns, web_url=args.web_url, twilio_port=args.twilio_port, fast=args.fast))
    try:
        read_back(report)
    except Exception as error:  # the database may be elsewhere; the replies still tell the story
        print(f"(transcripts not read from the database: {error})", file=sys.stderr)
    print(json.dumps(asdict(report), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
