"""Citizens' HTML and formulas shown to staff: escaped on every console page and JSON, defused in the CSV export."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import Engine, delete, func, select

from civic.cases import file_case
from civic.conversations import get_or_create_conversation, record_message
from civic.db import session_scope
from civic.models import OutboxMessage, ReportDraft
from civic.phone_calls import keep_draft
from operator_console.routes import STATIC_DIR as CONSOLE_STATIC
from telephony.local_twilio import local_twilio
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app
from tests.operator_console.helpers import COOKIE, log_in, new_user

CHAT_STATIC = Path(__file__).resolve().parents[2] / "bot" / "static"
MARKUP = {
    "script-tag": "<script>alert('xss')</script>",
    "img-onerror": '<img src=x onerror="alert(1)">',
    "attribute-breakout": '"><svg onload=alert(1)>',
    "textarea-breakout": "</textarea><script>alert(1)</script>",
}
# Cells a spreadsheet would run as formulas (OWASP CSV injection), tab and carriage return included.
FORMULAS = {
    "equals-dde": "=cmd|' /C calc'!A0",
    "plus": '+HYPERLINK("http://evil.test","x")',
    "minus": "-2+3+cmd|' /C calc'!A0",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "tab": "\t=1+1",
    "carriage-return": "\r=1+1",
}
# Since 2001 in the queue: older than anything other tests leave there, so it is on the first page.
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, rasa: FakeRasa) -> Iterator[TestClient]:
    with engine.connect() as connection:
        before = connection.execute(select(func.coalesce(func.max(OutboxMessage.id), 0))).scalar_one()
    with (
        local_twilio("AC" + "2" * 32, "escape-security-twilio-token") as twilio,
        running_app(db_url, twilio, RASA_URL=rasa.url) as test_client,
    ):
        client_cookie = log_in_admin(test_client)
        test_client.headers["Cookie"] = f"{COOKIE}={client_cookie}"
        yield test_client
    with engine.begin() as connection:
        connection.execute(delete(OutboxMessage).where(OutboxMessage.id > before))


def log_in_admin(client: TestClient) -> str:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    assert log_in(client, new_user(factory, "admin")).status_code == 303
    token = client.cookies[COOKIE]
    client.cookies.clear()
    return token


@dataclass(frozen=True)
class Planted:
    """A citizen's words everywhere the console shows them: transcript, place, description, draft, bot slots."""

    words: str
    number: str
    conversation_id: int


def plant(client: TestClient, rasa: FakeRasa, words: str, marker: str = "", *, draft: bool = True) -> Planted:
    with session_scope(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        conversation = get_or_create_conversation(session, channel="web", external_id=uuid.uuid4().hex)
        record_message(session, conversation=conversation, direction="in", sender="citizen", text=words)
        slots = {"category": "noise", "place": words, "description": words}
        if draft:
            kept = keep_draft(session, conversation_id=conversation.id, channel="web", slots=slots, reason="hangup")
            kept.created_at = LONG_AGO
        case = file_case(
            session,
            category="noise",
            district="마포구",
            place=words,
            description=f"{words} {marker}".rstrip(),
            channel="web",
            conversation_id=conversation.id,
        )
        rasa.slots[f"web:{conversation.external_id}"] = slots
        return Planted(words, case.number, conversation.id)


@pytest.fixture(scope="module")
def planted(client: TestClient, rasa: FakeRasa) -> Iterator[dict[str, Planted]]:
    rows = {name: plant(client, rasa, words) for name, words in MARKUP.items()}
    yield rows
    with session_scope(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        ids = [row.conversation_id for row in rows.values()]
        session.execute(delete(ReportDraft).where(ReportDraft.conversation_id.in_(ids)))  # out of others' queue


HTML_PAGES: dict[str, Callable[[Planted], str]] = {
    "case-page": lambda p: f"/console/cases/{p.number}",
    "cases-list": lambda p: "/console/cases",
    "queue-page": lambda p: "/console/queue",
    "search-page": lambda p: f"/console/search?q={quote(p.words)}",
    "conversation-page": lambda p: f"/console/conversations/{p.conversation_id}",
    "filing-page": lambda p: f"/console/conversations/{p.conversation_id}/file",
}


@pytest.mark.parametrize("words", list(MARKUP), ids=list(MARKUP))
@pytest.mark.parametrize("page", list(HTML_PAGES.values()), ids=list(HTML_PAGES))
def test_citizen_markup_is_escaped_on_console_pages(
    client: TestClient, planted: dict[str, Planted], page: Callable[[Planted], str], words: str
) -> None:
    target = planted[words]
    response = client.get(page(target))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert target.words not in response.text
    assert str(escape(target.words)) in response.text


JSON_ENDPOINTS: dict[str, Callable[[Planted], str]] = {
    "queue-json": lambda p: "/console/api/queue",
    "conversation-json": lambda p: f"/console/api/conversations/{p.conversation_id}/messages",
}


@pytest.mark.parametrize("words", list(MARKUP), ids=list(MARKUP))
@pytest.mark.parametrize("endpoint", list(JSON_ENDPOINTS.values()), ids=list(JSON_ENDPOINTS))
def test_citizen_markup_is_data_in_console_json(
    client: TestClient, planted: dict[str, Planted], endpoint: Callable[[Planted], str], words: str
) -> None:
    """JSON carries the words as they were, as JSON; the console's scripts put them in the page as text."""
    target = planted[words]
    response = client.get(endpoint(target))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert target.words in str(response.json())


@pytest.mark.parametrize(
    "script", sorted([*CONSOLE_STATIC.glob("*.js"), *CHAT_STATIC.glob("*.js")]), ids=lambda p: p.name
)
def test_no_page_script_turns_data_into_markup(script: Path) -> None:
    """The console and chat scripts show citizens' words with textContent, never as HTML."""
    source = script.read_text(encoding="utf-8")
    assert not re.search(r"\.(innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML|document\.write", source)


def export(client: TestClient, marker: str) -> list[list[str]]:
    response = client.get(f"/console/search.csv?q={marker}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    return list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"), newline="")))


@pytest.mark.parametrize("formula", list(FORMULAS.values()), ids=list(FORMULAS))
def test_a_formula_in_a_citizens_words_is_text_in_the_csv_export(
    client: TestClient, rasa: FakeRasa, formula: str
) -> None:
    marker = f"csv{uuid.uuid4().hex[:12]}"
    target = plant(client, rasa, formula, marker, draft=False)
    header, *rows = export(client, marker)
    [row] = [row for row in rows if row[header.index("number")] == target.number]
    assert row[header.index("place")] == "'" + formula
    assert row[header.index("description")] == f"'{formula} {marker}"


@pytest.mark.parametrize("words", list(MARKUP), ids=list(MARKUP))
def test_citizen_markup_in_the_csv_export_is_plain_text_in_an_attachment(
    client: TestClient, planted: dict[str, Planted], words: str
) -> None:
    target = planted[words]
    header, *rows = export(client, target.number)
    [row] = rows
    assert row[header.index("place")] == target.words
