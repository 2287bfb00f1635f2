"""`make soak`: citizens on web chat, Telegram and the phone line while a web worker and a Rasa replica die."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from bench.common import percentiles, write_result
from bot.messages import gateway_message
from civic import polls
from civic.db import make_engine, make_session_factory, normalize_url, session_scope, utcnow
from civic.inbox import LEASE_SECONDS as INBOX_LEASE_SECONDS
from civic.migrate import upgrade
from civic.models import (
    Ballot,
    Case,
    Conversation,
    InboundUpdate,
    Message,
    OutboxMessage,
    PhoneCall,
    PollVoter,
)
from civic.outbox import LEASE_SECONDS as OUTBOX_LEASE_SECONDS
from civic.phones import normalize_phone
from civic.polls import NewPoll
from telephony.local_twilio import FakeTwilioAPI, local_twilio, serve_in_thread
from tests.e2e.stack import ROOT, ScaledStack, running_scaled_stack
from tests.fakes import telegram_api as tg

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TELEGRAM_SECRET = "soak-telegram-secret"
TWILIO_SID, TWILIO_TOKEN = "AC" + "50a4" * 8, "soak-twilio-auth-token"
LINE_NUMBER = "+8220120120"
CASE_NUMBER = re.compile(r"SR-\d{4}-\d{6}")
RECEIPT = re.compile(r"\b[0-9a-f]{32}\b")
SMS_CODE = re.compile(r"인증번호 (\d{6})")
# One-message reports the model reads in full, so the bot answers with the summary at once.
REPORTS = (
    "마포구 합정동 {n} 앞에 불법주차 차량이 소화전을 막고 있어요",
    "송파구 잠실역 8번 출구 앞 보도블록이 깨져서 걸려 넘어질 뻔했어요",
    "강남구 역삼동 테헤란로 {n} 앞에 불법 현수막이 잔뜩 걸려 있어요",
)
AFFIRM_BUTTON = "네, 접수해 주세요"
UNAVAILABLE = gateway_message("unavailable", "ko")
IN_PROGRESS = gateway_message("in_progress", "ko")
REQUEST_TIMEOUT = 30.0
TELEGRAM_REPLY_TIMEOUT = 30.0
SMS_TIMEOUT = 20.0
# Causes worth another attempt with the same id: what a dropped connection or a busy replica looks like.
RETRYABLE = {"connect_refused", "connection_dropped", "timeout", "rasa_unavailable", "in_progress", "http_5xx"}
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0)
VOTE_TAPS = 3
TELEGRAM_SENDS = 2  # a message the bot could not answer is sent once more, as the bot asks
# Telegram re-queues an interrupted update after the inbox lease; the recovery loop runs every 30 s.
INBOX_RECOVERY_SECONDS = INBOX_LEASE_SECONDS + 30 + 15


@dataclass(frozen=True)
class SoakConfig:
    seconds: float = 300
    citizens: int = 200
    think_seconds: tuple[float, float] = (8.0, 24.0)
    channel_shares: tuple[float, float, float] = (0.5, 0.3, 0.2)  # web chat, Telegram, phone
    retry_share: float = 0.2  # of confirmations, taps, updates and webhooks resent on purpose
    kill_at_share: float = 1 / 3
    rasa_restart_after: float = 15.0
    drain_seconds: float = 60.0
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL


# ---- what happened: every attempt, the kill windows, what was acknowledged ---------------------------------------


@dataclass
class Attempt:
    endpoint: str
    started: float  # seconds since the load started
    ended: float
    ok: bool
    cause: str | None = None
    retry: str | None = None  # "deliberate" or "after_error": the same id sent again
    chain_started: float = 0.0  # when the first attempt with this id started
    awaited: bool = False  # not a request: a reply the citizen waited for (Telegram's, the SMS code)


@dataclass
class KillWindow:
    component: str
    killed_pid: int
    started: float
    ended: float | None = None  # when the replacement was serving
    new_pid: int | None = None
    killed_gone: bool = False
    at_utc: str = field(default_factory=lambda: utcnow().isoformat(timespec="milliseconds"))


@dataclass
class Acks:
    """What the stack told citizens it had done: each must exist exactly once afterwards."""

    cases: dict[str, str] = field(default_factory=dict)  # case number → who was told
    web_messages: set[str] = field(default_factory=set)
    telegram_updates: set[int] = field(default_factory=set)
    receipts: dict[str, str] = field(default_factory=dict)  # receipt → voter's phone
    codes_requested: Counter[str] = field(default_factory=Counter)
    calls: set[str] = field(default_factory=set)
    calls_ended: set[str] = field(default_factory=set)
    retry_mismatches: list[str] = field(default_factory=list)  # a resend answered differently
    voter_receipts: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


class Recorder:
    """Collects attempts and kill windows against one clock."""

    def __init__(self) -> None:
        self.origin = time.monotonic()
        self.attempts: list[Attempt] = []
        self.windows: list[KillWindow] = []
        self.acks = Acks()
        self.dialogue: Counter[str] = Counter()  # answers that were not what the citizen expected
        self.dialogue_samples: list[str] = []

    def unexpected(self, what: str, answer: str) -> None:
        self.dialogue[what] += 1
        if len(self.dialogue_samples) < 10:
            self.dialogue_samples.append(f"{what}: {answer[:300]}")

    def outcome(self, what: str, started: float, cause: str | None) -> None:
        """What a citizen wanted from a turn (a case number, a receipt) came, or an answer without it."""
        self.add(Attempt(what, started, self.now(), cause is None, cause, None, started, awaited=True))

    def now(self) -> float:
        return time.monotonic() - self.origin

    def add(self, attempt: Attempt) -> Attempt:
        self.attempts.append(attempt)
        return attempt

    def inside_kill(self, attempt: Attempt) -> bool:
        """Whether the request (from its first attempt to this one) overlapped a kill window."""
        return any(
            attempt.chain_started <= (window.ended if window.ended is not None else float("inf"))
            and attempt.ended >= window.started
            for window in self.windows
        )


def cause_of(response: httpx.Response) -> str | None:
    if response.status_code in (200, 204):
        return None
    if response.status_code == 503:
        return "rasa_unavailable"
    if response.status_code == 409:
        return "in_progress"
    return "http_5xx" if response.status_code >= 500 else f"http_{response.status_code}"


def cause_of_error(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.ConnectError):
        return "connect_refused"
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    return "connection_dropped"


async def attempt(
    recorder: Recorder,
    endpoint: str,
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    retry: str | None = None,
    chain_started: float | None = None,
) -> tuple[httpx.Response | None, Attempt]:
    """One HTTP request, timed and recorded; the response is None when no answer came."""
    started = recorder.now()
    response: httpx.Response | None = None
    try:
        response = await send()
        cause = cause_of(response)
    except httpx.HTTPError as error:
        cause = cause_of_error(error)
    record = Attempt(endpoint, started, recorder.now(), cause is None, cause, retry, chain_started or started)
    return response, recorder.add(record)


async def with_retries(
    recorder: Recorder, endpoint: str, send: Callable[[], Awaitable[httpx.Response]]
) -> httpx.Response | None:
    """Sends, then resends the same request (same id) after a retryable failure, backing off."""
    response, first = await attempt(recorder, endpoint, send)
    record = first
    for delay in BACKOFF_SECONDS:
        if record.ok or record.cause not in RETRYABLE:
            break
        await asyncio.sleep(delay)
        response, record = await attempt(
            recorder, endpoint, send, retry="after_error", chain_started=first.chain_started
        )
    return response if record.ok else None


# ---- fakes the harness reads: SMS sent through local Twilio, messages sent through the fake Bot API --------------


class SmsInbox:
    """Verification codes as the local Twilio API receives them, by phone number."""

    def __init__(self, twilio: FakeTwilioAPI) -> None:
        self._bodies: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        twilio.listeners.append(self._heard)

    def _heard(self, kind: str, record: dict[str, Any]) -> None:
        if kind == "message":
            with self._lock:
                self._bodies[record["to"]].append(record["body"])

    def count(self, phone: str) -> int:
        with self._lock:
            return len(self._bodies.get(phone, ()))

    async def code_for(self, phone: str, after: int, timeout: float = SMS_TIMEOUT) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                bodies = list(self._bodies.get(phone, ()))
            for body in bodies[after:]:
                if match := SMS_CODE.search(body):
                    return match.group(1)
            await asyncio.sleep(0.1)
        return None

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {phone: len(bodies) for phone, bodies in self._bodies.items()}


class TelegramChats:
    """The bot's delivered messages per chat, read incrementally from the fake Bot API's call log."""

    def __init__(self, api: tg.FakeTelegramAPI) -> None:
        self.api = api
        self.by_chat: dict[str, list[tg.Call]] = defaultdict(list)
        self._cursor = 0
        self._in_flight: list[tg.Call] = []

    async def follow(self) -> None:
        while True:
            self._collect()
            await asyncio.sleep(0.05)

    def _collect(self) -> None:
        fresh = self.api.calls[self._cursor :]
        self._cursor += len(fresh)
        waiting = []
        for call in [*self._in_flight, *fresh]:
            if call.method not in ("sendMessage", "sendPhoto"):
                continue
            if call.status == 0:
                waiting.append(call)  # answered in a moment, by the fake's own thread
            elif call.status == 200:
                self.by_chat[str(call.params.get("chat_id"))].append(call)
        self._in_flight = waiting

    def count(self, chat_id: int) -> int:
        return len(self.by_chat.get(str(chat_id), ()))

    async def replies_after(self, chat_id: int, seen: int, timeout: float) -> list[tg.Call] | None:
        """The bot's messages after the first `seen`, once one arrived and the turn settled; None on timeout."""
        deadline = time.monotonic() + timeout
        while self.count(chat_id) <= seen:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a long turn is split into several messages
        return self.by_chat[str(chat_id)][seen:]


