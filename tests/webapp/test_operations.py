"""/health, /ready (starting, ready, draining, a dependency down), and what a real chat turn counts and logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import uuid
from collections.abc import Iterator
from types import FrameType

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.channels.webchat.chat import COOKIE, external_id_of
from bot.json_logs import JsonFormatter
from telephony.local_twilio import local_twilio, serve_in_thread
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app
from webapp.health import Readiness, action_server_health_url, drain_on_sigterm

CSRF_META = re.compile(r'name="csrf-token" content="([0-9a-f]{64})"')
PHONE = "010-2345-6789"
SECRET_WORDS = "우리집 앞 소화전을 트럭이 막고 있어요"


@pytest.fixture(scope="module")
def action_server() -> Iterator[str]:
    """Stands for the action server: only its open /health matters to /ready."""
    app = Starlette(routes=[Route("/health", lambda request: PlainTextResponse("ok"))])
    with serve_in_thread(app) as url:
        yield f"{url}/webhook"


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, rasa: FakeRasa, action_server: str) -> Iterator[TestClient]:
    with (
        local_twilio("AC" + "7" * 32, "operations-test-twilio-token") as twilio,
        running_app(db_url, twilio, RASA_URL=rasa.url, ACTION_SERVER_URL=action_server) as test_client,
    ):
        yield test_client


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything logged meanwhile, formatted as the running app formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def test_health_says_the_process_is_alive(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_checks_the_database_rasa_and_the_actions(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": True, "rasa": True, "actions": True}}


def test_a_starting_or_draining_worker_is_not_ready(client: TestClient) -> None:
    readiness: Readiness = client.app.state.readiness  # type: ignore[attr-defined]
    for state in ("starting", "draining"):
        readiness.state = state  # type: ignore[assignment]
        try:
            response = client.get("/ready")
        finally:
            readiness.state = "ready"
        assert response.status_code == 503 and response.json() == {"status": state}
    assert client.get("/health").status_code == 200  # alive all the same
    draining = Readiness(state="draining")
    draining.mark_ready()  # the speech models finishing late must not bring a stopping worker back
    assert draining.state == "draining"


def test_not_ready_while_rasa_or_the_action_server_is_down(db_url: str, engine: Engine) -> None:
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    with (
        local_twilio("AC" + "8" * 32, "operations-test-twilio-token") as twilio,
        running_app(db_url, twilio, RASA_URL=closed, ACTION_SERVER_URL=f"{closed}/webhook") as down,
    ):
        errors = REGISTRY.get_sample_value("civic_http_requests_total", {"code": "5xx"})
        response = down.get("/ready")
    assert response.status_code == 503
    # A designed answer to the balancer, not a server error: the error-rate alert must not count it.
    assert REGISTRY.get_sample_value("civic_http_requests_total", {"code": "5xx"}) == errors
    assert response.json() == {"status": "unavailable", "checks": {"database": True, "rasa": False, "actions": False}}


def test_the_action_servers_health_is_beside_its_webhook() -> None:
    assert action_server_health_url("http://127.0.0.1:5055/webhook") == "http://127.0.0.1:5055/health"
    assert action_server_health_url("http://actions:5055/webhook/") == "http://actions:5055/health"


async def test_sigterm_marks_the_worker_draining_before_uvicorn_hears_it() -> None:
    heard: list[int] = []

    def uvicorn_handler(signum: int, frame: FrameType | None) -> None:
        heard.append(signum)

    previous = signal.signal(signal.SIGTERM, uvicorn_handler)
    readiness = Readiness(state="ready")
    try:
        with drain_on_sigterm(readiness, delay=0.2):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
            assert readiness.state == "draining" and heard == []  # the balancer sees 503 first
            await asyncio.sleep(0.4)
            assert heard == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is uvicorn_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def say(client: TestClient, text: str) -> str:
    """Opens a web chat and sends `text` as its first message; the chat's cookie."""
    client.cookies.clear()
    page = client.get("/chat")
    cookie, csrf = page.cookies[COOKIE], CSRF_META.search(page.text).group(1)  # type: ignore[union-attr]
    client.cookies.clear()
    body = {"client_message_id": uuid.uuid4().hex, "text": text}
    headers = {"Cookie": f"{COOKIE}={cookie}", "X-CSRF-Token": csrf}
    assert client.post("/chat/api/messages", json=body, headers=headers).status_code == 200
    return cookie


def rasa_requests() -> float:
    """Requests to Rasa so far, all replicas together."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "civic_rasa_requests"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def test_a_chat_turn_is_timed_and_counted(client: TestClient) -> None:
    labels = {"channel": "web", "outcome": "answered"}
    turns = REGISTRY.get_sample_value("civic_turn_seconds_count", labels) or 0
    answered = REGISTRY.get_sample_value("civic_http_requests_total", {"code": "2xx"}) or 0
    before = rasa_requests()
    say(client, "안녕하세요")
    assert REGISTRY.get_sample_value("civic_turn_seconds_count", labels) == turns + 1
    assert REGISTRY.get_sample_value("civic_http_requests_total", {"code": "2xx"}) == answered + 2  # page, message
    assert rasa_requests() == before + 1


def test_a_chat_turn_logs_json_lines_without_the_words_or_the_phone(
    client: TestClient, rasa: FakeRasa, log_lines: io.StringIO
) -> None:
    cookie = say(client, f"{SECRET_WORDS}, 제 번호는 {PHONE}")

    output = log_lines.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    turns = [line for line in lines if line["message"] == "turn"]
    requests = [line for line in lines if line["message"] == "request" and line["route"] == "/chat/api/messages"]
    assert len(turns) == 1 and len(requests) == 1
    turn, request = turns[0], requests[0]
    assert turn["channel"] == "web" and turn["outcome"] == "answered" and turn["error"] is None
    assert re.fullmatch(r"[0-9a-f]{16}", turn["conversation"])
    assert isinstance(turn["latency_ms"], float) and turn["latency_ms"] >= 0
    assert {"time", "level", "logger"} <= turn.keys()
    assert request["method"] == "POST" and request["status"] == 200 and request["latency_ms"] >= 0
    # Nothing that identifies the citizen or tells what they said: not the words, the phone, the ids.
    chat_id = cookie.rpartition(".")[0]
    for secret in (SECRET_WORDS, "소화전", PHONE, PHONE.replace("-", ""), chat_id, external_id_of(chat_id)):
        assert secret not in output
    assert rasa.turns[-1]["message"].startswith(SECRET_WORDS)  # the words did reach Rasa
