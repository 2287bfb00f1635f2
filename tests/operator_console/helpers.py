"""Console test helpers: users made in the database, and logging in through the real login form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from civic import console_accounts as accounts
from civic.db import session_scope

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
COOKIE = "civic_console"


def new_user(db: sessionmaker[Session], role: str = "operator", department_code: str | None = None) -> str:
    email = f"{role}-{uuid.uuid4().hex[:10]}@seoul.example.kr"
    with session_scope(db) as session:
        accounts.create_user(session, email=email, password=PASSWORD, role=role, department_code=department_code)
    return email


def login_form_token(client: TestClient) -> str:
    page = client.get("/console/login")
    assert page.status_code == 200
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def log_in(client: TestClient, email: str, password: str = PASSWORD, next_path: str = "") -> Any:
    form = {"csrf_token": login_form_token(client), "email": email, "password": password, "next": next_path}
    return client.post("/console/login", data=form, follow_redirects=False)


def api_routes(routes: list[Any], inherited: tuple[Any, ...] = ()) -> Iterator[tuple[APIRoute, tuple[Any, ...]]]:
    """Every APIRoute of an app with all its dependencies, those of the routers it was included through too."""
    # FastAPI keeps included routers as branches (with the include's dependencies): walk them all.
    for route in routes:
        if isinstance(route, APIRoute):
            yield route, inherited + tuple(route.dependencies)
        elif hasattr(route, "original_router"):
            context = tuple(route.include_context.dependencies)
            yield from api_routes(route.original_router.routes, inherited + context)
