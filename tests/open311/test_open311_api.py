"""Open311 GeoReport v2 over HTTP in the real app: every resource in JSON and XML, checked against the written spec."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from civic.api_keys import create_key, revoke_key
from civic.db import session_scope
from civic.models import AuditEntry, Case
from civic.open311_filing import contact_of
from civic.workflow import CaseStatus, transition
from telephony.local_twilio import local_twilio
from tests.inprocess_app import running_app
from tests.open311 import spec

API = "/open311/v2"
HAPJEONG = {"lat": "37.5495", "long": "126.9137"}  # 마포구 합정동


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine) -> Iterator[TestClient]:
    with local_twilio("AC" + "3" * 32, "open311-twilio-token") as fake, running_app(db_url, fake) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = client.app.state.session_factory  # type: ignore[attr-defined]
    return factory


def new_key(db: sessionmaker[Session], rate: int = 1000) -> str:
    with session_scope(db) as session:
        return create_key(session, name=f"test-{uuid.uuid4().hex[:8]}", rate_limit_per_minute=rate).secret


@pytest.fixture
def key(db: sessionmaker[Session]) -> str:
    return new_key(db)


def post(client: TestClient, key: str, fmt: str = "json", headers: dict[str, str] | None = None, **form: str) -> Any:
    data = {"api_key": key, "service_code": "illegal_parking", "description": f"소화전 앞 주차 {uuid.uuid4().hex}"}
    return client.post(f"{API}/requests.{fmt}", data=data | form, headers=headers or {})


def filed(client: TestClient, key: str, **form: str) -> str:
    response = post(client, key, **(HAPJEONG | form))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    [answer] = response.json()
    assert set(answer) <= spec.POST_FIELDS and isinstance(answer["service_request_id"], str)
    return str(answer["service_request_id"])


def test_discovery_lists_this_endpoint_in_both_formats(client: TestClient) -> None:
    body = client.get(f"{API}/discovery.json").json()
    [endpoint] = body["endpoints"]
    assert endpoint["url"].endswith("/open311/v2") and endpoint["specification"] == spec.SPECIFICATION
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    assert spec.ISO_8601.match(body["changeset"])
    root = spec.parse_xml(client.get(f"{API}/discovery.xml").content, "discovery", None)
    formats = root.findall("endpoints/endpoint/formats/format")
    assert {f.text for f in formats} == {"text/xml", "application/json"}


def test_services_are_the_ten_categories_in_the_asked_language(client: TestClient) -> None:
    korean = client.get(f"{API}/services.json").json()
    assert [s["service_code"] for s in korean][:2] == ["illegal_parking", "illegal_banner"] and len(korean) == 10
    for service in korean:
        spec.check_service(service)
        assert service["metadata"] is True and service["type"] == "realtime"
    assert korean[0]["service_name"] == "불법 주정차" and "소화전" in korean[0]["keywords"]
    assert client.get(f"{API}/services.json?locale=en_US").json()[0]["service_name"] == "Illegal parking"
    japanese = client.get(f"{API}/services.json", headers={"Accept-Language": "ja-JP,ja;q=0.9"}).json()
    assert japanese[0]["service_name"] == "違法駐停車" and japanese[0]["group"] == "取締り"
    root = spec.parse_xml(client.get(f"{API}/services.xml").content, "services", "service")
    records = [spec.xml_record(service) for service in root]
    assert len(records) == 10 and records[3]["service_code"] == "broken_sidewalk"
    assert records[3]["metadata"] == "true" and records[3]["group"] == "시설 보수"


def test_a_service_definition_asks_for_the_gu_and_the_place(client: TestClient) -> None:
    definition = client.get(f"{API}/services/noise.json?locale=en").json()
    spec.check_definition(definition)
    district, place = definition["attributes"]
    assert district["code"] == "district" and district["datatype"] == "singlevaluelist"
    assert len(district["values"]) == 25 and {"key": "마포구", "name": "Mapo-gu"} in district["values"]
    assert place["code"] == "place" and place["order"] == 2
    root = spec.parse_xml(client.get(f"{API}/services/noise.xml").content, "service_definition", None)
    assert root.findtext("service_code") == "noise"
    values = root.findall("attributes/attribute/values/value")
    assert len(values) == 25 and values[0].findtext("key") == "종로구"


@pytest.mark.parametrize("path", ["/services/potholes.json", "/requests/SR-1999-000001.json", "/requests/nope.json"])
def test_unknown_services_and_requests_are_404_in_the_spec_error_shape(client: TestClient, path: str) -> None:
    response = client.get(API + path)
    assert response.status_code == 404
    spec.check_errors(response.json(), 404)


def test_errors_in_xml(client: TestClient) -> None:
    response = client.get(f"{API}/services/potholes.xml")
    assert response.status_code == 404 and response.headers["content-type"] == "text/xml; charset=utf-8"
    root = spec.parse_xml(response.content, "errors", "error")
    assert root.findtext("error/code") == "404" and "potholes" in (root.findtext("error/description") or "")


def test_jurisdiction_is_optional_but_checked(client: TestClient) -> None:
    assert client.get(f"{API}/services.json?jurisdiction_id=seoul.go.kr").status_code == 200
    assert client.get(f"{API}/services.json?jurisdiction_id=").status_code == 200
    response = client.get(f"{API}/requests.xml?jurisdiction_id=sfgov.org")
    assert response.status_code == 404
    assert "sfgov.org" in (spec.parse_xml(response.content, "errors", "error").findtext("error/description") or "")


def test_posting_needs_a_live_api_key(client: TestClient, db: sessionmaker[Session]) -> None:
    for bad in ("", "o311_not-a-key"):
        response = post(client, bad, **HAPJEONG)
        assert response.status_code == 403
        spec.check_errors(response.json(), 403)
    secret = new_key(db)
    with session_scope(db) as session:
        key_id = create_key(session, name="to revoke").key.id  # another key, revoked below
        revoke_key(session, key_id=key_id)
    assert post(client, secret, **HAPJEONG).status_code == 200
    with session_scope(db) as session:
        from civic.models import ApiKey

        row = session.execute(select(ApiKey).where(ApiKey.prefix == secret[:12])).scalar_one()
        assert row.last_used_at is not None and row.key_hash != secret
        revoke_key(session, key_id=row.id)
    assert post(client, secret, **HAPJEONG).status_code == 403


def test_a_filed_request_reads_back_with_the_case_mapping(
    client: TestClient, key: str, db: sessionmaker[Session]
) -> None:
    number = filed(client, key, email="citizen@example.kr", phone="010-2345-6789", first_name="민수", last_name="김")
    [request] = client.get(f"{API}/requests/{number}.json?locale=en").json()
    spec.check_request(request)
    assert request["service_request_id"] == number and request["status"] == "open"
    assert request["service_code"] == "illegal_parking" and request["service_name"] == "Illegal parking"
    assert request["lat"] == 37.5495 and request["long"] == 126.9137
    assert request["address"].endswith("마포구") and request["agency_responsible"]
    assert request["requested_datetime"].endswith("+09:00") and request["expected_datetime"].endswith("+09:00")
    assert "citizen@example.kr" not in str(request) and "민수" not in str(request)
    with session_scope(db) as session:
        case = session.execute(select(Case).where(Case.number == number)).scalar_one()
        assert case.channel == "open311" and case.status == "received" and case.events[0].to_status == "received"
        assert case.contact_ciphertext is not None and b"citizen@example.kr" not in case.contact_ciphertext
        assert contact_of(case) == {
            "email": "citizen@example.kr",
            "phone": "+821023456789",
            "first_name": "민수",
            "last_name": "김",
        }
    root = spec.parse_xml(client.get(f"{API}/requests/{number}.xml").content, "service_requests", "request")
    record = spec.xml_record(root[0])
    assert set(record) <= spec.REQUEST_FIELDS and record["service_request_id"] == number
    assert record["status"] == "open" and record["lat"] == "37.5495"


def test_resolved_cases_are_closed_with_the_public_answer(
    client: TestClient, key: str, db: sessionmaker[Session]
) -> None:
    number = filed(client, key)
    with session_scope(db) as session:
        case = session.execute(select(Case).where(Case.number == number)).scalar_one()
        for status in (CaseStatus.ACCEPTED, CaseStatus.ASSIGNED):
            transition(session, case=case, to=status, actor="test", notify=False)
        transition(session, case=case, to=CaseStatus.RESOLVED, actor="test", note="견인 조치했습니다.", notify=False)
    [request] = client.get(f"{API}/requests.json?service_request_id={number}").json()
    assert request["status"] == "closed" and request["status_notes"] == "견인 조치했습니다."
    assert client.get(f"{API}/requests/{number.lower().replace('-', '')}.json").json() == [request]
    assert request["updated_datetime"] >= request["requested_datetime"]
    closed = client.get(f"{API}/requests.json?status=closed&service_code=illegal_parking").json()
    assert number in {r["service_request_id"] for r in closed}
    opened = client.get(f"{API}/requests.json?status=open").json()
    assert number not in {r["service_request_id"] for r in opened} and all(r["status"] == "open" for r in opened)


def test_request_filters_and_pages(client: TestClient, key: str) -> None:
    numbers = [filed(client, key, service_code="sewer") for _ in range(3)]
    listed = client.get(f"{API}/requests.json?service_request_id={','.join(numbers)},SR-1999-000001").json()
    assert sorted(r["service_request_id"] for r in listed) == sorted(numbers)
    # service_request_id overrides the other filters.
    assert len(client.get(f"{API}/requests.json?service_request_id={numbers[0]}&service_code=noise").json()) == 1
    first = client.get(f"{API}/requests.json?service_code=sewer&page_size=2").json()
    second = client.get(f"{API}/requests.json?service_code=sewer&page_size=2&page=2").json()
    assert [r["service_request_id"] for r in first] == numbers[::-1][:2]
    assert second[0]["service_request_id"] == numbers[0]
    for request in first + second:
        spec.check_request(request)
    assert client.get(f"{API}/requests.json?start_date=2020-01-01T00:00:00Z&end_date=2020-02-01T00:00:00Z").json() == []
    recent = client.get(f"{API}/requests.json?start_date=2026-01-01T00:00:00+09:00&service_code=sewer")
    assert recent.status_code == 200
    root = spec.parse_xml(client.get(f"{API}/requests.xml?service_code=sewer").content, "service_requests", "request")
    assert {numbers[0], numbers[2]} <= {spec.xml_record(r)["service_request_id"] for r in root}


@pytest.mark.parametrize(
    "query",
    [
        "status=pending",
        "start_date=yesterday",
        "start_date=2026-12-01T00:00:00",  # no time zone
        "start_date=2026-01-01T00:00:00Z&end_date=2026-12-01T00:00:00Z",  # more than 90 days
        "page_size=5000",
        "page=0",
    ],
)
def test_bad_request_queries_are_400(client: TestClient, query: str) -> None:
    response = client.get(f"{API}/requests.json?{query}")
    assert response.status_code == 400
    spec.check_errors(response.json(), 400)


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"lat": "37.4979", "long": "126.7610"}, "outside Seoul"),  # 부천
        ({"lat": "37.55"}, "together"),
        ({"lat": "north", "long": "126.9"}, "number"),
        ({"address_string": "경기도 부천시 원미구 상동"}, "outside Seoul"),
        ({"address_string": "어딘가 큰길가"}, "no Seoul gu"),
        ({}, "location is required"),
        ({**HAPJEONG, "description": "<b>불법</b> 주차"}, "HTML"),
        ({**HAPJEONG, "description": "가" * 4001}, "4000"),
        ({**HAPJEONG, "email": "not-an-email"}, "email"),
        ({**HAPJEONG, "phone": "12"}, "phone"),
        ({**HAPJEONG, "media_url": "javascript:alert(1)"}, "media_url"),
        ({**HAPJEONG, "service_code": ""}, "service_code"),
    ],
)
def test_bad_posts_are_400_with_a_clear_description(
    client: TestClient, key: str, form: dict[str, str], words: str
) -> None:
    response = post(client, key, **form)
    assert response.status_code == 400, response.text
    spec.check_errors(response.json(), 400)
    assert words in response.json()[0]["description"]


def test_unknown_service_or_jurisdiction_on_post_is_404(client: TestClient, key: str) -> None:
    assert post(client, key, service_code="potholes", **HAPJEONG).status_code == 404
    response = post(client, key, fmt="xml", jurisdiction_id="sfgov.org", **HAPJEONG)
    assert response.status_code == 404 and spec.parse_xml(response.content, "errors", "error").findtext("error/code")
    assert post(client, key, jurisdiction_id="seoul.go.kr", **HAPJEONG).status_code == 200


def test_an_address_naming_a_gu_is_enough(client: TestClient, key: str, db: sessionmaker[Session]) -> None:
    number = filed(client, key, lat="", long="", address_string="서울특별시 강남구 테헤란로 152")
    with session_scope(db) as session:
        case = session.execute(select(Case).where(Case.number == number)).scalar_one()
        assert case.district == "강남구" and case.place == "서울특별시 강남구 테헤란로 152" and case.latitude is None
    number = post(client, key, **{"attribute[district]": "Jongno-gu", "attribute[place]": "광화문 광장"}).json()
    [request] = client.get(f"{API}/requests/{number[0]['service_request_id']}.json").json()
    assert request["address"] == "광화문 광장, 종로구"


def test_resends_are_idempotent(client: TestClient, key: str, db: sessionmaker[Session]) -> None:
    form = HAPJEONG | {"description": f"같은 신고 {uuid.uuid4().hex}"}
    first, again = post(client, key, **form).json(), post(client, key, **form).json()
    assert first[0]["service_request_id"] == again[0]["service_request_id"]
    other_key = post(client, new_key(db), **form).json()
    assert other_key[0]["service_request_id"] != first[0]["service_request_id"]
    header = {"Idempotency-Key": uuid.uuid4().hex}
    one = post(client, key, headers=header, **HAPJEONG).json()
    two = post(client, key, headers=header, **HAPJEONG).json()  # another description, the same header
    assert one[0]["service_request_id"] == two[0]["service_request_id"]
    target = f"case:{first[0]['service_request_id']}"
    with session_scope(db) as session:
        entries = session.execute(select(AuditEntry).where(AuditEntry.target == target)).scalars().all()
        assert [e.details["replayed"] for e in entries] == [False, True]
        assert all(e.action == "open311.request_filed" and e.actor.startswith("api_key:") for e in entries)


def test_each_key_has_its_own_rate_limit(client: TestClient, db: sessionmaker[Session]) -> None:
    slow = new_key(db, rate=2)
    assert [post(client, slow, **HAPJEONG).status_code for _ in range(3)] == [200, 200, 429]
    refused = post(client, slow, **HAPJEONG)
    spec.check_errors(refused.json(), 429)
    assert refused.headers["retry-after"] == "60"
    assert post(client, new_key(db, rate=2), **HAPJEONG).status_code == 200


def test_get_never_publishes_personal_data(client: TestClient, key: str) -> None:
    text = "2026-12-01 10:30부터, SR-2026-000123 건과 같음. 연락은 010-9876-5432, 02)123-4567 또는 me@example.kr"
    number = filed(client, key, description=text)
    [request] = client.get(f"{API}/requests/{number}.json").json()
    assert request["description"] == (
        "2026-12-01 10:30부터, SR-2026-000123 건과 같음. 연락은 [개인정보 삭제], [개인정보 삭제] 또는 [개인정보 삭제]"
    )


def test_xml_stays_well_formed_with_markup_and_control_characters(client: TestClient, key: str) -> None:
    number = filed(client, key, description="A & B > C, \"따옴표\" 'x' 벨\x07소리", **{"attribute[place]": "<앞>"})
    root = spec.parse_xml(client.get(f"{API}/requests/{number}.xml").content, "service_requests", "request")
    record = spec.xml_record(root[0])
    assert record["description"] == "A & B > C, \"따옴표\" 'x' 벨소리" and record["address"].startswith("<앞>")


def _changes(db: sessionmaker[Session], number: str, *steps: tuple[CaseStatus, str | None]) -> None:
    with session_scope(db) as session:
        case = session.execute(select(Case).where(Case.number == number)).scalar_one()
        for status, note in steps:
            transition(session, case=case, to=status, actor="test", note=note, notify=False)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # the way FixMyStreet sends its window


def test_status_changes_and_public_answers_are_updates(client: TestClient, key: str, db: sessionmaker[Session]) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    number = filed(client, key)
    steps = [
        (CaseStatus.ACCEPTED, "분야 수정: noise → illegal_parking"),  # the operator's own note: not published
        (CaseStatus.ASSIGNED, None),
        (CaseStatus.ACCEPTED, "재배정 요청: 우리 과 아님"),  # sent back to the operators: the citizen is not told
        (CaseStatus.ASSIGNED, None),
        (CaseStatus.IN_PROGRESS, None),
        (CaseStatus.RESOLVED, "견인했습니다. 문의 010-9876-5432"),
    ]
    _changes(db, number, *steps)
    window = f"start_date={_utc(start)}&end_date={_utc(datetime.now(UTC) + timedelta(seconds=1))}"
    response = client.get(f"{API}/servicerequestupdates.json?{window}&jurisdiction_id=seoul.go.kr&api_key={key}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json; charset=utf-8"
    mine = [u for u in response.json() if u["service_request_id"] == number]
    for update in mine:
        spec.check_update(update)
        assert update["updated_datetime"].endswith("+09:00") and update["media_url"] is None
    assert [(u["status"], u["external_status_code"], u["description"]) for u in mine] == [
        ("open", "accepted", ""),
        ("open", "assigned", ""),
        ("open", "assigned", ""),
        ("in_progress", "in_progress", ""),
        ("fixed", "resolved", "견인했습니다. 문의 [개인정보 삭제]"),
    ]
    assert len({u["update_id"] for u in mine}) == 5
    assert [u["updated_datetime"] for u in mine] == sorted(u["updated_datetime"] for u in mine)

    later = client.get(f"{API}/servicerequestupdates.json?start_date={_utc(datetime.now(UTC) + timedelta(seconds=2))}")
    assert number not in {u["service_request_id"] for u in later.json()}


def test_updates_in_xml_read_the_way_fixmystreet_reads_them(
    client: TestClient, key: str, db: sessionmaker[Session]
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    number = filed(client, key, email="reporter@example.kr", first_name="민준", last_name="김")
    _changes(db, number, (CaseStatus.REJECTED, "사유: 사유지 <주차장> & 관리사무소 소관"))
    end = datetime.now(UTC) + timedelta(seconds=1)
    response = client.get(f"{API}/servicerequestupdates.xml?start_date={_utc(start)}&end_date={_utc(end)}")
    assert response.status_code == 200 and response.headers["content-type"] == "text/xml; charset=utf-8"
    assert b"reporter@example.kr" not in response.content and "민준".encode() not in response.content
    [update] = [u for u in spec.fixmystreet_updates(response.content) if u["service_request_id"] == number]
    assert update["update_id"] and update["media_url"] is None  # empty, so no photo is fetched
    assert update["status"] == "closed" and update["description"] == "사유: 사유지 <주차장> & 관리사무소 소관"
    # GetServiceRequestUpdates keeps an update only if its time, in UTC, is inside the window it asked for.
    updated = datetime.fromisoformat(update["updated_datetime"] or "")
    assert _utc(start) <= _utc(updated) <= _utc(end)


def test_updates_page_oldest_first(client: TestClient, key: str, db: sessionmaker[Session]) -> None:
    start = _utc(datetime.now(UTC) - timedelta(seconds=1))
    number = filed(client, key)
    _changes(db, number, (CaseStatus.ACCEPTED, None), (CaseStatus.ASSIGNED, None))
    everything = client.get(f"{API}/servicerequestupdates.json?start_date={start}").json()
    second = client.get(f"{API}/servicerequestupdates.json?start_date={start}&page_size=1&page=2").json()
    assert len(everything) >= 2 and second == everything[1:2]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("servicerequestupdates.json?start_date=yesterday", 400),
        ("servicerequestupdates.xml?start_date=2026-12-01T00:00:00", 400),  # no time zone
        ("servicerequestupdates.json?start_date=2026-01-01T00:00:00Z&end_date=2026-12-01T00:00:00Z", 400),
        ("servicerequestupdates.json?start_date=2026-12-02T00:00:00Z&end_date=2026-12-01T00:00:00Z", 400),
        ("servicerequestupdates.json?page_size=5000", 400),
        ("servicerequestupdates.xml?jurisdiction_id=sfgov.org", 404),
        ("servicerequestupdates.csv", 404),
    ],
)
def test_bad_update_queries_answer_the_spec_errors(client: TestClient, query: str, status: int) -> None:
    response = client.get(f"{API}/{query}")
    assert response.status_code == status
    if ".xml" in query:
        assert spec.parse_xml(response.content, "errors", "error").findtext("error/code") == str(status)
    else:
        spec.check_errors(response.json(), status)
