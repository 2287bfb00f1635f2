"""Look-ups by case number: only the conversation or verified phone that filed or follows a case sees it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import actions.context
from actions.cancel import ActionCancelReport
from actions.context import Caller
from actions.status import ActionCheckStatus
from civic import case_lookup
from civic.cases import file_case
from civic.conversations import get_or_create_conversation
from civic.db import session_scope
from civic.models import Case, CaseFollower
from civic.phones import get_or_create_citizen
from civic.workflow import CaseStatus, transition
from tests.inprocess_app import new_phone

DOMAIN = Path(__file__).resolve().parents[2] / "domain.yml"
ANSWER = "PUBLIC-NOTE: 불법 투기물을 수거했습니다."


def caller_from_sender(tracker: Tracker) -> Caller:
    channel, external_id = tracker.sender_id.split(":", 1)
    return Caller(channel, external_id, {})


@pytest.fixture(autouse=True)
def actions_use_test_db(monkeypatch: pytest.MonkeyPatch, session_factory: sessionmaker[Session]) -> Iterator[None]:
    monkeypatch.setattr(actions.context, "get_session_factory", lambda: session_factory)
    # Who is asking is decided by the gateway's signed metadata (actions.context.caller_of): taken as given here.
    monkeypatch.setattr(actions.context, "caller_of", caller_from_sender)
    yield


def conversation(db: sessionmaker[Session], channel: str = "web", phone: str | None = None) -> str:
    """A new conversation (with a verified phone, if given); its sender id "channel:external_id"."""
    external_id = uuid.uuid4().hex if channel != "phone" else "CA" + uuid.uuid4().hex
    with session_scope(db) as session:
        row = get_or_create_conversation(session, channel=channel, external_id=external_id)
        if phone is not None:
            row.citizen_id = get_or_create_citizen(session, phone=phone).id
    return f"{channel}:{external_id}"


def conversation_id(db: sessionmaker[Session], sender: str) -> int:
    channel, external_id = sender.split(":", 1)
    with session_scope(db) as session:
        return get_or_create_conversation(session, channel=channel, external_id=external_id).id


def follow(db: sessionmaker[Session], number: str, sender: str) -> None:
    """The conversation of `sender` follows the case (as a merged duplicate's citizen does)."""
    follower_id = conversation_id(db, sender)
    with session_scope(db) as session:
        case_id = session.execute(select(Case.id).where(Case.number == number)).scalar_one()
        session.add(CaseFollower(case_id=case_id, conversation_id=follower_id))


def resolved_case(db: sessionmaker[Session], filer: str) -> str:
    filer_id = conversation_id(db, filer)
    with session_scope(db) as session:
        case = file_case(
            session,
            category="illegal_dumping",
            district="노원구",
            place="상계동 주민센터 앞",
            description="쓰레기 무단투기",
            channel="web",
            conversation_id=filer_id,
        )
        for status in (CaseStatus.ACCEPTED, CaseStatus.ASSIGNED, CaseStatus.IN_PROGRESS):
            transition(session, case=case, to=status, actor="test", notify=False)
        transition(session, case=case, to=CaseStatus.RESOLVED, actor="test", note=ANSWER, notify=False)
        return case.number


def tracker(sender: str, text: str, number: str | None, language: str = "ko") -> Tracker:
    entities = [{"entity": "case_id", "value": number}] if number else []
    latest = {"text": text, "intent": {"name": "check_status", "confidence": 1.0}, "entities": entities}
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": {"language": language},
            "latest_message": latest,
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def ask(action: Any, sender: str, number: str | None, language: str = "ko") -> dict[str, Any]:
    dispatcher = CollectingDispatcher()
    asyncio.run(action.run(dispatcher, tracker(sender, f"{number} 어떻게 됐나요?", number, language), {}))
    [message] = dispatcher.messages
    return message


def status_of(sender: str, number: str | None, language: str = "ko") -> dict[str, Any]:
    return ask(ActionCheckStatus(), sender, number, language)


def test_the_filer_sees_status_and_public_note(session_factory: sessionmaker[Session]) -> None:
    filer = conversation(session_factory)
    number = resolved_case(session_factory, filer)
    answer = status_of(filer, number)
    assert answer["response"] == "utter_case_status" and answer["case_number"] == number
    assert ANSWER in answer["answer_line"] and answer["status_label"]


def test_a_stranger_gets_what_an_unknown_number_gets(session_factory: sessionmaker[Session]) -> None:
    number = resolved_case(session_factory, conversation(session_factory))
    stranger = conversation(session_factory, "telegram", phone=new_phone())  # verified, but another phone
    theirs, unknown = status_of(stranger, number), status_of(stranger, "SR-2026-999999")
    assert theirs["response"] == unknown["response"] == "utter_case_not_found"
    assert set(theirs) == set(unknown) and theirs["case_number"] == number  # only the number they typed
    assert ANSWER not in str(theirs) and "status_label" not in theirs


def test_followers_and_the_same_verified_phone_see_the_case(session_factory: sessionmaker[Session]) -> None:
    phone = new_phone()
    filer = conversation(session_factory, "telegram", phone=phone)
    number = resolved_case(session_factory, filer)
    follower = conversation(session_factory)
    follow(session_factory, number, follower)
    caller = conversation(session_factory, "phone", phone=phone)  # the same phone, calling the 120 line
    for sender in (follower, caller):
        answer = status_of(sender, number)
        assert answer["response"] == "utter_case_status" and ANSWER in answer["answer_line"], sender
    unverified = conversation(session_factory, "web")
    assert status_of(unverified, number)["response"] == "utter_case_not_found"


def test_look_ups_are_rate_limited_per_conversation(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(case_lookup, "LOOKUPS_PER_WINDOW", 3)
    filer = conversation(session_factory)
    number = resolved_case(session_factory, filer)
    stranger = conversation(session_factory)
    for guess in range(3):
        assert status_of(stranger, f"SR-2026-{900000 + guess:06d}")["response"] == "utter_case_not_found"
    for language in ("ko", "en", "ja"):
        limited = status_of(stranger, number, language)
        assert limited["response"] == "utter_case_lookup_limited" and int(limited["retry_minutes"]) >= 1
        assert "case_number" not in limited
    # Another conversation has its own allowance: the filer still gets the answer.
    assert status_of(filer, number)["response"] == "utter_case_status"


def test_a_stranger_cannot_learn_a_case_exists_by_withdrawing_it(session_factory: sessionmaker[Session]) -> None:
    filer = conversation(session_factory)
    filer_id = conversation_id(session_factory, filer)
    with session_scope(session_factory) as session:
        number = file_case(
            session,
            category="noise",
            district="마포구",
            place="합정역",
            description="소음",
            channel="web",
            conversation_id=filer_id,
        ).number
    stranger = conversation(session_factory)
    assert ask(ActionCancelReport(), stranger, number)["response"] == "utter_case_not_found"
    follow(session_factory, number, stranger)
    # A follower knows the case, so they are told why they cannot withdraw it.
    assert ask(ActionCancelReport(), stranger, number)["response"] == "utter_not_your_case"


def test_every_look_up_response_exists_in_three_languages() -> None:
    responses = yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))["responses"]
    for name in ("utter_case_status", "utter_case_not_found", "utter_case_lookup_limited", "utter_not_your_case"):
        languages = {
            next((c["value"] for c in v.get("condition") or [] if c.get("name") == "language"), "ko")
            for v in responses[name]
        }
        assert languages == {"ko", "en", "ja"}, name
    assert "{retry_minutes}" in responses["utter_case_lookup_limited"][0]["text"]
