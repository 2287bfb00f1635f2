"""What the tracker tells the complaint form about the message in hand: its stage, words and earlier values."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from rasa_sdk import Tracker

from actions.context import verified_claims
from civic import geo
from civic.districts import DISTRICTS

REPORT_SLOTS = (
    "category",
    "district",
    "dong",
    "place",
    "place_vague",
    "description",
    "latitude",
    "longitude",
    "attachment_ids",
    "confirm_report",
    "correction_requested",
    "duplicate_of",
    "follow_duplicate",
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
# What a message at the read-back is read as when it is neither yes nor a request of its own.
ANSWERS = {"inform", "deny", "report_complaint", "out_of_scope", "nlu_fallback"}
# Messages that ask for something else: never a detail of the report, nor a correction of one.
COMMANDS = NOT_AN_ANSWER - {"affirm", "deny"} | {"list_polls", "vote", "poll_results", "create_poll"}
CANCEL_WORDS = re.compile(r"취소|취하|그만|cancel|withdraw|取り消|キャンセル|やめ", re.IGNORECASE)
# "I want to report illegal parking" names the problem but does not describe it.
BARE_REQUEST = re.compile(
    r"(신고|접수|민원).{0,6}"
    r"(하고\s*싶|할게|하려|해\s*주|할래|하고싶|원해|어떻게|할 수|가능|넣으려|넣고\s*싶|넣을게|올리려)"
    r"|\b(report|file|complain|make a complaint)\b.{0,20}$"
    r"|(通報|報告|申告|苦情|相談).{0,8}(したい|します|お願い|どう|できます|たいのですが|たいです)",
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


def what_and_where(tracker: Tracker) -> dict[str, Any]:
    """The report's category and location as civic takes them (file_case, find_duplicate)."""
    return {slot: tracker.get_slot(slot) for slot in ("category", "district", "dong", "place", "latitude", "longitude")}


def coordinates(tracker: Tracker) -> tuple[float, float] | None:
    metadata = verified_claims(tracker)  # photos and GPS only as the gateway signed them
    try:
        return float(metadata["latitude"]), float(metadata["longitude"])
    except (KeyError, TypeError, ValueError):
        return None


def gps_place(location: geo.Location, point: tuple[float, float]) -> str:
    """The coordinates locate the problem precisely; the dong names it for people."""
    return f"{location.dong_ko or location.gu_ko} (GPS {point[0]:.5f}, {point[1]:.5f})"


def stage(tracker: Tracker) -> str | None:
    """The question the message answers: a detail, the read-back ("confirm_report"), or None at the start."""
    requested = tracker.get_slot("requested_slot")
    return str(requested) if requested else None


def intent_of(tracker: Tracker) -> str | None:
    return (tracker.latest_message.get("intent") or {}).get("name")


def message_text(tracker: Tracker) -> str:
    return (tracker.latest_message.get("text") or "").strip()


def entity_values(tracker: Tracker, kind: str) -> list[Any]:
    return [e.get("value") for e in tracker.latest_message.get("entities", []) if e.get("entity") == kind]


def place_spans(tracker: Tracker) -> list[tuple[int, int]]:
    """Where the message names the district, dong or place: what is not an account of the problem."""
    kinds = {"district", "dong", "place"}
    entities = tracker.latest_message.get("entities", [])
    return [(int(e.get("start", 0)), int(e.get("end", 0))) for e in entities if e.get("entity") in kinds]


def previous_value(tracker: Tracker, slot: str) -> Any:
    """The slot's value before this message: what a candidate the message may not change goes back to."""
    user_turns = [i for i, e in enumerate(tracker.events) if e.get("event") == "user"]
    value = None
    for event in tracker.events[: user_turns[-1] if user_turns else len(tracker.events)]:
        if event.get("event") == "slot" and event.get("name") == slot:
            value = event.get("value")
        elif event.get("event") in ("restart", "session_started"):
            value = None
    return value


def may_change(tracker: Tracker, slot: str) -> bool:
    """Outside the read-back a message fills the detail asked, the district, and details still missing."""
    asked = stage(tracker)
    return asked is None or asked == slot or slot == "district" or previous_value(tracker, slot) is None
