"""Server-drawn chart geometry for the dashboard: horizontal bars and Seoul's district choropleth."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache

from shapely import box
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import polylabel

from civic.geo import GU_FILE

MAP_WIDTH = 640.0
MAP_MARGIN = 8.0
# About a third of an SVG pixel at MAP_WIDTH: invisible, and it shrinks 1.6 MB of outlines to a few dozen KB.
SIMPLIFY_DEGREES = 0.0002
LABEL_FONT_PX = 11.0
CLASSES = 5
BAR_ROW_PX = 22.0
BAR_LABEL_PX = 150.0
BAR_AREA_PX = 300.0
BAR_VALUE_PX = 70.0


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: int
    y: float
    width: float


@dataclass(frozen=True)
class BarChart:
    """Bars one under another; the template draws them with `label_width` for the names on the left."""

    bars: list[Bar]
    width: float
    height: float
    label_width: float
    row: float


def bar_chart(values: dict[str, int], labels: dict[str, str]) -> BarChart:
    """One bar per key, scaled to the largest value (a lone zero chart stays empty, not divided by zero)."""
    top = max(values.values(), default=0) or 1
    bars = [
        Bar(key, labels.get(key, key), value, index * BAR_ROW_PX, BAR_AREA_PX * value / top)
        for index, (key, value) in enumerate(values.items())
    ]
    width = BAR_LABEL_PX + BAR_AREA_PX + BAR_VALUE_PX
    return BarChart(bars, width, max(1, len(bars)) * BAR_ROW_PX, BAR_LABEL_PX, BAR_ROW_PX)


@dataclass(frozen=True)
class GuShape:
    """One gu projected into the map's SVG coordinates."""

    gu_ko: str
    gu_en: str
    path: str
    label_x: float
    label_y: float
    label_fits: bool


@dataclass(frozen=True)
class SeoulMap:
    shapes: tuple[GuShape, ...]
    width: float
    height: float
    # The projection, kept so a case's point can be drawn on the same map.
    min_lon: float = 0.0
    max_lat: float = 0.0
    x_stretch: float = 1.0
    scale: float = 1.0

    def point(self, latitude: float, longitude: float) -> tuple[float, float] | None:
        """Where a GPS point falls on the map, or None outside its frame."""
        x = MAP_MARGIN + (longitude - self.min_lon) * self.x_stretch * self.scale
        y = MAP_MARGIN + (self.max_lat - latitude) * self.scale
        if not (0 <= x <= self.width and 0 <= y <= self.height):
            return None
        return round(x, 1), round(y, 1)


@dataclass(frozen=True)
class MapArea:
    shape: GuShape
    count: int
    cls: int  # 0 (fewest) … CLASSES - 1 (most)


@dataclass(frozen=True)
class LegendClass:
    cls: int
    low: int
    high: int


@dataclass(frozen=True)
class Choropleth:
    areas: list[MapArea]
    legend: list[LegendClass]
    width: float
    height: float


def _rings(polygon: Polygon) -> list[list[tuple[float, ...]]]:
    return [list(polygon.exterior.coords), *(list(ring.coords) for ring in polygon.interiors)]


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [geometry] if isinstance(geometry, Polygon) else []


@cache
def seoul_map() -> SeoulMap:
    """The 25 gu as SVG paths, projected once per process (about 0.2 s) and kept."""
    features = json.loads(GU_FILE.read_text(encoding="utf-8"))["features"]
    geometries = [shape(f["geometry"]).simplify(SIMPLIFY_DEGREES, preserve_topology=True) for f in features]
    min_lon = min(g.bounds[0] for g in geometries)
    min_lat = min(g.bounds[1] for g in geometries)
    max_lon = max(g.bounds[2] for g in geometries)
    max_lat = max(g.bounds[3] for g in geometries)
    # Equirectangular around Seoul's latitude: at city scale the distortion is far below a pixel.
    x_stretch = math.cos(math.radians((min_lat + max_lat) / 2))
    scale = (MAP_WIDTH - 2 * MAP_MARGIN) / ((max_lon - min_lon) * x_stretch)
    height = (max_lat - min_lat) * scale + 2 * MAP_MARGIN

    def project(lon: float, lat: float) -> tuple[float, float]:
        return (MAP_MARGIN + (lon - min_lon) * x_stretch * scale, MAP_MARGIN + (max_lat - lat) * scale)

    shapes = []
    for feature, geometry in zip(features, geometries, strict=True):
        projected = [
            Polygon(
                [project(*point[:2]) for point in polygon.exterior.coords],
                [[project(*point[:2]) for point in ring.coords] for ring in polygon.interiors],
            )
            for polygon in _polygons(geometry)
        ]
        path = " ".join(
            "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in ring[:-1]) + "Z"
            for polygon in projected
            for ring in _rings(polygon)
        )
        name = feature["properties"]["SIG_KOR_NM"]
        largest = max(projected, key=lambda p: p.area)
        # The point farthest inside the gu; the name is written there only if its box stays inside.
        centre = polylabel(largest, tolerance=0.5)
        half_w = len(name) * LABEL_FONT_PX * 0.5 + 1
        half_h = LABEL_FONT_PX * 0.6
        fits = largest.contains(box(centre.x - half_w, centre.y - half_h, centre.x + half_w, centre.y + half_h))
        shapes.append(
            GuShape(name, feature["properties"]["SIG_ENG_NM"], path, round(centre.x, 1), round(centre.y, 1), fits)
        )
    return SeoulMap(tuple(shapes), MAP_WIDTH, round(height, 1), min_lon, max_lat, x_stretch, scale)


def class_of(count: int, top: int, classes: int = CLASSES) -> int:
    """Equal-width class of `count` in (0, top]: class k holds k·top/n < count ≤ (k+1)·top/n; 0 joins class 0.

    The busiest gu is always in the darkest class, however few cases there are.
    """
    if count <= 0 or top <= 0:
        return 0
    return min(classes, -(-count * classes // top)) - 1  # ceil(count·n / top) - 1


def legend(top: int, classes: int = CLASSES) -> list[LegendClass]:
    """Each non-empty class with the counts it covers (with fewer cases than classes, some are empty)."""
    items = []
    for k in range(classes):
        low = 0 if k == 0 else k * top // classes + 1
        high = (k + 1) * top // classes
        if high >= low:
            items.append(LegendClass(k, low, high))
    return items


def choropleth(counts: dict[str, int]) -> Choropleth:
    """The map with each gu in one of five equal-width classes of its case count."""
    seoul = seoul_map()
    top = max(counts.values(), default=0)
    areas = [MapArea(gu, counts.get(gu.gu_ko, 0), class_of(counts.get(gu.gu_ko, 0), top)) for gu in seoul.shapes]
    return Choropleth(areas, legend(top), seoul.width, seoul.height)
