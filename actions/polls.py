"""City polls in the chat: the open polls, one poll's ballot, a vote with a verified phone, results, proposals."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions.context import Caller, caller_of, in_session, language_of, latest_entity
from civic.conversations import get_or_create_conversation
from civic.db import utcnow
from civic.i18n import format_date
from civic.models import Citizen, Poll
from civic.phones import decrypt_phone
from civic.polls import (
    APPROVED,
    CLOSED,
    PollSummary,
    open_polls,
    poll_by_public_id,
    summarize,
    tally,
)
from civic.settings import get_settings
from civic.votes import VoteOutcome, VoteRequest, cast_votes

logger = logging.getLogger(__name__)

MAX_LISTED = 10
BAR_WIDTH = 10
# Proofs besides the phone that a chat transcript must not carry (a password) or cannot carry
# reliably (the QR link's token, a fresh position): these polls are voted on their web page.
PAGE_ONLY_VISIBILITIES = ("password", "qr", "gps")
# Channels whose adapter sets Conversation.citizen_id only from a number it verified itself, and what their
# unverified voters are told: Telegram's "share my number" button (accepted only for the sender's own
# contact); the web chat's "📞 Verify my number" form (an SMS code, checked by bot/channels/webchat/phone.py).
VERIFIED_PHONE_CHANNELS = {"telegram": "utter_verify_phone_to_vote", "web": "utter_verify_phone_to_vote_web"}
REFUSALS = {
    "not_open": "utter_vote_refused_not_open",
    "not_on_roll": "utter_vote_refused_not_on_roll",
    "bad_option": "utter_vote_refused_bad_option",
}


def shown(poll: Poll | None) -> bool:
    """Pending and rejected (citizen) polls are not public yet, whoever has their id."""
    return poll is not None and poll.status in (APPROVED, CLOSED)


def safe(value: str) -> str:
    # Rasa's response interpolator gives up on the whole response when a filled value contains
    # "0[" (it takes it for an unfilled placeholder), so a title like "2020[안]" would blank the reply.
    return value.replace("0[", "0［")


def local_time(moment: datetime, language: str) -> str:
    """4 December 2026 18:00 in Seoul time, the date written the citizen's way."""
    local = moment.astimezone(ZoneInfo(get_settings().timezone))
    return f"{format_date(local.date(), language)} {local:%H:%M}"


def vote_payload(public_id: str, option: int | None = None) -> str:
    entities: dict[str, Any] = {"poll_id": public_id}
    if option is not None:
        entities["option"] = option
    return "/vote" + json.dumps(entities, separators=(",", ":"))


def option_buttons(poll: PollSummary) -> list[dict[str, str]]:
    return [
        {"title": f"{position}. {label}", "payload": vote_payload(poll.public_id, position)}
        for position, label in poll.options
    ]


def page_url(public_id: str, language: str) -> str:
    """The poll's public page (webapp/polls.py), opened in the citizen's language."""
    return f"{get_settings().public_base_url.rstrip('/')}/polls/{public_id}?lang={language}"


