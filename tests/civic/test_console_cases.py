"""Console case actions: who may do what, what each action changes, merging, similar cases and the inbox."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from civic import console_cases as cc
from civic.console_accounts import ConsoleIdentity
from civic.duplicates import follow_case
from civic.errors import CaseNotFound
from civic.models import Case, CaseEvent, CaseFollower, Conversation, Department, OutboxMessage
from civic.routing import department_for
from civic.workflow import CaseStatus, transition

MakeCase = Callable[..., Case]
MakeConversation = Callable[..., Conversation]


def identity(role: str, department_id: int | None = None) -> ConsoleIdentity:
    email = f"{role}-{uuid.uuid4().hex[:6]}@seoul.example.kr"
    return ConsoleIdentity(1, email, role, department_id, None, "session")


OPERATOR = identity("operator")
ADMIN = identity("admin")


def official_of(case: Case) -> ConsoleIdentity:
    return identity("official", case.department_id)


def notices(session: Session, conversation_id: int | None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.conversation_id == conversation_id).order_by(OutboxMessage.id)
    return list(session.execute(query).scalars())


def assigned_case(session: Session, make_case: MakeCase, **fields: object) -> Case:
    case = make_case(**fields)
    cc.accept(session, OPERATOR, case.number)
    cc.assign(session, OPERATOR, case.number)
    return case


def test_the_whole_path_with_events_and_notices(session: Session, make_case: MakeCase) -> None:
    case = assigned_case(session, make_case, language="en")
    official = official_of(case)
    cc.start(session, official, case.number)
    cc.resolve(session, official, case.number, answer="  Towed at 14:00.  ")
    events = session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)).scalars()
    moves = [(e.from_status, e.to_status, e.actor) for e in events]
    assert moves[1:] == [
        ("received", "accepted", OPERATOR.email),
        ("accepted", "assigned", OPERATOR.email),
        ("assigned", "in_progress", official.email),
        ("in_progress", "resolved", official.email),
    ]
    texts = [n.text for n in notices(session, case.conversation_id)]
    assert len(texts) == 4
    # The public answer, and the "fixed?" question (civic.fixed_question).
    resolved = f"[{case.number}] Your report has been resolved.\nAnswer: Towed at 14:00.\nIs the problem fixed?"
    assert texts[-1] == resolved


def test_operator_cannot_resolve_and_official_cannot_accept(session: Session, make_case: MakeCase) -> None:
    case = assigned_case(session, make_case)
    with pytest.raises(cc.PermissionDenied):
        cc.resolve(session, OPERATOR, case.number, answer="done")
    with pytest.raises(cc.PermissionDenied):
        cc.start(session, OPERATOR, case.number)
    fresh = make_case()
    with pytest.raises(cc.PermissionDenied):
        cc.accept(session, official_of(fresh), fresh.number)
    assert (case.status, fresh.status) == ("assigned", "received")


def test_official_of_another_department_can_neither_see_nor_act(session: Session, make_case: MakeCase) -> None:
    case = assigned_case(session, make_case, category="illegal_parking", district="마포구")
    other = department_for(session, category="noise", district="강남구")
    assert other.id != case.department_id
    stranger = identity("official", other.id)
    with pytest.raises(CaseNotFound):
        cc.visible_case(session, stranger, case.number)
    for act in (
        lambda: cc.start(session, stranger, case.number),
        lambda: cc.resolve(session, stranger, case.number, answer="x"),
        lambda: cc.reject(session, stranger, case.number, reason="x", responsible="y"),
        lambda: cc.return_to_operators(session, stranger, case.number),
    ):
        with pytest.raises(cc.PermissionDenied):
            act()
    assert case.status == "assigned"
    assert cc.visible_case(session, official_of(case), case.number) is case


def test_admin_may_do_everything(session: Session, make_case: MakeCase) -> None:
    case = make_case()
    for step in (cc.accept, cc.assign, cc.start):
        step(session, ADMIN, case.number)
    cc.resolve(session, ADMIN, case.number, answer="정리했습니다")
    assert case.status == "resolved"


def test_resolve_needs_an_answer_and_reject_a_reason_and_who(session: Session, make_case: MakeCase) -> None:
    case = assigned_case(session, make_case)
    official = official_of(case)
    with pytest.raises(cc.ActionRefused, match="answer_required"):
        cc.resolve(session, official, case.number, answer="   ")
    with pytest.raises(cc.ActionRefused, match="reason_required"):
        cc.reject(session, official, case.number, reason="", responsible="한국전력")
    with pytest.raises(cc.ActionRefused, match="responsible_required"):
        cc.reject(session, official, case.number, reason="사유지입니다", responsible=None)
    assert case.status == "assigned"
    cc.reject(session, official, case.number, reason="사유지입니다", responsible="건물 관리사무소")
    assert case.status == "rejected"
    assert notices(session, case.conversation_id)[-1].text.endswith("사유: 사유지입니다\n담당 기관: 건물 관리사무소")


def test_return_sends_back_to_operators_quietly_and_they_reassign(session: Session, make_case: MakeCase) -> None:
    case = assigned_case(session, make_case, category="illegal_parking", district="마포구")
    before = len(notices(session, case.conversation_id))
    cc.return_to_operators(session, official_of(case), case.number, reason="가로등은 도로과 소관")
    assert case.status == "accepted"
    assert len(notices(session, case.conversation_id)) == before  # "checked by a 120 operator" would mislead
    target = department_for(session, category="broken_streetlight", district="마포구")
    cc.assign(session, OPERATOR, case.number, department_code=target.code)
    assert (case.status, case.department_id) == ("assigned", target.id)
    assert "부서" in (case.events[-1].note or "")


def test_accept_corrects_category_and_district_and_reroutes(session: Session, make_case: MakeCase) -> None:
    case = make_case(category="illegal_parking", district="마포구", dong="서교동")
    old_due = case.due_at
    cc.accept(session, OPERATOR, case.number, category="broken_sidewalk", district="강남구")
    expected = department_for(session, category="broken_sidewalk", district="강남구")
    assert (case.category, case.district, case.dong, case.department_id) == (
        "broken_sidewalk",
        "강남구",
        None,
        expected.id,
    )
    assert case.status == "accepted" and case.due_at >= old_due
    assert "분야 illegal_parking → broken_sidewalk" in (case.events[-1].note or "")
    with pytest.raises(cc.ActionRefused, match="unknown_department"):
        cc.assign(session, OPERATOR, case.number, department_code="no-such-department")
    explicit = make_case()
    department = session.execute(select(Department).where(Department.id != explicit.department_id)).scalars().first()
    assert department is not None
    cc.accept(session, OPERATOR, explicit.number, department_code=department.code)
    assert explicit.department_id == department.id


def test_an_assigned_case_is_not_accepted_again_by_an_operator(session: Session, make_case: MakeCase) -> None:
    case = assigned_case(session, make_case)
    with pytest.raises(cc.ActionRefused, match="transition"):
        cc.accept(session, OPERATOR, case.number)
    assert cc.available_actions(OPERATOR, case) == ["merge"]
    assert cc.available_actions(official_of(case), case) == ["start", "resolve", "reject", "return"]


def test_merge_makes_the_duplicates_citizen_a_follower_told_once(session: Session, make_case: MakeCase) -> None:
    target = make_case()
    duplicate = make_case(language="en")
    merged = cc.merge(session, OPERATOR, duplicate.number, into=target.number)
    assert merged is target
    assert (duplicate.status, duplicate.merged_into_id) == ("rejected", target.id)
    assert notices(session, duplicate.conversation_id)[-1].text.endswith(f"Reason: 중복 민원: {target.number}로 병합")
    follower = session.execute(select(CaseFollower).where(CaseFollower.case_id == target.id)).scalar_one()
    assert (follower.conversation_id, follower.language) == (duplicate.conversation_id, "en")
    # A second duplicate from the same conversation adds no second follower.
    again = make_case(conversation_id=duplicate.conversation_id)
    cc.merge(session, OPERATOR, again.number, into=target.number)
    assert len(session.execute(select(CaseFollower).where(CaseFollower.case_id == target.id)).all()) == 1

    followers_before = len(notices(session, duplicate.conversation_id))
    cc.accept(session, OPERATOR, target.number)
    filer = notices(session, target.conversation_id)
    follower_notices = notices(session, duplicate.conversation_id)[followers_before:]
    assert [n.data["status"] for n in filer] == ["accepted"]
    assert len(follower_notices) == 1  # once, though two merged cases came from that conversation
    assert follower_notices[0].text.startswith(f"[{target.number}] A 120 operator has checked your report")


def test_merge_refuses_unknown_itself_and_closed_targets(session: Session, make_case: MakeCase) -> None:
    case = make_case()
    with pytest.raises(cc.ActionRefused, match="unknown_target"):
        cc.merge(session, OPERATOR, case.number, into="SR-1999-999999")
    with pytest.raises(cc.ActionRefused, match="same_case"):
        cc.merge(session, OPERATOR, case.number, into=case.number)
    closed = make_case()
    transition(session, case=closed, to=CaseStatus.REJECTED, actor="test")
    with pytest.raises(cc.ActionRefused, match="target_closed"):
        cc.merge(session, OPERATOR, case.number, into=closed.number)
    with pytest.raises(cc.PermissionDenied):
        cc.merge(session, official_of(case), case.number, into=closed.number)
    assert case.status == "received"


def test_a_case_without_conversation_still_tells_its_followers(session: Session, make_case: MakeCase) -> None:
    target = make_case(with_conversation=False)
    duplicate = make_case()
    cc.merge(session, OPERATOR, duplicate.number, into=target.number)
    cc.accept(session, OPERATOR, target.number)
    assert notices(session, duplicate.conversation_id)[-1].data["case_number"] == target.number


def _spot() -> tuple[float, float]:
    # A random point in Seoul, so cases of other tests in the shared database are never "nearby".
    return 37.45 + random.random() * 0.2, 126.85 + random.random() * 0.3


def test_similar_open_cases_nearby(session: Session, make_case: MakeCase) -> None:
    lat, lon = _spot()
    dong = f"t{uuid.uuid4().hex[:8]}"
    case = make_case(category="illegal_dumping", latitude=lat, longitude=lon, dong=dong)
    near = make_case(category="illegal_dumping", latitude=lat + 0.0005, longitude=lon)  # ≈ 55 m north
    same_dong = make_case(category="illegal_dumping", dong=dong)
    far = make_case(category="illegal_dumping", latitude=lat + 0.0015, longitude=lon)  # ≈ 170 m
    other_category = make_case(category="noise", latitude=lat, longitude=lon)
    other_gu_same_dong = make_case(category="illegal_dumping", district="강남구", dong=dong)
    resolved = make_case(category="illegal_dumping", latitude=lat, longitude=lon + 0.0001)
    resolved.status = "resolved"
    old = make_case(category="illegal_dumping", latitude=lat, longitude=lon)
    old.created_at = old.created_at - timedelta(days=8)
    session.flush()
    found = cc.similar_open_cases(session, case)
    numbers = [s.number for s in found]
    assert numbers == [near.number, same_dong.number]
    assert found[0].distance_m is not None and 50 < found[0].distance_m < 60
    for excluded in (far, other_category, other_gu_same_dong, resolved, old, case):
        assert excluded.number not in numbers
    assert cc.similar_open_cases(session, make_case(category="illegal_dumping")) == []  # no place to compare


def test_inbox_lists_the_departments_open_cases_by_due_date(session: Session, make_case: MakeCase) -> None:
    district = random.choice(["종로구", "중구", "용산구", "성동구"])
    first = assigned_case(session, make_case, category="sewer", district=district)
    second = assigned_case(session, make_case, category="sewer", district=district)
    fresh = make_case(category="sewer", district=district)  # received: the operators' still
    first.due_at = first.due_at - timedelta(days=30)
    session.flush()
    official = official_of(first)
    cc.start(session, official, second.number)
    department, rows = cc.inbox(session, official, department_code="ignored-for-officials")
    assert department is not None and department.id == first.department_id
    numbers = [r.number for r in rows]
    assert numbers.index(first.number) < numbers.index(second.number)
    assert fresh.number not in numbers
    overdue = next(r for r in rows if r.number == first.number)
    assert overdue.overdue and overdue.days_left < 0
    _, as_operator = cc.inbox(session, OPERATOR, department_code=department.code)
    assert [r.number for r in as_operator] == numbers
    with pytest.raises(cc.ActionRefused):
        cc.inbox(session, OPERATOR, department_code="no-such-department")


def test_inbox_shows_and_sorts_by_followers(
    session: Session, make_case: MakeCase, make_conversation: Callable[..., Conversation]
) -> None:
    district = random.choice(["종로구", "중구", "용산구", "성동구"])
    early = assigned_case(session, make_case, category="sewer", district=district)
    followed = assigned_case(session, make_case, category="sewer", district=district)
    early.due_at = early.due_at - timedelta(days=60)
    for _ in range(3):
        follow_case(session, number=followed.number, conversation_id=make_conversation().id, language="ko")
    official = official_of(followed)
    _, by_due = cc.inbox(session, official)
    numbers = [r.number for r in by_due]
    assert numbers.index(early.number) < numbers.index(followed.number)
    _, by_followers = cc.inbox(session, official, sort="followers")
    assert (by_followers[0].number, by_followers[0].followers) == (followed.number, 3)
    assert next(r for r in by_followers if r.number == early.number).followers == 0
    with pytest.raises(cc.ActionRefused):
        cc.inbox(session, official, sort="nonsense")
