"""'해결됐어요 / 아직이에요' tapped on a resolution notice: the answer, then the rating or what is still wrong."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint_state import COMMANDS, intent_of, message_text
from actions.context import conversation_id_of, in_session, latest_entity, verified_claims
from civic import feedback
from civic.models import CaseFeedback

FEEDBACK_SLOTS = ("feedback_case", "feedback_fixed", "feedback_text", "feedback_comment")
NO_COMMENT = "-"  # "건너뛰기": the comment question was answered with none
# Requests of their own, which the rules answer; "감사합니다" or "안녕하세요" may well be the comment itself.
REQUESTS = COMMANDS - {"thank", "greet", "goodbye"}


def _question(session: Any, tracker: Tracker, number: str | None) -> CaseFeedback | None:
    return feedback.pending(session, conversation_ids=[conversation_id_of(session, tracker)], number=number)


def say(dispatcher: CollectingDispatcher, told: feedback.Told) -> None:
    dispatcher.utter_message(response=f"utter_feedback_{told.kind}", **told.values)


class ActionAnswerFixed(Action):
    """Takes the tap: "fixed" then asks for a rating, "not yet" then asks what is still wrong (feedback_form)."""

    def name(self) -> str:
        return "action_answer_fixed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        fixed = intent_of(tracker) == "case_fixed"
        number = latest_entity(tracker, "case_id")

        def take(session: Any) -> feedback.Told | None:
            question = _question(session, tracker, number)
            if question is None or question.state != feedback.ASKED:
                return None  # a second tap on the same notice: it was answered already
            return feedback.answer(session, question, fixed=fixed)

        told = await in_session(take)
        if told is None or told.kind == "already_handled":
            say(dispatcher, told or feedback.Told("already_handled", {"number": number or ""}))
            return [SlotSet(slot, None) for slot in FEEDBACK_SLOTS]  # the form has nothing to ask
        return [SlotSet("feedback_case", told.values["number"]), SlotSet("feedback_fixed", fixed)]


class ValidateFeedbackForm(FormValidationAction):
    """After "fixed" the rating (a button, or "4 빨리 와 주셨어요") and, unless it came with one, a comment or none;
    after "not yet" what is still wrong (words, a photo)."""

    def name(self) -> str:
        return "validate_feedback_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        if not tracker.get_slot("feedback_case"):
            return []
        return domain_slots if tracker.get_slot("feedback_fixed") else ["feedback_text"]

    async def extract_feedback_text(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "feedback_text" or intent_of(tracker) in REQUESTS:
            return {}
        rating = latest_entity(tracker, "rating")
        if rating:
            return {"feedback_text": rating}
        text = message_text(tracker)
        if text.startswith("/"):
            text = ""
        photos = verified_claims(tracker).get("attachment_ids") or []
        return {"feedback_text": text or ("📷" if photos else None)}

    async def extract_feedback_comment(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "feedback_comment" or intent_of(tracker) in REQUESTS:
            return {}
        text = message_text(tracker)
        skipped = text.startswith("/") or (intent_of(tracker) == "deny" and len(text) <= 10)  # "건너뛰기", "없어요"
        return {"feedback_comment": NO_COMMENT if skipped else text[:2000]}

    def validate_feedback_text(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "").strip()
        if not tracker.get_slot("feedback_fixed"):
            return {"feedback_text": text[:2000] or None}
        rated = feedback.parse_rating(text)
        if rated is None:
            dispatcher.utter_message(response="utter_feedback_rating_hint", number=tracker.get_slot("feedback_case"))
            return {"feedback_text": None}
        rating, comment = rated  # "4 빨리 와 주셨어요" says both: the comment is not asked for
        return {"feedback_text": str(rating), "feedback_comment": comment[:2000] or None}


class ActionAskFeedbackText(Action):
    """Asks for the rating after "fixed", or for what is still wrong after "not yet"."""

    def name(self) -> str:
        return "action_ask_feedback_text"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        kind = "ask_rating" if tracker.get_slot("feedback_fixed") else "ask_note"
        say(dispatcher, feedback.Told(kind, {"number": str(tracker.get_slot("feedback_case") or "")}))
        return []


class ActionAskFeedbackComment(Action):
    """After a rating without words: anything to add? (a "skip" button)."""

    def name(self) -> str:
        return "action_ask_feedback_comment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        say(dispatcher, feedback.Told("ask_comment", {"number": str(tracker.get_slot("feedback_case") or "")}))
        return []


class ActionSubmitFeedback(Action):
    """Rates the fixed case, or reopens it with the citizen's note (and photos)."""

    def name(self) -> str:
        return "action_submit_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        number, text = tracker.get_slot("feedback_case"), str(tracker.get_slot("feedback_text") or "")
        if not number or not text:
            return [SlotSet(slot, None) for slot in FEEDBACK_SLOTS]
        fixed = bool(tracker.get_slot("feedback_fixed"))
        photos = [str(i) for i in verified_claims(tracker).get("attachment_ids") or []]

        def submit(session: Any) -> feedback.Told:
            question = _question(session, tracker, number)
            if question is None:
                return feedback.Told("already_handled", {"number": number})
            if fixed:
                rating, _ = feedback.parse_rating(text) or (0, "")
                comment = tracker.get_slot("feedback_comment")
                return feedback.rate(
                    session, question, rating=rating, comment=None if comment == NO_COMMENT else comment
                )
            return feedback.reopen(session, question, note=text, attachment_ids=photos)

        say(dispatcher, await in_session(submit))
        return [SlotSet(slot, None) for slot in FEEDBACK_SLOTS]
