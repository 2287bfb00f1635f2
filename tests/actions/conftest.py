"""Action tests: trackers built from dicts, the actions' database pointed at the test database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rasa_sdk import Tracker
from sqlalchemy.orm import Session, sessionmaker

import actions.context
from bot.gateway import server_metadata


@pytest.fixture(autouse=True)
def actions_use_test_db(monkeypatch: pytest.MonkeyPatch, session_factory: sessionmaker[Session]) -> Iterator[None]:
    monkeypatch.setattr(actions.context, "get_session_factory", lambda: session_factory)
    yield


DOMAIN: dict[str, Any] = {
    "slots": {},
    "forms": {"complaint_form": {"required_slots": ["category", "district", "place", "description", "confirm_report"]}},
}


def make_tracker(
    *,
    sender: str = "test-sender",
    text: str = "",
    intent: str = "inform",
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    active_loop: str | None = None,
    signed: bool = True,
) -> Tracker:
    """A tracker whose latest turn carries `metadata`, signed as the gateway signs it unless `signed=False`."""
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entities or [],
        "metadata": server_metadata(sender, metadata or {}) if signed else (metadata or {}),
    }
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": {"language": "ko", **(slots or {})},
            "latest_message": latest,
            "events": events or [],
            "paused": False,
            "followup_action": None,
            "active_loop": {"name": active_loop} if active_loop else {},
            "latest_action_name": "action_listen",
        }
    )


def turn(
    text: str,
    intent: str = "inform",
    *,
    stage: str | None = None,
    before: dict[str, Any] | None = None,
    candidates: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Tracker:
    """A message to the complaint form as Rasa sends it to the validation: the slots `before` the message,
    the message, the question it answers (`stage`) and the slots the NLU filled from it (`candidates`)."""
    slot_events = [{"event": "slot", "name": k, "value": v} for k, v in (before or {}).items()]
    events = [
        *slot_events,
        {"event": "user", "text": text},
        {"event": "slot", "name": "requested_slot", "value": stage},
        {"event": "action", "name": "complaint_form"},
        *({"event": "slot", "name": k, "value": v} for k, v in (candidates or {}).items()),
    ]
    slots = {**(before or {}), **(candidates or {}), "requested_slot": stage}
    return make_tracker(
        text=text,
        intent=intent,
        entities=entities,
        slots=slots,
        events=events,
        metadata=metadata,
        active_loop="complaint_form",
    )
