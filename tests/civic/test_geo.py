"""GPS → gu/dong lookup on the bundled Seoul maps."""

from __future__ import annotations

import time

import pytest

from civic import geo
from civic.districts import DISTRICTS


@pytest.mark.parametrize(
    ("lat", "lon", "gu"),
    [
        (37.5663, 126.9779, "중구"),  # City Hall
        (37.5133, 127.1001, "송파구"),  # Jamsil station
        (37.5495, 126.9137, "마포구"),  # Hapjeong station
        (37.5116, 127.0593, "강남구"),  # COEX (Gangnam station sits on the 서초구 border)
    ],
)
def test_locate_in_seoul(lat: float, lon: float, gu: str) -> None:
    location = geo.locate(lat, lon)
    assert location is not None and location.gu_ko == gu
    assert location.gu_en.endswith("-gu")


def test_locate_dong() -> None:
    location = geo.locate(37.5133, 127.1001)
    assert location is not None and location.dong_ko is not None
    assert location.dong_ko in geo.dongs_of("송파구")


def test_outside_seoul() -> None:
    assert geo.locate(35.6812, 139.7671) is None  # Tokyo station
    assert geo.locate(37.4563, 126.7052) is None  # Incheon


def test_lookup_is_fast() -> None:
    geo.load()
    points = [(37.45 + i * 0.0005, 126.80 + i * 0.0008) for i in range(500)]
    start = time.perf_counter()
    for lat, lon in points:
        geo.locate(lat, lon)
    assert (time.perf_counter() - start) / len(points) < 0.001


def test_dongs_of() -> None:
    assert all(geo.dongs_of(gu) for gu in DISTRICTS)
    assert "서교동" in geo.dongs_of("마포구")
    assert sum(len(geo.dongs_of(gu)) for gu in DISTRICTS) == 423
    assert geo.dongs_of("부산진구") == []


def test_dong_map_agrees_with_gu_map() -> None:
    # Guards the datum correction of the KOSTAT dong map: unshifted, ~11% of points lose their dong.
    grid = [(37.43 + i * 0.0027, 126.76 + j * 0.0042) for i in range(100) for j in range(100)]
    inside = [loc for loc in (geo.locate(lat, lon) for lat, lon in grid) if loc is not None]
    with_dong = [loc for loc in inside if loc.dong_ko is not None]
    assert len(inside) > 5000
    assert len(with_dong) / len(inside) > 0.995
