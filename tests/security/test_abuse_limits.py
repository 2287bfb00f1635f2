"""Abuse limits that hold across workers and proxies: shared counters, client keys, SMS budgets, chat quotas, logins."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bot.channels.webchat import chat as webchat
from bot.client_address import client_key
from civic import rate_limits, verification
from civic.db import make_engine, make_session_factory, session_scope
from civic.models import RateLimitCounter, VerificationCode
from civic.phones import normalize_phone, phone_blind_index
from civic.settings import get_settings
from civic.verification import send_verification_code
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import new_phone, running_app
from tests.limits import reset_rate_limits
from tests.operator_console.helpers import log_in, new_user

# On a window's edge (whole hours of UTC), so the windows are the same on every run.
T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CSRF_META = re.compile(r'name="csrf-token" content="([0-9a-f]{64})"')


# ---- the shared limiter -------------------------------------------------------------------------------------------


@pytest.fixture
def second_factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Another engine on the same database: what a second web worker has."""
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def hit(factory: sessionmaker[Session], key: str, now: datetime, limit: int = 5) -> rate_limits.RateDecision:
    with session_scope(factory) as session:
        return rate_limits.allow(session, bucket="test", key=key, limit=limit, per_seconds=60, now=now)


def test_a_limit_holds_across_two_workers(
    session_factory: sessionmaker[Session], second_factory: sessionmaker[Session]
) -> None:
    key = uuid.uuid4().hex
    decisions = [hit((session_factory, second_factory)[n % 2], key, T0 + timedelta(seconds=n)) for n in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert 0 < decisions[-1].retry_after_seconds <= 120
    # The estimate slides: one window later the previous window's hits still weigh, then they are gone.
    assert not hit(second_factory, key, T0 + timedelta(seconds=61)).allowed
    assert hit(session_factory, key, T0 + timedelta(seconds=121)).allowed


def test_the_previous_window_weighs_by_its_share_of_the_sliding_minute(session_factory: sessionmaker[Session]) -> None:
    key, start = uuid.uuid4().hex, datetime.fromtimestamp(60 * 30_000_000, tz=UTC)  # a window's first instant
    assert all(hit(session_factory, key, start - timedelta(seconds=59), limit=10).allowed for _ in range(10))
    # 3 s in, 95% of the previous minute still counts (9.5 hits): not even one more fits under 10.
    assert not hit(session_factory, key, start + timedelta(seconds=3), limit=10).allowed
    # 40.2 s in, 33% still counts (3.3): a hit fits while the count so far is at most 10 − 1 − 3.3 = 5.7: six more.
    later = [hit(session_factory, key, start + timedelta(seconds=40.2), limit=10).allowed for _ in range(8)]
    assert later == [True] * 6 + [False] * 2


def test_concurrent_workers_never_pass_more_than_the_limit(
    session_factory: sessionmaker[Session], second_factory: sessionmaker[Session]
) -> None:
    key, allowed, errors = uuid.uuid4().hex, [], []

    def worker(factory: sessionmaker[Session]) -> None:
        for _ in range(10):
            try:
                allowed.append(hit(factory, key, T0, limit=7).allowed)
            except Exception as error:  # a lost update or a deadlock must fail the test, not vanish
                errors.append(error)

    threads = [threading.Thread(target=worker, args=(f,)) for f in (session_factory, second_factory) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(allowed) == 40 and sum(allowed) == 7


def test_keys_are_stored_as_hmacs_and_old_windows_are_pruned(session_factory: sessionmaker[Session]) -> None:
    phone = f"+82109{uuid.uuid4().int % 10**7:07d}"
    assert hit(session_factory, phone, T0).allowed
    with session_scope(session_factory) as session:
        hashes = list(session.execute(select(RateLimitCounter.key_hash)).scalars())
        assert rate_limits.key_hash("test", phone) in hashes and not any(phone in h for h in hashes)
        assert rate_limits.prune(session, T0 + timedelta(seconds=181)) >= 1
        mine = select(func.count()).where(RateLimitCounter.key_hash == rate_limits.key_hash("test", phone))
        assert session.execute(mine).scalar_one() == 0


# ---- client addresses ---------------------------------------------------------------------------------------------


def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(client_key(request))


ECHO = Starlette(routes=[Route("/", _echo)])


def key_seen(peer: str, forwarded: str | None = None) -> str:
    # uvicorn wraps the app in this middleware with --forwarded-allow-ips (default 127.0.0.1 in our Procfiles).
    app = ProxyHeadersMiddleware(ECHO, trusted_hosts="127.0.0.1")  # type: ignore[arg-type]
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return TestClient(app, client=(peer, 40000)).get("/", headers=headers).text


def test_ipv6_clients_are_counted_by_their_64_and_ipv4_as_is() -> None:
    assert key_seen("2001:db8:1:2:aaaa::1") == key_seen("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert key_seen("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert key_seen("203.0.113.5") == "203.0.113.5" and key_seen("::ffff:203.0.113.5") == "203.0.113.5"


def test_a_forwarded_header_counts_only_from_the_trusted_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    assert key_seen("203.0.113.5", forwarded="198.51.100.1") == "203.0.113.5"  # anyone else: ignored
    assert key_seen("127.0.0.1", forwarded="198.51.100.1") == "198.51.100.1"  # the proxy: believed
    assert key_seen("127.0.0.1", forwarded="2001:db8:9:9::5") == "2001:db8:9:9::/64"
    # The Procfiles pass FORWARDED_ALLOW_IPS; uvicorn reads the same variable when no flag is given.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.2")
    assert Config(app=ECHO).forwarded_allow_ips == "10.0.0.2"


# ---- SMS codes: destinations and budgets --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio("AC" + "4" * 32, "abuse-test-twilio-token") as fake:
        yield fake


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, twilio: FakeTwilioAPI, rasa: FakeRasa) -> Iterator[TestClient]:
    with running_app(db_url, twilio, RASA_URL=rasa.url) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = client.app.state.session_factory
    reset_rate_limits(factory)
    client.cookies.clear()
    return factory


def open_chat(client: TestClient) -> dict[str, str]:
    client.cookies.clear()
    page = client.get("/chat")
    match = CSRF_META.search(page.text)
    assert match
    cookie = page.cookies["civic_chat"]
    client.cookies.clear()
    return {"Cookie": f"civic_chat={cookie}", "X-CSRF-Token": match.group(1)}


@pytest.mark.parametrize(
    ("number", "language", "words"),
    [
        ("+1 202-555-0123", "ko", "한국 휴대전화 번호"),
        ("+81 90-1234-5678", "en", "Korean mobile numbers"),
        ("02-120-1234", "ja", "韓国の携帯電話番号"),  # a Seoul landline cannot read an SMS
    ],
)
def test_codes_go_only_to_korean_mobiles_and_the_citizen_is_told(
    client: TestClient, db: sessionmaker[Session], twilio: FakeTwilioAPI, number: str, language: str, words: str
) -> None:
    headers = open_chat(client)
    if language != "ko":
        hello = {"en": "Hello, which polls are open?", "ja": "こんにちは、投票はありますか"}[language]
        message = {"client_message_id": uuid.uuid4().hex, "text": hello}
        assert client.post("/chat/api/messages", json=message, headers=headers).status_code == 200
    refused = client.post("/chat/api/phone", json={"phone": number}, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"] == "unsupported_number"
    assert words in refused.json()["message"]
    e164 = normalize_phone(number)
    with session_scope(db) as session:
        query = select(func.count()).where(VerificationCode.phone_index == phone_blind_index(e164))
        assert session.execute(query).scalar_one() == 0
    assert twilio.messages_to(e164) == []


def test_another_region_can_be_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not verification.allowed_destination("+819012345678")
    monkeypatch.setattr(get_settings(), "sms_verification_regions", "KR, JP")
    assert verification.allowed_destination("+819012345678") and verification.allowed_destination("+821012345678")
    assert not verification.allowed_destination("+81312345678")  # a Tokyo landline still is not


def send(factory: sessionmaker[Session], phone: str, client: str, purpose: str) -> str | None:
    """Asks a code for `phone` from `client`; the refusal's code, or None when sent."""
    try:
        send_verification_code(
            factory,
            phone_e164=phone,
            purpose=purpose,
            budget="poll:victim-test",
            client=client,
            sms_text=lambda code: f"code {code}",
            language="ko",
        )
    except verification.VerificationError as refusal:
        return refusal.code
    return None


def test_an_attacker_cannot_use_up_a_victims_codes(db: sessionmaker[Session], twilio: FakeTwilioAPI) -> None:
    victim = normalize_phone(new_phone())
    assert send(db, victim, "203.0.113.66", "poll:victim-test:attacker") is None
    # The attacker keeps asking from their address (and a fresh browser each time): refused after a few.
    refusals = [send(db, victim, "203.0.113.66", f"poll:victim-test:attacker-{n}") for n in range(20)]
    assert refusals.count(None) < verification.SENDS_PER_REQUESTER.limit
    assert set(refusals) - {None} == {"too_many_sends"}
    # The victim, from their own address, still gets a code, and the attacker's codes did not replace it.
    assert send(db, victim, "198.51.100.10", "poll:victim-test:victim") is None
    with session_scope(db) as session:
        query = select(VerificationCode).where(VerificationCode.phone_index == phone_blind_index(victim))
        codes = list(session.execute(query).scalars())
        assert len(codes) <= verification.SENDS_PER_REQUESTER.limit + 1
        assert [c.purpose for c in codes].count("poll:victim-test:victim") == 1


def received_code(twilio: FakeTwilioAPI, phone: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in twilio.messages_to(phone):
            match = re.search(r"\b(\d{6})\b", message["body"])
            if match:
                return match.group(1)
        time.sleep(0.05)
    raise AssertionError("no SMS reached the fake Twilio")


def check(factory: sessionmaker[Session], phone: str, purpose: str, code: str, client: str) -> str | None:
    with session_scope(factory) as session:
        try:
            verification.check_code(
                session, phone_e164=phone, purpose=purpose, code=code, budget="poll:victim-test", client=client
            )
        except verification.VerificationError as refusal:
            return refusal.code
    return None


def test_wrong_guesses_from_elsewhere_do_not_block_the_victims_right_code(
    db: sessionmaker[Session], twilio: FakeTwilioAPI
) -> None:
    victim = normalize_phone(new_phone())
    assert send(db, victim, "198.51.100.11", "poll:victim-test:victim") is None
    code = received_code(twilio, victim)
    attacker = "203.0.113.67"
    assert send(db, victim, attacker, "poll:victim-test:attacker") is None
    refusals = [check(db, victim, "poll:victim-test:attacker", f"{n:06d}", attacker) for n in range(40)]
    # Five wrong tries kill the attacker's own code, and the address may try only so often.
    assert refusals.count("check_limited") == 40 - verification.CHECKS_PER_REQUESTER.limit
    assert check(db, victim, "poll:victim-test:victim", code, "198.51.100.11") is None


# ---- chat quotas --------------------------------------------------------------------------------------------------


def test_chat_messages_have_a_quota_per_conversation_and_per_address(
    client: TestClient, db: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "chat_messages_per_conversation_per_minute", 3)
    headers = open_chat(client)

    def say(text: str, headers: dict[str, str]) -> httpx.Response:
        message = {"client_message_id": uuid.uuid4().hex, "text": text}
        return client.post("/chat/api/messages", json=message, headers=headers)

    assert say("Hello, I want to report something", headers).status_code == 200
    for _ in range(2):
        assert say("hello again", headers).status_code == 200
    refused = say("and again", headers)
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "rate_limited" and "sending messages too quickly" in body["message"]  # in English
    assert refused.headers["Retry-After"] == str(body["retry_after"]) and body["retry_after"] > 0
    # Another conversation from the same address is not affected by this one's quota...
    assert say("안녕하세요", open_chat(client)).status_code == 200
    # ...until the address's own quota is used up.
    monkeypatch.setattr(get_settings(), "chat_messages_per_address_per_minute", 4)  # 4 counted so far
    refused = say("안녕하세요", open_chat(client))
    assert refused.status_code == 429 and "너무 빨리" in refused.json()["message"]


def test_photos_have_a_quota_per_conversation(
    client: TestClient, db: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webchat, "PHOTOS_PER_CONVERSATION", webchat.Quota("chat_photo_conversation", 2, 3600))
    headers = open_chat(client)
    answers = [
        client.post("/chat/api/photos", files={"file": ("p.png", PNG, "image/png")}, headers=headers).status_code
        for _ in range(3)
    ]
    assert answers[2] == 429 and 429 not in answers[:2]
    refused = client.post("/chat/api/photos", files={"file": ("p.png", PNG, "image/png")}, headers=headers)
    assert "사진을 너무 많이 보냈어요" in refused.json()["message"] and int(refused.headers["Retry-After"]) > 60


# ---- console logins -----------------------------------------------------------------------------------------------


def test_an_attacker_hammering_an_email_does_not_lock_its_operator_out(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    email = new_user(db)
    operator = TestClient(client.app, client=("198.51.100.20", 5000))  # not entered: the app is running already
    attacker = TestClient(client.app, client=("2001:db8:66:1::5", 5000))
    assert log_in(operator, email).status_code == 303  # the operator's usual address
    answers = [log_in(attacker, email, "not the password").status_code for _ in range(30)]
    assert answers.count(429) >= 20 and 401 in answers  # backed off, not locked
    # The attacker moving within their /64 is still the same client.
    moved = TestClient(client.app, client=("2001:db8:66:1::99", 5000))
    assert log_in(moved, email, "not the password").status_code == 429
    operator.cookies.clear()
    assert log_in(operator, email).status_code == 303
