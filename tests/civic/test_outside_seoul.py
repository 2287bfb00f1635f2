"""Cities outside Seoul named in a citizen's words, and the Seoul words that only look like them."""

from __future__ import annotations

import pytest

from civic.districts import city_outside_seoul


@pytest.mark.parametrize(
    ("text", "city"),
    [
        ("부천시 상동에 쓰레기가 버려져 있어요", "부천시"),
        ("성남 분당 정자역 앞이에요", "성남시"),
        ("일산 호수공원 근처요", "고양시"),
        ("There's a pothole in Suwon near the station", "수원시"),
        ("議政府の駅前です", "의정부시"),
        ("김포 쪽이에요", "김포시"),
    ],
)
def test_a_city_outside_seoul_is_found(text: str, city: str) -> None:
    found = city_outside_seoul(text)
    assert found is not None and found[2].ko == city


@pytest.mark.parametrize(
    "text",
    [
        "고양이 사체가 길에 있어요",
        "김포공항 근처 강서구 도로",
        "Gimpo Airport bus stop in Gangseo-gu",
        "안양천 산책로 가로등이 나갔어요",
        "부천 가는 버스 정류장 표지판이 쓰러졌어요",
        "세종대로 보도블록이 깨졌어요",
        "금천구 시흥동 주민센터 앞",
        "마포구 합정동 123 앞",
    ],
)
def test_seoul_words_that_look_like_other_cities_are_not(text: str) -> None:
    assert city_outside_seoul(text) is None
