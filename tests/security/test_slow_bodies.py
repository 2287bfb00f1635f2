"""Slow-loris bodies: a body that stops arriving is answered 408 and the connection closed, before any write."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Message, Receive

from civic.cases import file_case
from civic.db import session_scope
from telephony.local_twilio import local_twilio, serve_in_thread
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app
from tests.operator_console.helpers import log_in, new_user
from tests.security.helpers import asgi_request, http_scope, nothing_written
from webapp.body_limits import BodyReadTimeout

TIMEOUT = 0.5


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, rasa: FakeRasa) -> Iterator[TestClient]:
    env = {"RASA_URL": rasa.url, "REQUEST_BODY_TIMEOUT_SECONDS": str(TIMEOUT)}
    with (
        local_twilio("AC" + "1" * 32, "slow-security-twilio-token") as twilio,
        running_app(db_url, twilio, **env) as test_client,
    ):
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    client.cookies.clear()
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


def chat_headers(client: TestClient) -> list[tuple[bytes, bytes]]:
    client.cookies.clear()
    page = client.get("/chat")
    cookie, csrf = page.cookies["civic_chat"], page.text.split('name="csrf-token" content="', 1)[1][:64]
    client.cookies.clear()
    return [(b"cookie", f"civic_chat={cookie}".encode()), (b"x-csrf-token", csrf.encode())]


FORM = b"application/x-www-form-urlencoded"
MULTIPART_HEAD = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\n'
# Each route reads its body (after checks that need only the headers), so each would wait on a stalled client;
# the pieces are a well-formed start of such a body, so only the stall can be what refuses it.
SLOW_ROUTES: dict[str, tuple[str, bytes, tuple[bytes, ...]]] = {
    "chat-message": ("/chat/api/messages", b"application/json", (b'{"client_message_id": "', b"abc")),
    "chat-photo": (
        "/chat/api/photos",
        b"multipart/form-data; boundary=xyz",
        (MULTIPART_HEAD, b"Content-Type: image/png\r\n\r\n\x89PNG"),
    ),
    "twilio-webhook": ("/telephony/voice", FORM, (b"CallSid=CA", b"0123")),
    "console-login": ("/console/login", FORM, (b"csrf_token=", b"0123")),
    "poll-code": ("/polls/no-such-poll/code", FORM, (b"csrf_token=", b"0123")),
}


def stalling(*pieces: bytes) -> Receive:
    """A client that sends `pieces` of its body, always promising more, and then nothing ever again."""
    waiting = list(pieces)

    async def receive() -> Message:
        if waiting:
            return {"type": "http.request", "body": waiting.pop(0), "more_body": True}
        await asyncio.Event().wait()  # never set: the client has gone quiet
        raise AssertionError("a stalled client never sends")

    return receive


@pytest.mark.parametrize("stalls", ["before-the-body", "mid-body"])
@pytest.mark.parametrize("route", list(SLOW_ROUTES.values()), ids=list(SLOW_ROUTES))
def test_a_stalled_body_is_408_with_the_connection_closed_before_any_write(
    client: TestClient, db: sessionmaker[Session], route: tuple[str, bytes, tuple[bytes, ...]], stalls: str
) -> None:
    path, content_type, start = route
    pieces = start if stalls == "mid-body" else ()
    headers = [
        *chat_headers(client),
        (b"content-type", content_type),
        (b"content-length", b"4096"),
        (b"x-twilio-signature", b"c2lnbmVkLWJ5LW5vYm9keQ=="),
    ]
    started = time.monotonic()
    with nothing_written(db):
        response = asgi_request(client, http_scope("POST", path.encode(), headers), stalling(*pieces))
    elapsed = time.monotonic() - started
    assert response.status == 408, response.body
    assert response.headers.get(b"connection") == b"close"
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 2.0


def test_a_body_whose_pieces_each_come_in_time_is_read(client: TestClient, rasa: FakeRasa) -> None:
    body = json.dumps({"client_message_id": uuid.uuid4().hex, "text": "천천히 보내는 신고"}).encode()
    pieces = [body[i : i + 8] for i in range(0, len(body), 8)]  # longer in all than the timeout, each gap shorter

    async def receive() -> Message:
        await asyncio.sleep(TIMEOUT / 5)
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    headers = [*chat_headers(client), (b"content-type", b"application/json")]
    response = asgi_request(client, http_scope("POST", b"/chat/api/messages", headers), receive)
    assert response.status == 200, response.body
    assert json.loads(response.body)["replies"][0]["text"] == "echo: 천천히 보내는 신고"


def test_an_event_stream_outlives_the_body_timeout(client: TestClient, db: sessionmaker[Session]) -> None:
    """After the body, `receive` only waits for the client to leave: no clock may run on it."""
    assert log_in(client, new_user(db, "operator")).status_code == 303
    with client.stream("GET", "/console/api/queue/events") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: queue"
        time.sleep(TIMEOUT * 3)
        with session_scope(db) as session:
            number = file_case(
                session, category="noise", district="마포구", place="합정역", description="늦은 밤 소음", channel="web"
            ).number
        deadline = time.monotonic() + 10
        while number not in next(lines):
            assert time.monotonic() < deadline, "the stream stopped pushing the queue"


# ---- over a real socket ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def socket_server() -> Iterator[tuple[str, int]]:
    """uvicorn on a loopback port serving a route that reads its body, behind BodyReadTimeout."""
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return {"bytes": len(await request.body())}

    with serve_in_thread(BodyReadTimeout(app, seconds=TIMEOUT)) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def send_slowly(server: tuple[str, int], pieces: list[bytes], gap: float) -> tuple[bytes, bool]:
    """Sends the headers with the first piece, then the others `gap` seconds apart; returns the answer and
    whether the server closed the connection."""
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20\r\n"
    with socket.create_connection(server, timeout=TIMEOUT + 5) as connection:
        connection.sendall(head + b"Connection: close\r\n\r\n" + (pieces[0] if pieces else b""))
        received = b""
        for piece in pieces[1:]:
            time.sleep(gap)
            try:
                connection.sendall(piece)
            except OSError:
                break  # the server has already closed: what it answered is in the socket
        while True:
            try:
                chunk = connection.recv(4096)
            except TimeoutError:
                return received, False
            if not chunk:
                return received, True
            received += chunk


def test_over_a_socket_a_client_dribbling_slower_than_the_timeout_is_cut_off(socket_server: tuple[str, int]) -> None:
    started = time.monotonic()
    answer, closed = send_slowly(socket_server, [b'{"a": "', b"x" * 4, b'"}' + b" " * 10], gap=TIMEOUT * 2)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert closed
    assert time.monotonic() - started < TIMEOUT * 6


def test_over_a_socket_a_client_sending_each_piece_in_time_is_served(socket_server: tuple[str, int]) -> None:
    answer, closed = send_slowly(socket_server, [b"x" * 4] * 5, gap=TIMEOUT / 4)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert answer.endswith(b'{"bytes":20}') and closed


def test_over_a_socket_headers_then_silence_is_cut_off(socket_server: tuple[str, int]) -> None:
    answer, closed = send_slowly(socket_server, [], gap=0)
    assert answer.startswith(b"HTTP/1.1 408") and closed