def proof_url(public_id: str, receipt_id: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/api/polls/{public_id}/proof/inclusion?receipt={receipt_id}"


def result_lines(poll: PollSummary, counts: dict[int, int]) -> tuple[str, int]:
    """One line per option with a bar of ▇ and the share of the votes; and the total."""
    total = sum(counts.values())
    lines = []
    for position, label in poll.options:
        count = counts.get(position, 0)
        share = count / total if total else 0.0
        bar = "▇" * round(share * BAR_WIDTH) or ("▏" if count else "")  # a vote is never invisible
        lines.append(f"{position}. {label}\n" + " ".join(part for part in (bar, str(count), f"({share:.0%})") if part))
    return "\n".join(lines), total


def say_open_polls(dispatcher: CollectingDispatcher, polls: list[PollSummary], language: str) -> None:
    if not polls:
        dispatcher.utter_message(response="utter_no_open_polls")
        return
    lines = "\n".join(f"• {poll.title} — {local_time(poll.closes_at, language)}" for poll in polls)
    buttons = [{"title": poll.title, "payload": vote_payload(poll.public_id)} for poll in polls]
    dispatcher.utter_message(response="utter_open_polls", lines=safe(lines), buttons=buttons)


def say_poll(dispatcher: CollectingDispatcher, poll: PollSummary, language: str) -> None:
    """The ballot when open; otherwise when it opens or that it closed (with its results)."""
    values = {
        "title": safe(poll.title),
        "closes": local_time(poll.closes_at, language),
        "opens": local_time(poll.opens_at, language),
        "poll_id": poll.public_id,
    }
    if poll.is_open:
        description = f"\n{poll.description}" if poll.description else ""
        dispatcher.utter_message(
            response="utter_poll", description_line=safe(description), buttons=option_buttons(poll), **values
        )
        if poll.results_visible:
            dispatcher.utter_message(response="utter_poll_interim_results_offer", **values)
    elif poll.closed:
        dispatcher.utter_message(response="utter_poll_closed", **values)
    else:
        dispatcher.utter_message(response="utter_poll_not_yet_open", **values)


class ActionListPolls(Action):
    """Answers "what polls are open?": every open poll as a button that shows its ballot."""

    def name(self) -> str:
        return "action_list_polls"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = language_of(tracker)

        def read(session: Session) -> list[PollSummary]:
            now = utcnow()
            return [summarize(poll, now) for poll in open_polls(session, now)[:MAX_LISTED]]

        say_open_polls(dispatcher, await in_session(read), language)
        return [SlotSet("handoff_offered", False)]


class ActionShowPoll(Action):
    """A chosen poll (its button), or "vote" in words: the single open poll, else the list to choose from."""

    def name(self) -> str:
        return "action_show_poll"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = language_of(tracker)
        wanted = latest_entity(tracker, "poll_id")

        def read(session: Session) -> PollSummary | list[PollSummary] | None:
            now = utcnow()
            if wanted:
                poll = poll_by_public_id(session, wanted)
                return summarize(poll, now) if poll is not None and shown(poll) else None
            polls = open_polls(session, now)
            if len(polls) == 1:
                return summarize(polls[0], now)
            return [summarize(poll, now) for poll in polls[:MAX_LISTED]]

        found = await in_session(read)
        events: list[EventType] = [SlotSet("handoff_offered", False)]
        if found is None:
            dispatcher.utter_message(response="utter_poll_not_found")
        elif isinstance(found, list):
            say_open_polls(dispatcher, found, language)
        else:
            say_poll(dispatcher, found, language)
            events.append(SlotSet("poll_id", found.public_id))
        return events


@dataclass(frozen=True)
class CastResult:
    response: str
    values: dict[str, Any]
    buttons: list[dict[str, str]]


def cast_in_chat(session: Session, caller: Caller, public_id: str, option: int, language: str) -> CastResult:
    """Everything between the tapped option and the ballot box, in one transaction."""
    now = utcnow()
    poll = poll_by_public_id(session, public_id)
    if poll is None or not shown(poll):
        return CastResult("utter_poll_not_found", {}, [])
    view = summarize(poll, now)
    values: dict[str, Any] = {
        "title": safe(view.title),
        "closes": local_time(view.closes_at, language),
        "url": page_url(view.public_id, language),
    }
    if not view.is_open:
        return CastResult("utter_vote_refused_not_open", values, [])
    if view.visibility in PAGE_ONLY_VISIBILITIES:
        return CastResult(f"utter_vote_on_page_{view.visibility}", values, [])
    if caller.channel not in VERIFIED_PHONE_CHANNELS:
        return CastResult("utter_vote_on_web_page", values, [])
    conversation = get_or_create_conversation(session, channel=caller.channel, external_id=caller.external_id)
    citizen = session.get(Citizen, conversation.citizen_id) if conversation.citizen_id else None
    if citizen is None:
        # The options come again so that, once the number is verified, one tap votes.
        return CastResult(VERIFIED_PHONE_CHANNELS[caller.channel], values, option_buttons(view))
    phone = decrypt_phone(citizen.phone_ciphertext)
    [outcome] = cast_votes(session, poll.id, [VoteRequest(phone, option, channel=caller.channel)], now=now)
    return outcome_result(outcome, view, option, phone, values)


def outcome_result(
    outcome: VoteOutcome, poll: PollSummary, option: int, phone: str, values: dict[str, Any]
) -> CastResult:
    receipt = outcome.receipt
    if outcome.status == "refused":
        reason = outcome.reason or ""
        buttons = option_buttons(poll) if reason == "bad_option" else []
        return CastResult(REFUSALS.get(reason, "utter_vote_refused"), values | {"last4": phone[-4:]}, buttons)
    if receipt is None:  # already voted, but no signed checkpoint covers the ballot (not expected)
        return CastResult("utter_vote_already_plain", values, [])
    values = values | {
        "receipt_id": receipt.receipt_id,
        "leaf_index": receipt.leaf_index,
        "root_hash": str(receipt.checkpoint["root_hash"])[:16],
        "proof_url": proof_url(poll.public_id, receipt.receipt_id),
        "option_label": safe(dict(poll.options).get(option, str(option))),
    }
    return CastResult("utter_vote_accepted" if outcome.status == "accepted" else "utter_vote_already", values, [])


async def options_again(public_id: str) -> list[dict[str, str]]:
    """The ballot's buttons for the failure message: the gateway takes a tap only on the bot's latest buttons."""

    def read(session: Session) -> list[dict[str, str]]:
        poll = poll_by_public_id(session, public_id)
        return option_buttons(summarize(poll, utcnow())) if shown(poll) and poll is not None else []

    try:
        return await in_session(read)
    except Exception:  # the database that failed the vote may fail this too: the message still goes out
        logger.exception("options of poll %s unavailable after a failed vote", public_id)
        return []


class ActionCastVote(Action):
    """A tapped option: votes with the chat's verified number, or says where and how to vote instead."""

    def name(self) -> str:
        return "action_cast_vote"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = language_of(tracker)
        caller = caller_of(tracker)
        public_id = latest_entity(tracker, "poll_id")
        option = latest_entity(tracker, "option")
        if not public_id or not option or not option.isdigit():
            dispatcher.utter_message(response="utter_poll_not_found")
            return []
        try:
            result = await in_session(lambda s: cast_in_chat(s, caller, public_id, int(option), language))
        except Exception:
            # Nothing was stored (one transaction), and a second tap cannot count twice.
            logger.exception("vote in poll %s failed", public_id)
            dispatcher.utter_message(response="utter_vote_failed", buttons=await options_again(public_id))
            return [SlotSet("poll_id", public_id)]
        dispatcher.utter_message(response=result.response, buttons=result.buttons, **result.values)
        return [SlotSet("poll_id", public_id), SlotSet("handoff_offered", False)]


class ActionPollResults(Action):
    """Counts and shares when the poll shows them; otherwise when they will be shown."""

    def name(self) -> str:
        return "action_poll_results"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        language = language_of(tracker)
        # The button names the poll; typed "results" means the poll last shown, or the only open one.
        wanted = latest_entity(tracker, "poll_id") or tracker.get_slot("poll_id")

        def read(session: Session) -> tuple[PollSummary, dict[int, int] | None] | list[PollSummary] | None:
            now = utcnow()
            if wanted:
                poll = poll_by_public_id(session, str(wanted))
                if poll is None or not shown(poll):
                    return None
            else:
                polls = open_polls(session, now)
                if len(polls) != 1:
                    return [summarize(poll, now) for poll in polls[:MAX_LISTED]]
                poll = polls[0]
            view = summarize(poll, now)
            return view, (tally(session, poll) if view.results_visible else None)

        found = await in_session(read)
        if found is None:
            dispatcher.utter_message(response="utter_poll_not_found")
            return [SlotSet("handoff_offered", False)]
        if isinstance(found, list):
            say_open_polls(dispatcher, found, language)
            return [SlotSet("handoff_offered", False)]
        poll, counts = found
        values = {"title": safe(poll.title), "closes": local_time(poll.closes_at, language)}
        if counts is None:
            dispatcher.utter_message(response="utter_poll_results_hidden", **values)
        else:
            lines, total = result_lines(poll, counts)
            response = "utter_poll_results_final" if poll.closed else "utter_poll_results_interim"
            dispatcher.utter_message(response=response, lines=safe(lines), total=total, **values)
        return [SlotSet("poll_id", poll.public_id), SlotSet("handoff_offered", False)]
