"""Every bot reply reaches the channels named by its domain response: rules, forms and actions, on the real stack."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic.models import Message
from tests.domain import domain_responses
from tests.e2e.stack import ChatClient, Stack

pytestmark = pytest.mark.e2e
FIRST = "안녕하세요, 이름 테스트 대화예요"


def bot_replies(db: sessionmaker[Session], first_text: str) -> list[Message]:
    """The bot's replies stored in the conversation whose citizen began with `first_text`."""
    with db() as session:
        first = session.execute(select(Message).where(Message.text == first_text)).scalar_one()
        rows = session.execute(
            select(Message)
            .where(Message.conversation_id == first.conversation_id, Message.direction == "out")
            .order_by(Message.id)
        ).scalars()
        replies = [m for m in rows if m.sender == "bot"]
        for message in replies:
            session.expunge(message)
        return replies


def test_rasas_rest_channel_names_each_reply(stack: Stack) -> None:
    """A rule's utter action, straight from Rasa (unsigned, so the turn runs no action)."""
    replies = httpx.post(
        f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": "web:names-probe", "message": "/help"}, timeout=60
    ).json()
    assert replies and {reply.get("utter_action") for reply in replies} == {"utter_help"}, replies


def test_every_reply_of_a_conversation_carries_its_name(citizen: ChatClient, db: sessionmaker[Session]) -> None:
    citizen.say(FIRST)  # a rule's utter action
    citizen.say("쓰레기")  # the form's utter_ask_district
    citizen.say("부천시예요")  # outside Seoul: an action's response with a value
    citizen.say("가로등이 고장났어요")
    citizen.say("마포구")
    summary = citizen.say("합정역 2번 출구 앞")  # an action's read-back, with buttons
    if not any(b["payload"] == "/affirm" for r in summary for b in r["buttons"]):
        citizen.say("밤새 꺼져 있어요")  # the form asked for a description first
    citizen.say("네", payload="/affirm")  # the case filed: an action's response with values
    citizen.say("SR-2020-000001 처리 상황 알려주세요")
    citizen.say("취소")

    replies = bot_replies(db, FIRST)
    names = [m.data.get("response") for m in replies]
    assert all(names) and set(names) <= domain_responses(), [(m.data.get("response"), m.text) for m in replies]
    expected = {"utter_greet", "utter_ask_district", "utter_outside_seoul", "utter_ask_place", "utter_case_filed"}
    assert expected <= set(names) and {"utter_case_not_found", "utter_case_withdrawn"} <= set(names), names
