"""Console reads with 100,000 cases in the store, on SQLite and PostgreSQL: queue, dashboard, search, case, pages.

Each figure is the latency of one call of the civic function in its own transaction, as a console request
makes it; then the same pages through the real app (TestClient, logged in), which adds templates and HTTP.
Target (issue 5): p95 ≤ 200 ms each. `python -m bench.console [--cases N] [--only sqlite|postgresql]`.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, joinedload, selectinload, sessionmaker

from bench.common import drop_schema, percentiles, postgres_url, write_result
from bench.generate_cases import generate
from civic import console_accounts as accounts
from civic import db as civic_db
from civic.case_search import CaseFilter, search_cases
from civic.console_queue import waiting
from civic.console_stats import dashboard_stats
from civic.db import make_engine, make_session_factory, session_scope
from civic.migrate import upgrade
from civic.models import Case, Department
from civic.settings import get_settings

CASES = 100_000
REPEATS = 30
WARM_UP = 3
TARGET_P95_MS = 200.0
PASSWORD = "bench console password"
# Indexes asked of the schema's owner (a migration adds them); measured here on a copy of the schema.
PROPOSED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_case_events_to_status_created ON case_events (to_status, created_at, case_id)",
    "CREATE INDEX IF NOT EXISTS ix_cases_status_due ON cases (status, due_at)",
)
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def timed(work: Callable[[], object], repeats: int = REPEATS) -> dict[str, float]:
    for _ in range(WARM_UP):
        work()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def load_case(session: Session, number: str) -> Case:
    """The case view's core read: the case, its department and its events (transcript and map aside)."""
    query = select(Case).options(joinedload(Case.department), selectinload(Case.events)).where(Case.number == number)
    case = session.execute(query).scalar_one()
    assert case.events  # loaded, not lazily fetched later
    return case


def civic_reads(factory: sessionmaker[Session]) -> dict[str, dict[str, float]]:
    rng = random.Random(5)
    with session_scope(factory) as session:
        numbers = list(session.execute(select(Case.number).order_by(Case.id.desc()).limit(5000)).scalars())
        busiest = session.execute(
            select(Case.department_id).group_by(Case.department_id).order_by(func.count().desc()).limit(1)
        ).scalar_one()

    def run(work: Callable[[Session], object]) -> Callable[[], object]:
        def once() -> object:
            with session_scope(factory) as session:
                return work(session)

        return once

    queries: dict[str, Callable[[Session], object]] = {
        "queue": waiting,
        "dashboard_city": dashboard_stats,
        "dashboard_department": lambda s: dashboard_stats(s, department_id=busiest),
        # The medians are reused for a minute; these show a dashboard that has to compute them.
        "dashboard_city_uncached": lambda s: dashboard_stats(s, cached=False),
        "dashboard_department_uncached": lambda s: dashboard_stats(s, department_id=busiest, cached=False),
        "search_newest": lambda s: search_cases(s, CaseFilter()),
        "search_number": lambda s: search_cases(s, CaseFilter(q=rng.choice(numbers))),
        "search_common_word": lambda s: search_cases(s, CaseFilter(q="소음")),
        "search_no_match": lambda s: search_cases(s, CaseFilter(q="없는말")),  # the worst case: every row read
        "search_filters": lambda s: search_cases(s, CaseFilter(district="마포구", status="in_progress")),
        "search_department_page_5": lambda s: search_cases(s, CaseFilter(), department_id=busiest, page=5),
        "search_overdue": lambda s: search_cases(s, CaseFilter(overdue=True)),
        "case_with_events": lambda s: load_case(s, rng.choice(numbers)),
    }
    return {name: timed(run(work)) for name, work in queries.items()}


