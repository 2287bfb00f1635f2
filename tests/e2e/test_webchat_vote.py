"""A citizen votes in the web chat against the real stack: number verified by SMS code, poll, option, receipt, once."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from civic import polls
from civic.db import session_scope, utcnow
from civic.models import Ballot, Poll
from civic.phones import normalize_phone
from civic.polls import NewPoll
from telephony.local_twilio import FakeTwilioAPI
from tests.e2e.stack import ChatClient
from tests.inprocess_app import new_phone

pytestmark = pytest.mark.e2e
RECEIPT = re.compile(r"영수증 번호: ([0-9a-f]{32})")


def open_poll(db: sessionmaker[Session]) -> Poll:
    """An open public city poll; its title is unique because other tests leave their polls open too."""
    now = utcnow()
    new = NewPoll(
        title=f"서울광장 주말 차 없는 거리 {uuid.uuid4().hex[:6]}",
        description="토요일과 일요일에 세종대로 일부 구간을 보행자에게 여는 안입니다.",
        options=["찬성", "반대"],
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(days=3),
    )
    with session_scope(db) as session:
        poll, _ = polls.create_poll(session, new, kind="policy", created_by="e2e")
        return poll


def ballots(db: sessionmaker[Session], poll: Poll) -> list[Ballot]:
    with db() as session:
        return list(session.execute(select(Ballot).where(Ballot.poll_id == poll.id)).scalars())


def verify_number(citizen: ChatClient, twilio_api: FakeTwilioAPI, phone: str) -> str:
    """What the page's "📞 Verify my number" form does: send code, read the SMS, verify; returns the E.164 number."""
    e164 = normalize_phone(phone)
    sent = citizen.post_json("/chat/api/phone", {"phone": phone})
    assert sent.status_code == 200 and sent.json() == {"sent": True, "last4": e164[-4:]}, sent.text
    deadline = time.monotonic() + 15
    while not twilio_api.messages_to(e164) and time.monotonic() < deadline:
        time.sleep(0.1)
    [sms] = twilio_api.messages_to(e164)
    code = re.search(r"인증번호 (\d{6})", sms["body"])
    assert code, sms["body"]
    verified = citizen.post_json("/chat/api/phone/verify", {"phone": phone, "code": code.group(1)})
    assert verified.status_code == 200 and verified.json() == {"verified": True, "last4": e164[-4:]}, verified.text
    assert citizen.http.get("/chat/api/phone").json() == {"verified": True, "last4": e164[-4:]}
    return e164


def choose_poll(citizen: ChatClient, poll: Poll) -> dict[str, Any]:
    """Asks for the open polls and taps this one; returns the ballot reply (its options as buttons)."""
    [listed] = citizen.say("투표 목록")
    [button] = [b for b in listed["buttons"] if b["title"] == poll.title]
    [ballot] = citizen.say(button["title"], payload=button["payload"])
    assert poll.title in ballot["text"] and len(ballot["buttons"]) == 2, ballot
    return ballot


def tap(citizen: ChatClient, reply: dict[str, Any], title: str) -> dict[str, Any]:
    [button] = [b for b in reply["buttons"] if b["title"] == title]
    [answer] = citizen.say(button["title"], payload=button["payload"])
    return answer


def test_a_verified_web_citizen_votes_once_in_the_chat(
    citizen: ChatClient, db: sessionmaker[Session], twilio_api: FakeTwilioAPI
) -> None:
    poll = open_poll(db)
    phone = new_phone()
    e164 = verify_number(citizen, twilio_api, phone)

    receipt = tap(citizen, choose_poll(citizen, poll), "2. 반대")["text"]
    match = RECEIPT.search(receipt)
    assert match and "감사합니다" in receipt and "반대" in receipt, receipt
    assert f"/api/polls/{poll.public_id}/proof/inclusion?receipt={match.group(1)}" in receipt
    [stored] = ballots(db, poll)
    assert (stored.receipt_id, stored.option_position, stored.channel) == (match.group(1), 2, "web")

    # Again, with the other option: the first ballot stands and its receipt comes back.
    again = tap(citizen, choose_poll(citizen, poll), "1. 찬성")["text"]
    assert "이미 참여" in again and match.group(1) in again, again
    with db() as session:
        assert session.scalar(select(func.count()).select_from(Ballot).where(Ballot.poll_id == poll.id)) == 1

    # The transcript has the verification note (last four digits) but neither the number, the choice nor the receipt.
    transcript = citizen.transcript()
    assert any(m["sender"] == "system" and e164[-4:] in m["text"] for m in transcript)
    everything = " ".join(m["text"] for m in transcript)
    assert phone not in everything and e164 not in everything and phone[4:] not in everything
    assert match.group(1) not in everything and "🗳" in everything


def test_an_unverified_web_citizen_verifies_then_taps_again(
    citizen: ChatClient, db: sessionmaker[Session], twilio_api: FakeTwilioAPI
) -> None:
    poll = open_poll(db)
    asked = tap(citizen, choose_poll(citizen, poll), "1. 찬성")
    assert "📞 내 번호 인증" in asked["text"] and "/polls/" not in asked["text"], asked
    assert [b["title"] for b in asked["buttons"]] == ["1. 찬성", "2. 반대"]
    assert ballots(db, poll) == []

    verify_number(citizen, twilio_api, new_phone())
    # The prompt's own buttons still count: verifying is a system note, not a bot turn.
    receipt = tap(citizen, asked, "1. 찬성")["text"]
    assert RECEIPT.search(receipt), receipt
    assert [(b.option_position, b.channel) for b in ballots(db, poll)] == [(1, "web")]
