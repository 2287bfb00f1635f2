"""GPS → gu/dong lookup on Seoul's boundary polygons (data/seoul, Apache-2.0, see NOTICE)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import shapely
from shapely.affinity import translate
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from civic.districts import district_names

SEOUL_DIR = Path(__file__).resolve().parent / "data" / "seoul"
GU_FILE = SEOUL_DIR / "juso_2015_json_seoul_municipalities_geo.json"
DONG_FILE = SEOUL_DIR / "kostat_2013_seoul_submunicipalities_geo_fromtopo.json"
DONG_LIST = SEOUL_DIR / "seoul_admin_dong_kostat2013.csv"
LEGAL_DONG_LIST = SEOUL_DIR / "seoul_legal_dong_juso2015.csv"

# The KOSTAT 2013 dong map sits about 310 m south and 180 m east of its true place (southkorea/
# seoul-maps issue #2: the source shapefile's datum was converted without the Tokyo→WGS84 shift);
# the JUSO gu map has no such offset. This translation, in degrees, best overlays the dongs of each
# gu on that gu's JUSO outline (fitted once by least symmetric difference over the 25 gu).
DONG_SHIFT_LON = -0.00206
DONG_SHIFT_LAT = 0.00279
DONG_SNAP_DEGREES = 0.004  # about 400 m


@dataclass(frozen=True)
class Location:
    """Where a point is: its gu always, its administrative dong when the dong map has one."""

    gu_ko: str
    gu_en: str
    dong_ko: str | None
    dong_en: str | None


@dataclass(frozen=True)
class _Area:
    name_ko: str
    name_en: str
    gu_ko: str


class _Layer:
    """Polygons with an R-tree: the tree's bounding boxes rule out all but a few in microseconds."""

    def __init__(self, areas: list[_Area], geometries: list[BaseGeometry]) -> None:
        for geometry in geometries:
            shapely.prepare(geometry)
        self.areas = areas
        self.tree = shapely.STRtree(geometries)

    def find(self, point: Point) -> _Area | None:
        hits = self.tree.query(point, predicate="intersects")
        return self.areas[int(min(hits))] if len(hits) else None

    def nearest_in(self, point: Point, gu_ko: str, max_degrees: float) -> _Area | None:
        hits = self.tree.query(point, predicate="dwithin", distance=max_degrees)
        near = [(self.tree.geometries[i].distance(point), int(i)) for i in hits if self.areas[i].gu_ko == gu_ko]
        return self.areas[min(near)[1]] if near else None


def _features(path: Path) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["features"]
    return features


@cache
def _gu_layer() -> _Layer:
    features = _features(GU_FILE)
    areas = [
        _Area(f["properties"]["SIG_KOR_NM"], f["properties"]["SIG_ENG_NM"], f["properties"]["SIG_KOR_NM"])
        for f in features
    ]
    return _Layer(areas, [shape(f["geometry"]) for f in features])


@cache
def _dong_layer() -> _Layer:
    # Dong codes are KOSTAT's: their first five digits are the gu's KOSTAT code.
    gu_by_kostat = {names.kostat_code: names.gu_ko for names in district_names().values()}
    features = _features(DONG_FILE)
    areas = [
        _Area(
            f["properties"]["name"],
            f["properties"]["name_eng"],
            gu_by_kostat[f["properties"]["code"][:5]],
        )
        for f in features
    ]
    geometries = [translate(shape(f["geometry"]), DONG_SHIFT_LON, DONG_SHIFT_LAT) for f in features]
    return _Layer(areas, geometries)


def load() -> None:
    """Load both maps now (about a second) instead of on the first lookup."""
    _gu_layer()
    _dong_layer()


def locate(lat: float, lon: float) -> Location | None:
    """The gu (and dong) containing the point, or None outside Seoul."""
    point = Point(lon, lat)
    gu = _gu_layer().find(point)
    dong = _dong_layer().find(point)
    area = gu or dong
    if area is None:
        return None
    gu_ko = area.gu_ko
    # The maps come from different surveys (2015, 2013) and still disagree by up to a few hundred
    # metres along some borders: the gu map decides the gu, and the dong is the nearest one of that
    # gu, or none when no dong of that gu is close.
    if dong is None or dong.gu_ko != gu_ko:
        dong = _dong_layer().nearest_in(point, gu_ko, DONG_SNAP_DEGREES)
    return Location(
        gu_ko=gu_ko,
        gu_en=district_names()[gu_ko].gu_en,
        dong_ko=dong.name_ko if dong else None,
        dong_en=dong.name_en if dong else None,
    )


@cache
def _dongs_by_gu() -> dict[str, list[str]]:
    by_gu: dict[str, set[str]] = {}
    with DONG_LIST.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            by_gu.setdefault(row["gu_ko"], set()).add(row["dong_ko"])
    return {gu: sorted(names) for gu, names in by_gu.items()}


def dongs_of(gu_ko: str) -> list[str]:
    """Administrative dongs of a gu (2013 list), sorted; empty for an unknown gu."""
    return list(_dongs_by_gu().get(gu_ko, []))


@cache
def dong_names() -> frozenset[str]:
    """Every dong name of Seoul as people write it: administrative (상계1동) and legal (상계동), ko and en."""
    names: set[str] = set()
    for path in (DONG_LIST, LEGAL_DONG_LIST):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                names |= {row["dong_ko"], row["dong_en"]}
    return frozenset(filter(None, names))
