"""A citizen votes over Telegram against the real stack: verified number, poll, option, receipt, once only."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from civic import polls
from civic.db import utcnow
from civic.models import Ballot, Poll
from civic.polls import NewPoll
from tests.e2e.test_telegram import TelegramCitizen, telegram_citizen, text_of
from tests.fakes import telegram_api as tg
from tests.fakes.telegram_api import Call

pytestmark = pytest.mark.e2e
__all__ = ["telegram_citizen"]  # the fixture, shared with test_telegram.py
RECEIPT = re.compile(r"영수증 번호: ([0-9a-f]{32})")


def open_poll(db: sessionmaker[Session]) -> Poll:
    """An open city poll; its title is unique because other tests leave their polls open too."""
    now = utcnow()
    new = NewPoll(
        title=f"따릉이 대여소 확대 {uuid.uuid4().hex[:6]}",
        description="지하철역 출구마다 따릉이 대여소를 두는 안입니다.",
        options=["찬성", "반대"],
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(days=3),
    )
    with db() as session, session.begin():
        poll, _ = polls.create_poll(session, new, kind="policy", created_by="e2e")
        return poll


def ballots(db: sessionmaker[Session], poll: Poll) -> list[Ballot]:
    with db() as session:
        return list(session.execute(select(Ballot).where(Ballot.poll_id == poll.id)).scalars())


def choose_poll(citizen: TelegramCitizen, poll: Poll) -> Call:
    """Asks for the open polls and taps this one; returns the ballot message."""
    listed = citizen.send(tg.text_update(citizen.chat_id, "투표 목록"))
    assert poll.title in text_of(listed), text_of(listed)
    [ballot] = citizen.press(listed[-1], poll.title)
    assert poll.title in text_of([ballot]) and "선택지를 눌러" in text_of([ballot]), text_of([ballot])
    return ballot


def test_a_verified_citizen_votes_once_and_gets_a_receipt(
    telegram_citizen: TelegramCitizen, db: sessionmaker[Session]
) -> None:
    citizen, chat = telegram_citizen, telegram_citizen.chat_id
    poll = open_poll(db)
    citizen.send(tg.text_update(chat, "/start"), expect=2)
    verified = text_of(citizen.send(tg.contact_update(chat, "+82 10-5555-0142", contact_user_id=chat)))
    assert "0142" in verified, verified

    ballot = choose_poll(citizen, poll)
    receipt = text_of(citizen.press(ballot, "2. 반대"))
    match = RECEIPT.search(receipt)
    assert match and "감사합니다" in receipt and "반대" in receipt, receipt
    assert f"/api/polls/{poll.public_id}/proof/inclusion?receipt={match.group(1)}" in receipt
    assert re.search(r"체크포인트 루트: [0-9a-f]{16}…", receipt), receipt
    [stored] = ballots(db, poll)
    assert (stored.receipt_id, stored.option_position, stored.channel) == (match.group(1), 2, "telegram")

    # Again, with the other option: the first ballot stands and its receipt comes back.
    again = text_of(citizen.press(choose_poll(citizen, poll), "1. 찬성"))
    assert "이미 참여" in again and match.group(1) in again, again
    with db() as session:
        assert session.scalar(select(func.count()).select_from(Ballot).where(Ballot.poll_id == poll.id)) == 1


def test_an_unverified_citizen_shares_their_number_then_taps_again(
    telegram_citizen: TelegramCitizen, db: sessionmaker[Session]
) -> None:
    citizen, chat = telegram_citizen, telegram_citizen.chat_id
    poll = open_poll(db)
    citizen.send(tg.text_update(chat, "/start"), expect=2)
    [asked] = citizen.press(choose_poll(citizen, poll), "1. 찬성")
    assert "내 번호 인증" in text_of([asked]), text_of([asked])
    assert ballots(db, poll) == []

    citizen.send(tg.contact_update(chat, "+82 10-5555-0277", contact_user_id=chat))
    # The prompt's own buttons still count: sharing the number is a channel note, not a bot turn.
    receipt = text_of(citizen.press(asked, "1. 찬성"))
    assert RECEIPT.search(receipt), receipt
    assert [b.option_position for b in ballots(db, poll)] == [1]


def test_a_citizen_proposes_a_poll_for_moderation(telegram_citizen: TelegramCitizen, db: sessionmaker[Session]) -> None:
    citizen, chat = telegram_citizen, telegram_citizen.chat_id
    title = f"우리 공원 놀이터에 그늘막을 설치할까요? {uuid.uuid4().hex[:4]}"
    assert "무엇을 묻는" in text_of(citizen.send(tg.text_update(chat, "투표 하나 만들고 싶어요")))
    assert "선택지" in text_of(citizen.send(tg.text_update(chat, title)))
    assert "며칠" in text_of(citizen.send(tg.text_update(chat, "찬성\n반대\n잘 모르겠어요")))
    summary = citizen.send(tg.text_update(chat, "10일"))
    assert title in text_of(summary) and "• 잘 모르겠어요" in text_of(summary), text_of(summary)
    sent = text_of(citizen.press(summary[-1], "네, 보내 주세요"))
    assert "검토를 요청" in sent, sent
    with db() as session:
        poll = session.execute(select(Poll).where(Poll.title == title)).scalar_one()
        assert (poll.kind, poll.status, poll.created_by) == ("citizen", "pending", f"telegram:{chat}")
        assert [o.label for o in poll.options] == ["찬성", "반대", "잘 모르겠어요"]

    # The draft is gone: the next proposal starts from the question, and "cancel" drops it.
    assert "무엇을 묻는" in text_of(citizen.send(tg.text_update(chat, "새 투표 만들래요")))
    assert "만들던 투표는 보내지 않고" in text_of(citizen.send(tg.text_update(chat, "취소할게요")))