def text_of(calls: list[tg.Call]) -> str:
    return "\n".join(str(call.params.get("text") or "") for call in calls)


def telegram_failure(replies: list[tg.Call] | None) -> str | None:
    """Why a Telegram turn got no answer from the bot (None when it did)."""
    if replies is None:
        return "no_reply"
    if UNAVAILABLE in text_of(replies):
        return "bot_unavailable"
    return "in_progress" if IN_PROGRESS in text_of(replies) else None


# ---- the citizens -------------------------------------------------------------------------------------------------


@dataclass
class World:
    """What every citizen shares: the stack's address, the fakes, the poll, the recorder, the clock."""

    stack: ScaledStack
    recorder: Recorder
    config: SoakConfig
    sms: SmsInbox
    telegram: TelegramChats
    poll_title: str
    deadline: float
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _phones: set[str] = field(default_factory=set)
    _counter: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**9)))

    def running(self) -> bool:
        return self.recorder.now() < self.deadline

    async def pause(self) -> bool:
        """A citizen reading and typing, cut short at the end of the run; whether the run goes on."""
        low, high = self.config.think_seconds
        await asyncio.sleep(max(0.0, min(random.uniform(low, high), self.deadline - self.recorder.now())))
        return self.running()

    def on_purpose(self) -> bool:
        return random.random() < self.config.retry_share

    def serial(self) -> int:
        return next(self._counter)

    def new_phone(self) -> str:
        while True:
            phone = f"010-{random.choice('2346789')}{random.randint(0, 999):03d}-{random.randint(0, 9999):04d}"
            if phone not in self._phones:
                self._phones.add(phone)
                return phone


