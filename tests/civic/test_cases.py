"""Filing, numbering, idempotency, lookup and withdrawal of cases."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import (
    cases_for_conversation,
    file_case,
    get_case,
    next_case_number,
    normalize_case_number,
    withdraw_case,
)
from civic.db import session_scope
from civic.errors import CaseNotFound, NotYourCase, UnknownCategory, UnknownDistrict
from civic.models import Attachment, Case, CaseEvent, Conversation, Department
from civic.workflow import CaseStatus, InvalidTransition, transition

SEOUL = ZoneInfo("Asia/Seoul")
MakeCase = Callable[..., Case]
MakeConversation = Callable[..., Conversation]

FIELDS: dict[str, Any] = {
    "category": "broken_sidewalk",
    "district": "송파구",
    "place": "잠실역 8번 출구",
    "description": "보도블록이 깨졌어요",
    "channel": "web",
}


def test_file_case_routes_numbers_and_logs(session: Session, make_case: MakeCase) -> None:
    case = make_case(latitude=37.55, longitude=126.91, dong="서교동")
    assert case.status == "received"
    assert normalize_case_number(case.number) == case.number
    assert case.number.startswith(f"SR-{case.created_at.astimezone(SEOUL).year}-")
    department = session.get(Department, case.department_id)
    assert department is not None and department.code == "mapo-transport"
    assert case.due_at > case.created_at.date()
    assert case.created_at.tzinfo is not None
    events = session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id)).scalars().all()
    assert [(e.from_status, e.to_status, e.actor) for e in events] == [(None, "received", "bot")]


def test_file_case_validates(session: Session) -> None:
    with pytest.raises(UnknownCategory):
        file_case(session, **{**FIELDS, "category": "graffiti"})
    with pytest.raises(UnknownDistrict):
        file_case(session, **{**FIELDS, "district": "마포"})


def test_numbers_follow_each_other(session: Session) -> None:
    first = next_case_number(session, 1999)
    assert first == 1
    assert [next_case_number(session, 1999) for _ in range(3)] == [2, 3, 4]
    assert next_case_number(session, 1998) == 1


def test_idempotency_key_gives_one_case(session: Session) -> None:
    one = file_case(session, **FIELDS, idempotency_key="tg:42:7")
    two = file_case(session, **FIELDS, idempotency_key="tg:42:7")
    assert one.id == two.id
    assert session.execute(select(Case).where(Case.idempotency_key == "tg:42:7")).scalars().all() == [one]


def test_a_repeated_idempotency_key_is_resolved_by_the_unique_constraint(session: Session) -> None:
    first = file_case(session, **FIELDS, idempotency_key="race-1")
    second = file_case(session, **FIELDS, idempotency_key="race-1")
    assert second.id == first.id
    # The caller's transaction survived the IntegrityError inside the savepoint.
    third = file_case(session, **FIELDS)
    gap_free = session.get_bind().dialect.name == "sqlite"  # PostgreSQL's sequence may skip the lost number
    expected = int(first.number[-6:]) + 1
    assert int(third.number[-6:]) == expected if gap_free else int(third.number[-6:]) >= expected


def test_attachments_are_linked(session: Session, make_case: MakeCase) -> None:
    photo = Attachment(id="a" * 32, kind="photo", content_type="image/jpeg", size=3, sha256="0" * 64, path="x.jpg")
    session.add(photo)
    session.flush()
    case = make_case(attachment_ids=[photo.id])
    assert case.attachments == [photo.id] and photo.case_id == case.id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SR-2026-000123", "SR-2026-000123"),
        ("sr2026000123", "SR-2026-000123"),
        ("sr-2026-123", "SR-2026-000123"),
        ("제 민원 SR 2026 000123 어떻게 됐어요?", "SR-2026-000123"),
        ("ＳＲ－２０２６－０００１２３", "SR-2026-000123"),
        ("2026-000123", None),
        ("USR-2026-000123", None),
        ("hello", None),
    ],
)
def test_normalize_case_number(text: str, expected: str | None) -> None:
    assert normalize_case_number(text) == expected


def test_get_case_is_tolerant(session: Session, make_case: MakeCase) -> None:
    case = make_case()
    assert get_case(session, case.number.lower().replace("-", "")) is case
    assert get_case(session, "SR-1990-000001") is None
    assert get_case(session, "nonsense") is None


def test_cases_for_conversation_newest_first(
    session: Session, make_case: MakeCase, make_conversation: MakeConversation
) -> None:
    conversation = make_conversation()
    old = make_case(conversation_id=conversation.id)
    old.created_at -= timedelta(hours=1)
    new = make_case(conversation_id=conversation.id, category="noise")
    make_case()  # another conversation's
    session.flush()
    assert cases_for_conversation(session, conversation.id) == [new, old]


def test_withdraw_rules(session: Session, make_case: MakeCase, make_conversation: MakeConversation) -> None:
    case = make_case()
    assert case.conversation_id is not None
    with pytest.raises(CaseNotFound):
        withdraw_case(session, number="SR-1990-000001", conversation_id=case.conversation_id)
    with pytest.raises(NotYourCase):
        withdraw_case(session, number=case.number, conversation_id=make_conversation().id)
    accepted = make_case()
    assert accepted.conversation_id is not None
    transition(session, case=accepted, to=CaseStatus.ACCEPTED, actor="operator:1")
    with pytest.raises(InvalidTransition):
        withdraw_case(session, number=accepted.number, conversation_id=accepted.conversation_id)
    withdrawn = withdraw_case(session, number=case.number, conversation_id=case.conversation_id)
    assert withdrawn.status == "withdrawn"
    last = (
        session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id.desc()))
        .scalars()
        .first()
    )
    assert last is not None and (last.from_status, last.to_status, last.actor) == (
        "received", "withdrawn", "citizen",
    )  # fmt: skip


def test_concurrent_filings_get_consecutive_numbers(session_factory: sessionmaker[Session]) -> None:
    threads, per_thread = 8, 25
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work() -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                with session_scope(session_factory) as session:
                    number = file_case(session, **FIELDS, actor="test:concurrency").number
                with lock:
                    numbers.append(number)
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    try:
        assert errors == []
        assert len(set(numbers)) == threads * per_thread
        values = sorted(int(n[-6:]) for n in numbers)
        assert values == list(range(values[0], values[0] + threads * per_thread))
    finally:
        with session_scope(session_factory) as session:
            ids = select(Case.id).where(Case.number.in_(numbers))
            session.execute(delete(CaseEvent).where(CaseEvent.case_id.in_(ids)))
            session.execute(delete(Case).where(Case.number.in_(numbers)))


def test_concurrent_idempotent_filings_make_one_case(session_factory: sessionmaker[Session]) -> None:
    threads = 6
    ids: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work() -> None:
        try:
            start.wait()
            with session_scope(session_factory) as session:
                ids.append(file_case(session, **FIELDS, idempotency_key="concurrent-key").id)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    try:
        assert errors == []
        assert len(set(ids)) == 1 and len(ids) == threads
    finally:
        with session_scope(session_factory) as session:
            session.execute(delete(CaseEvent).where(CaseEvent.case_id.in_(ids)))
            session.execute(delete(Case).where(Case.id.in_(ids)))


def test_a_year_s_first_number_needs_no_second_connection(db_url: str) -> None:
    """After a restart or at New Year, a filing holding the pool's last connection still gets its number."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite numbers cases from a counter row, in the caller's transaction")
    engine = create_engine(db_url, pool_size=1, max_overflow=0, pool_timeout=2)
    try:
        with Session(engine) as session:
            assert next_case_number(session, 2099) == 1  # the pool's one connection is this session's
            session.rollback()  # the sequence stays, committed on its own connection: numbers only leave gaps
        with Session(engine) as session:
            assert next_case_number(session, 2099) == 2
            session.execute(text("DROP SEQUENCE case_number_2099"))
            session.commit()
    finally:
        engine.dispose()
