"""Every page and media response carries the security headers; the API docs exist only in development."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from telephony.local_twilio import FakeTwilioAPI, local_twilio
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app
from tests.security.helpers import PNG, media_store

CHAT_CSRF = re.compile(r'name="csrf-token" content="([0-9a-f]{64})"')
REQUIRED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio("AC" + "7" * 32, "headers-test-twilio-token") as fake:
        yield fake


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media_store(tmp_path_factory)


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, rasa: FakeRasa, twilio: FakeTwilioAPI, media_dir: Path) -> Iterator[TestClient]:
    with running_app(db_url, twilio, RASA_URL=rasa.url, MEDIA_DIR=str(media_dir)) as test_client:
        yield test_client


def assert_protected(response_headers: dict[str, str], what: str) -> None:
    headers = {name.lower(): value for name, value in response_headers.items()}
    for name, value in REQUIRED.items():
        assert headers.get(name) == value, (what, name, headers.get(name))
    policy = headers.get("content-security-policy", "")
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives.get("frame-ancestors") == "'none'", (what, policy)
    # No inline code: neither script-src nor its fallback default-src may allow 'unsafe-inline' or foreign hosts.
    scripts = directives.get("script-src") or directives.get("default-src", "")
    assert scripts == "'self'", (what, policy)


@pytest.mark.parametrize("path", ["/", "/chat", "/polls", "/static/home.css", "/chat/static/chat.js", "/health"])
def test_pages_and_files_carry_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, path
    assert_protected(dict(response.headers), path)


def test_errors_and_json_carry_them_too(client: TestClient) -> None:
    for path in ("/no-such-page", "/chat/api/messages"):
        assert_protected(dict(client.get(path).headers), path)


def test_a_citizens_photo_is_served_with_them(client: TestClient) -> None:
    page = client.get("/chat")
    match = CHAT_CSRF.search(page.text)
    assert match, "the chat page must carry its CSRF token"
    upload = client.post(
        "/chat/api/photos",
        files={"file": ("p.png", io.BytesIO(PNG), "image/png")},
        headers={"X-CSRF-Token": match.group(1)},
    )
    assert upload.status_code == 200, upload.text
    photo = client.get(f"/chat/api/photos/{upload.json()['attachment_id']}")
    assert photo.status_code == 200 and photo.content == PNG
    assert_protected(dict(photo.headers), "photo")


def test_no_page_carries_inline_script_or_style(client: TestClient) -> None:
    """The policy forbids inline code, so a page that relied on it would break: none does."""
    for path in ("/", "/chat", "/polls"):
        html = client.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path


def test_the_api_docs_are_not_served_outside_development(client: TestClient) -> None:
    for path in ("/api/docs", "/openapi.json"):
        assert client.get(path).status_code == 404, path


def test_the_api_docs_are_served_in_development(db_url: str, engine: Engine, twilio: FakeTwilioAPI) -> None:
    with running_app(db_url, twilio, ENVIRONMENT="development") as development:
        assert development.get("/api/docs").status_code == 200
        assert "/chat/api/messages" in development.get("/openapi.json").json()["paths"]