def report_text() -> str:
    return random.choice(REPORTS).format(n=random.randint(1, 400))


def buttons_of(replies: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [button for reply in replies for button in reply.get("buttons") or []]


def joined(replies: list[dict[str, Any]]) -> str:
    return "\n".join(str(reply.get("text") or "") for reply in replies)


class WebCitizen:
    """A browser on /chat: files a report, asks its status, verifies a phone by SMS and votes."""

    def __init__(self, world: World, slot: int) -> None:
        self.world = world
        self.recorder = world.recorder
        self.address = f"10.{slot // 250 % 250}.{slot % 250}.{random.randint(1, 250)}"  # its own SMS budget
        self.http = httpx.AsyncClient(base_url=world.stack.web_url, timeout=REQUEST_TIMEOUT)
        self.csrf = ""
        self.prefix = f"soak-{world.run_id}-{slot}-{world.serial()}"
        self.sent = 0

    async def open(self) -> bool:
        response = await with_retries(self.recorder, "GET /chat", lambda: self.http.get("/chat"))
        match = re.search(r"[0-9a-f]{64}", response.text) if response is not None else None
        self.csrf = match.group(0) if match else ""
        return bool(self.csrf)

    def _headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf, "X-Forwarded-For": self.address}

    async def say(self, text: str, payload: str | None = None) -> list[dict[str, Any]] | None:
        """One chat message; resent with the same client_message_id after a retryable failure."""
        self.sent += 1
        body: dict[str, Any] = {"client_message_id": f"{self.prefix}-{self.sent}", "text": text}
        if payload:
            body["payload"] = payload
        response = await with_retries(self.recorder, "POST /chat/api/messages", lambda: self._post(body))
        if response is None:
            return None
        self.recorder.acks.web_messages.add(body["client_message_id"])
        replies: list[dict[str, Any]] = response.json()["replies"]
        if self.world.on_purpose():
            await self._resend(body, replies)
        return replies

    def _post(self, body: dict[str, Any]) -> Awaitable[httpx.Response]:
        return self.http.post("/chat/api/messages", json=body, headers=self._headers())

    async def _resend(self, body: dict[str, Any], replies: list[dict[str, Any]]) -> None:
        """A double click: the same client_message_id again must get the very same replies back."""
        response, record = await attempt(
            self.recorder, "POST /chat/api/messages", lambda: self._post(body), retry="deliberate"
        )
        if (
            response is not None
            and record.ok
            and [r["id"] for r in response.json()["replies"]] != [r["id"] for r in replies]
        ):
            self.recorder.acks.retry_mismatches.append(f"web {body['client_message_id']}")

    async def tap(self, replies: list[dict[str, Any]], title: str) -> list[dict[str, Any]] | None:
        """Taps a button; a tap that never got an answer is tapped again as a new message."""
        button = next((b for b in buttons_of(replies) if b["title"] == title), None)
        if button is None:
            self.recorder.unexpected(f"web: no button {title!r}", joined(replies))
            return None
        for _ in range(2):
            answer = await self.say(button["title"], payload=button["payload"])
            if answer is not None:
                return answer
        return None

    async def file_report(self) -> str | None:
        summary = await self.say(report_text())
        if summary is None:
            return None
        # The read-back is the turn that offers /affirm: known by its button, whatever its wording.
        affirm = next((b["title"] for b in buttons_of(summary) if b["payload"] == "/affirm"), None)
        if affirm is None:
            self.recorder.unexpected("web: no summary", joined(summary))
            return None
        if not await self.world.pause():
            return None
        started = self.recorder.now()
        filed = await self.tap(summary, affirm)
        if filed is None:
            return None
        match = CASE_NUMBER.search(joined(filed))
        self.recorder.outcome("web: confirmed → case number", started, None if match else "no_case_number")
        if not match:
            self.recorder.unexpected("web: no case number", joined(filed))
            return None
        self.recorder.acks.cases[match.group(0)] = f"web {self.prefix}"
        return match.group(0)

    async def check_status(self, number: str) -> None:
        answer = await self.say(f"{number} 처리 어떻게 됐어요?")
        if answer is not None and number not in joined(answer):
            self.recorder.unexpected("web: status without the number", joined(answer))

    async def verify_phone(self) -> str | None:
        phone = self.world.new_phone()
        e164 = normalize_phone(phone)
        before = self.world.sms.count(e164)
        sent = await with_retries(
            self.recorder,
            "POST /chat/api/phone",
            lambda: self.http.post("/chat/api/phone", json={"phone": phone}, headers=self._headers()),
        )
        if sent is None:
            return None
        self.recorder.acks.codes_requested[e164] += 1
        asked = self.recorder.now()
        code = await self.world.sms.code_for(e164, before)
        self.recorder.outcome("SMS code (sent → received)", asked, None if code else "no_sms")
        if code is None:
            return None
        verified = await with_retries(
            self.recorder,
            "POST /chat/api/phone/verify",
            lambda: self.http.post(
                "/chat/api/phone/verify", json={"phone": phone, "code": code}, headers=self._headers()
            ),
        )
        return e164 if verified is not None else None

    async def vote(self) -> None:
        e164 = await self.verify_phone()
        if e164 is None or not await self.world.pause():
            return
        listed = await self.say("투표 목록")
        ballot = await self.tap(listed, self.world.poll_title) if listed is not None else None
        if ballot is None:
            return
        choice = random.choice(("1. 찬성", "2. 반대"))
        for _ in range(VOTE_TAPS):  # "tap your choice again", says the bot when a vote failed
            if not await self.world.pause():
                return
            started = self.recorder.now()
            answer = await self.tap(ballot, choice)
            if answer is None:
                return
            receipt = RECEIPT.search(joined(answer))
            self.recorder.outcome("web: option tapped → receipt", started, None if receipt else "no_receipt")
            if receipt:
                self.recorder.acks.receipts[receipt.group(0)] = e164
                self.recorder.acks.voter_receipts[e164].add(receipt.group(0))
                return
            self.recorder.unexpected("web: no receipt", joined(answer))
            if any(button["title"] == choice for button in buttons_of(answer)):
                ballot = answer  # the bot showed the options again: tap what is on the screen now

    async def live(self) -> None:
        try:
            if not await self.open():
                return
            number = await self.file_report()
            if number is None or not await self.world.pause():
                return
            await self.check_status(number)
            if await self.world.pause():
                await self.vote()
        finally:
            await self.http.aclose()


