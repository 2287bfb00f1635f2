"""Near-miss Seoul place names corrected in heard place answers, and the words left as heard."""

from __future__ import annotations

import csv

import pytest

from civic import gazetteer
from civic.districts import DISTRICTS
from civic.gazetteer import Change, correct_place


@pytest.mark.parametrize(
    ("heard", "corrected"),
    [
        ("합정녁 2번 출구 앞", "합정역 2번 출구 앞"),  # 역 heard with its liaison n: [합정녁]
        ("망원도 앞", "망원동 앞"),  # the final ㅇ dropped
        ("서울력에서요", "서울역에서요"),  # the ending kept as said
        ("여기 합쩡역 앞인데요", "여기 합정역 앞인데요"),  # tensed ㅈ
        ("3호선 양재녁 5번 출구", "3호선 양재역 5번 출구"),
        ("홍대입꾸역 앞이요", "홍대입구역 앞이요"),
        ("마포꾸 서교동", "마포구 서교동"),
        ("상게동 주민센터 앞", "상계동 주민센터 앞"),
        ("을지로3까", "을지로3가"),  # a name with a digit: the digit kept
        ("(합정녁), 2번", "(합정역), 2번"),  # punctuation around the word kept
        ("동대문역사문화공웡", "동대문역사문화공원"),
        ("가산디지철단지녁", "가산디지털단지역"),  # two slips allowed in a name of five syllables or more
    ],
)
def test_near_misses_are_corrected(heard: str, corrected: str) -> None:
    assert correct_place(heard).text == corrected


@pytest.mark.parametrize(
    ("heard", "corrected"),
    [
        ("합정 녁 2번 출구", "합정역 2번 출구"),
        ("망원 도 앞", "망원동 앞"),
    ],
)
def test_a_name_split_over_two_words_is_corrected_whole(heard: str, corrected: str) -> None:
    assert correct_place(heard).text == corrected


def test_a_change_says_what_was_heard_and_where() -> None:
    correction = correct_place("서교동이랑 망원도 사이")
    assert correction.original == "서교동이랑 망원도 사이"
    assert correction.changes == (Change(start=6, end=9, heard="망원도", name="망원동", distance=1),)
    pair = correct_place("합정 녁 2번 출구").changes
    assert pair == (Change(start=0, end=4, heard="합정 녁", name="합정역", distance=1),)


@pytest.mark.parametrize(
    "heard",
    [
        "마포구 서교동",
        "신촌역 삼번 출구",  # a number said in words, and the exit
        "합정역 2번 출구 앞",
        "마포 구청 앞",
        "서교 동 주민센터",  # a name in two words is kept as said
        "신촌 역에서",
        "강남구청역 근처",
        "을지로3가역",
        "상계1동",
        "성수동 카페거리 입구요",  # said without the official numbers of 성수1가1동 or 성수동1가
    ],
)
def test_names_numbers_and_exits_are_kept(heard: str) -> None:
    correction = correct_place(heard)
    assert correction.text == heard
    assert correction.changes == ()


@pytest.mark.parametrize(
    "heard",
    [
        "상수도 누수",  # water mains, one jamo from 상수동
        "어린이 공원 앞",  # any children's park, two from 어린이대공원
        "관악기 소리가 시끄러워요",  # a wind instrument, one from 관악구
        "용산고 정문 앞",  # Yongsan High School, one from 용산구
        "광진교 밑",  # a bridge, one from 광진구
        "중국집 앞",  # 중국 is one from 중구, which is too short to correct to
        "정도 앞",  # 정동 is too short to correct to
        "합정도로 옆",  # a road: 로 is not taken for a particle
        "고척돔 뒤편",  # a landmark, one from 고척동
        "우리 동 주민들",  # our dong, not 우이동
        "효창공원 가는 길",  # 효창공원(앞) said without 앞, then a verb
        "상동역 1번 출구 앞이요",  # Bucheon's station, one from Seoul's 상도역
        "부천 상동 사거리",  # a city outside Seoul named: nothing is corrected
        "원미동 원미로 12 앞이요",  # Bucheon's 원미동: 원지동 is a change of ㅁ to ㅈ, which a recogniser does not make
    ],
)
def test_ordinary_words_near_a_name_are_kept(heard: str) -> None:
    assert correct_place(heard).text == heard


def test_two_names_as_near_leave_the_word_as_heard() -> None:
    # 신덩동 is one jamo from both 신당동 and 신정동: not ours to choose.
    assert correct_place("신덩동 앞").text == "신덩동 앞"


def test_the_digits_of_a_name_are_never_changed() -> None:
    assert correct_place("상계7도").text == "상계7도"  # 상계7동 is no dong; 상계1동 would change the digit


def test_text_without_places_is_returned_as_is() -> None:
    for heard in ["", "   ", "네", "잘 모르겠어요", "Hapjeong station exit 2", "合井駅 2番出口", "합정녁" * 30]:
        assert correct_place(heard).text == heard


def test_the_gazetteer_knows_gu_dong_and_stations() -> None:
    names = gazetteer.place_names()
    assert set(DISTRICTS) <= names
    assert {"마포", "서교동", "상계1동", "합정", "합정역", "서울역", "홍대입구역"} <= names
    assert "Seogyo-dong" not in names  # Korean names only: the transcript is Korean
    assert {"상동역", "부천역"} <= gazetteer.names_outside_seoul()
    assert not gazetteer.names_outside_seoul() & names


def test_station_list_is_inside_seoul_with_its_gu() -> None:
    with gazetteer.STATIONS_FILE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len({row["station_ko"] for row in rows}) == len(gazetteer.station_names())
    assert {row["gu_ko"] for row in rows} <= set(DISTRICTS)
    by_name = {row["station_ko"]: row for row in rows}
    assert by_name["합정"]["gu_ko"] == "마포구" and "2호선" in by_name["합정"]["lines"].split("|")
    assert "부천" not in by_name  # outside Seoul


def test_jamo_splits_initial_and_final_consonants_apart() -> None:
    assert len(gazetteer.jamo("합정역")) == 9
    assert gazetteer.jamo("녁")[0] != gazetteer.jamo("역")[0]
    assert gazetteer.jamo("동")[-1] != gazetteer.jamo("역")[0]  # a final ㅇ (ng) is not a silent initial ㅇ


@pytest.mark.parametrize(
    ("heard", "name", "distance"),
    [
        ("합정녁", "합정역", 1),  # liaison ㄴ for ㅇ
        ("망원도", "망원동", 1),  # a final dropped
        ("합쩡역", "합정역", 1),  # tense for lax
        ("상게동", "상계동", 1),  # ㅔ for ㅖ
        ("원미동", "원지동", 2),  # ㅁ for ㅈ: not a slip of the ear
        ("마포긔", "마포구", 2),  # ㅢ for ㅜ
        ("어린이공원", "어린이대공원", 3),  # a syllable missing: more than the two the index looks for
    ],
)
def test_letters_heard_for_one_another_cost_one_edit_and_others_two(heard: str, name: str, distance: int) -> None:
    assert gazetteer._distance(gazetteer.jamo(heard), gazetteer.jamo(name), limit=2) == distance