@contextmanager
def app_client(url: str) -> Iterator[TestClient]:
    """The real web app on `url`, in this process (settings and the shared session factory restored after)."""
    from webapp.main import create_app

    env = {"DATABASE_URL": url, "ENVIRONMENT": "test", "TELEGRAM_BOT_TOKEN": "", "ASR_PRELOAD": "false"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    get_settings.cache_clear()
    civic_db._factory = None
    try:
        with TestClient(create_app()) as client:
            yield client
    finally:
        if civic_db._factory is not None:
            civic_db._factory.kw["bind"].dispose()
        civic_db._factory = None
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def log_in(client: TestClient, factory: sessionmaker[Session], role: str, department: str | None = None) -> None:
    email = f"bench-{role}-{random.randrange(10**9)}@seoul.example.kr"
    with session_scope(factory) as session:
        accounts.create_user(session, email=email, password=PASSWORD, role=role, department_code=department)
    client.cookies.clear()
    match = CSRF.search(client.get("/console/login").text)
    assert match, "no CSRF token on the login page"
    form = {"csrf_token": match.group(1), "email": email, "password": PASSWORD, "next": ""}
    assert client.post("/console/login", data=form, follow_redirects=False).status_code == 303


def http_reads(url: str, factory: sessionmaker[Session]) -> dict[str, dict[str, Any]]:
    with session_scope(factory) as session:
        number = session.execute(select(Case.number).order_by(Case.id.desc()).limit(1)).scalar_one()
        department = session.execute(
            select(Department.code).join(Case, Case.department_id == Department.id).limit(1)
        ).scalar_one()
    results: dict[str, dict[str, Any]] = {}
    with app_client(url) as client:

        def page(name: str, path: str, **params: str) -> None:
            # Pages of the parallel case work may not exist yet: reported, not fatal.
            try:
                results[name] = timed(get(path, **params))
            except AssertionError as error:
                results[name] = {"error": str(error)}

        def get(path: str, **params: str) -> Callable[[], object]:
            def once() -> object:
                response = client.get(path, params=params)
                assert response.status_code == 200, (path, response.status_code)
                return response

            return once

        log_in(client, factory, "operator")
        page("http_queue", "/console/api/queue")
        page("http_dashboard_page", "/console/dashboard")
        page("http_search_page", "/console/search", district="마포구")
        page("http_csv_first_chunks", "/console/search.csv", district="마포구", status="in_progress")
        page("http_case_page", f"/console/cases/{number}")
        log_in(client, factory, "official", department)
        page("http_dashboard_official", "/console/dashboard")
        page("http_inbox_official", "/console/inbox")
    return results


def measure(url: str, count: int) -> dict[str, Any]:
    upgrade(url)
    engine: Engine = make_engine(url)
    started = time.perf_counter()
    generate(engine, count)
    generated = time.perf_counter() - started
    factory = make_session_factory(engine)
    try:
        reads: dict[str, dict[str, Any]] = {**civic_reads(factory), **http_reads(url, factory)}
        with engine.begin() as connection:
            for statement in PROPOSED_INDEXES:
                connection.execute(text(statement))
            connection.execute(text("ANALYZE"))
        indexed = civic_reads(factory)
    finally:
        engine.dispose()
    return {
        "cases": count,
        "generate_seconds": round(generated, 1),
        "ms": reads,
        "over_target": over_target(reads),
        "ms_with_proposed_indexes": indexed,
        "over_target_with_proposed_indexes": over_target(indexed),
        "proposed_indexes": list(PROPOSED_INDEXES),
    }


def over_target(reads: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(name for name, figures in reads.items() if figures.get("p95", 0) > TARGET_P95_MS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=CASES)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    result: dict[str, Any] = {"target_p95_ms": TARGET_P95_MS, "repeats": REPEATS}
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as directory:
            result["sqlite"] = measure(f"sqlite:///{directory}/bench.db", args.cases)
    if args.only != "sqlite":
        pg_url = postgres_url()
        try:
            result["postgresql"] = measure(pg_url, args.cases)
        finally:
            drop_schema(pg_url)
    write_result("console", result)


if __name__ == "__main__":
    main()