class TelegramCitizen:
    """A private chat with the bot: reports, confirms with the inline button, asks the status."""

    def __init__(self, world: World, http: httpx.AsyncClient) -> None:
        self.world = world
        self.recorder = world.recorder
        self.http = http
        self.chat_id = 700_000_000 + world.serial()

    def _post(self, update: dict[str, Any]) -> Awaitable[httpx.Response]:
        headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        return self.http.post("/telegram/webhook", json=update, headers=headers)

    async def turn(self, new_update: Callable[[], dict[str, Any]]) -> list[tg.Call] | None:
        """One message; sent again, as a new update, when the bot says it is briefly unavailable."""
        for _ in range(TELEGRAM_SENDS):
            replies, cause = await self._send(new_update())
            if cause != "bot_unavailable":
                break
            await asyncio.sleep(random.uniform(3, 8))  # "please send it again in a moment"
        return replies

    async def _send(self, update: dict[str, Any]) -> tuple[list[tg.Call] | None, str | None]:
        """Posts an update (Telegram resends it while unanswered) and waits for the bot's messages."""
        seen, posted = self.world.telegram.count(self.chat_id), self.recorder.now()
        response = await with_retries(self.recorder, "POST /telegram/webhook", lambda: self._post(update))
        if response is None:
            return None, "not_acknowledged"
        self.recorder.acks.telegram_updates.add(update["update_id"])
        if self.world.on_purpose():
            await attempt(self.recorder, "POST /telegram/webhook", lambda: self._post(update), retry="deliberate")
        replies = await self.world.telegram.replies_after(self.chat_id, seen, TELEGRAM_REPLY_TIMEOUT)
        cause = telegram_failure(replies)
        self.recorder.outcome("Telegram turn (webhook → reply)", posted, cause)
        return (replies if cause is None else None), cause

    async def file_report(self) -> str | None:
        text = report_text()
        summary = await self.turn(lambda: tg.text_update(self.chat_id, text))
        if summary is None:
            return None
        keyboard = summary[-1].params.get("reply_markup") or {}
        button = next(
            (b for row in keyboard.get("inline_keyboard", []) for b in row if b["text"] == AFFIRM_BUTTON), None
        )
        if button is None:
            self.recorder.unexpected("telegram: no summary", text_of(summary))
            return None
        if not await self.world.pause():
            return None
        data, message_id = button["callback_data"], summary[-1].result["message_id"]
        started = self.recorder.now()
        filed = await self.turn(lambda: tg.callback_update(self.chat_id, data, message_id=message_id))
        if filed is None:
            return None
        match = CASE_NUMBER.search(text_of(filed))
        self.recorder.outcome("telegram: confirmed → case number", started, None if match else "no_case_number")
        if not match:
            self.recorder.unexpected("telegram: no case number", text_of(filed))
            return None
        self.recorder.acks.cases[match.group(0)] = f"telegram {self.chat_id}"
        return match.group(0)

    async def live(self) -> None:
        number = await self.file_report()
        if number is None or not await self.world.pause():
            return
        answer = await self.turn(lambda: tg.text_update(self.chat_id, f"{number} 처리 상황 알려주세요"))
        if answer is not None and number not in text_of(answer):
            self.recorder.unexpected("telegram: status without the number", text_of(answer))


class Caller:
    """A call to the 120 line as Twilio reports it: the signed voice webhook, then the completed status."""

    def __init__(self, world: World, http: httpx.AsyncClient) -> None:
        self.world = world
        self.recorder = world.recorder
        self.http = http
        self.call_sid = "CA" + uuid.uuid4().hex
        self.caller = normalize_phone(world.new_phone())
        self.validator = RequestValidator(TWILIO_TOKEN)

    def _post(self, path: str, form: dict[str, str]) -> Awaitable[httpx.Response]:
        signature = self.validator.compute_signature(f"{self.world.stack.web_url}{path}", form)
        return self.http.post(path, data=form, headers={"X-Twilio-Signature": signature})

    def _form(self, status: str) -> dict[str, str]:
        return {
            "AccountSid": TWILIO_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": status,
            "Direction": "inbound",
            "From": self.caller,
            "To": LINE_NUMBER,
        }

    async def webhook(self, endpoint: str, path: str, form: dict[str, str]) -> bool:
        response = await with_retries(self.recorder, endpoint, lambda: self._post(path, form))
        if response is not None and self.world.on_purpose():  # Twilio retrying after a lost answer
            await attempt(self.recorder, endpoint, lambda: self._post(path, form), retry="deliberate")
        return response is not None

    async def live(self) -> None:
        if not await self.webhook("POST /telephony/voice", "/telephony/voice", self._form("ringing")):
            return
        self.recorder.acks.calls.add(self.call_sid)
        await self.world.pause()  # listening to the greeting, then hanging up (Twilio reports it in any case)
        form = self._form("completed") | {"CallDuration": "9"}
        if await self.webhook("POST /telephony/status", "/telephony/status", form):
            self.recorder.acks.calls_ended.add(self.call_sid)


