"""Handing a conversation to a 120 operator, and what to do when the bot keeps misunderstanding."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import caller_of, in_session
from civic.conversations import get_or_create_conversation, request_handoff

MISUNDERSTANDINGS_BEFORE_OFFER = 2
BOOKKEEPING_ACTIONS = {"action_listen", "action_extract_slots", "action_session_start", None}


def misunderstandings_in_a_row(tracker: Tracker) -> int:
    """Counts the latest user turns, this one included, whose answer was action_handle_misunderstanding."""
    first_action_of_turn: list[str | None] = []
    for event in tracker.events:
        if event.get("event") == "user":
            first_action_of_turn.append(None)
            continue
        answered = not first_action_of_turn or first_action_of_turn[-1] is not None
        if event.get("event") == "action" and event.get("name") not in BOOKKEEPING_ACTIONS and not answered:
            first_action_of_turn[-1] = event.get("name")
    count = 1
    for action in reversed(first_action_of_turn[:-1]):
        if action != "action_handle_misunderstanding":
            break
        count += 1
    return count


class ActionHandleMisunderstanding(Action):
    """First miss: say what the bot can do; from the second miss in a row: offer an operator."""

    def name(self) -> str:
        return "action_handle_misunderstanding"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        if misunderstandings_in_a_row(tracker) >= MISUNDERSTANDINGS_BEFORE_OFFER:
            dispatcher.utter_message(response="utter_offer_human")
            return [SlotSet("handoff_offered", True)]
        in_form = bool((tracker.active_loop or {}).get("name"))
        dispatcher.utter_message(response="utter_default" if in_form else "utter_out_of_scope")
        return []


class ActionRequestHuman(Action):
    """Records the handoff request on the conversation for the 120 operators."""

    def name(self) -> str:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        caller = caller_of(tracker)
        reason = (tracker.latest_message.get("text") or "")[:500]

        def record(session: Any) -> None:
            conversation = get_or_create_conversation(session, channel=caller.channel, external_id=caller.external_id)
            request_handoff(session, conversation=conversation, reason=reason)

        await in_session(record)
        dispatcher.utter_message(response="utter_handoff_recorded")
        return [SlotSet("handoff_offered", False)]


class ActionDeclineHandoff(Action):
    """The citizen would rather keep talking to the bot."""

    def name(self) -> str:
        return "action_decline_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        dispatcher.utter_message(response="utter_handoff_declined")
        return [SlotSet("handoff_offered", False)]
