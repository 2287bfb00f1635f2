"""Bulk-inserts N realistic cases with their status events: `python -m bench.generate_cases --count 100000 [--url …]`.

Cases spread over the last 90 days (office hours busier), 25 districts and 10 categories with uneven
weights, four channels, and statuses that follow the workflow's order with plausible delays; about one
in twenty has coordinates. Rows go in with multi-row INSERTs in batches, ids and case numbers reserved
up front, so 100,000 cases take seconds on SQLite, not the minutes file_case would need.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import shape
from sqlalchemy import Connection, Engine, Table, func, insert, select, text

from civic.cases import format_case_number
from civic.categories import CATEGORIES, due_date
from civic.db import make_engine
from civic.districts import DISTRICTS
from civic.geo import GU_FILE, dongs_of
from civic.models import Case, CaseEvent, CaseNumberSequence, Department
from civic.routing import route_table
from civic.settings import get_settings

DAYS = 90
BATCH = 5000
COORDINATE_SHARE = 0.05
CHANNEL_WEIGHTS = {"web": 35, "telegram": 25, "phone": 30, "rest": 10}
LANGUAGE_WEIGHTS = {"ko": 90, "en": 6, "ja": 4}
# Seoul 120's share of complaints by category, roughly: parking dominates.
CATEGORY_WEIGHTS = dict(zip(CATEGORIES, (30, 8, 12, 8, 7, 12, 6, 7, 5, 5), strict=True))
# Filing by hour of the day in Seoul: quiet at night, busiest in office hours.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 8, 9, 10, 10, 9, 8, 7, 6, 5, 4, 3, 2)
# Median delay of each step and the workflow paths a case can take (lognormal delays around the median).
STEP_MEDIAN = {
    "accepted": timedelta(minutes=45),
    "assigned": timedelta(hours=2),
    "in_progress": timedelta(days=1),
    "resolved": timedelta(days=3),
    "rejected": timedelta(days=2),
    "withdrawn": timedelta(minutes=30),
    "reopened": timedelta(days=2),
}
PATHS: dict[tuple[str, ...], int] = {
    ("accepted", "assigned", "in_progress", "resolved"): 88,
    ("accepted", "assigned", "rejected"): 6,
    ("withdrawn",): 3,
    ("accepted", "assigned", "in_progress", "resolved", "reopened"): 1,
    ("accepted", "assigned", "resolved"): 2,
}
PLACES = (
    "역 2번 출구 앞", "초등학교 정문 옆", "사거리 버스정류장", "아파트 101동 앞",
    "시장 입구", "공원 산책로", "주민센터 뒤 골목",
)  # fmt: skip
DESCRIPTIONS = {
    "illegal_parking": "소화전 앞에 차가 며칠째 서 있어요",
    "illegal_banner": "가로수에 불법 현수막이 걸려 있습니다",
    "illegal_dumping": "쓰레기 봉투가 길가에 쌓여 악취가 납니다",
    "broken_sidewalk": "보도블록이 깨져서 걸려 넘어질 뻔했어요",
    "broken_streetlight": "가로등이 밤새 깜빡이거나 꺼져 있습니다",
    "noise": "밤늦게까지 공사 소음이 심해요",
    "sewer": "하수구에서 냄새가 올라옵니다",
    "urban_facility": "벤치가 부서져 있어요",
    "construction": "공사장 가림막이 인도를 막고 있어요",
    "safety": "맨홀 뚜껑이 열려 있어 위험합니다",
}


@cache
def gu_centres() -> dict[str, tuple[float, float]]:
    """A point inside each gu (lat, lon), to scatter the cases that carry coordinates around."""
    features = json.loads(GU_FILE.read_text(encoding="utf-8"))["features"]
    points = {f["properties"]["SIG_KOR_NM"]: shape(f["geometry"]).representative_point() for f in features}
    return {gu: (point.y, point.x) for gu, point in points.items()}


def _pick(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _delay(rng: random.Random, median: timedelta) -> timedelta:
    return median * math.exp(rng.gauss(0, 0.8))


def _filing_times(rng: random.Random, count: int, now: datetime, zone: ZoneInfo) -> list[datetime]:
    local_now = now.astimezone(zone)
    start = (local_now - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    times: list[datetime] = []
    while len(times) < count:
        day = start + timedelta(days=rng.randrange(DAYS + 1))
        hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        moment = day.replace(hour=hour) + timedelta(seconds=rng.randrange(3600))
        if moment < local_now:
            times.append(moment.astimezone(UTC))
    return sorted(times)  # ids follow filing order, as they do when file_case numbers them


def _reserve_numbers(connection: Connection, year: int, count: int) -> int:
    """The first of `count` consecutive case numbers of `year`, taken from the same counter file_case uses."""
    if connection.dialect.name == "postgresql":
        name = f"case_number_{year}"
        connection.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {name}"))
        last = connection.execute(text(f"SELECT setval('{name}', nextval('{name}') + :n - 1)"), {"n": count})
        return int(last.scalar_one()) - count + 1
    table: Table = CaseNumberSequence.__table__  # type: ignore[assignment]
    current = connection.execute(select(table.c.last_value).where(table.c.year == year)).scalar_one_or_none()
    if current is None:
        connection.execute(insert(table).values(year=year, last_value=count))
        return 1
    connection.execute(table.update().where(table.c.year == year).values(last_value=current + count))
    return int(current) + 1


def _events(
    rng: random.Random, case_id: int, filed: datetime, now: datetime
) -> tuple[str, datetime, list[dict[str, Any]]]:
    """The case's path through the workflow up to `now`: its status, last change, and event rows."""
    status, at = "received", filed
    first = {"case_id": case_id, "actor": "bot", "from_status": None, "to_status": status, "created_at": filed}
    rows: list[dict[str, Any]] = [first]
    for step in _pick(rng, PATHS):
        at = at + _delay(rng, STEP_MEDIAN[step])
        if at >= now:  # this step has not happened yet
            break
        actor = "operator" if step in ("accepted", "assigned") else "citizen" if step == "withdrawn" else "official"
        rows.append({"case_id": case_id, "actor": actor, "from_status": status, "to_status": step, "created_at": at})
        status = step
    last_change: datetime = rows[-1]["created_at"]
    return status, last_change, rows