async def citizen_slot(world: World, slot: int, channel: str, shared: httpx.AsyncClient) -> None:
    """One of the N citizens: arrives spread over the first seconds, then one visit after another."""
    await asyncio.sleep(random.uniform(0, min(30.0, world.config.seconds / 4)))
    while world.running():
        if channel == "web":
            await WebCitizen(world, slot).live()
        elif channel == "telegram":
            await TelegramCitizen(world, shared).live()
        else:
            await Caller(world, shared).live()
        await world.pause()


def channels_for(config: SoakConfig) -> list[str]:
    web, telegram, _ = config.channel_shares
    n_web, n_telegram = round(config.citizens * web), round(config.citizens * telegram)
    return ["web"] * n_web + ["telegram"] * n_telegram + ["phone"] * (config.citizens - n_web - n_telegram)


# ---- the faults -----------------------------------------------------------------------------------------------------


def pid_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # a zombie is dead, only not yet reaped


async def kill_web_worker(world: World) -> None:
    stack, recorder = world.stack, world.recorder
    window = KillWindow("web worker", stack.web_worker_pids()[0], recorder.now())
    recorder.windows.append(window)
    killed, new = await asyncio.to_thread(stack.kill_web_worker)
    window.killed_pid, window.new_pid, window.ended = killed, new, recorder.now()
    window.killed_gone = pid_gone(killed) and new in stack.web_worker_pids()


async def kill_rasa_replica(world: World, index: int) -> None:
    stack, recorder = world.stack, world.recorder
    window = KillWindow("rasa replica", stack.replicas[index].process.pid, recorder.now())
    recorder.windows.append(window)
    await asyncio.to_thread(stack.kill_rasa, index)
    await asyncio.sleep(world.config.rasa_restart_after)
    window.killed_gone = pid_gone(window.killed_pid)
    window.new_pid = await asyncio.to_thread(stack.restart_rasa, index)
    window.ended = recorder.now()


async def chaos(world: World) -> None:
    await asyncio.sleep(world.config.seconds * world.config.kill_at_share)
    await asyncio.gather(kill_web_worker(world), kill_rasa_replica(world, 1))


# ---- afterwards: drain, then reconcile against the database ---------------------------------------------------------


def count_where(session: Session, model: type[Any], *conditions: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)


async def wait_for_inbox(factory: sessionmaker[Session], kill_at: float | None, recorder: Recorder) -> dict[str, Any]:
    """Telegram updates a dead worker had taken are queued again after their lease: wait for that."""
    started = recorder.now()
    limit = max(started + 30, (kill_at or 0) + INBOX_RECOVERY_SECONDS)
    while True:
        with factory() as session:
            pending = count_where(session, InboundUpdate, InboundUpdate.status == "pending")
        if not pending or recorder.now() > limit:
            return {"pending": pending, "waited_s": round(recorder.now() - started, 1)}
        await asyncio.sleep(1)


def outbox_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    return {"pending": 0, "failed": 0, "sent": 0, "dead": 0} | {status: int(n) for status, n in rows}


def leased_until(session: Session) -> float:
    """Seconds until the last undelivered message's lease or back-off ends (0 when none is waiting)."""
    latest = session.scalar(
        select(func.max(OutboxMessage.next_attempt_at)).where(OutboxMessage.status.in_(("pending", "failed")))
    )
    return max(0.0, (latest - utcnow()).total_seconds()) if latest is not None else 0.0


async def wait_for_outbox(factory: sessionmaker[Session], drain_seconds: float) -> dict[str, Any]:
    """Waits `drain_seconds` for the outbox to empty; messages a dead worker had leased wait for their lease."""
    started = time.monotonic()
    drained_in_limit = False
    while True:
        with factory() as session:
            counts, waiting_s = outbox_counts(session), leased_until(session)
        elapsed = time.monotonic() - started
        if not counts["pending"] and not counts["failed"]:
            drained_in_limit = elapsed <= drain_seconds
            break
        # Past the limit, wait only for leases that run out (a dead worker's), never for ever.
        if elapsed > drain_seconds and (waiting_s == 0 or elapsed > drain_seconds + OUTBOX_LEASE_SECONDS + 30):
            break
        await asyncio.sleep(1)
    return counts | {
        "drained": not counts["pending"] and not counts["failed"],
        "drained_within_limit": drained_in_limit,
        "drain_limit_s": drain_seconds,
        "drain_s": round(time.monotonic() - started, 1),
    }


def reconcile_cases(session: Session, acks: Acks) -> dict[str, Any]:
    rows = session.execute(select(Case.number, Case.conversation_id)).all()
    numbers = Counter(number for number, _ in rows)
    per_conversation = Counter(conversation for _, conversation in rows)
    twice = [conversation for conversation, n in per_conversation.items() if n > 1 and conversation is not None]
    return {
        "acknowledged": len(acks.cases),
        "filed": len(rows),
        "lost": sorted(n for n in acks.cases if numbers[n] == 0),
        "duplicated": sorted(n for n in acks.cases if numbers[n] > 1),
        # Each visit reports one problem in a conversation of its own: a second case there is a duplicate.
        "conversations_with_two_cases": len(twice),
        "two_cases_samples": two_cases_samples(session, twice[:5], acks),
        "filed_without_acknowledgement": sum(1 for n in numbers if n not in acks.cases),
    }


def two_cases_samples(session: Session, conversation_ids: list[int], acks: Acks) -> list[dict[str, Any]]:
    """Enough about each conversation with two cases to trace how the second one came about."""
    samples = []
    for conversation_id in conversation_ids:
        conversation = session.get(Conversation, conversation_id)
        cases = session.execute(
            select(Case.number, Case.idempotency_key, Case.created_at).where(Case.conversation_id == conversation_id)
        ).all()
        inbound = session.execute(
            select(Message.dedupe_key, Message.status, Message.text, Message.created_at)
            .where(Message.conversation_id == conversation_id, Message.direction == "in")
            .order_by(Message.id)
        ).all()
        samples.append(
            {
                "channel": conversation.channel if conversation else None,
                "cases": [
                    {"number": n, "key": k, "at": str(at), "acknowledged": n in acks.cases} for n, k, at in cases
                ],
                "inbound": [{"key": k, "status": st, "text": t[:40], "at": str(at)} for k, st, t, at in inbound],
            }
        )
    return samples


