"""The complaint form's judgements: a place found or too vague, a place outside Seoul, the read-back's answer."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.complaint_state import (
    ANSWERS,
    CANCEL_WORDS,
    COMMANDS,
    DETAIL_SLOTS,
    REPORT_SLOTS,
    coordinates,
    entity_values,
    gps_place,
    intent_of,
    message_text,
    place_spans,
    previous_value,
    stage,
)
from actions.context import language_of
from actions.report_turns import (
    CATEGORY_CUE,
    MORE_DETAIL,
    SAYS_WRONG,
    category_in_words,
    corrected_value,
    is_account,
    is_negation,
    is_vague_place,
    named_slots,
    place_answer,
)
from civic import geo
from civic.categories import CATEGORIES
from civic.districts import OutsideCity, city_outside_seoul, is_district, resolve_district


def outside_seoul(tracker: Tracker) -> OutsideCity | None:
    """The city outside Seoul the message places the problem in, unless it also names a gu of Seoul."""
    text = message_text(tracker)
    if text.startswith("/") or intent_of(tracker) in COMMANDS or stage(tracker) == "description":
        return None
    point = coordinates(tracker)
    if point is not None and geo.locate(*point) is not None:
        return None
    found = city_outside_seoul(text)
    if found is None:
        return None
    start, end, city = found
    gus = [e for e in tracker.latest_message.get("entities", []) if e.get("entity") == "district"]
    # "부산 강서구", "Jung-gu, Incheon", "仁川の中区" are that city's gu; "구로구 … 부천" names Seoul's.
    spans = [(int(e.get("start", 0)), int(e.get("end", 0))) for e in gus]
    return city if all(beside(text, (start, end), span) for span in spans) else None


def beside(text: str, one: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether two spans are next to each other, but for a comma, "in", "of" or "の"."""
    first, second = sorted((one, other))
    return bool(re.fullmatch(r"[\s,、の]*(?:in|of)?[\s,、の]*", text[first[1] : second[0]], re.IGNORECASE))


def leave_outside_seoul(dispatcher: CollectingDispatcher, tracker: Tracker, city: OutsideCity) -> list[EventType]:
    """Nothing outside Seoul is filed: the citizen hears where to turn, and the draft is dropped."""
    dispatcher.utter_message(response="utter_outside_seoul", city=city.label(language_of(tracker)))
    return [SlotSet(slot, None) for slot in REPORT_SLOTS] + [SlotSet("requested_slot", None)]


def checked_place(text: str, *, asked_once: bool) -> dict[str, Any]:
    """A findable place is kept whole; a vague one ("상계동", "우리 집 앞") earns one question for a landmark."""
    if not asked_once and is_vague_place(text):
        return {"place": None, "place_vague": text[:300] or None}
    return {"place": text[:300], "place_vague": None}


def read_back_answer(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """The answer to the read-back: yes files, "no" asks what to change, a correction changes what it names."""
    intent = intent_of(tracker)
    text = message_text(tracker)
    # "내용을 바꿀게요" may read as cancelling; naming a detail without "취소" is a correction.
    cancels = intent == "cancel_report" and (CANCEL_WORDS.search(text) or not named_slots(text))
    if cancels or (intent in COMMANDS and intent != "cancel_report"):
        return []  # a request of its own: the form steps aside and the rules answer it
    if intent != "affirm" and CANCEL_WORDS.search(text) and not named_slots(text):
        # "やっぱりやめます、取り消してください" read as a "no" still withdraws the draft.
        dispatcher.utter_message(response="utter_draft_discarded")
        return [SlotSet(slot, None) for slot in REPORT_SLOTS] + [SlotSet("requested_slot", None)]
    changes = corrections(tracker)
    # Candidates the NLU filled from this message go back unless the correction names them.
    unchanged = [slot for slot in tracker.slots_to_validate() if slot in DETAIL_SLOTS and slot not in changes]
    events: list[EventType] = [SlotSet(slot, previous_value(tracker, slot)) for slot in unchanged]
    if changes:
        for slot, value in changes.items():
            events += changed_slot(dispatcher, slot, value)
        return [*events, SlotSet("confirm_report", None), SlotSet("correction_requested", False)]
    if intent == "affirm" and tracker.get_slot("confirm_report") is True:
        return [*events, SlotSet("confirm_report", True), SlotSet("correction_requested", False)]
    if intent == "deny" or SAYS_WRONG.search(text):
        return [*events, SlotSet("confirm_report", None), SlotSet("correction_requested", True)]
    return events


def corrections(tracker: Tracker) -> dict[str, Any]:
    """Slot → new value (None: ask for it again) for what a message at the read-back corrects."""
    text = message_text(tracker)
    if text.startswith("/"):
        text = ""  # a button or a shared position: no words to read
    named = named_slots(text)
    if named:
        return {slot: named_value(tracker, slot, text) for slot in named}
    pending = bool(tracker.get_slot("correction_requested"))
    point = coordinates(tracker)
    location = geo.locate(*point) if point else None
    answers = pending or is_negation(text) or MORE_DETAIL.match(text) or intent_of(tracker) in ANSWERS
    if not (answers or location):
        return {}
    changes: dict[str, Any] = {}
    # Unasked, a gu or place counts only when the message is about nothing else ("구로구요", "3번 출구 앞이요").
    says_where = pending or is_negation(text) or not is_account(text, place_spans(tracker))
    if point and location:
        changes.update(district=location.gu_ko, place=gps_place(location, point))
    if entity_values(tracker, "district") and says_where:
        changes["district"] = entity_values(tracker, "district")[-1]
    if entity_values(tracker, "place") and says_where:
        changes["place"] = place_answer(text) if pending else entity_values(tracker, "place")[-1]
    if (pending or CATEGORY_CUE.search(text)) and category_in_words(text) and not changes:
        changes["category"] = category_in_words(text)
    unprompted_detail = not (SAYS_WRONG.search(text) or intent_of(tracker) == "deny")
    if not changes and is_account(text, []) and (pending or unprompted_detail):
        # After "what should I change?" an account replaces the description; otherwise it adds to it.
        current = tracker.get_slot("description") or ""
        changes["description"] = text if pending or not current else f"{current} / {text}"
    return changes


def named_value(tracker: Tracker, slot: str, text: str) -> Any:
    """The new value of a detail the message names, or None when the citizen still has to say it."""
    value = corrected_value(text, slot)
    if slot == "district":
        return (entity_values(tracker, "district") or [resolve_district(value or "")])[-1]
    if slot == "category":
        return category_in_words(value or "") or (entity_values(tracker, "category") or [None])[-1] if value else None
    return value


def changed_slot(dispatcher: CollectingDispatcher, slot: str, value: Any) -> list[EventType]:
    """The events that set one corrected detail, or clear it so that the form asks for it again."""
    if value is None:
        return [SlotSet(slot, None)] + ([SlotSet("place_vague", None)] if slot == "place" else [])
    if slot == "district" and not is_district(str(value)):
        dispatcher.utter_message(response="utter_unknown_district")
        return [SlotSet("district", None)]
    if slot == "category" and value not in CATEGORIES:
        return [SlotSet("category", None)]
    if slot == "place":
        return [SlotSet(name, new) for name, new in checked_place(str(value), asked_once=False).items()]
    return [SlotSet(slot, str(value)[:2000])]
