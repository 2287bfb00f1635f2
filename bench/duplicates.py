"""The duplicate look-up at intake (civic.duplicates) with 100,000 open cases: p95 ≤ 20 ms, by GPS and by dong + place.

The cases come from bench.generate_cases, then are made the look-up's worst case: every one open, filed in the last
14 days and carrying coordinates (around its gu's centre, ±400 m, so a 100 m circle holds dozens of candidates).
Each look-up is a report of a random case's category at a point near that case, or in its dong with a place
like its own. `python -m bench.duplicates [--cases N] [--only sqlite|postgresql]`.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, select, update

from bench.common import drop_schema, percentiles, postgres_url, write_result
from bench.generate_cases import PLACES, generate, gu_centres
from civic.db import make_engine, make_session_factory, session_scope
from civic.duplicates import WINDOW, find_duplicate
from civic.migrate import upgrade
from civic.models import Case

CASES = 100_000
LOOK_UPS = 500
WARM_UP = 20
TARGET_P95_MS = 20.0
SPREAD_DEGREES = 0.004


def make_all_open(engine: Engine, rng: random.Random, now: datetime) -> None:
    """Every case open, recent and located: the most candidates the look-up can meet."""
    table = Case.__table__
    with engine.begin() as connection:
        rows = connection.execute(select(Case.id, Case.district)).all()
        changes = []
        for case_id, district in rows:
            lat, lon = gu_centres()[district]
            changes.append(
                {
                    "_id": case_id,
                    "status": "in_progress",
                    "created_at": now - WINDOW * rng.random(),
                    "latitude": lat + rng.uniform(-SPREAD_DEGREES, SPREAD_DEGREES),
                    "longitude": lon + rng.uniform(-SPREAD_DEGREES, SPREAD_DEGREES),
                    "place": rng.choice(PLACES),
                }
            )
        statement = update(table).where(table.c.id == bindparam("_id"))  # type: ignore[attr-defined]
        connection.execute(
            statement.values(
                status=bindparam("status"),
                created_at=bindparam("created_at"),
                latitude=bindparam("latitude"),
                longitude=bindparam("longitude"),
                place=bindparam("place"),
            ),
            changes,
        )


def look_up_latency(url: str, count: int, look_ups: int) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    rng = random.Random(17)
    now = datetime.now(UTC)
    started = time.perf_counter()
    generate(engine, count)
    make_all_open(engine, rng, now)
    prepared = time.perf_counter() - started
    factory = make_session_factory(engine)
    results: dict[str, Any] = {}
    with session_scope(factory) as session:
        sample = session.execute(
            select(Case.category, Case.district, Case.dong, Case.place, Case.latitude, Case.longitude)
        ).all()
        reports = [rng.choice(sample) for _ in range(look_ups + WARM_UP)]
        for kind in ("gps", "dong_place"):
            samples, found = [], 0
            for index, report in enumerate(reports):
                near_by = kind == "gps"
                begun = time.perf_counter()
                duplicate = find_duplicate(
                    session,
                    category=report.category,
                    district=report.district,
                    dong=report.dong,
                    place=f"{report.place}이에요",
                    latitude=report.latitude + rng.uniform(-0.0003, 0.0003) if near_by else None,
                    longitude=report.longitude + rng.uniform(-0.0003, 0.0003) if near_by else None,
                    now=now,
                )
                if index >= WARM_UP:
                    samples.append((time.perf_counter() - begun) * 1000)
                    found += duplicate is not None
            results[kind] = percentiles(samples) | {"found_share": round(found / look_ups, 3)}
    engine.dispose()
    return {"cases": count, "prepare_seconds": round(prepared, 1), "ms": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=CASES)
    parser.add_argument("--look-ups", type=int, default=LOOK_UPS)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    result: dict[str, Any] = {"targets": {"look_up_p95_ms": TARGET_P95_MS}}
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as directory:
            result["sqlite"] = look_up_latency(f"sqlite:///{directory}/bench.db", args.cases, args.look_ups)
    if args.only != "sqlite":
        pg_url = postgres_url()
        try:
            result["postgresql"] = look_up_latency(pg_url, args.cases, args.look_ups)
        finally:
            drop_schema(pg_url)
    write_result("duplicates", result)


if __name__ == "__main__":
    main()