def reconcile_web_messages(session: Session, acks: Acks) -> dict[str, Any]:
    rows = session.execute(
        select(Message.dedupe_key, Message.status)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.channel == "web", Message.direction == "in", Message.dedupe_key.is_not(None))
    ).all()
    keys = Counter(key for key, _ in rows)
    return {
        "acknowledged": len(acks.web_messages),
        "lost": sorted(k for k in acks.web_messages if keys[k] == 0),
        "duplicated": sorted(k for k in acks.web_messages if keys[k] > 1),
        "statuses": dict(Counter(status for _, status in rows)),
        # A turn whose worker died keeps "received": the gateway answers every resend "in progress".
        "stuck_received": sum(1 for _, status in rows if status == "received"),
    }


def reconcile_telegram(session: Session, acks: Acks, api: tg.FakeTelegramAPI) -> dict[str, Any]:
    updates = session.execute(select(InboundUpdate.update_key, InboundUpdate.status)).all()
    keys = Counter(key for key, _ in updates)
    status_of = dict(updates)
    turns = dict(
        session.execute(
            select(Message.dedupe_key, Message.status)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.channel == "telegram", Message.direction == "in")
        ).all()
    )
    acked = {str(update_id) for update_id in acks.telegram_updates}
    never_answered = sorted(k for k in acked if turns.get(f"tg:{k}") == "received")
    return {
        "acknowledged": len(acked),
        "lost": sorted(k for k in acked if keys[k] == 0),
        "duplicated": sorted(k for k in acked if keys[k] > 1),
        "not_handled": sorted(k for k in acked if keys[k] and status_of[k] != "handled"),
        # Acknowledged to Telegram, so never sent again, and never answered by the bot.
        "turns_never_answered": never_answered,
        "turns_never_answered_samples": [telegram_turn_story(session, key) for key in never_answered[:3]],
        "messages_sent_twice": telegram_messages_sent_twice(session, api),
    }


def telegram_turn_story(session: Session, update_key: str) -> dict[str, Any]:
    """The inbox row of an update and its chat's transcript: how its turn went unanswered."""
    update = session.execute(select(InboundUpdate).where(InboundUpdate.update_key == update_key)).scalar_one()
    message = session.execute(select(Message).where(Message.dedupe_key == f"tg:{update_key}")).scalar_one()
    transcript = session.execute(
        select(Message).where(Message.conversation_id == message.conversation_id).order_by(Message.id)
    ).scalars()
    return {
        "update": {
            "status": update.status,
            "attempts": update.attempts,
            "received_at": str(update.received_at),
            "handled_at": str(update.handled_at),
            "last_error": update.last_error,
        },
        "transcript": [
            f"{m.created_at:%H:%M:%S.%f} {m.direction} {m.sender} {m.status} {m.dedupe_key} {m.text[:40]!r}"
            for m in transcript
        ],
    }


def telegram_messages_sent_twice(session: Session, api: tg.FakeTelegramAPI) -> int:
    """Bot API deliveries beyond one per sent outbox row, per chat (a row sent again after its sender died)."""
    rows = session.execute(
        select(Conversation.external_id, func.count())
        .join(OutboxMessage, OutboxMessage.conversation_id == Conversation.id)
        .where(Conversation.channel == "telegram", OutboxMessage.status == "sent")
        .group_by(Conversation.external_id)
    ).all()
    sent_rows = {chat: int(n) for chat, n in rows}
    delivered = Counter(str(call.params.get("chat_id")) for call in api.calls_to("sendMessage") if call.status == 200)
    return sum(max(0, n - sent_rows.get(chat, 0)) for chat, n in delivered.items())


def reconcile_ballots(session: Session, acks: Acks, poll_id: int) -> dict[str, Any]:
    receipts = Counter(session.execute(select(Ballot.receipt_id).where(Ballot.poll_id == poll_id)).scalars())
    voters = count_where(session, PollVoter, PollVoter.poll_id == poll_id)
    acknowledged_voters = len(acks.voter_receipts)
    return {
        "acknowledged_receipts": len(acks.receipts),
        "acknowledged_voters": acknowledged_voters,
        "ballots": sum(receipts.values()),
        "poll_voters": voters,
        "lost": sorted(r for r in acks.receipts if receipts[r] == 0),
        "duplicated": sorted(r for r in acks.receipts if receipts[r] > 1),
        "voters_with_two_receipts": sum(1 for r in acks.voter_receipts.values() if len(r) > 1),
        "voters_match": voters == acknowledged_voters,
        "ballots_match_voters": sum(receipts.values()) == voters,
    }


def reconcile_calls(session: Session, acks: Acks) -> dict[str, Any]:
    calls = dict(session.execute(select(PhoneCall.call_sid, PhoneCall.status)).all())
    conversations = Counter(
        session.execute(select(Conversation.external_id).where(Conversation.channel == "phone")).scalars()
    )
    return {
        "acknowledged": len(acks.calls),
        "lost": sorted(sid for sid in acks.calls if sid not in calls),
        "duplicated": sorted(sid for sid in acks.calls if conversations[sid] > 1),
        "ended_but_not_ended": sorted(sid for sid in acks.calls_ended if calls.get(sid) != "ended"),
    }


def reconcile_sms(acks: Acks, sms: SmsInbox) -> dict[str, Any]:
    received = sms.counts()
    return {
        "acknowledged": sum(acks.codes_requested.values()),
        "lost": sum(max(0, n - received.get(phone, 0)) for phone, n in acks.codes_requested.items()),
        "duplicated": sum(max(0, received.get(phone, 0) - n) for phone, n in acks.codes_requested.items()),
    }


