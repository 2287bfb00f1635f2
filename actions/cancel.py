"""Withdrawing a filed report that no operator has accepted yet."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions.case_answer import Answer, answer_about_case
from actions.context import language_of
from civic.case_lookup import may_see
from civic.cases import cases_for_conversation, get_case, withdraw_case
from civic.errors import CaseNotFound, NotYourCase
from civic.i18n import status_label
from civic.workflow import CaseStatus, InvalidTransition


class ActionCancelReport(Action):
    """Withdraws the named case, or this conversation's newest case still `received`."""

    def name(self) -> str:
        return "action_cancel_report"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = language_of(tracker)

        def withdraw(session: Session, conversation_id: int, number: str | None) -> Answer:
            target = number
            if target is None:
                cases = cases_for_conversation(session, conversation_id)
                open_cases = [c for c in cases if c.status == CaseStatus.RECEIVED]
                if not cases:
                    return "utter_no_reports", {}
                target = (open_cases or cases)[0].number
            try:
                case = withdraw_case(session, number=target, conversation_id=conversation_id)
            except CaseNotFound:
                return "utter_case_not_found", {"case_number": target}
            except NotYourCase:
                # Only whoever follows the case learns it exists; to anyone else it is a number they have no case of.
                known = get_case(session, target)
                if known is not None and may_see(session, known, conversation_id):
                    return "utter_not_your_case", {"case_number": target}
                return "utter_case_not_found", {"case_number": target}
            except InvalidTransition as refused:
                return "utter_cannot_withdraw", {
                    "case_number": target,
                    "status_label": status_label(refused.current, language),
                }
            return "utter_case_withdrawn", {"case_number": case.number}

        await answer_about_case(dispatcher, tracker, withdraw)
        return []
