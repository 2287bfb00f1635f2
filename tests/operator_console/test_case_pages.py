"""The case page, its action forms, the media route and the inbox over HTTP, logged in through the real form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import file_case, get_case
from civic.conversations import get_or_create_conversation, record_message
from civic.db import session_scope
from civic.duplicates import follow_case
from civic.media import store_photo
from civic.models import AuditEntry, Case, Conversation, Department, OutboxMessage
from civic.open311_filing import RequestForm, file_request
from civic.routing import department_for
from telephony.local_twilio import local_twilio
from tests.inprocess_app import running_app
from tests.operator_console.helpers import CSRF, log_in, new_user

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    media = tmp_path_factory.mktemp("media")
    with engine.connect() as connection:
        before = connection.execute(select(func.coalesce(func.max(OutboxMessage.id), 0))).scalar_one()
    with (
        local_twilio("AC" + "7" * 32, "case-pages-twilio-token") as fake,
        running_app(db_url, fake, MEDIA_DIR=str(media)) as test_client,
    ):
        yield test_client
    # The notices these tests queued must not be left pending for the outbox tests to deliver.
    with engine.begin() as connection:
        connection.execute(delete(OutboxMessage).where(OutboxMessage.id > before))


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    client.cookies.clear()
    return client.app.state.session_factory  # type: ignore[attr-defined]


def file_one(db: sessionmaker[Session], *, language: str = "ko", photo: bool = False, **fields: str) -> str:
    with session_scope(db) as session:
        conversation = get_or_create_conversation(
            session, channel="web", external_id=uuid.uuid4().hex, language=language
        )
        record_message(
            session, conversation=conversation, direction="in", sender="citizen", text="<b>밤새</b> 공사 소음"
        )
        attachments = [store_photo(session, conversation_id=conversation.id, content=PNG).id] if photo else []
        case = file_case(
            session,
            category=fields.get("category", "noise"),
            district=fields.get("district", "마포구"),
            place="합정역 <script>x</script>",
            description="공사 소음이 심해요",
            channel="web",
            language=language,
            conversation_id=conversation.id,
            attachment_ids=attachments,
        )
        return case.number


def case_of(db: sessionmaker[Session], number: str) -> Case:
    with session_scope(db) as session:
        case = get_case(session, number)
        assert case is not None
        return case


def department_code(db: sessionmaker[Session], number: str) -> str:
    with session_scope(db) as session:
        case = get_case(session, number)
        assert case is not None
        return case.department.code


def csrf_of(page_text: str) -> str:
    match = CSRF.search(page_text)
    assert match, page_text
    return match.group(1)


def post_action(client: TestClient, number: str, action: str, **form: str) -> Any:
    token = csrf_of(client.get(f"/console/cases/{number}").text)
    return client.post(f"/console/cases/{number}/{action}", data={"csrf_token": token, **form}, follow_redirects=False)


def test_operator_accepts_and_assigns_then_official_starts_and_resolves(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    number = file_one(db, language="ko")
    log_in(client, new_user(db, "operator"))
    page = client.get(f"/console/cases/{number}")
    assert page.status_code == 200
    assert "&lt;b&gt;밤새&lt;/b&gt; 공사 소음" in page.text and "<b>밤새</b>" not in page.text
    assert "합정역 &lt;script&gt;" in page.text
    assert f'action="/console/cases/{number}/accept"' in page.text
    assert f'action="/console/cases/{number}/resolve"' not in page.text

    accepted = post_action(client, number, "accept")
    assert accepted.status_code == 303
    assert accepted.headers["location"] == f"/console/cases/{number}?done=accept"
    assert "접수를 확인했습니다" in client.get(accepted.headers["location"]).text
    assert post_action(client, number, "assign").status_code == 303
    assert case_of(db, number).status == "assigned"
    assert post_action(client, number, "resolve", answer="x").status_code == 403

    client.cookies.clear()
    log_in(client, new_user(db, "official", department_code(db, number)))
    assert post_action(client, number, "start").status_code == 303
    refused = post_action(client, number, "resolve", answer="  ")
    assert refused.headers["location"].endswith("?error=answer_required")
    done = post_action(client, number, "resolve", answer="야간 공사를 중지시켰습니다.")
    assert done.headers["location"].endswith("?done=resolve")
    case = case_of(db, number)
    assert case.status == "resolved"
    with session_scope(db) as session:
        texts = session.execute(
            select(OutboxMessage.text).where(OutboxMessage.conversation_id == case.conversation_id)
        ).scalars()
        resolved = f"[{number}] 처리가 완료되었습니다.\n답변: 야간 공사를 중지시켰습니다.\n문제가 해결됐나요?"
        assert resolved in list(texts)
        audited = session.execute(select(AuditEntry.action).where(AuditEntry.target == number)).scalars().all()
    assert {"case.accept", "case.assign", "case.start", "case.resolve", "case.denied"} <= set(audited)


def test_notice_follows_the_cases_language(client: TestClient, db: sessionmaker[Session]) -> None:
    number = file_one(db, language="ja")
    log_in(client, new_user(db, "admin"))
    for action in ("accept", "assign", "start"):
        post_action(client, number, action)
    post_action(client, number, "resolve", answer="対応済み")
    case = case_of(db, number)
    with session_scope(db) as session:
        last = (
            session.execute(
                select(OutboxMessage.text)
                .where(OutboxMessage.conversation_id == case.conversation_id)
                .order_by(OutboxMessage.id.desc())
            )
            .scalars()
            .first()
        )
    assert last == f"[{number}] 処理が完了しました。\n回答: 対応済み\n問題は解決しましたか？"


def test_a_post_without_csrf_token_changes_nothing(client: TestClient, db: sessionmaker[Session]) -> None:
    number = file_one(db)
    log_in(client, new_user(db, "operator"))
    assert client.post(f"/console/cases/{number}/accept", data={}, follow_redirects=False).status_code == 403
    wrong = {"csrf_token": "0" * 64}
    assert client.post(f"/console/cases/{number}/accept", data=wrong, follow_redirects=False).status_code == 403
    assert case_of(db, number).status == "received"


def test_another_departments_official_gets_404_and_403(client: TestClient, db: sessionmaker[Session]) -> None:
    number = file_one(db, category="noise", district="마포구")
    with session_scope(db) as session:
        other = department_for(session, category="sewer", district="강남구").code
    log_in(client, new_user(db, "official", other))
    assert client.get(f"/console/cases/{number}").status_code == 404
    token = csrf_of(client.get("/console/inbox").text)
    answer = {"csrf_token": token, "answer": "x"}
    assert client.post(f"/console/cases/{number}/resolve", data=answer, follow_redirects=False).status_code == 403
    assert client.get("/console/cases/SR-1999-999999").status_code == 404


def test_media_only_for_staff_who_may_see_the_case(client: TestClient, db: sessionmaker[Session]) -> None:
    number = file_one(db, photo=True)
    case = case_of(db, number)
    photo = case.attachments[0]
    assert client.get(f"/console/media/{photo}", follow_redirects=False).status_code == 303
    assert client.get(f"/console/media/{photo}", headers={"accept": "application/json"}).status_code == 401
    log_in(client, new_user(db, "operator"))
    assert f'src="/console/media/{photo}"' in client.get(f"/console/cases/{number}").text
    served = client.get(f"/console/media/{photo}")
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png" and "no-store" in served.headers["cache-control"]
    client.cookies.clear()
    log_in(client, new_user(db, "official", department_code(db, number)))
    assert client.get(f"/console/media/{photo}").status_code == 200
    client.cookies.clear()
    with session_scope(db) as session:
        other = department_for(session, category="sewer", district="강남구").code
    log_in(client, new_user(db, "official", other))
    assert client.get(f"/console/media/{photo}").status_code == 404
    assert client.get("/console/media/0123456789abcdef").status_code == 404


def test_inbox_shows_the_officials_open_cases(client: TestClient, db: sessionmaker[Session]) -> None:
    number = file_one(db, category="broken_streetlight", district="서초구")
    log_in(client, new_user(db, "operator"))
    post_action(client, number, "accept")
    post_action(client, number, "assign")
    code = department_code(db, number)
    assert number in client.get(f"/console/inbox?department={code}").text
    assert client.get("/console/inbox?department=nope").status_code == 404
    client.cookies.clear()
    log_in(client, new_user(db, "official", code))
    page = client.get("/console/inbox")
    assert page.status_code == 200 and f'href="/console/cases/{number}"' in page.text
    assert re.search(r"\d+일", page.text)


def test_officials_see_followers_and_sort_by_them(client: TestClient, db: sessionmaker[Session]) -> None:
    number = file_one(db, category="broken_streetlight", district="은평구")
    log_in(client, new_user(db, "operator"))
    post_action(client, number, "accept")
    post_action(client, number, "assign")
    with session_scope(db) as session:
        for _ in range(3):
            me_too = get_or_create_conversation(session, channel="telegram", external_id=uuid.uuid4().hex)
            follow_case(session, number=number, conversation_id=me_too.id, language="ko")
    client.cookies.clear()
    log_in(client, new_user(db, "official", department_code(db, number)))
    page = client.get("/console/inbox?sort=followers").text
    row = re.search(rf'href="/console/cases/{number}">{number}</a></td>\s*<td class="followers">([^<]*)</td>', page)
    assert row and row.group(1) == "+3", page
    first = re.search(r'href="/console/cases/(SR-\d{4}-\d{6})"', page)
    assert first and first.group(1) == number  # the most followed first
    assert client.get("/console/inbox?sort=nonsense").status_code == 200  # by due date
    assert '<dd class="followers">+3</dd>' in client.get(f"/console/cases/{number}").text


def test_operator_merges_a_duplicate(client: TestClient, db: sessionmaker[Session]) -> None:
    target, duplicate = file_one(db), file_one(db, language="en")
    log_in(client, new_user(db, "operator"))
    merged = post_action(client, duplicate, "merge", into=target.lower().replace("-", ""))
    assert merged.headers["location"] == f"/console/cases/{duplicate}?done=merge"
    page = client.get(f"/console/cases/{duplicate}").text
    assert f'href="/console/cases/{target}"' in page and "중복 민원" in page
    assert "함께 알림" in client.get(f"/console/cases/{target}").text
    assert case_of(db, duplicate).merged_into_id == case_of(db, target).id


def test_an_operator_files_a_case_for_a_caller_from_the_draft_once(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    from civic.conversations import request_handoff
    from civic.models import PhoneCall, ReportDraft
    from civic.phone_calls import keep_draft, start_call

    with session_scope(db) as session:
        call = start_call(session, call_sid="CA" + uuid.uuid4().hex, caller="+821047771234", expectation={})
        session.flush()
        conversation = session.get(Conversation, call.conversation_id)
        assert conversation is not None
        request_handoff(session, conversation=conversation, reason="phone: caller_pressed_0")
        keep_draft(session, conversation_id=conversation.id, channel="phone", slots={"category": "noise"}, reason="x")
        conversation_id = conversation.id
    log_in(client, new_user(db, "operator"))
    page = client.get(f"/console/conversations/{conversation_id}/file")
    assert page.status_code == 200
    assert '<option value="noise" selected>' in page.text  # prefilled from what the bot had gathered
    form = {
        "csrf_token": csrf_of(page.text),
        "form_key": re.search(r'name="form_key" value="([0-9a-f]{32})"', page.text).group(1),  # type: ignore[union-attr]
        "category": "noise",
        "district": "송파구",
        "place": "잠실역 8번 출구",
        "description": "밤새 공사 소음",
    }
    first = client.post(f"/console/conversations/{conversation_id}/file", data=form, follow_redirects=False)
    again = client.post(f"/console/conversations/{conversation_id}/file", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]  # a double submission is one case
    with session_scope(db) as session:
        cases = session.execute(select(Case).where(Case.conversation_id == conversation_id)).scalars().all()
        filed = [(c.category, c.district, c.channel, c.status) for c in cases]
        assert filed == [("noise", "송파구", "phone", "received")]
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None and conversation.handoff_requested_at is None  # off the queue
        draft = session.execute(select(ReportDraft).where(ReportDraft.conversation_id == conversation_id)).scalar_one()
        assert (draft.status, draft.case_id) == ("filed", cases[0].id)
        queued = select(OutboxMessage).where(OutboxMessage.conversation_id == conversation_id)
        sms = list(session.execute(queued).scalars())
        assert [m.channel for m in sms] == ["sms"] and sms[0].text.startswith(f"[{cases[0].number}]")
        assert session.execute(select(PhoneCall).where(PhoneCall.conversation_id == conversation_id)).scalar_one()


def test_officials_cannot_file_for_citizens(client: TestClient, db: sessionmaker[Session]) -> None:
    with session_scope(db) as session:
        code = session.execute(select(Department.code)).scalars().first()
    log_in(client, new_user(db, "official", code))
    assert client.get("/console/conversations/1/file").status_code == 403


def test_the_case_page_shows_the_district_and_the_point_on_the_map(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    with session_scope(db) as session:
        case = file_case(
            session,
            category="noise",
            district="마포구",
            place="합정역",
            description="소음",
            channel="web",
            latitude=37.5495,
            longitude=126.9139,
        )
        number = case.number
    log_in(client, new_user(db, "operator"))
    page = client.get(f"/console/cases/{number}").text
    assert page.count('<path class="gu') == 25
    assert re.search(r'<path class="gu here" d="[^"]+" data-gu="마포구">', page)
    point = re.search(r'<circle class="case-point" cx="([\d.]+)" cy="([\d.]+)"', page)
    assert point, "a case with coordinates has its point on the map"
    from operator_console.charts import seoul_map

    seoul = seoul_map()
    assert (float(point.group(1)), float(point.group(2))) == seoul.point(37.5495, 126.9139)
    # West of the city centre: Mapo is in the map's left half, and north of the Han is the upper half.
    assert float(point.group(1)) < seoul.width / 2 and float(point.group(2)) < seoul.height * 0.6


def test_the_open311_reporter_s_contact_is_shown_and_its_viewing_audited(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    form = RequestForm(
        service_code="illegal_parking", address_string="마포구 합정동", description="소화전 앞 주차",
        email="reporter@example.kr", phone="010-1234-5678", first_name="민준", last_name="김",
    )  # fmt: skip
    with session_scope(db) as session:
        number = file_request(
            session, key_id=1, key_name="FixMyStreet", form=form, idempotency_header=uuid.uuid4().hex
        ).number
    plain = file_one(db)

    def viewers(number: str) -> list[tuple[str, dict[str, Any]]]:
        with session_scope(db) as session:
            rows = session.execute(
                select(AuditEntry.actor, AuditEntry.details)
                .where(AuditEntry.action == "case.contact_viewed", AuditEntry.target == number)
                .order_by(AuditEntry.id)  # in the order they were seen (PostgreSQL returns no order otherwise)
            )
            return [(actor, details) for actor, details in rows]

    operator = new_user(db, "operator")
    log_in(client, operator)
    page = client.get(f"/console/cases/{number}").text
    assert "reporter@example.kr" in page and "+821012345678" in page and "김 민준" in page
    assert viewers(number) == [(operator, {"fields": ["email", "first_name", "last_name", "phone"]})]
    assert "신고자 연락처" not in client.get(f"/console/cases/{plain}").text
    assert viewers(plain) == []

    client.cookies.clear()
    assert department_code(db, plain) != department_code(db, number)
    log_in(client, new_user(db, "official", department_code(db, plain)))
    assert client.get(f"/console/cases/{number}").status_code == 404  # another department's case: nothing seen
    client.cookies.clear()
    official = new_user(db, "official", department_code(db, number))
    log_in(client, official)
    assert "reporter@example.kr" in client.get(f"/console/cases/{number}").text
    assert [actor for actor, _ in viewers(number)] == [operator, official]
