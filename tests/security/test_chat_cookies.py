"""The web chat's conversation cookie is issued and signed by the server: a forged one never opens a conversation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from bot.channels.webchat.chat import COOKIE, external_id_of, issued_by_us
from telephony.local_twilio import local_twilio
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app

CSRF_META = re.compile(r'name="csrf-token" content="([0-9a-f]{64})"')


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, rasa: FakeRasa) -> Iterator[TestClient]:
    with (
        local_twilio("AC" + "6" * 32, "cookie-test-twilio-token") as twilio,
        running_app(db_url, twilio, RASA_URL=rasa.url) as test_client,
    ):
        yield test_client


def open_chat(client: TestClient, cookie: str | None = None) -> tuple[str, str]:
    """Opens /chat (with `cookie` if given); the cookie the page leaves in the browser and its CSRF token."""
    client.cookies.clear()
    page = client.get("/chat", headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    match = CSRF_META.search(page.text)
    assert page.status_code == 200 and match
    issued = page.cookies.get(COOKIE) or cookie
    client.cookies.clear()
    assert issued is not None
    return issued, match.group(1)


def say(client: TestClient, cookie: str, csrf: str, text: str) -> int:
    body = {"client_message_id": uuid.uuid4().hex, "text": text}
    headers = {"Cookie": f"{COOKIE}={cookie}", "X-CSRF-Token": csrf}
    return client.post("/chat/api/messages", json=body, headers=headers).status_code


def transcript(client: TestClient, cookie: str) -> list[str]:
    response = client.get("/chat/api/messages", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert response.status_code == 200
    return [m["text"] for m in response.json()["messages"]]


def test_the_server_issues_a_signed_cookie_and_keeps_it(client: TestClient) -> None:
    cookie, csrf = open_chat(client)
    chat_id, _, mac = cookie.rpartition(".")
    assert issued_by_us(cookie) and len(chat_id) >= 32 and len(mac) == 32
    assert say(client, cookie, csrf, "안녕하세요 쿠키 시험") == 200
    again, _ = open_chat(client, cookie)
    assert again == cookie and "안녕하세요 쿠키 시험" in transcript(client, cookie)


@pytest.mark.parametrize("forge", ["unsigned", "wrong-mac", "other-id", "too-long"])
def test_a_forged_cookie_gets_a_fresh_conversation_never_someone_elses(client: TestClient, forge: str) -> None:
    victim, csrf = open_chat(client)
    assert say(client, victim, csrf, "피해자의 비밀 신고 내용") == 200
    chat_id, _, mac = victim.rpartition(".")
    forged = {
        "unsigned": chat_id,  # the id alone, as cookies were before signing
        "wrong-mac": f"{chat_id}.{'0' * 32}",
        "other-id": f"{chat_id[:-1]}{'A' if chat_id[-1] != 'A' else 'B'}.{mac}",
        "too-long": f"{chat_id * 4}.{mac}",
    }[forge]
    assert not issued_by_us(forged)
    # The API refuses it outright...
    assert client.get("/chat/api/messages", headers={"Cookie": f"{COOKIE}={forged}"}).status_code == 401
    assert say(client, forged, csrf, "hello") == 401
    # ...and the page replaces it by a new conversation of its own.
    fresh, fresh_csrf = open_chat(client, forged)
    assert fresh not in (forged, victim) and issued_by_us(fresh)
    assert external_id_of(fresh) != external_id_of(victim)
    assert "피해자의 비밀 신고 내용" not in transcript(client, fresh)
    assert say(client, fresh, fresh_csrf, "새 대화") == 200
