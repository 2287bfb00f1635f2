"""A citizen files complaints over the web chat, in Korean, English and Japanese, against the real stack."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic.models import Case, CaseEvent, Department
from civic.routing import route_table
from tests.e2e.stack import ChatClient

pytestmark = pytest.mark.e2e
CASE_NUMBER = re.compile(r"SR-\d{4}-\d{6}")


def texts(replies: list[dict]) -> str:
    return "\n".join(r["text"] for r in replies)


def filed_case(db: sessionmaker[Session], replies: list[dict]) -> Case:
    match = CASE_NUMBER.search(texts(replies))
    assert match, f"no case number in {texts(replies)!r}"
    with db() as session:
        case = session.execute(select(Case).where(Case.number == match.group(0))).scalar_one()
        session.expunge(case)
        return case


def assert_routed(db: sessionmaker[Session], case: Case, category: str, district: str) -> None:
    assert (case.category, case.district, case.status) == (category, district, "received")
    with db() as session:
        department = session.get(Department, case.department_id)
        assert department is not None
        assert department.code == route_table()[(category, district)].code
        events = session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id)).scalars().all()
        assert [(e.from_status, e.to_status) for e in events] == [(None, "received")]


def test_korean_report_in_one_message_asks_only_for_confirmation(
    citizen: ChatClient, db: sessionmaker[Session]
) -> None:
    # Not 합정동 123, which the dialogue set reports the same way: that open case would be offered to follow.
    replies = citizen.say("마포구 합정동 417 앞에 불법주차 차량이 소화전을 막고 있어요")
    summary = texts(replies)
    assert "이대로 접수할까요" in summary and "마포구" in summary, summary
    assert {b["payload"] for r in replies for b in r["buttons"]} >= {"/affirm", "/deny"}
    done = citizen.say("네, 접수해 주세요", payload="/affirm")
    case = filed_case(db, done)
    assert_routed(db, case, "illegal_parking", "마포구")
    assert case.channel == "web" and case.language == "ko"
    assert "합정동" in case.place
    with db() as session:
        department = session.get(Department, case.department_id)
        assert department is not None and department.name_ko in texts(done)
    assert str(case.due_at.day) in texts(done)


def test_english_report_asks_for_what_is_missing_and_takes_a_correction(
    citizen: ChatClient, db: sessionmaker[Session]
) -> None:
    first = texts(citizen.say("The streetlight on my street has been out for three days"))
    assert "district" in first.lower(), first
    place_question = texts(citizen.say("Mapo-gu"))
    assert "where exactly" in place_question.lower(), place_question
    summary = texts(citizen.say("in front of Hapjeong station exit 2"))
    assert "Mapo-gu" in summary and "Shall I file it" in summary, summary
    corrected = texts(citizen.say("no, it's Guro-gu"))
    assert "Guro-gu" in corrected and "Shall I file it" in corrected, corrected
    case = filed_case(db, citizen.say("yes", payload="/affirm"))
    assert_routed(db, case, "broken_streetlight", "구로구")
    assert case.language == "en"


def test_japanese_report(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    summary = texts(citizen.say("麻浦区の弘大入口駅の前にごみが大量に捨てられています"))
    assert "受け付けますか" in summary, summary
    done = citizen.say("はい", payload="/affirm")
    case = filed_case(db, done)
    assert_routed(db, case, "illegal_dumping", "마포구")
    assert "案件番号" in texts(done)


def test_double_clicked_confirm_files_one_case(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    citizen.say("송파구 잠실역 8번 출구 앞 보도블록이 깨져서 걸려 넘어질 뻔했어요")
    first = citizen.say("네", payload="/affirm")
    second = citizen.say("네", payload="/affirm")
    case = filed_case(db, first)
    assert not CASE_NUMBER.search(texts(second))
    with db() as session:
        count = session.execute(select(Case).where(Case.conversation_id == case.conversation_id)).scalars().all()
        assert len(count) == 1


def test_status_question_in_the_middle_of_a_report_resumes_it(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    filed = filed_case(
        db,
        [
            *citizen.say("강남구 역삼동 테헤란로 152 앞에 불법 현수막이 잔뜩 걸려 있어요"),
            *citizen.say("네", payload="/affirm"),
        ],
    )
    asked = texts(citizen.say("가로등이 안 켜져요"))
    assert "구" in asked, asked  # asks for the district
    status = texts(citizen.say(f"{filed.number} 처리 어떻게 됐어요?"))
    assert filed.number in status and "접수" in status, status
    assert "어느 구" in status or "구인가요" in status, status  # the report resumes with its question
    place = texts(citizen.say("종로구요"))
    assert "위치" in place, place


def test_a_gps_position_gives_district_and_dong(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    citizen.say("가로등이 나가서 밤에 너무 어두워요")
    summary = texts(citizen.say("", latitude=37.5663, longitude=126.9779))
    assert "중구" in summary and "이대로 접수할까요" in summary, summary
    case = filed_case(db, citizen.say("네", payload="/affirm"))
    assert case.district == "중구" and case.latitude == pytest.approx(37.5663)
    assert case.dong


# Issue 15: slot hygiene, places an inspector can find, and places outside Seoul.


def test_a_place_correction_changes_the_place_and_keeps_the_description(
    citizen: ChatClient, db: sessionmaker[Session]
) -> None:
    first = "동작구 노량진 학원가에 보안등이 깜빡거려요"
    assert "위치" in texts(citizen.say(first))
    assert "이대로 접수할까요" in texts(citizen.say("노량진역 1번 출구"))
    asked = texts(citizen.say("위치가 틀렸어요"))
    assert "위치" in asked and "이대로 접수할까요" not in asked, asked
    summary = texts(citizen.say("노량진 컵밥거리 뒤쪽 골목이에요"))
    assert "노량진 컵밥거리 뒤쪽 골목" in summary and first in summary, summary
    case = filed_case(db, citizen.say("네", payload="/affirm"))
    assert_routed(db, case, "broken_streetlight", "동작구")
    assert (case.place, case.description) == ("노량진 컵밥거리 뒤쪽 골목", first)


def test_a_category_correction_changes_only_the_category(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    first = "서대문구 신촌역 앞에 맨홀 뚜껑이 들려 있어요"
    assert "이대로 접수할까요" in texts(citizen.say(first))
    assert "고칠까요" in texts(citizen.say("아니요", payload="/deny"))
    summary = texts(citizen.say("유형이 안전 위험이에요"))
    assert "안전 위험" in summary and "이대로 접수할까요" in summary, summary
    case = filed_case(db, citizen.say("네", payload="/affirm"))
    assert_routed(db, case, "safety", "서대문구")
    assert case.description == first and "신촌역" in case.place


def test_the_place_answer_is_never_the_description(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    citizen.say("쓰레기 무단투기 신고요")
    citizen.say("관악구요")
    summary = texts(citizen.say("신림역 근처 원룸촌 골목"))
    assert "이대로 접수할까요" in summary, summary
    case = filed_case(db, citizen.say("네", payload="/affirm"))
    assert_routed(db, case, "illegal_dumping", "관악구")
    assert case.place == "신림역 근처 원룸촌 골목" and case.description == "쓰레기 무단투기 신고요"


def test_japanese_sidewalk_report_with_a_dong_asks_where_in_it(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    first = "ホテルの前の歩道のブロックが壊れていて、スーツケースが引っかかります。場所は鍾路区の仁寺洞です"
    asked = texts(citizen.say(first))
    assert "詳しく" in asked, asked
    summary = texts(citizen.say("仁寺洞のホテルの前"))
    assert "受け付けますか" in summary, summary
    case = filed_case(db, citizen.say("はい", payload="/affirm"))
    assert_routed(db, case, "broken_sidewalk", "종로구")
    assert (case.place, case.description) == ("仁寺洞のホテルの前", first)


def test_a_dong_alone_is_not_a_place(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    asked = texts(citizen.say("노원구 상계동에 불법 현수막이 잔뜩 걸려 있어요"))
    assert "자세히" in asked, asked
    summary = texts(citizen.say("상계역 2번 출구 앞 사거리요"))
    assert "이대로 접수할까요" in summary, summary
    case = filed_case(db, citizen.say("네", payload="/affirm"))
    assert_routed(db, case, "illegal_banner", "노원구")
    assert case.place == "상계동 상계역 2번 출구 앞 사거리"


def test_addresses_and_landmarks_are_kept_whole(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    assert "위치" in texts(citizen.say("마포구에 누가 쓰레기를 몰래 버리고 가요"))
    citizen.say("망원시장 뒤쪽 골목, 망원로 8길 입구")
    case = filed_case(db, citizen.say("네", payload="/affirm"))
    assert case.place == "망원시장 뒤쪽 골목, 망원로 8길 입구"

    assert "場所" in texts(citizen.say("江南区で歩道のブロックが割れていて危ないです"))
    citizen.say("駅三駅の3番出口の前です")
    case = filed_case(db, citizen.say("はい", payload="/affirm"))
    assert (case.place, case.district) == ("駅三駅の3番出口の前", "강남구")


def test_a_place_outside_seoul_is_told_where_to_go_and_not_filed(
    citizen: ChatClient, db: sessionmaker[Session]
) -> None:
    answer = texts(citizen.say("부천시 상동에 쓰레기가 잔뜩 버려져 있어요"))
    assert "부천시" in answer and "서울" in answer and "110" in answer and "epeople.go.kr" in answer, answer
    assert not CASE_NUMBER.search(answer)
    # The draft is gone: the next report starts afresh, without 부천's description.
    summary = texts(citizen.say("구로구 신도림역 1번 출구 앞에 쓰레기가 쌓여 있어요"))
    assert "이대로 접수할까요" in summary and "부천" not in summary, summary
    case = filed_case(db, citizen.say("네", payload="/affirm"))
    assert case.district == "구로구" and "부천" not in case.description


def test_english_and_japanese_corrections_name_the_detail(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    citizen.say("Garbage bags have been dumped next to Hapjeong station exit 5 in Mapo-gu")
    asked = texts(citizen.say("the district is wrong"))
    assert "district" in asked.lower() and "Shall I file it" not in asked, asked
    summary = texts(citizen.say("Seodaemun-gu"))
    assert "Seodaemun-gu" in summary and "Shall I file it" in summary, summary
    case = filed_case(db, citizen.say("yes", payload="/affirm"))
    assert (case.district, case.category) == ("서대문구", "illegal_dumping")
    assert "Hapjeong" in case.place

    citizen.say("麻浦区の弘大入口駅の前の街灯が消えています")
    assert "区" in texts(citizen.say("区が違います"))
    summary = texts(citizen.say("西大門区です"))
    assert "西大門区" in summary and "受け付けますか" in summary, summary
    case = filed_case(db, citizen.say("はい", payload="/affirm"))
    assert (case.district, case.category) == ("서대문구", "broken_streetlight")
