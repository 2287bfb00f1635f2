"""Forged and bad input to the web chat, its photos and the poll pages, against the real app."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.webchat.chat import external_id_of
from civic.conversations import get_or_create_conversation
from civic.db import session_scope, utcnow
from civic.models import Conversation, Message
from civic.polls import NewPoll, create_poll
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app
from tests.security.helpers import (
    CANARY,
    ESCAPING_STORED_PATHS,
    ID_SUFFIXES,
    PNG,
    TRAVERSALS,
    asgi_request,
    attachment_stored_at,
    http_scope,
    media_store,
    nothing_written,
)

CHAT_CSRF = re.compile(r'name="csrf-token" content="([0-9a-f]{64})"')
FORM_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
MAX_UPLOAD_BYTES = 100_000


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media_store(tmp_path_factory)


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio("AC" + "4" * 32, "web-security-twilio-token") as fake:
        yield fake


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, rasa: FakeRasa, twilio: FakeTwilioAPI, media_dir: Path) -> Iterator[TestClient]:
    env = {"RASA_URL": rasa.url, "MEDIA_DIR": str(media_dir), "MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES)}
    with running_app(db_url, twilio, **env) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    client.cookies.clear()
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True)
class Chat:
    """One browser's web chat: its cookie and the CSRF token its page carried (sent explicitly, no cookie jar)."""

    chat_id: str
    csrf: str

    def headers(self, csrf: str | None = "own") -> dict[str, str]:
        headers = {"Cookie": f"civic_chat={self.chat_id}"}
        token = self.csrf if csrf == "own" else csrf
        return headers if token is None else headers | {"X-CSRF-Token": token}


def open_chat(client: TestClient) -> Chat:
    client.cookies.clear()
    page = client.get("/chat")
    chat_id = client.cookies["civic_chat"]
    client.cookies.clear()
    match = CHAT_CSRF.search(page.text)
    assert match
    return Chat(chat_id, match.group(1))


def opened_chat(client: TestClient) -> Chat:
    """A chat whose page has loaded and polled once, as a browser does: its conversation exists."""
    chat = open_chat(client)
    assert client.get("/chat/api/messages", headers=chat.headers(None)).status_code == 200
    return chat


def message(text: str = "소화전 앞 불법 주차", **fields: Any) -> dict[str, Any]:
    return {"client_message_id": uuid.uuid4().hex, "text": text, **fields}


def media_files(media_dir: Path) -> set[Path]:
    return {path for path in media_dir.rglob("*") if path.is_file()}


# ---- CSRF -----------------------------------------------------------------------------------------------------------


def post_a_plausible_body(client: TestClient, path: str, headers: dict[str, str]) -> Any:
    """What the chat page would send to `path`: a message, a photo, a phone number or its code."""
    if path == "/chat/api/photos":
        return client.post(path, files={"file": ("p.png", PNG, "image/png")}, headers=headers)
    body = {"phone": "010-2345-6789", "code": "123456"} if path.startswith("/chat/api/phone") else message()
    return client.post(path, json=body, headers=headers)


CHAT_POSTS = ["/chat/api/messages", "/chat/api/photos", "/chat/api/phone", "/chat/api/phone/verify"]
BAD_TOKENS: dict[str, Callable[[TestClient, Chat], str | None]] = {
    "missing": lambda client, chat: None,
    "empty": lambda client, chat: "",
    "wrong": lambda client, chat: "0" * 64,
    "another-chats": lambda client, chat: open_chat(client).csrf,
    "truncated": lambda client, chat: chat.csrf[:-1],
}


@pytest.mark.parametrize("bad_token", list(BAD_TOKENS.values()), ids=list(BAD_TOKENS))
@pytest.mark.parametrize("path", CHAT_POSTS)
def test_chat_post_without_its_csrf_token_is_refused_before_any_write(
    client: TestClient,
    db: sessionmaker[Session],
    twilio: FakeTwilioAPI,
    path: str,
    bad_token: Callable[[TestClient, Chat], str | None],
) -> None:
    chat = open_chat(client)  # never polled: a wrongly accepted post would create its conversation
    token = bad_token(client, chat)
    sms_before = len(twilio.messages)
    with nothing_written(db):
        assert post_a_plausible_body(client, path, chat.headers(token)).status_code == 403
    assert len(twilio.messages) == sms_before


