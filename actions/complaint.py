"""Filing a complaint: the complaint form's extraction and validation, its questions, and submission."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint_checks import checked_place, leave_outside_seoul, outside_seoul, read_back_answer
from actions.complaint_state import (
    COMMANDS,
    REPORT_SLOTS,
    coordinates,
    district_of_dong,
    entity_values,
    gps_place,
    intent_of,
    is_description,
    may_change,
    message_text,
    place_spans,
    previous_value,
    stage,
    what_and_where,
)
from actions.context import caller_of, conversation_id_of, in_session, language_of, verified_claims
from actions.me_too import confirmed_now, duplicate_offer, follow_instead
from actions.report_turns import category_in_words, is_account, more_than_yes_no, place_answer, place_with_detail
from civic import geo
from civic.cases import file_case
from civic.categories import CATEGORIES
from civic.districts import is_district
from civic.i18n import category_label, department_name, district_label, format_date
from civic.workflow import announce_filing

logger = logging.getLogger(__name__)

# Re-exported for actions/attachments.py and the tests.
__all__ = ["coordinates", "gps_place", "is_description", "outside_seoul"]


class ValidateComplaintForm(FormValidationAction):
    """Fills what the citizen already said (GPS, dong, the first message) and checks every answer."""

    def name(self) -> str:
        return "validate_complaint_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        city = outside_seoul(tracker)
        if city is not None:
            return leave_outside_seoul(dispatcher, tracker, city)
        if stage(tracker) == "confirm_report":
            events = read_back_answer(dispatcher, tracker)
            if confirmed_now(events):
                events += await duplicate_offer(tracker)
        else:
            events = await super().run(dispatcher, tracker, domain)
        # Photos (optional, never asked for) and the coordinates and dong of a shared position travel
        # beside the form's slots.
        metadata = verified_claims(tracker)
        new = [str(i) for i in metadata.get("attachment_ids") or []]
        known = list(tracker.get_slot("attachment_ids") or [])
        if any(i not in known for i in new):
            events.append(SlotSet("attachment_ids", known + [i for i in new if i not in known]))
        point = coordinates(tracker)
        location = geo.locate(*point) if point else None
        if point and location:
            events += [SlotSet("latitude", point[0]), SlotSet("longitude", point[1]), SlotSet("dong", location.dong_ko)]
        return events

    async def extract_category(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # "안전 위험이요" typed to the category question names it even when the classifier is unsure.
        text = message_text(tracker)
        if stage(tracker) != "category" or text.startswith("/") or "category" in tracker.slots_to_validate():
            return {}
        category = category_in_words(text)
        return {"category": category} if category else {}

    async def extract_district(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        point = coordinates(tracker)
        if point is not None:
            location = geo.locate(*point)
            if location is None:
                dispatcher.utter_message(response="utter_location_outside_seoul")
                return {}
            return {"district": location.gu_ko}
        dong = tracker.get_slot("dong")
        if not tracker.get_slot("district") and dong in district_of_dong():
            return {"district": district_of_dong()[dong]}
        return {}

    async def extract_place(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        point = coordinates(tracker)
        location = geo.locate(*point) if point else None
        asked = stage(tracker) == "place"
        if point and location and (asked or not previous_value(tracker, "place")):
            return {"place": gps_place(location, point)}
        text = message_text(tracker)
        if not asked or text.startswith("/") or intent_of(tracker) in COMMANDS:
            return {}
        vague = tracker.get_slot("place_vague")
        if vague:
            # The landmark question was asked once: whatever comes back completes the place.
            return {"place": place_with_detail(vague, place_answer(text))}
        if intent_of(tracker) in ("affirm", "deny") and more_than_yes_no(text):
            return {"place": text}  # "아니요, 신촌역 3번 출구 앞이에요" answers the question all the same
        return {}

    async def extract_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = message_text(tracker)
        if stage(tracker) == "description" and not text.startswith("/") and intent_of(tracker) in ("affirm", "deny"):
            # "消えているのではなく、点滅しています" may read as a "no"; it still answers the question.
            return {"description": text} if more_than_yes_no(text) else {}
        # Only a message that answers no other question tells more about the problem: never the place
        # answer, and at the read-back only a correction or a further detail (read_back_answer).
        if stage(tracker) not in (None, "category", "district") or text.startswith("/"):
            return {}
        if intent_of(tracker) != "report_complaint" or not is_description(text):
            return {}
        if not is_account(text, place_spans(tracker)):
            return {}
        current = tracker.get_slot("description")
        if not current or stage(tracker) is None:
            return {"description": text}
        return {} if text in current else {"description": f"{current} / {text}"[:2000]}

    def validate_category(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if not may_change(tracker, "category"):
            return {"category": previous_value(tracker, "category")}
        text = message_text(tracker)
        if stage(tracker) is None and not is_description(text) and not category_in_words(text):
            # "I'd like to file a complaint" names no problem: the classifier's guess would skip the question.
            return {"category": None}
        return {"category": value if value in CATEGORIES else None}

    def validate_district(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if isinstance(value, str) and is_district(value):
            return {"district": value}
        dispatcher.utter_message(response="utter_unknown_district")
        return {"district": None}

    def validate_place(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "").strip()
        if not may_change(tracker, "place") or text.startswith("/"):
            return {"place": previous_value(tracker, "place")}
        if text == message_text(tracker):
            # The whole answer to "where exactly?" less "아니", "이에요", "です"; only its place phrase when it
            # also tells the problem at length ("합정역 2번 출구 앞에 불법 주차된 차가 있어요").
            places = entity_values(tracker, "place")
            tells_problem = bool(entity_values(tracker, "category"))  # the classifier heard a complaint in it
            long_story = places and tells_problem and is_account(text, place_spans(tracker), minimum=8)
            text = str(places[-1]) if long_story else place_answer(text)
        return checked_place(text, asked_once=stage(tracker) == "place" and bool(tracker.get_slot("place_vague")))

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "").strip()
        says_only_where = (entity_values(tracker, "district") or entity_values(tracker, "place")) and not is_account(
            text, place_spans(tracker)
        )
        if len(text) < 2 or (text == message_text(tracker) and says_only_where):
            return {"description": previous_value(tracker, "description")}  # "아니 구로구요" corrects the gu
        return {"description": text[:2000]}


class ActionAskPlace(Action):
    """Asks where the problem is; after a vague answer, once, for a landmark, an address or a GPS share."""

    def name(self) -> str:
        return "action_ask_place"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        vague = tracker.get_slot("place_vague")
        dispatcher.utter_message(response="utter_ask_place_detail" if vague else "utter_ask_place")
        return []


class ActionAskConfirmReport(Action):
    """Reads the report back for confirmation, or asks what to correct."""

    def name(self) -> str:
        return "action_ask_confirm_report"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        if tracker.get_slot("correction_requested"):
            dispatcher.utter_message(response="utter_ask_correction")
            return []
        language = language_of(tracker)
        # A caller's attachments are recordings of what they said, not photos.
        photos = 0 if caller_of(tracker).channel == "phone" else len(tracker.get_slot("attachment_ids") or [])
        photo_line = (
            {"ko": f"\n• 사진: {photos}장", "en": f"\n• Photos: {photos}", "ja": f"\n• 写真：{photos}枚"}[language]
            if photos
            else ""
        )
        dispatcher.utter_message(
            response="utter_report_summary",
            category_label=category_label(tracker.get_slot("category"), language),
            district_label=district_label(tracker.get_slot("district"), language),
            place=tracker.get_slot("place"),
            description=tracker.get_slot("description"),
            photo_line=photo_line,
        )
        return []


def filing_key(tracker: Tracker, message_key: str | None) -> str | None:
    """One report, one case: the key is the activation of the form that collected it, else the message.

    A confirmation's turn can be lost after the case was filed (a Rasa replica killed before it saved the
    tracker); the citizen then confirms again in a new message, which must find the same case.
    """
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == "complaint_form":
            return f"draft:{event.get('timestamp')}"
    return message_key


class ActionSubmitComplaint(Action):
    """Files the confirmed report with civic and tells the citizen the number, department and due date."""

    def name(self) -> str:
        return "action_submit_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        if tracker.get_slot("confirm_report") is not True:
            return [SlotSet(slot, None) for slot in REPORT_SLOTS]
        followed = await follow_instead(dispatcher, tracker)
        if followed is not None:
            return [SlotSet(slot, None) for slot in REPORT_SLOTS] + [SlotSet("case_id", followed)]
        language = language_of(tracker)
        caller = caller_of(tracker)
        key = filing_key(tracker, caller.metadata.get("client_message_id") or tracker.latest_message.get("message_id"))

        def file(session: Any) -> dict[str, Any]:
            conversation_id = conversation_id_of(session, tracker)
            case = file_case(
                session,
                **what_and_where(tracker),
                description=tracker.get_slot("description"),
                channel=caller.channel,
                language=language,
                conversation_id=conversation_id,
                attachment_ids=tuple(tracker.get_slot("attachment_ids") or ()),
                idempotency_key=f"{conversation_id}:{key}" if key else None,
            )
            announce_filing(session, case=case)
            return {
                "case_number": case.number,
                "department": department_name(case.department, language),
                "due_date": format_date(case.due_at, language),
            }

        try:
            filed = await in_session(file)
        except Exception:
            logger.exception("filing failed; the draft stays in the conversation")
            dispatcher.utter_message(response="utter_case_filing_failed")
            return [SlotSet("confirm_report", None), FollowupAction("complaint_form")]
        dispatcher.utter_message(response="utter_case_filed", **filed)
        return [SlotSet(slot, None) for slot in REPORT_SLOTS] + [SlotSet("case_id", filed["case_number"])]


class ActionDiscardDraft(Action):
    """Forgets a report that was being written; nothing was filed."""

    def name(self) -> str:
        return "action_discard_draft"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        dispatcher.utter_message(response="utter_draft_discarded")
        return [SlotSet(slot, None) for slot in REPORT_SLOTS] + [SlotSet("requested_slot", None)]
