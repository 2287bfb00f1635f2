"""Console administration services: who may, users and roles, departments, routes, deadlines, canned answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from civic import console_accounts as accounts
from civic import console_admin as admin
from civic import console_cases as cc
from civic import takeover
from civic.cases import file_case
from civic.categories import add_working_days, due_date, due_date_for, processing_days
from civic.console_accounts import ConsoleIdentity
from civic.conversations import get_or_create_conversation
from civic.db import session_scope, utcnow
from civic.models import AuditEntry, Case, CategoryDeadline, ConsoleSession, ConsoleUser, Department, RoutingOverride
from civic.phones import decrypt_phone
from civic.routing import department_for, department_id_for, route_table
from civic.settings import get_settings
from operator_console import sessions

MakeCase = Callable[..., Case]
PASSWORD = "correct horse battery"
NOISE_MAPO_CODE = route_table()[("noise", "마포구")].code  # where the file routes the cases filed here
OTHER_CODE = route_table()[("sewer", "강남구")].code
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # these tests check roles, not Argon2's cost


def new_email(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:10]}@seoul.example.kr"


def stored_user(session: Session, role: str, department_code: str | None = None) -> ConsoleUser:
    return accounts.create_user(
        session, email=new_email(role), password=PASSWORD, role=role, department_code=department_code, hasher=FAST
    )


def identity_of(user: ConsoleUser, session_id: str = "session") -> ConsoleIdentity:
    return ConsoleIdentity(user.id, user.email, user.role, user.department_id, None, session_id)


@pytest.fixture
def actor(session: Session) -> ConsoleIdentity:
    """An admin stored in the database, so that refusals about oneself can recognise them."""
    return identity_of(stored_user(session, "admin"))


def audited(session: Session, actor: ConsoleIdentity, action: str) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.user_id == actor.user_id, AuditEntry.action == action)
    return list(session.execute(query.order_by(AuditEntry.id)).scalars())


def a_department(session: Session, category: str = "sewer", district: str = "강남구") -> Department:
    return department_for(session, category=category, district=district)


def file_noise_in_mapo(session: Session, category: str = "noise") -> Case:
    return file_case(
        session, category=category, district="마포구", place="합정역", description="밤새 공사", channel="web"
    )


# ---- who may ------------------------------------------------------------------------------------------------------

ADMIN_ACTIONS: dict[str, Callable[[Session, ConsoleIdentity], Any]] = {
    "list_users": lambda s, u: admin.list_users(s, u),
    "create_user": lambda s, u: admin.create_user(s, u, email=new_email("x"), role="operator", password=PASSWORD),
    "change_role": lambda s, u: admin.change_role(s, u, u.user_id, role="admin"),
    "deactivate_user": lambda s, u: admin.deactivate_user(s, u, 1),
    "reactivate_user": lambda s, u: admin.reactivate_user(s, u, 1),
    "reset_password": lambda s, u: admin.reset_password(s, u, 1, password=PASSWORD),
    "set_desk_phone": lambda s, u: admin.set_desk_phone(s, u, u.user_id, phone="010-2345-6789"),
    "clear_desk_phone": lambda s, u: admin.clear_desk_phone(s, u, u.user_id),
    "list_departments": lambda s, u: admin.list_departments(s, u),
    "create_department": lambda s, u: admin.create_department(s, u, code="x-y", name_ko="k", name_en="e", name_ja="j"),
    "rename_department": lambda s, u: admin.rename_department(s, u, "x-y", name_ko="k", name_en="e", name_ja="j"),
    "routing_table": lambda s, u: admin.routing_table(s, u),
    "set_route": lambda s, u: admin.set_route(s, u, category="noise", district="마포구", department_code=OTHER_CODE),
    "clear_route": lambda s, u: admin.clear_route(s, u, category="noise", district="마포구"),
    "deadlines": lambda s, u: admin.deadlines(s, u),
    "set_deadline": lambda s, u: admin.set_deadline(s, u, category="noise", days=10),
    "reset_deadline": lambda s, u: admin.reset_deadline(s, u, category="noise"),
    "list_canned_answers": lambda s, u: admin.list_canned_answers(s, u),
    "create_canned_answer": lambda s, u: admin.create_canned_answer(s, u, language="ko", title="t", text="x"),
    "edit_canned_answer": lambda s, u: admin.edit_canned_answer(s, u, 1, language="ko", title="t", text="x"),
    "set_canned_answer_active": lambda s, u: admin.set_canned_answer_active(s, u, 1, active=False),
    "admin_summary": lambda s, u: admin.admin_summary(s, u),
}


@pytest.mark.parametrize("role", ["operator", "official"])
@pytest.mark.parametrize("action", sorted(ADMIN_ACTIONS))
def test_only_admins_may_administer(session: Session, role: str, action: str) -> None:
    user = identity_of(stored_user(session, role, OTHER_CODE if role == "official" else None))
    with pytest.raises(cc.PermissionDenied):
        ADMIN_ACTIONS[action](session, user)
    assert session.execute(select(AuditEntry).where(AuditEntry.user_id == user.user_id)).first() is None
    assert session.execute(select(RoutingOverride)).first() is None
    assert session.execute(select(CategoryDeadline)).first() is None


# ---- users --------------------------------------------------------------------------------------------------------


def test_admin_creates_users_and_an_official_needs_a_department(session: Session, actor: ConsoleIdentity) -> None:
    with pytest.raises(cc.ActionRefused, match="department_required"):
        admin.create_user(session, actor, email=new_email("official"), role="official", password=PASSWORD)
    email = new_email("official").upper()
    official = admin.create_user(
        session, actor, email=email, role="official", password=PASSWORD, department_code=OTHER_CODE
    )
    assert (official.email, official.role, official.department.code) == (email.lower(), "official", OTHER_CODE)
    operator = admin.create_user(
        session, actor, email=new_email("operator"), role="operator", password=PASSWORD, department_code=OTHER_CODE
    )
    assert operator.department_id is None  # only officials are bound to a department
    [entry, _] = audited(session, actor, "user.created")
    assert entry.target == official.email and entry.details == {"role": "official", "department": OTHER_CODE}
    refusals = {
        "user_exists": {"email": email, "role": "operator", "password": PASSWORD},
        "weak_password": {"email": new_email("o"), "role": "operator", "password": "short"},
        "bad_email": {"email": "not an address", "role": "operator", "password": PASSWORD},
        "unknown_role": {"email": new_email("o"), "role": "root", "password": PASSWORD},
    }
    for code, fields in refusals.items():
        with pytest.raises(cc.ActionRefused) as refused:
            admin.create_user(session, actor, **fields)
        assert refused.value.code == code
    emails = {row.email for row in admin.list_users(session, actor)}
    assert {official.email, operator.email, actor.email} <= emails


def test_roles_change_but_an_admin_cannot_demote_or_deactivate_themselves(
    session: Session, actor: ConsoleIdentity
) -> None:
    operator = stored_user(session, "operator")
    with pytest.raises(cc.ActionRefused, match="department_required"):
        admin.change_role(session, actor, operator.id, role="official")
    admin.change_role(session, actor, operator.id, role="official", department_code=OTHER_CODE)
    assert (operator.role, operator.department.code if operator.department else None) == ("official", OTHER_CODE)
    admin.change_role(session, actor, operator.id, role="admin", department_code=OTHER_CODE)
    assert (operator.role, operator.department_id) == ("admin", None)
    [entry, _] = audited(session, actor, "user.role_changed")
    assert entry.details == {
        "role": "official",
        "department": OTHER_CODE,
        "was": {"role": "operator", "department": None},
    }
    for role in ("operator", "official"):
        with pytest.raises(cc.ActionRefused, match="self_demotion"):
            admin.change_role(session, actor, actor.user_id, role=role, department_code=OTHER_CODE)
    with pytest.raises(cc.ActionRefused, match="self_deactivation"):
        admin.deactivate_user(session, actor, actor.user_id)
    me = session.get_one(ConsoleUser, actor.user_id)
    assert (me.role, me.active) == ("admin", True)
    with pytest.raises(cc.ActionRefused, match="unknown_user"):
        admin.change_role(session, actor, 10**9, role="operator")


def test_deactivation_ends_sessions_and_reactivation_lets_them_back(session: Session, actor: ConsoleIdentity) -> None:
    operator = stored_user(session, "operator")
    assert sessions.log_in(session, email=operator.email, password=PASSWORD, ip="10.7.0.1", hasher=FAST).ok
    admin.deactivate_user(session, actor, operator.id, ip="10.0.0.9")
    assert not operator.active
    assert session.execute(select(ConsoleSession).where(ConsoleSession.user_id == operator.id)).first() is None
    [entry] = audited(session, actor, "user.deactivated")
    assert (entry.target, entry.details, entry.ip) == (operator.email, {"sessions": 1}, "10.0.0.9")
    assert not sessions.log_in(session, email=operator.email, password=PASSWORD, ip="10.7.0.1", hasher=FAST).ok
    admin.reactivate_user(session, actor, operator.id)
    assert operator.active and audited(session, actor, "user.reactivated")
    assert sessions.log_in(session, email=operator.email, password=PASSWORD, ip="10.7.0.1", hasher=FAST).ok


def test_deactivating_an_operator_gives_their_conversations_back_to_the_bot(
    session: Session, actor: ConsoleIdentity
) -> None:
    operator = stored_user(session, "operator")
    conversation = get_or_create_conversation(session, channel="web", external_id=uuid.uuid4().hex)
    session.flush()
    takeover.take(session, identity_of(operator), conversation.id)
    admin.deactivate_user(session, actor, operator.id)
    assert conversation.held_by_user_id is None
    assert conversation.rasa_paused is True  # the gateway resumes Rasa before the citizen's next turn


def test_password_reset_logs_the_user_out_everywhere(session: Session, actor: ConsoleIdentity) -> None:
    operator = stored_user(session, "operator")
    assert sessions.log_in(session, email=operator.email, password=PASSWORD, ip="10.7.0.2", hasher=FAST).ok
    with pytest.raises(cc.ActionRefused, match="weak_password"):
        admin.reset_password(session, actor, operator.id, password="too short")
    admin.reset_password(session, actor, operator.id, password="a brand new passphrase")
    assert session.execute(select(ConsoleSession).where(ConsoleSession.user_id == operator.id)).first() is None
    assert not sessions.log_in(session, email=operator.email, password=PASSWORD, ip="10.7.0.2").ok
    assert sessions.log_in(session, email=operator.email, password="a brand new passphrase", ip="10.7.0.2").ok
    [entry] = audited(session, actor, "user.password_reset")
    assert entry.details == {"sessions": 1} and "passphrase" not in str(entry.details)


def test_resetting_ones_own_password_keeps_this_session(session: Session) -> None:
    me = stored_user(session, "admin")
    outcome = sessions.log_in(session, email=me.email, password=PASSWORD, ip="10.7.0.3", hasher=FAST)
    assert outcome.identity is not None
    admin.reset_password(session, outcome.identity, me.id, password="a brand new passphrase")
    assert sessions.resolve_session(session, outcome.token) is not None


def test_desk_phone_is_stored_encrypted_and_shown_masked(session: Session, actor: ConsoleIdentity) -> None:
    operator = stored_user(session, "operator")
    admin.set_desk_phone(session, actor, operator.id, phone="010-2345-6789")
    blob = operator.desk_phone_ciphertext
    assert blob is not None
    for digits in (b"2345", b"6789", b"01023456789", b"+821023456789"):
        assert digits not in blob
    assert decrypt_phone(blob) == admin.desk_phone_of(operator) == "+821023456789"
    [row] = [row for row in admin.list_users(session, actor) if row.id == operator.id]
    assert row.desk_phone == "+82 10-****-6789"
    [entry] = audited(session, actor, "user.desk_phone_set")
    assert entry.details == {"phone": "+82 10-****-6789"}
    with pytest.raises(cc.ActionRefused, match="bad_phone"):
        admin.set_desk_phone(session, actor, operator.id, phone="12")
    with pytest.raises(cc.ActionRefused, match="phone_required"):
        admin.set_desk_phone(session, actor, operator.id, phone="  ")
    official = stored_user(session, "official", OTHER_CODE)
    with pytest.raises(cc.ActionRefused, match="desk_phone_for_operators"):
        admin.set_desk_phone(session, actor, official.id, phone="010-2345-6789")
    assert official.desk_phone_ciphertext is None
    admin.clear_desk_phone(session, actor, operator.id)
    assert operator.desk_phone_ciphertext is None and admin.desk_phone_of(operator) is None


@pytest.mark.parametrize(
    ("e164", "masked"),
    [("+821012345678", "+82 10-****-5678"), ("+8221201234", "+82 2-***-1234"), ("+12025550123", "+1 202-***-0123")],
)
def test_mask_phone(e164: str, masked: str) -> None:
    assert admin.mask_phone(e164) == masked


# ---- departments --------------------------------------------------------------------------------------------------


def test_departments_are_created_renamed_and_counted(session: Session, actor: ConsoleIdentity) -> None:
    code = f"test-{uuid.uuid4().hex[:8]}"
    created = admin.create_department(
        session, actor, code=f" {code} ", name_ko="마포구청 주차관리과", name_en="Parking", name_ja="駐車"
    )
    assert created.code == code
    for bad, why in ((code, "department_exists"), ("mapo-transport", "department_exists"), ("Mapo X", "bad_code")):
        with pytest.raises(cc.ActionRefused, match=why):
            admin.create_department(session, actor, code=bad, name_ko="k", name_en="e", name_ja="j")
    with pytest.raises(cc.ActionRefused, match="bad_code"):
        admin.create_department(session, actor, code="x", name_ko="k", name_en="e", name_ja="j")
    with pytest.raises(cc.ActionRefused, match="names_required"):
        admin.create_department(session, actor, code=f"{code}-2", name_ko="k", name_en=" ", name_ja="j")
    admin.rename_department(
        session, actor, code, name_ko="마포구청 주차행정과", name_en="Parking Admin", name_ja="駐車行政"
    )
    assert created.name_ko == "마포구청 주차행정과"
    with pytest.raises(cc.ActionRefused, match="department_in_routing_file"):
        admin.rename_department(session, actor, "mapo-transport", name_ko="k", name_en="e", name_ja="j")
    [renamed] = audited(session, actor, "department.renamed")
    assert renamed.details["was"]["ko"] == "마포구청 주차관리과"
    assert audited(session, actor, "department.created")[0].target == code

    case = file_noise_in_mapo(session)
    rows = {row.code: row for row in admin.list_departments(session, actor)}
    assert (rows[code].open_cases, rows[code].all_cases, rows[code].in_routing_file) == (0, 0, False)
    noise = rows[case.department.code]
    assert noise.in_routing_file and noise.open_cases >= 1 and noise.all_cases >= noise.open_cases
    before = noise.open_cases
    case.status = "resolved"  # closed cases leave the open count
    session.flush()
    assert {row.code: row for row in admin.list_departments(session, actor)}[noise.code].open_cases == before - 1


# ---- the routing table --------------------------------------------------------------------------------------------


def test_an_override_routes_newly_filed_cases_and_clearing_restores(session: Session, actor: ConsoleIdentity) -> None:
    filed_before = file_noise_in_mapo(session)  # also fills department_id_for's cache with the file's route
    file_department = filed_before.department_id
    assert session.get_one(Department, file_department).code == NOISE_MAPO_CODE
    other = a_department(session)
    admin.set_route(session, actor, category="noise", district="마포구", department_code=other.code)
    assert department_id_for(session, category="noise", district="마포구") == other.id
    assert department_for(session, category="noise", district="마포구").id == other.id
    assert file_noise_in_mapo(session).department_id == other.id
    assert filed_before.department_id == file_department  # cases filed before stay where they are
    route = admin.routing_table(session, actor)[("noise", "마포구")]
    assert (route.department_code, route.file_department_code, route.overridden) == (
        other.code,
        NOISE_MAPO_CODE,
        True,
    )
    assert sum(r.overridden for r in admin.routing_table(session, actor).values()) == 1
    [entry] = audited(session, actor, "routing.override_set")
    assert entry.target == "noise/마포구" and entry.details == {"department": other.code, "previous_override": None}

    admin.clear_route(session, actor, category="noise", district="마포구")
    assert file_noise_in_mapo(session).department_id == file_department
    assert not admin.routing_table(session, actor)[("noise", "마포구")].overridden
    assert audited(session, actor, "routing.override_cleared")[0].details == {"previous_override": other.code}
    with pytest.raises(cc.ActionRefused, match="no_override"):
        admin.clear_route(session, actor, category="noise", district="마포구")


def test_routing_a_pair_to_the_files_department_removes_the_override(session: Session, actor: ConsoleIdentity) -> None:
    admin.set_route(session, actor, category="noise", district="마포구", department_code=a_department(session).code)
    assert admin.set_route(session, actor, category="noise", district="마포구", department_code=NOISE_MAPO_CODE) is None
    assert session.get(RoutingOverride, ("noise", "마포구")) is None


def test_a_bad_route_is_refused(session: Session, actor: ConsoleIdentity) -> None:
    refusals = {
        "unknown_department": {"category": "noise", "district": "마포구", "department_code": "nowhere"},
        "department_required": {"category": "noise", "district": "마포구", "department_code": ""},
        "unknown_category": {"category": "graffiti", "district": "마포구", "department_code": NOISE_MAPO_CODE},
        "unknown_district": {"category": "noise", "district": "Mapo", "department_code": NOISE_MAPO_CODE},
    }
    for code, fields in refusals.items():
        with pytest.raises(cc.ActionRefused) as refused:
            admin.set_route(session, actor, **fields)
        assert refused.value.code == code
    assert session.execute(select(RoutingOverride)).first() is None


def test_an_override_holds_at_once_for_another_connection(session_factory: sessionmaker[Session]) -> None:
    # Two sessions on two connections stand for two web workers: neither may answer from a cache.
    with session_scope(session_factory) as warm:
        department_id_for(warm, category="safety", district="종로구")
    with session_scope(session_factory) as first:
        actor = identity_of(stored_user(first, "admin"))
        target = a_department(first)
        admin.set_route(first, actor, category="safety", district="종로구", department_code=target.code)
    try:
        with session_scope(session_factory) as second:
            assert department_id_for(second, category="safety", district="종로구") == target.id
    finally:
        with session_scope(session_factory) as cleanup:
            cleanup.execute(delete(RoutingOverride).where(RoutingOverride.category == "safety"))
    with session_scope(session_factory) as third:
        assert department_for(third, category="safety", district="종로구").code == "jongno-safety"


# ---- category deadlines -------------------------------------------------------------------------------------------


def _local_today() -> Any:
    return utcnow().astimezone(ZoneInfo(get_settings().timezone)).date()


def test_a_deadline_override_sets_new_cases_due_dates_and_reset_restores(
    session: Session, actor: ConsoleIdentity
) -> None:
    filed_before = file_noise_in_mapo(session)
    assert filed_before.due_at == due_date("noise", filed_before.created_at)
    admin.set_deadline(session, actor, category="noise", days="20")
    filed_after = file_noise_in_mapo(session)
    assert filed_after.due_at == add_working_days(_local_today(), 20)
    assert filed_after.due_at > filed_before.due_at
    assert filed_before.due_at == due_date("noise", filed_before.created_at)  # existing cases keep theirs
    [row] = [d for d in admin.deadlines(session, actor) if d.category == "noise"]
    assert (row.file_days, row.days, row.overridden) == (7, 20, True)
    assert audited(session, actor, "deadline.set")[0].details == {"days": 20, "previous_override": None}

    admin.reset_deadline(session, actor, category="noise")
    assert file_noise_in_mapo(session).due_at == due_date("noise", utcnow())
    assert not next(d for d in admin.deadlines(session, actor) if d.category == "noise").overridden
    assert audited(session, actor, "deadline.reset")[0].details == {"previous_override": 20}
    with pytest.raises(cc.ActionRefused, match="no_override"):
        admin.reset_deadline(session, actor, category="noise")


def test_correcting_the_category_uses_the_new_categorys_override(session: Session, actor: ConsoleIdentity) -> None:
    case = file_noise_in_mapo(session)
    admin.set_deadline(session, actor, category="sewer", days=30)
    cc.accept(session, identity_of(stored_user(session, "operator")), case.number, category="sewer")
    assert case.due_at == add_working_days(case.created_at.astimezone(ZoneInfo(get_settings().timezone)).date(), 30)


def test_bad_deadlines_are_refused_and_the_files_period_removes_the_override(
    session: Session, actor: ConsoleIdentity
) -> None:
    for days in (5, 91, "x", "", "7.5"):
        with pytest.raises(cc.ActionRefused, match="bad_days"):
            admin.set_deadline(session, actor, category="noise", days=days)
    with pytest.raises(cc.ActionRefused, match="unknown_category"):
        admin.set_deadline(session, actor, category="graffiti", days=10)
    admin.set_deadline(session, actor, category="noise", days=6)
    admin.set_deadline(session, actor, category="noise", days=90)
    assert session.get_one(CategoryDeadline, "noise").days == 90
    admin.set_deadline(session, actor, category="noise", days=processing_days()["noise"])
    assert session.get(CategoryDeadline, "noise") is None
    now = utcnow()
    assert due_date_for(session, "noise", now) == due_date("noise", now)
    assert due_date_for(session, "noise", now + timedelta(days=1)) == due_date("noise", now + timedelta(days=1))


# ---- canned answers -----------------------------------------------------------------------------------------------


def test_canned_answer_lifecycle(session: Session, actor: ConsoleIdentity) -> None:
    notice = admin.create_canned_answer(session, actor, language="ko", title="접수 안내", text="접수되었습니다.")
    greeting = admin.create_canned_answer(session, actor, language="ko", title="인사", text=" 안녕하세요. ")
    english = admin.create_canned_answer(session, actor, language="en", title="Hello", text="Hello.")
    assert greeting.text == "안녕하세요."
    assert admin.canned_answers_for(session, "ko") == [greeting, notice]  # by title, not by creation
    assert admin.canned_answers_for(session, "en") == [english]

    admin.set_canned_answer_active(session, actor, notice.id, active=False)
    assert admin.canned_answers_for(session, "ko") == [greeting]
    assert admin.list_canned_answers(session, actor, language="ko", active=False) == [notice]
    assert set(admin.list_canned_answers(session, actor)) >= {notice, greeting, english}
    admin.set_canned_answer_active(session, actor, notice.id, active=True)
    admin.edit_canned_answer(session, actor, english.id, language="ja", title="こんにちは", text="こんにちは。")
    assert admin.canned_answers_for(session, "en") == []
    assert admin.canned_answers_for(session, "ja") == [english]
    actions = [
        e.action for e in session.execute(select(AuditEntry).where(AuditEntry.user_id == actor.user_id)).scalars()
    ]
    assert actions == ["canned_answer.created"] * 3 + [
        "canned_answer.deactivated",
        "canned_answer.reactivated",
        "canned_answer.edited",
    ]
    refusals = {
        "unknown_language": {"language": "zh", "title": "t", "text": "x"},
        "title_required": {"language": "ko", "title": " ", "text": "x"},
        "title_too_long": {"language": "ko", "title": "t" * 129, "text": "x"},
        "text_required": {"language": "ko", "title": "t", "text": ""},
        "text_too_long": {"language": "ko", "title": "t", "text": "x" * 2001},
    }
    for code, fields in refusals.items():
        with pytest.raises(cc.ActionRefused) as refused:
            admin.create_canned_answer(session, actor, **fields)
        assert refused.value.code == code
    with pytest.raises(cc.ActionRefused, match="unknown_answer"):
        admin.set_canned_answer_active(session, actor, 10**9, active=False)


def test_admin_summary_counts(session: Session, actor: ConsoleIdentity) -> None:
    before = admin.admin_summary(session, actor)
    admin.create_canned_answer(session, actor, language="ko", title="t", text="x")
    admin.set_deadline(session, actor, category="noise", days=10)
    after = admin.admin_summary(session, actor)
    assert after.active_canned_answers == before.active_canned_answers + 1
    assert after.deadline_overrides == before.deadline_overrides + 1
    assert after.users >= after.active_users >= 1