@pytest.mark.parametrize("path", CHAT_POSTS)
def test_chat_post_without_a_cookie_is_refused_before_any_write(
    client: TestClient, db: sessionmaker[Session], path: str
) -> None:
    with nothing_written(db):
        assert post_a_plausible_body(client, path, {"X-CSRF-Token": open_chat(client).csrf}).status_code == 401


# ---- bodies ---------------------------------------------------------------------------------------------------------


def test_a_replayed_client_message_id_is_one_message(
    client: TestClient, db: sessionmaker[Session], rasa: FakeRasa
) -> None:
    chat = opened_chat(client)
    body = message("가로등이 나갔어요")
    answers = [client.post("/chat/api/messages", json=body, headers=chat.headers()) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    external_id = external_id_of(chat.chat_id)
    with session_scope(db) as session:
        conversation = session.execute(select(Conversation).where(Conversation.external_id == external_id)).scalar_one()
        inbound = session.scalar(
            select(func.count()).where(Message.conversation_id == conversation.id, Message.direction == "in")
        )
    assert inbound == 1
    assert len([turn for turn in rasa.turns if turn["sender"] == f"web:{external_id}"]) == 1


MALFORMED_BODIES = {
    "non-utf8-bytes": b'{"client_message_id": "abcdefgh12", "text": "\xff\xfe\xc3\x28"}',
    "latin1-declared-as-json": '{"client_message_id": "abcdefgh12", "text": "caf\xe9"}'.encode("latin-1"),
    "invalid-json": b'{"client_message_id": "abcdefgh12", "text": ',
    "json-array": b'["abcdefgh12", "text"]',
    "json-null": b"null",
    "text-not-a-string": b'{"client_message_id": "abcdefgh12", "text": {"$ne": null}}',
    "nul-in-client-message-id": b'{"client_message_id": "abcd\\u0000efgh", "text": "hi"}',
    "huge-number": b'{"client_message_id": "abcdefgh12", "latitude": 1e400, "longitude": 1}',
    "nan-literal": b'{"client_message_id": "abcdefgh12", "latitude": NaN, "longitude": 1}',
}


@pytest.mark.parametrize("body", list(MALFORMED_BODIES.values()), ids=list(MALFORMED_BODIES))
def test_malformed_chat_message_is_4xx_before_any_write(
    client: TestClient, db: sessionmaker[Session], body: bytes
) -> None:
    chat = open_chat(client)
    headers = chat.headers() | {"Content-Type": "application/json"}
    with nothing_written(db):
        response = client.post("/chat/api/messages", content=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    "path", ["/chat/api/phone", "/chat/api/phone/verify", "/chat/api/photos"], ids=["phone", "verify", "photos"]
)
def test_non_utf8_body_elsewhere_in_the_chat_is_4xx_before_any_write(
    client: TestClient, db: sessionmaker[Session], path: str
) -> None:
    chat = open_chat(client)
    content_type = "multipart/form-data; boundary=xyz" if path.endswith("photos") else "application/json"
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="\xff\xfe"\r\n\r\n\xff\r\n--x'
        if path.endswith("photos")
        else b'{"phone": "\xff\xfe010"}'
    )
    with nothing_written(db):
        response = client.post(path, content=body, headers=chat.headers() | {"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text


def test_nul_and_control_characters_never_reach_the_store_or_rasa(
    client: TestClient, db: sessionmaker[Session], rasa: FakeRasa
) -> None:
    chat = opened_chat(client)
    body = message("불법\x00 주차\x07\x1b[31m \u202e신고\ufeff", payload="/affirm\x00")
    response = client.post("/chat/api/messages", json=body, headers=chat.headers())
    assert response.status_code == 200, response.text
    external_id = external_id_of(chat.chat_id)
    with session_scope(db) as session:
        conversation = session.execute(select(Conversation).where(Conversation.external_id == external_id)).scalar_one()
        [stored] = session.execute(
            select(Message.text).where(Message.conversation_id == conversation.id, Message.direction == "in")
        ).scalars()
    [turn] = [turn for turn in rasa.turns if turn["sender"] == f"web:{external_id}"]
    assert stored == turn["message"] == "불법 주차[31m 신고"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_json_body_is_413_before_any_write(
    client: TestClient, db: sessionmaker[Session], chunked: bool
) -> None:
    chat = open_chat(client)
    body = ('{"client_message_id": "abcdefgh12", "text": "' + "가" * 30_000 + '"}').encode()  # 90 kB > 64 KiB
    content = (body[i : i + 8192] for i in range(0, len(body), 8192)) if chunked else body
    headers = chat.headers() | {"Content-Type": "application/json"}
    with nothing_written(db):
        response = client.post("/chat/api/messages", content=content, headers=headers)
    assert response.status_code == 413, response.text


# ---- uploads --------------------------------------------------------------------------------------------------------


def multipart(content: bytes, filename: str = "p.png", content_type: str = "image/png") -> tuple[bytes, str]:
    boundary = secrets.token_hex(8)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_upload_is_413_before_any_write(
    client: TestClient, db: sessionmaker[Session], media_dir: Path, chunked: bool
) -> None:
    chat = opened_chat(client)
    body, content_type = multipart(PNG + b"\x00" * (MAX_UPLOAD_BYTES + 70 * 1024))  # past the upload slack too
    content = (body[i : i + 16384] for i in range(0, len(body), 16384)) if chunked else body
    files_before = media_files(media_dir)
    with nothing_written(db):
        response = client.post(
            "/chat/api/photos", content=content, headers=chat.headers() | {"Content-Type": content_type}
        )
    assert response.status_code == 413, response.text
    assert media_files(media_dir) == files_before


UNWANTED_FILES = {
    "html-named-png": ("p.png", b"<html><script>alert(1)</script></html>", "image/png"),
    "svg-with-script": (
        "p.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "image/svg+xml",
    ),
    "gif": ("p.gif", b"GIF89a" + b"\x00" * 64, "image/gif"),
    "pdf": ("p.pdf", b"%PDF-1.7\n" + b"\x00" * 64, "application/pdf"),
    "riff-wave-not-webp": ("p.webp", b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 64, "image/webp"),
    "empty": ("p.jpg", b"", "image/jpeg"),
    "png-one-byte-over-the-limit": ("p.png", PNG + b"\x00" * (MAX_UPLOAD_BYTES + 1 - len(PNG)), "image/png"),
    "traversal-in-the-file-name": ("../../secret.php", b"<?php system($_GET[0]); ?>", "image/png"),
}


@pytest.mark.parametrize("upload", list(UNWANTED_FILES.values()), ids=list(UNWANTED_FILES))
def test_a_file_that_is_no_photo_is_415_before_any_write(
    client: TestClient, db: sessionmaker[Session], media_dir: Path, upload: tuple[str, bytes, str]
) -> None:
    chat = opened_chat(client)
    files_before = media_files(media_dir)
    with nothing_written(db):
        response = client.post("/chat/api/photos", files={"file": upload}, headers=chat.headers())
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported_file"
    assert media_files(media_dir) == files_before


def test_a_photo_is_stored_under_its_own_name_whatever_the_client_called_it(
    client: TestClient, media_dir: Path
) -> None:
    chat = opened_chat(client)
    response = client.post(
        "/chat/api/photos", files={"file": ("../../evil.png", PNG, "image/png")}, headers=chat.headers()
    )
    assert response.status_code == 200, response.text
    assert not list(media_dir.parent.rglob("evil*"))
    assert list(media_dir.glob(f"photos/*/{response.json()['attachment_id']}.png"))


# ---- photos by id ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo(client: TestClient) -> tuple[Chat, str]:
    """A chat with one photo of its own."""
    chat = opened_chat(client)
    response = client.post("/chat/api/photos", files={"file": ("p.png", PNG, "image/png")}, headers=chat.headers())
    assert response.status_code == 200
    return chat, response.json()["attachment_id"]


@pytest.mark.parametrize("raw", list(TRAVERSALS.values()), ids=list(TRAVERSALS))
def test_path_traversal_in_a_chat_photo_url_is_404(
    client: TestClient, db: sessionmaker[Session], photo: tuple[Chat, str], raw: bytes
) -> None:
    chat, _ = photo
    cookie = (b"cookie", f"civic_chat={chat.chat_id}".encode())
    with nothing_written(db):
        response = asgi_request(client, http_scope("GET", b"/chat/api/photos/" + raw, [cookie]))
    assert response.status == 404
    assert CANARY not in response.body and b"root:" not in response.body


@pytest.mark.parametrize("suffix", list(ID_SUFFIXES.values()), ids=list(ID_SUFFIXES))
def test_a_real_photo_id_with_anything_after_it_is_404(
    client: TestClient, photo: tuple[Chat, str], suffix: str
) -> None:
    chat, attachment_id = photo
    assert client.get(f"/chat/api/photos/{attachment_id}", headers=chat.headers(None)).status_code == 200
    assert client.get(f"/chat/api/photos/{attachment_id}{suffix}", headers=chat.headers(None)).status_code == 404


def test_another_chats_photo_is_404(client: TestClient, photo: tuple[Chat, str]) -> None:
    _, attachment_id = photo
    stranger = opened_chat(client)
    assert client.get(f"/chat/api/photos/{attachment_id}", headers=stranger.headers(None)).status_code == 404


@pytest.mark.parametrize("stored_path", list(ESCAPING_STORED_PATHS.values()), ids=list(ESCAPING_STORED_PATHS))
def test_a_stored_path_outside_the_media_dir_is_never_served(
    client: TestClient, db: sessionmaker[Session], media_dir: Path, stored_path: str
) -> None:
    """A row whose path leaves the media directory (a bad migration, an edited row) still serves nothing."""
    chat = opened_chat(client)
    with session_scope(db) as session:
        conversation_id = get_or_create_conversation(
            session, channel="web", external_id=external_id_of(chat.chat_id)
        ).id
    attachment_id = attachment_stored_at(db, conversation_id, stored_path.format(root=media_dir))
    response = client.get(f"/chat/api/photos/{attachment_id}", headers=chat.headers(None))
    assert response.status_code == 404
    assert CANARY not in response.content and b"root:" not in response.content


# ---- the public poll pages ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def poll_id(client: TestClient) -> str:
    now = utcnow()
    title = f"보안 점검 {uuid.uuid4().hex[:6]}"
    fields = NewPoll(title=title, options=["찬성", "반대"], opens_at=now, closes_at=now + timedelta(days=1))
    with session_scope(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        poll, _ = create_poll(session, fields, kind="policy", created_by="test")
        return poll.public_id


@pytest.mark.parametrize("token", [None, "", "0" * 64], ids=["missing", "empty", "wrong"])
@pytest.mark.parametrize("action", ["code", "vote"])
def test_poll_form_without_its_csrf_token_is_refused_before_any_write(
    client: TestClient, db: sessionmaker[Session], poll_id: str, action: str, token: str | None
) -> None:
    page = client.get(f"/polls/{poll_id}")
    assert FORM_CSRF.search(page.text)
    form = {"phone": "010-2345-6789", "option": "1", "code": "123456"} | (
        {} if token is None else {"csrf_token": token}
    )
    with nothing_written(db):
        assert client.post(f"/polls/{poll_id}/{action}", data=form).status_code == 403
