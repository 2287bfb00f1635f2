"""Schemathesis over the app's own OpenAPI, in process: no operation answers any generated request with a 5xx."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
import schemathesis
import urllib3
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from civic.db import session_scope, utcnow
from civic.polls import NewPoll, create_poll
from civic.settings import get_settings
from civic.votes import VoteRequest, cast_votes
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import new_phone, running_app

CSRF = re.compile(r'name="csrf-token" content="([0-9a-f]{64})"')
BASE_URL = "http://testserver"
EXAMPLES_PER_OPERATION = 25
# The console's operations are fuzzed anonymously (a logged-in fuzz would rewrite the shared test database's
# routing and users under other tests); its auth refuses each request before the handler reads it.
EXAMPLES_PER_CONSOLE_OPERATION = 10
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# Only generation settings here, so a schemathesis.toml lying around cannot change what this test does.
CONFIG = schemathesis.Config.from_dict({})


@dataclass(frozen=True)
class Known:
    """Real values for the generated requests to use half of the time, so they reach past lookups and auth."""

    chat_cookie: str
    csrf_token: str
    attachment_id: str
    poll_id: str
    receipt: str


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio("AC" + "9" * 32, "fuzz-test-twilio-token") as fake:
        yield fake


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, twilio: FakeTwilioAPI, rasa: FakeRasa) -> Iterator[TestClient]:
    """The real app on the migrated test database (`engine` migrates it), SMS to the fake Twilio."""
    with running_app(db_url, twilio, RASA_URL=rasa.url) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def known(client: TestClient) -> Known:
    """A web chat with a photo, and a poll with two ballots in its log."""
    page = client.get("/chat")
    chat_cookie = client.cookies["civic_chat"]
    match = CSRF.search(page.text)
    assert match, "the chat page must carry its CSRF token"
    headers = {"X-CSRF-Token": match.group(1)}
    photo = client.post("/chat/api/photos", files={"file": ("p.png", io.BytesIO(PNG), "image/png")}, headers=headers)
    assert photo.status_code == 200, photo.text
    client.cookies.clear()
    factory: sessionmaker[Session] = client.app.state.session_factory  # type: ignore[attr-defined]
    now = utcnow()
    with session_scope(factory) as session:
        new = NewPoll(
            title="fuzz", options=["yes", "no"], opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(hours=1)
        )
        poll, _ = create_poll(session, new, kind="policy", created_by="fuzz")
        outcomes = cast_votes(
            session, poll.id, [VoteRequest(new_phone(), 1, "web"), VoteRequest(new_phone(), 2, "web")]
        )
        receipt = outcomes[0].receipt
        assert receipt is not None
    return Known(chat_cookie, match.group(1), photo.json()["attachment_id"], poll.public_id, receipt.receipt_id)


class _ThroughTestClient(requests.adapters.HTTPAdapter):
    """A requests adapter that hands each request to the app's TestClient, whose lifespan is already running.

    Schemathesis speaks requests; the TestClient speaks httpx and runs the app on the loop of its lifespan
    (outbox worker, ballot box), which a second ASGI client could not share.
    """

    def __init__(self, client: TestClient) -> None:
        super().__init__()
        self.client = client

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        answer = self.client.request(
            request.method or "GET",
            str(request.url),
            content=body,
            headers=dict(request.headers),
            follow_redirects=False,  # a redirect is the answer under test (the console sends strangers to log in)
        )
        self.client.cookies.clear()  # what a response sets must not authenticate the next generated request
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(answer.content),
            headers=list(answer.headers.multi_items()),
            status=answer.status_code,
            reason=answer.reason_phrase,
            version=11,
            preload_content=False,
        )
        return self.build_response(request, raw)


@pytest.fixture(scope="module")
def http(client: TestClient) -> Iterator[requests.Session]:
    session = requests.Session()
    session.mount(BASE_URL + "/", _ThroughTestClient(client))
    yield session
    session.close()


@pytest.fixture(scope="module")
def api_schema(client: TestClient) -> BaseSchema:
    return schemathesis.openapi.from_dict(client.app.openapi(), config=CONFIG)  # type: ignore[attr-defined]


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the app's schema, read at collection for one test each."""
    from webapp.main import create_app

    try:
        paths = create_app().openapi()["paths"]
    finally:
        get_settings.cache_clear()  # create_app read the settings; the tests' apps read them afresh
    return [(method.upper(), path) for path, operations in paths.items() for method in operations]


def fixed_values(operation: APIOperation, known: Known) -> dict[str, dict[str, str]]:
    """The real chat cookie, CSRF token and ids, for the parameters this operation takes."""
    names = {parameter.location: set() for parameter in operation.iter_parameters()}
    for parameter in operation.iter_parameters():
        names[parameter.location].add(parameter.name.lower())
    values: dict[str, dict[str, str]] = {}
    if "civic_chat" in names.get("cookie", set()):
        values["cookies"] = {"civic_chat": known.chat_cookie}
    if "x-csrf-token" in names.get("header", set()):
        values["headers"] = {"x-csrf-token": known.csrf_token}
    path = {name: value for name, value in (("public_id", known.poll_id), ("attachment_id", known.attachment_id))}
    if fixed := {name: value for name, value in path.items() if name in names.get("path", set())}:
        values["path_parameters"] = fixed
    if "receipt" in names.get("query", set()):
        values["query"] = {"receipt": known.receipt}
    return values


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda value: str(value))
def test_no_operation_answers_with_a_server_error(
    method: str,
    path: str,
    api_schema: BaseSchema,
    known: Known,
    http: requests.Session,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    operation = api_schema[path][method]
    # Valid and invalid requests from the schema alone, and valid ones that carry the chat's real cookie and
    # CSRF token and real ids: without those the chat endpoints would answer nothing but 401 and 403.
    generated = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    ).map(lambda case: (case, False))
    fixed = fixed_values(operation, known)
    with_known = operation.as_strategy(GenerationMode.POSITIVE, **fixed).map(lambda case: (case, True))
    cases = st.one_of(with_known, generated) if fixed else generated
    # One client address sends every request: its budgets must not turn the chat and code endpoints into 429s.
    for name in ("sms_codes_per_address_per_hour", "chat_messages_per_address_per_minute"):
        monkeypatch.setattr(get_settings(), name, 10**6)
    refused_with_known: list[int] = []
    sent_with_known = 0

    @given(tagged=cases)
    @settings(
        max_examples=EXAMPLES_PER_CONSOLE_OPERATION if path.startswith("/console") else EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def no_server_error(tagged: tuple[Case, bool]) -> None:
        nonlocal sent_with_known
        case, uses_known = tagged
        response = case.call(base_url=BASE_URL, session=http)
        case.validate_response(response, checks=[not_a_server_error])
        if uses_known:
            sent_with_known += 1
            if response.status_code in (401, 403):
                refused_with_known.append(response.status_code)

    no_server_error()
    if "cookies" in fixed:
        # The chat's endpoints were fuzzed past their cookie (and CSRF) checks, not only refused by them.
        assert sent_with_known and not refused_with_known, (sent_with_known, refused_with_known)
