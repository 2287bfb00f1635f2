"""The case state machine: every allowed move works, every other one is refused."""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from civic.models import Case, CaseEvent, OutboxMessage
from civic.workflow import ALLOWED, CaseStatus, InvalidTransition, transition

MakeCase = Callable[..., Case]

PAIRS = list(itertools.product(CaseStatus, CaseStatus))


def test_allowed_table_covers_every_status() -> None:
    assert set(ALLOWED) == set(CaseStatus)
    assert ALLOWED[CaseStatus.WITHDRAWN] == frozenset()


@pytest.mark.parametrize(("start", "to"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_transition(session: Session, make_case: MakeCase, start: CaseStatus, to: CaseStatus) -> None:
    case = make_case(with_conversation=False)
    case.status = start.value
    session.flush()
    if to in ALLOWED[start]:
        event = transition(session, case=case, to=to, actor="operator:1")
        assert (event.from_status, event.to_status, case.status) == (start, to, to)
    else:
        with pytest.raises(InvalidTransition):
            transition(session, case=case, to=to, actor="operator:1")
        assert case.status == start


def test_transition_logs_event_and_notifies_once(session: Session, make_case: MakeCase) -> None:
    case = make_case()
    event = transition(session, case=case, to=CaseStatus.ACCEPTED, actor="operator:12", note="확인")
    events = session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id)).scalars().all()
    assert [(e.from_status, e.to_status) for e in events] == [(None, "received"), ("received", "accepted")]
    assert event.actor == "operator:12" and event.note == "확인"
    outbox = (
        session.execute(select(OutboxMessage).where(OutboxMessage.conversation_id == case.conversation_id))
        .scalars()
        .all()
    )
    assert len(outbox) == 1
    assert outbox[0].channel == "telegram" and outbox[0].kind == "case_status"
    assert outbox[0].text.startswith(f"[{case.number}]")
    assert outbox[0].data["status"] == "accepted"


def test_notice_in_case_language_with_note(session: Session, make_case: MakeCase) -> None:
    case = make_case(language="en")
    for status in (CaseStatus.ACCEPTED, CaseStatus.ASSIGNED, CaseStatus.IN_PROGRESS):
        transition(session, case=case, to=status, actor="operator:1")
    transition(session, case=case, to=CaseStatus.RESOLVED, actor="official:3", note="Car towed.")
    texts = (
        session.execute(
            select(OutboxMessage.text)
            .where(OutboxMessage.conversation_id == case.conversation_id)
            .order_by(OutboxMessage.id)
        )
        .scalars()
        .all()
    )
    assert (
        texts[1] == f"[{case.number}] Your report has been assigned to Mapo-gu Office Traffic Administration Division."
    )
    assert texts[-1] == f"[{case.number}] Your report has been resolved.\nAnswer: Car towed.\nIs the problem fixed?"


def test_no_notice_without_conversation_or_when_disabled(session: Session, make_case: MakeCase) -> None:
    lonely = make_case(with_conversation=False)
    transition(session, case=lonely, to=CaseStatus.ACCEPTED, actor="operator:1")
    quiet = make_case()
    transition(session, case=quiet, to=CaseStatus.ACCEPTED, actor="operator:1", notify=False)
    count = session.execute(select(OutboxMessage).where(OutboxMessage.conversation_id == quiet.conversation_id)).all()
    assert count == []


def _phone_case(session: Session, *, caller: str | None) -> Case:
    from civic.cases import file_case
    from civic.phone_calls import start_call

    call = start_call(session, call_sid="CA" + uuid.uuid4().hex, caller=caller, expectation={})
    session.flush()
    return file_case(
        session,
        category="noise",
        district="마포구",
        place="합정역",
        description="소음",
        channel="phone",
        conversation_id=call.conversation_id,
    )


def test_phone_callers_get_their_number_and_later_changes_by_sms(session: Session) -> None:
    from civic.phones import decrypt_phone
    from civic.workflow import announce_filing

    case = _phone_case(session, caller="+821047775555")
    announce_filing(session, case=case)
    announce_filing(session, case=case)  # a retried filing turn queues nothing more
    transition(session, case=case, to=CaseStatus.ACCEPTED, actor="operator:1")
    rows = (
        session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.conversation_id == case.conversation_id)
            .order_by(OutboxMessage.id)
        )
        .scalars()
        .all()
    )
    assert [row.channel for row in rows] == ["sms", "sms"]
    assert rows[0].text.startswith(f"[{case.number}] 민원이 접수되었습니다")
    assert rows[1].text.startswith(f"[{case.number}] 120 상담사가 민원을 확인했습니다")
    assert {decrypt_phone(base64.b64decode(row.data["to_ciphertext"])) for row in rows} == {"+821047775555"}
    assert all("+8210" not in row.text for row in rows)


def test_a_caller_who_withheld_the_number_gets_no_sms(session: Session) -> None:
    from civic.workflow import announce_filing

    case = _phone_case(session, caller="anonymous")
    announce_filing(session, case=case)
    transition(session, case=case, to=CaseStatus.ACCEPTED, actor="operator:1")
    assert (
        session.execute(select(OutboxMessage).where(OutboxMessage.conversation_id == case.conversation_id)).first()
        is None
    )


def test_chat_filings_are_not_announced_twice(session: Session, make_case: MakeCase) -> None:
    from civic.workflow import announce_filing

    case = make_case()
    announce_filing(session, case=case)  # the chat shows the bot's own answer; no extra notice
    assert (
        session.execute(select(OutboxMessage).where(OutboxMessage.conversation_id == case.conversation_id)).first()
        is None
    )
