"""'해결됐어요 / 아직이에요' tapped in a chat: the answer, the form's rating or note, and the submission."""

from __future__ import annotations

import uuid
from typing import Any

from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from actions.fixed import ActionAnswerFixed, ActionSubmitFeedback, ValidateFeedbackForm
from civic.cases import file_case
from civic.conversations import get_or_create_conversation
from civic.db import session_scope
from civic.models import Case, CaseFeedback
from tests.actions.conftest import make_tracker
from tests.case_paths import resolve

DOMAIN: dict[str, Any] = {
    "slots": {},
    "forms": {"feedback_form": {"required_slots": ["feedback_text", "feedback_comment"]}},
}


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def resolved_case(session_factory: sessionmaker[Session], sender: str) -> str:
    with session_scope(session_factory) as session:
        conversation = get_or_create_conversation(session, channel="rest", external_id=sender)
        case = file_case(
            session,
            category="urban_facility",
            district="성북구",
            place="정릉 버스정류장",
            description="벤치가 부서졌어요",
            channel="rest",
            conversation_id=conversation.id,
        )
        resolve(session, case, "벤치를 고쳤습니다.")
        return case.number


def tap(sender: str, intent: str, number: str) -> Any:
    entities = [{"entity": "case_id", "value": number}, {"entity": "language", "value": "ko"}]
    return make_tracker(sender=sender, text=f"/{intent}", intent=intent, entities=entities)


async def test_fixed_is_answered_then_rated(session_factory: sessionmaker[Session]) -> None:
    sender = f"fixed-{uuid.uuid4().hex[:8]}"
    number = resolved_case(session_factory, sender)
    events = await ActionAnswerFixed().run(CollectingDispatcher(), tap(sender, "case_fixed", number), DOMAIN)
    assert slots_of(events) == {"feedback_case": number, "feedback_fixed": True}

    slots = {"feedback_case": number, "feedback_fixed": True, "requested_slot": "feedback_text"}
    typed = make_tracker(sender=sender, text="최고예요", slots=slots, active_loop="feedback_form")
    dispatcher = CollectingDispatcher()
    events = await ValidateFeedbackForm().run(dispatcher, typed, DOMAIN)
    assert slots_of(events)["feedback_text"] is None  # no rating in it: asked again
    assert dispatcher.messages[0]["response"] == "utter_feedback_rating_hint"
    rating = [{"entity": "rating", "value": "4"}]
    tapped = make_tracker(sender=sender, text="/inform", entities=rating, slots=slots, active_loop="feedback_form")
    filled = slots_of(await ValidateFeedbackForm().run(CollectingDispatcher(), tapped, DOMAIN))
    assert (filled["feedback_text"], filled["feedback_comment"]) == ("4", None)  # the comment is asked next
    with_words = make_tracker(sender=sender, text="4점 빨리 와 주셨어요", slots=slots, active_loop="feedback_form")
    filled = slots_of(await ValidateFeedbackForm().run(CollectingDispatcher(), with_words, DOMAIN))
    assert (filled["feedback_text"], filled["feedback_comment"]) == ("4", "빨리 와 주셨어요")  # nothing more to ask
    asked = slots | {"feedback_text": "4", "requested_slot": "feedback_comment"}
    skip = make_tracker(sender=sender, text="/deny", intent="deny", slots=asked, active_loop="feedback_form")
    assert slots_of(await ValidateFeedbackForm().run(CollectingDispatcher(), skip, DOMAIN))["feedback_comment"] == "-"

    done = CollectingDispatcher()
    answered = slots | {"feedback_text": "4", "feedback_comment": "빨리 와 주셨어요"}
    await ActionSubmitFeedback().run(done, make_tracker(sender=sender, slots=answered), DOMAIN)
    assert [m["response"] for m in done.messages] == ["utter_feedback_thanks"]
    with session_scope(session_factory) as session:
        case_id = session.execute(select(Case.id).where(Case.number == number)).scalar_one()
        answered = session.execute(select(CaseFeedback).where(CaseFeedback.case_id == case_id)).scalar_one()
        assert (answered.state, answered.rating, answered.comment) == ("rated", 4, "빨리 와 주셨어요")


async def test_not_fixed_reopens_and_a_second_tap_changes_nothing(session_factory: sessionmaker[Session]) -> None:
    sender = f"fixed-{uuid.uuid4().hex[:8]}"
    number = resolved_case(session_factory, sender)
    await ActionAnswerFixed().run(CollectingDispatcher(), tap(sender, "case_not_fixed", number), DOMAIN)
    again = CollectingDispatcher()
    events = await ActionAnswerFixed().run(again, tap(sender, "case_not_fixed", number), DOMAIN)
    assert again.messages[0]["response"] == "utter_feedback_already_handled"
    assert slots_of(events)["feedback_case"] is None  # the form asks nothing

    slots = {"feedback_case": number, "feedback_fixed": False, "feedback_text": "다리가 아직 흔들려요"}
    done = CollectingDispatcher()
    await ActionSubmitFeedback().run(done, make_tracker(sender=sender, slots=slots), DOMAIN)
    [message] = done.messages
    assert message["response"] == "utter_feedback_reopened" and message["number"] == number and message["due"]
    with session_scope(session_factory) as session:
        assert session.execute(select(Case.status).where(Case.number == number)).scalar_one() == "assigned"