def size(value: Any) -> int:
    return len(value) if isinstance(value, list) else int(value)


def reconcile(
    factory: sessionmaker[Session], acks: Acks, poll_id: int, api: tg.FakeTelegramAPI, sms: SmsInbox
) -> dict[str, Any]:
    with factory() as session:
        checks = {
            "cases": reconcile_cases(session, acks),
            "web_messages": reconcile_web_messages(session, acks),
            "telegram": reconcile_telegram(session, acks, api),
            "ballots": reconcile_ballots(session, acks, poll_id),
            "calls": reconcile_calls(session, acks),
        }
    checks["sms_codes"] = reconcile_sms(acks, sms)
    lost = {
        "cases": size(checks["cases"]["lost"]),
        "web_messages": size(checks["web_messages"]["lost"]),
        "telegram_updates": size(checks["telegram"]["lost"]) + size(checks["telegram"]["not_handled"]),
        "telegram_turns_never_answered": size(checks["telegram"]["turns_never_answered"]),
        "ballots": size(checks["ballots"]["lost"]),
        "calls": size(checks["calls"]["lost"]) + size(checks["calls"]["ended_but_not_ended"]),
        "sms_codes": checks["sms_codes"]["lost"],
    }
    duplicated = {
        "cases": size(checks["cases"]["duplicated"]) + checks["cases"]["conversations_with_two_cases"],
        "web_messages": size(checks["web_messages"]["duplicated"]),
        "telegram_updates": size(checks["telegram"]["duplicated"]),
        "telegram_messages_sent_twice": checks["telegram"]["messages_sent_twice"],
        "ballots": size(checks["ballots"]["duplicated"]) + checks["ballots"]["voters_with_two_receipts"],
        "calls": size(checks["calls"]["duplicated"]),
        "sms_codes": checks["sms_codes"]["duplicated"],
        "resends_answered_differently": len(acks.retry_mismatches),
    }
    return {"checks": checks, "lost_by_kind": lost, "duplicated_by_kind": duplicated}


# ---- the figures ----------------------------------------------------------------------------------------------------


def summarize_attempts(recorder: Recorder) -> dict[str, Any]:
    """Requests, retries, errors by cause inside and outside the kill windows, latency per endpoint.

    The error rate counts every outcome a citizen met: HTTP attempts and the replies they waited for.
    """
    inside, outside = Counter[str](), Counter[str]()
    outcomes_outside = 0
    latencies: dict[str, list[float]] = defaultdict(list)
    latencies_outside: dict[str, list[float]] = defaultdict(list)
    for item in recorder.attempts:
        killed = recorder.inside_kill(item)
        outcomes_outside += not killed
        if item.ok:
            latencies[item.endpoint].append((item.ended - item.started) * 1000)
            if not killed:
                latencies_outside[item.endpoint].append((item.ended - item.started) * 1000)
        else:
            (inside if killed else outside)[f"{item.endpoint}: {item.cause}"] += 1
    requests = [a for a in recorder.attempts if a.retry is None and not a.awaited]
    return {
        "requests": len(requests),
        "requests_by_endpoint": dict(Counter(a.endpoint for a in requests)),
        "retries": dict(Counter(a.retry for a in recorder.attempts if a.retry)),
        "awaited_replies": sum(1 for a in recorder.attempts if a.awaited),
        "errors": {"outside_kill_windows": dict(outside), "inside_kill_windows": dict(inside)},
        "outcomes_outside_kill_windows": outcomes_outside,
        "error_rate_outside_kills": round(sum(outside.values()) / max(1, outcomes_outside), 5),
        "latency_ms": {endpoint: percentiles(samples) for endpoint, samples in sorted(latencies.items())},
        "latency_ms_outside_kills": {
            endpoint: percentiles(samples) for endpoint, samples in sorted(latencies_outside.items())
        },
        "unexpected_answers": dict(recorder.dialogue),
        "unexpected_answer_samples": recorder.dialogue_samples,
        "timeline": timeline(recorder),
    }


def timeline(recorder: Recorder, bucket_s: float = 10.0) -> list[dict[str, Any]]:
    """Chat turns and Telegram turns per 10 s: how many, how many failed, their p95 (the kills show here)."""
    buckets: dict[int, list[Attempt]] = defaultdict(list)
    for item in recorder.attempts:
        if item.endpoint in ("POST /chat/api/messages", "Telegram turn (webhook → reply)"):
            buckets[int(item.started // bucket_s)].append(item)
    return [
        {
            "from_s": index * bucket_s,
            "turns": len(items),
            "failed": sum(1 for a in items if not a.ok),
            "p95_ms": percentiles([(a.ended - a.started) * 1000 for a in items if a.ok]).get("p95"),
        }
        for index, items in sorted(buckets.items())
    ]


def summarize_kills(recorder: Recorder) -> list[dict[str, Any]]:
    return [
        asdict(window)
        | {
            "started": round(window.started, 1),
            "ended": round(window.ended, 1) if window.ended is not None else None,
            "window_s": round(window.ended - window.started, 1) if window.ended is not None else None,
        }
        for window in recorder.windows
    ]


# ---- the run --------------------------------------------------------------------------------------------------------


@contextmanager
def fresh_schema(base_url: str) -> Iterator[str]:
    """A migrated schema of its own in the PostgreSQL of `base_url`, dropped afterwards; yields its URL."""
    schema = f"soak_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{base_url}?options=-csearch_path%3D{schema}"
        upgrade(url)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed_poll(factory: sessionmaker[Session]) -> tuple[int, str]:
    """One open public city poll for the citizens to vote in; returns its id and title."""
    now = utcnow()
    new = NewPoll(
        title="서울광장 주말 차 없는 거리",
        description="토요일과 일요일에 세종대로 일부 구간을 보행자에게 여는 안입니다.",
        options=["찬성", "반대"],
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(days=3),
    )
    with session_scope(factory) as session:
        poll, _ = polls.create_poll(session, new, kind="policy", created_by="soak")
        session.flush()
        return poll.id, poll.title


def stack_env(telegram_url: str, twilio: FakeTwilioAPI, api: tg.FakeTelegramAPI) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_BASE_URL": telegram_url,
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "TELEGRAM_MODE": "webhook",
        "TWILIO_API_BASE_URL": twilio.url,
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_PHONE_NUMBER": LINE_NUMBER,
        "ASR_PRELOAD": "false",  # no audio in this soak: the recognisers would only cost each worker's start
    }


async def load(world: World) -> None:
    """The citizens for `seconds`, the faults a third of the way in; returns once both are over."""
    follower = asyncio.create_task(world.telegram.follow())
    faults = asyncio.create_task(chaos(world))
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=world.stack.web_url, timeout=REQUEST_TIMEOUT, limits=limits) as shared:
        slots = [citizen_slot(world, slot, channel, shared) for slot, channel in enumerate(channels_for(world.config))]
        await asyncio.gather(*slots)
    await faults
    # The last replies of Telegram turns still arrive after the last post.
    await asyncio.sleep(2)
    follower.cancel()


