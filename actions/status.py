"""Case status by number, and the list of reports made in this conversation."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions.case_answer import Answer, answer_about_case
from actions.context import conversation_id_of, in_session, language_of
from civic import case_lookup
from civic.cases import cases_for_conversation, last_public_note
from civic.i18n import category_label, department_name, district_label, format_date, status_label
from civic.models import Case

MAX_LISTED = 10


def public_view(case: Case, language: str) -> dict[str, str]:
    """What the citizen who filed or follows the case is told: no place, description or personal data."""
    note = last_public_note(case)
    return {
        "case_number": case.number,
        "category_label": category_label(case.category, language),
        "district_label": district_label(case.district, language),
        "status_label": status_label(case.status, language),
        "department": department_name(case.department, language),
        "due_date": format_date(case.due_at, language),
        "answer_line": f"\n{note}" if note else "",
    }


class ActionCheckStatus(Action):
    """Answers "how is SR-2026-000123 going?"; without a number, the newest case of this conversation."""

    def name(self) -> str:
        return "action_check_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = language_of(tracker)

        def look_up(session: Session, conversation_id: int, number: str | None) -> Answer:
            if number:
                # Only for the conversation or verified phone that filed or follows it; an unknown number and
                # someone else's get the same answer (civic.case_lookup).
                found = case_lookup.look_up(session, number=number, conversation_id=conversation_id)
                if found.limited:
                    return "utter_case_lookup_limited", {"retry_minutes": str(found.retry_after_minutes)}
                if found.case is None:
                    return "utter_case_not_found", {"case_number": number}
                return "utter_case_status", public_view(found.case, language)
            cases = cases_for_conversation(session, conversation_id)
            if not cases:
                return "utter_ask_case_number", {}
            return "utter_case_status", public_view(cases[0], language)

        values = await answer_about_case(dispatcher, tracker, look_up)
        return [SlotSet("case_id", values.get("case_number")), SlotSet("handoff_offered", False)]


class ActionListMyReports(Action):
    """Lists the reports filed in this conversation, newest first."""

    def name(self) -> str:
        return "action_list_my_reports"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = language_of(tracker)

        def lines(session: Any) -> list[str]:
            cases = cases_for_conversation(session, conversation_id_of(session, tracker))[:MAX_LISTED]
            return [
                f"• {c.number} — {category_label(c.category, language)}, "
                f"{district_label(c.district, language)} — {status_label(c.status, language)}"
                for c in cases
            ]

        listed = await in_session(lines)
        if listed:
            dispatcher.utter_message(response="utter_my_reports", lines="\n".join(listed))
        else:
            dispatcher.utter_message(response="utter_no_reports")
        return [SlotSet("handoff_offered", False)]
