"""Filing a complaint: the complaint form's extraction and validation, the read-back, and submission."""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import caller_of, conversation_id_of, in_session, language_of, verified_claims
from civic import geo
from civic.cases import file_case
from civic.categories import CATEGORIES
from civic.districts import DISTRICTS, is_district
from civic.i18n import category_label, department_name, district_label, format_date
from civic.workflow import announce_filing

logger = logging.getLogger(__name__)

REPORT_SLOTS = (
    "category",
    "district",
    "dong",
    "place",
    "description",
    "latitude",
    "longitude",
    "attachment_ids",
    "confirm_report",
    "correction_requested",
)
DETAIL_SLOTS = ("category", "district", "place", "description")
NOT_AN_ANSWER = {
    "affirm",
    "deny",
    "cancel_report",
    "check_status",
    "list_my_reports",
    "request_human",
    "help",
    "greet",
    "goodbye",
    "thank",
}
# "I want to report illegal parking" names the problem but does not describe it.
BARE_REQUEST = re.compile(
    r"(신고|접수|민원).{0,6}(하고\s*싶|할게|하려|해\s*주|할래|하고싶|원해|어떻게|할 수|가능)"
    r"|\b(report|file|complain|make a complaint)\b.{0,20}$"
    r"|(通報|報告|申告|苦情).{0,6}(したい|します|お願い|どう|できます)",
    re.IGNORECASE,
)


def is_description(text: str) -> bool:
    text = text.strip()
    if len(text) < 6:
        return False
    return not (BARE_REQUEST.search(text) and len(text) <= 40)


@cache
def district_of_dong() -> dict[str, str]:
    """Dong names that belong to exactly one gu (신사동 exists in two, so it is left out)."""
    owners: dict[str, set[str]] = {}
    for gu in DISTRICTS:
        for dong in geo.dongs_of(gu):
            owners.setdefault(dong, set()).add(gu)
    return {dong: next(iter(gus)) for dong, gus in owners.items() if len(gus) == 1}


def coordinates(tracker: Tracker) -> tuple[float, float] | None:
    metadata = verified_claims(tracker)  # photos and GPS only as the gateway signed them
    try:
        return float(metadata["latitude"]), float(metadata["longitude"])
    except (KeyError, TypeError, ValueError):
        return None


def gps_place(location: geo.Location, point: tuple[float, float]) -> str:
    """The coordinates locate the problem precisely; the dong names it for people."""
    return f"{location.dong_ko or location.gu_ko} (GPS {point[0]:.5f}, {point[1]:.5f})"


FILLERS = re.compile(r"(아니요|아뇨|아니|no|not|いいえ|이요|요|です|it's|it is|in|[\s,.!?~])", re.IGNORECASE)


def without_district_and_fillers(text: str, tracker: Tracker) -> str:
    message = tracker.latest_message.get("text") or ""
    if text == message.strip():
        for entity in tracker.latest_message.get("entities", []):
            if entity.get("entity") == "district":
                text = text.replace(message[entity.get("start", 0) : entity.get("end", 0)], "")
    return FILLERS.sub("", text)


class ValidateComplaintForm(FormValidationAction):
    """Fills what the citizen already said (GPS, dong, the first message) and checks every answer."""

    def name(self) -> str:
        return "validate_complaint_form"

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
        if point is None or tracker.get_slot("place"):
            return {}
        location = geo.locate(*point)
        if location is None:
            return {}
        return {"place": gps_place(location, point)}

    async def extract_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = (tracker.latest_message.get("text") or "").strip()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if text.startswith("/") or intent in NOT_AN_ANSWER:
            return {}
        names_a_problem = any(e.get("entity") == "category" for e in tracker.latest_message.get("entities", []))
        if (
            intent == "report_complaint"
            and is_description(text)
            and (names_a_problem or not tracker.get_slot("description"))
        ):
            return {"description": text}  # a new full report replaces the old description too
        if tracker.get_slot("correction_requested") and not any(
            e.get("entity") in DETAIL_SLOTS for e in tracker.latest_message.get("entities", [])
        ):
            return {"description": text}
        return {}

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        # The SDK returns only the required slots; photos (optional, never asked for) and the
        # coordinates and dong of a shared position travel beside them.
        events = await super().run(dispatcher, tracker, domain)
        metadata = verified_claims(tracker)  # photos and GPS only as the gateway signed them
        new = [str(i) for i in metadata.get("attachment_ids") or []]
        known = list(tracker.get_slot("attachment_ids") or [])
        if any(i not in known for i in new):
            events.append(SlotSet("attachment_ids", known + [i for i in new if i not in known]))
        point = coordinates(tracker)
        location = geo.locate(*point) if point else None
        if point and location:
            events += [SlotSet("latitude", point[0]), SlotSet("longitude", point[1]), SlotSet("dong", location.dong_ko)]
        return events

    def validate_category(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value in CATEGORIES:
            return {"category": value, "correction_requested": False, "confirm_report": None}
        return {"category": None}

    def validate_district(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if isinstance(value, str) and is_district(value):
            return {"district": value, "correction_requested": False, "confirm_report": None}
        dispatcher.utter_message(response="utter_unknown_district")
        return {"district": None}

    def validate_place(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "").strip()
        if len(without_district_and_fillers(text, tracker)) < 2:
            # "마포구요" answers the district, not the place; "아니 구로구요" is a correction.
            return {"place": None}
        return {"place": text[:300], "correction_requested": False, "confirm_report": None}

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "").strip()
        if len(text) < 2:
            return {"description": None}
        return {"description": text[:2000], "correction_requested": False, "confirm_report": None}

    def validate_confirm_report(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        changed = set(tracker.slots_to_validate()) & set(DETAIL_SLOTS)
        if changed:
            # "아니 구로구요": a correction, not a refusal; read the summary back again.
            return {"confirm_report": None, "correction_requested": False}
        if value is False:
            return {"confirm_report": None, "correction_requested": True}
        return {"confirm_report": value}


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
        language = language_of(tracker)
        caller = caller_of(tracker)
        key = filing_key(tracker, caller.metadata.get("client_message_id") or tracker.latest_message.get("message_id"))

        def file(session: Any) -> dict[str, Any]:
            conversation_id = conversation_id_of(session, tracker)
            case = file_case(
                session,
                category=tracker.get_slot("category"),
                district=tracker.get_slot("district"),
                dong=tracker.get_slot("dong"),
                place=tracker.get_slot("place"),
                description=tracker.get_slot("description"),
                latitude=tracker.get_slot("latitude"),
                longitude=tracker.get_slot("longitude"),
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