@dataclass(frozen=True)
class SoakTarget:
    """The scaled stack with the fakes it talks to, as the soak (and tests/scale) need them."""

    stack: ScaledStack
    telegram_api: tg.FakeTelegramAPI
    sms: SmsInbox


@contextmanager
def soak_target(config: SoakConfig) -> Iterator[SoakTarget]:
    """The scaled stack on a fresh schema, its Bot API and Twilio local fakes, Telegram in webhook mode."""
    with ExitStack() as resources:
        url = resources.enter_context(fresh_schema(normalize_url(config.database_url)))
        twilio = resources.enter_context(local_twilio(TWILIO_SID, TWILIO_TOKEN))
        api = tg.FakeTelegramAPI()
        telegram_url = resources.enter_context(serve_in_thread(api.app))
        sms = SmsInbox(twilio)
        env = stack_env(telegram_url, twilio, api)
        stack = resources.enter_context(running_scaled_stack(url, config.redis_url, web_env=env))
        api.wait_for(lambda: api.webhook is not None, timeout=60)
        yield SoakTarget(stack, api, sms)


async def soak_on(target: SoakTarget, config: SoakConfig) -> dict[str, Any]:
    """Seeds the poll, runs the citizens and the faults, drains, reconciles; returns the figures."""
    stack = target.stack
    engine: Engine = make_engine(stack.database_url)
    factory = make_session_factory(engine)
    try:
        poll_id, title = seed_poll(factory)
        recorder = Recorder()
        telegram = TelegramChats(target.telegram_api)
        world = World(stack, recorder, config, target.sms, telegram, title, deadline=config.seconds)
        await load(world)
        kill_at = min((window.started for window in recorder.windows), default=None)
        inbox = await wait_for_inbox(factory, kill_at, recorder)
        outbox = await wait_for_outbox(factory, config.drain_seconds)
        reconciled = reconcile(factory, recorder.acks, poll_id, target.telegram_api, target.sms)
    finally:
        engine.dispose()
    return {
        "seconds": config.seconds,
        "citizens": config.citizens,
        "think_seconds": list(config.think_seconds),
        "channels": dict(Counter(channels_for(config))),
        **summarize_attempts(recorder),
        "kills": summarize_kills(recorder),
        "workers_after": len(stack.web_worker_pids()),
        "lost": sum(reconciled["lost_by_kind"].values()) + outbox["dead"],
        "duplicated": sum(reconciled["duplicated_by_kind"].values()),
        "outbox": outbox,
        "telegram_inbox": inbox,
        **reconciled,
    }


def soak(target: SoakTarget, config: SoakConfig) -> dict[str, Any]:
    return asyncio.run(soak_on(target, config))


def run_soak(config: SoakConfig) -> dict[str, Any]:
    """Starts the scaled stack with its fakes, soaks it and reconciles; returns the figures."""
    with soak_target(config) as target:
        return soak(target, config)


def verdict(result: dict[str, Any]) -> list[str]:
    """What falls short of the issue's goal (empty when the soak passed)."""
    failures = []
    if result["lost"]:
        failures.append(f"lost {result['lost']}: {result['lost_by_kind']}, outbox dead {result['outbox']['dead']}")
    if result["duplicated"]:
        failures.append(f"duplicated {result['duplicated']}: {result['duplicated_by_kind']}")
    if not result["outbox"]["drained"]:
        failures.append(f"outbox not drained: {result['outbox']}")
    if result["error_rate_outside_kills"] >= 0.005:
        failures.append(f"error rate outside the kills {result['error_rate_outside_kills']:.3%}")
    return failures


def main(argv: list[str] | None = None) -> list[str]:
    """Runs the soak, writes bench/results/soak.json; returns what fell short of the goal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--citizens", type=int, default=200)
    args = parser.parse_args(argv)
    if not list((ROOT / "models").glob("*.tar.gz")):
        sys.exit("no trained model in models/: run `make train`")
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not database_url.startswith("postgres"):
        sys.exit(f"the soak runs scale mode, on PostgreSQL: DATABASE_URL is {database_url}")
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    config = SoakConfig(seconds=args.seconds, citizens=args.citizens, database_url=database_url, redis_url=redis_url)
    result = run_soak(config)
    failures = verdict(result)
    write_result("soak", result | {"goal_met": not failures, "shortfalls": failures})
    if failures:
        print("soak fell short: " + json.dumps(failures, ensure_ascii=False), file=sys.stderr)
    return failures


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
