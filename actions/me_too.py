"""'저도 같은 불편을 겪고 있어요': before filing, an open case of the same problem close by is offered to follow."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint_state import what_and_where
from actions.context import conversation_id_of, in_session, language_of
from civic.cases import get_case
from civic.db import utcnow
from civic.duplicates import find_duplicate, follow_case
from civic.errors import CaseNotFound
from civic.i18n import format_ago, status_label
from telephony.phone_texts import UNHEARD_MARKERS

logger = logging.getLogger(__name__)


def confirmed_now(events: list[EventType]) -> bool:
    """Whether these validation events confirm the read-back."""
    return any(
        e.get("event") == "slot" and e.get("name") == "confirm_report" and e.get("value") is True for e in events
    )


async def duplicate_offer(tracker: Tracker) -> list[EventType]:
    """At confirmation: the open case to offer (duplicate_of), or follow_duplicate = False when there is none.

    Asked once per report: after a "no" the report is filed even if the citizen confirms again.
    """
    if tracker.get_slot("duplicate_of") or tracker.get_slot("follow_duplicate") is not None:
        return []

    report = what_and_where(tracker)
    if report["place"] == UNHEARD_MARKERS["place"]:
        report["place"] = None  # a caller's place kept only as a recording names no spot to compare

    def look_up(session: Any) -> str | None:
        found = find_duplicate(session, **report)
        return found.number if found else None

    try:
        number = await in_session(look_up)
    except Exception:
        logger.exception("duplicate look-up failed; the report is filed as it is")
        number = None
    return [SlotSet("duplicate_of", number)] if number else [SlotSet("follow_duplicate", False)]


class ActionAskFollowDuplicate(Action):
    """Tells of the open case found and offers to follow it instead of filing a new one."""

    def name(self) -> str:
        return "action_ask_follow_duplicate"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = language_of(tracker)

        def describe(session: Any) -> dict[str, str] | None:
            case = get_case(session, str(tracker.get_slot("duplicate_of") or ""))
            if case is None:
                return None
            return {
                "case_number": case.number,
                "ago": format_ago(case.created_at, utcnow(), language),
                "status_label": status_label(case.status, language),
            }

        offer = await in_session(describe)
        if offer is None:
            return [SlotSet("duplicate_of", None), SlotSet("follow_duplicate", False)]
        dispatcher.utter_message(response="utter_ask_follow_duplicate", **offer)
        return []


async def follow_instead(dispatcher: CollectingDispatcher, tracker: Tracker) -> str | None:
    """The case the citizen chose to follow, now followed and told; None to file the report after all."""
    number = tracker.get_slot("duplicate_of")
    if tracker.get_slot("follow_duplicate") is not True or not number:
        return None
    language = language_of(tracker)

    def follow(session: Any) -> str | None:
        try:
            case = follow_case(
                session, number=str(number), conversation_id=conversation_id_of(session, tracker), language=language
            )
        except CaseNotFound:
            return None  # closed since it was offered: the citizen's own report is filed instead
        return case.number

    followed = await in_session(follow)
    if followed is not None:
        dispatcher.utter_message(response="utter_following_case", case_number=followed)
    return followed