def generate(engine: Engine, count: int, *, seed: int = 120, now: datetime | None = None) -> int:
    """Inserts `count` cases with their events into a migrated database; returns the number inserted."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    zone = ZoneInfo(get_settings().timezone)
    district_weights = {gu: rng.randint(5, 15) for gu in DISTRICTS}
    dongs: dict[str, list[str | None]] = {gu: [*dongs_of(gu)] or [None] for gu in DISTRICTS}
    cases_table: Table = Case.__table__  # type: ignore[assignment]
    events_table: Table = CaseEvent.__table__  # type: ignore[assignment]
    filed_times = _filing_times(rng, count, now, zone)
    with engine.begin() as connection:
        department_ids = {code: id_ for code, id_ in connection.execute(select(Department.code, Department.id))}
        routes = {key: department_ids[spec.code] for key, spec in route_table().items()}
        next_id = int(connection.execute(select(func.coalesce(func.max(Case.id), 0))).scalar_one()) + 1
        years = Counter(moment.astimezone(zone).year for moment in filed_times)
        numbers = {year: _reserve_numbers(connection, year, n) for year, n in sorted(years.items())}

    due_dates: dict[tuple[str, date], date] = {}
    for start in range(0, count, BATCH):
        case_rows, event_rows = [], []
        for offset, filed in enumerate(filed_times[start : start + BATCH]):
            case_id = next_id + start + offset
            year = filed.astimezone(zone).year
            number, numbers[year] = numbers[year], numbers[year] + 1
            category = _pick(rng, CATEGORY_WEIGHTS)
            district = _pick(rng, district_weights)
            status, updated, events = _events(rng, case_id, filed, now)
            local_day = filed.astimezone(zone).date()
            if (category, local_day) not in due_dates:
                due_dates[category, local_day] = due_date(category, filed)
            latitude = longitude = None
            if rng.random() < COORDINATE_SHARE:
                lat, lon = gu_centres()[district]
                latitude, longitude = lat + rng.uniform(-0.004, 0.004), lon + rng.uniform(-0.004, 0.004)
            dong = rng.choice(dongs[district])
            case_rows.append(
                {
                    "id": case_id,
                    "number": format_case_number(year, number),
                    "category": category,
                    "district": district,
                    "dong": dong,
                    "place": f"{dong or district} {rng.choice(PLACES)}",
                    "description": DESCRIPTIONS[category] + f" (#{rng.randrange(10_000)})",
                    "latitude": latitude,
                    "longitude": longitude,
                    "status": status,
                    "channel": _pick(rng, CHANNEL_WEIGHTS),
                    "language": _pick(rng, LANGUAGE_WEIGHTS),
                    "department_id": routes[category, district],
                    "attachments": [],
                    "due_at": due_dates[category, local_day],
                    "created_at": filed,
                    "updated_at": updated,
                }
            )
            event_rows += events
        with engine.begin() as connection:
            connection.execute(insert(cases_table), case_rows)
            connection.execute(insert(events_table), event_rows)
    _after_bulk_insert(engine)
    return count


def _after_bulk_insert(engine: Engine) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Explicit ids do not move the serial sequences: file_case must not collide with them.
            for table in ("cases", "case_events"):
                connection.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
        # Fresh statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) would keep them.
        connection.execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL") or get_settings().database_url)
    parser.add_argument("--seed", type=int, default=120)
    args = parser.parse_args()
    engine = make_engine(args.url)
    started = time.perf_counter()
    generate(engine, args.count, seed=args.seed)
    engine.dispose()
    print(f"{args.count} cases in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
