"""Citizen poll proposals from the chat: a form for question, options and days, then city moderation."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions.context import caller_of, in_session, language_of
from actions.polls import local_time, safe
from civic.db import utcnow
from civic.polls import (
    MAX_OPTION_CHARS,
    MAX_OPTIONS,
    MAX_PENDING_PROPOSALS,
    MAX_TITLE_CHARS,
    MIN_OPTIONS,
    NewPoll,
    PollError,
    create_poll,
)

logger = logging.getLogger(__name__)

PROPOSAL_SLOTS = ("poll_title", "poll_options", "poll_days", "confirm_poll")
MAX_DAYS = 30
OPTION_SEPARATORS = re.compile(r"[\n,，、;；]")
OPTION_MARKER = re.compile(r"^\s*(?:[-•*·]|\d{1,2}[.)])\s*")  # "1. 찬성", "- 찬성", "• 찬성"
WEEK = re.compile(r"일주일|한\s*주|a week|one week|一週間|1週間", re.IGNORECASE)
NOT_AN_ANSWER = {"cancel_report"}  # "cancel" drops the draft (rule in nlu/rules.yml)


def parse_options(text: str) -> list[str] | None:
    """Options separated by commas or new lines, list markers dropped; None unless 2-20 distinct short ones."""
    labels = [OPTION_MARKER.sub("", part).strip() for part in OPTION_SEPARATORS.split(text)]
    labels = [label for label in labels if label]
    if not MIN_OPTIONS <= len(labels) <= MAX_OPTIONS or len(set(labels)) != len(labels):
        return None
    if any(len(label) > MAX_OPTION_CHARS for label in labels):
        return None
    return labels


def parse_days(text: str) -> int | None:
    """The first number in the answer ("7", "7일", "10 days", "７日間"), or a week; None unless 1-30."""
    match = re.search(r"\d+", text)
    days = int(match.group(0)) if match else (7 if WEEK.search(text) else None)
    return days if days is not None and 1 <= days <= MAX_DAYS else None


def answer_to(tracker: Tracker, slot: str) -> str | None:
    """The citizen's text when the form asked for `slot`; never a button payload or a "cancel"."""
    if tracker.get_slot("requested_slot") != slot:
        return None
    text = (tracker.latest_message.get("text") or "").strip()
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    if not text or text.startswith("/") or intent in NOT_AN_ANSWER:
        return None
    return text


class ValidatePollForm(FormValidationAction):
    """Takes each answer of the poll proposal as typed and checks it against civic.polls' limits."""

    def name(self) -> str:
        return "validate_poll_form"

    async def extract_poll_title(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = answer_to(tracker, "poll_title")
        return {"poll_title": text} if text else {}

    async def extract_poll_options(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = answer_to(tracker, "poll_options")
        return {"poll_options": text} if text else {}

    async def extract_poll_days(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = answer_to(tracker, "poll_days")
        return {"poll_days": text} if text else {}

    async def extract_confirm_poll(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "confirm_poll":
            return {}
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent in NOT_AN_ANSWER:
            return {}
        # Anything but a clear yes sends nothing: a poll goes to the city only when confirmed.
        return {"confirm_poll": intent == "affirm"}

    def validate_poll_title(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        title = " ".join(str(value or "").split())
        if not title or len(title) > MAX_TITLE_CHARS:
            dispatcher.utter_message(response="utter_poll_title_invalid")
            return {"poll_title": None}
        return {"poll_title": title}

    def validate_poll_options(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        labels = parse_options(str(value or ""))
        if labels is None:
            dispatcher.utter_message(response="utter_poll_options_invalid")
            return {"poll_options": None}
        # Kept as the read-back shows it; parse_options reads this form back unchanged.
        return {"poll_options": "\n".join(f"• {label}" for label in labels)}

    def validate_poll_days(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        days = parse_days(str(value or ""))
        if days is None:
            dispatcher.utter_message(response="utter_poll_days_invalid")
            return {"poll_days": None}
        return {"poll_days": str(days)}


class ActionSubmitPoll(Action):
    """Sends the confirmed proposal to the city as a pending citizen poll; clears the draft either way."""

    def name(self) -> str:
        return "action_submit_poll"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        cleared: list[EventType] = [SlotSet(slot, None) for slot in PROPOSAL_SLOTS]
        if tracker.get_slot("confirm_poll") is not True:
            dispatcher.utter_message(response="utter_poll_draft_discarded")
            return cleared
        language = language_of(tracker)
        caller = caller_of(tracker)
        title = str(tracker.get_slot("poll_title") or "")
        labels = parse_options(str(tracker.get_slot("poll_options") or "")) or []
        days = parse_days(str(tracker.get_slot("poll_days") or "")) or 0

        def propose(session: Session) -> datetime:
            now = utcnow()
            new = NewPoll(title=title, options=labels, opens_at=now, closes_at=now + timedelta(days=days))
            poll, _ = create_poll(session, new, kind="citizen", created_by=f"{caller.channel}:{caller.external_id}")
            return poll.closes_at

        try:
            closes_at = await in_session(propose)
        except PollError as error:
            if error.code == "too_many_proposals":
                dispatcher.utter_message(response="utter_poll_too_many_pending", limit=MAX_PENDING_PROPOSALS)
                return cleared
            # The form checked every other limit: a change in civic.polls would land here.
            logger.warning("citizen poll refused by civic.polls: %s", error.code)
            dispatcher.utter_message(response="utter_poll_not_created")
            return cleared
        dispatcher.utter_message(
            response="utter_poll_sent_for_moderation", title=safe(title), closes=local_time(closes_at, language)
        )
        return cleared


class ActionDiscardPollDraft(Action):
    """Drops a poll proposal on "cancel": nothing is sent and the answers are forgotten."""

    def name(self) -> str:
        return "action_discard_poll_draft"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        dispatcher.utter_message(response="utter_poll_draft_discarded")
        return [SlotSet(slot, None) for slot in PROPOSAL_SLOTS]
