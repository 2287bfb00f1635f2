"""Polls in the chat: listing, a poll's ballot, votes by verified and unverified citizens, results."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import actions.poll_proposals
import actions.polls
from actions.polls import ActionCastVote, ActionListPolls, ActionPollResults, ActionShowPoll
from civic import polls
from civic.conversations import get_or_create_conversation
from civic.db import session_scope, utcnow
from civic.models import Ballot, Poll
from civic.phones import get_or_create_citizen
from civic.polls import NewPoll
from civic.settings import get_settings
from tests.actions.conftest import DOMAIN, make_tracker

# Distinct numbers within a run (citizens stay in the shared test database between tests).
_numbers = itertools.count(uuid.uuid4().int % 900_000)


def new_phone() -> str:
    return f"+821077{next(_numbers):06d}"


def make_poll(session_factory: sessionmaker[Session], created_by: str = "action-tests", **overrides: Any) -> Poll:
    now = utcnow()
    values: dict[str, Any] = {
        "title": f"한강공원 야간 개장 연장 {uuid.uuid4().hex[:6]}",
        "description": "여름철 한강공원 매점과 주차장 운영 시간을 23시까지 늘리는 안입니다.",
        "options": ["찬성", "반대", "잘 모르겠다"],
        "opens_at": now - timedelta(minutes=5),
        "closes_at": now + timedelta(days=7),
    }
    with session_scope(session_factory) as session:
        poll, _ = polls.create_poll(session, NewPoll(**(values | overrides)), kind="policy", created_by=created_by)
        return poll


def verified_telegram_chat(session_factory: sessionmaker[Session], phone: str | None = None) -> str:
    """A Telegram chat whose citizen shared their own contact (what bot/channels/telegram/handlers.py does)."""
    chat_id = str(uuid.uuid4().int % 10**10)
    with session_scope(session_factory) as session:
        citizen = get_or_create_citizen(session, phone=phone or new_phone())
        conversation = get_or_create_conversation(session, channel="telegram", external_id=chat_id)
        conversation.citizen_id = citizen.id
    return chat_id


def tap(poll: Poll, option: int | None, *, channel: str, chat_id: str, language: str = "ko") -> Any:
    entities: list[dict[str, Any]] = [{"entity": "poll_id", "value": poll.public_id}]
    if option is not None:
        entities.append({"entity": "option", "value": option})
    payload = actions.polls.vote_payload(poll.public_id, option)
    return make_tracker(
        sender=f"{channel}:{chat_id}",
        text=payload,
        intent="vote",
        entities=entities,
        slots={"language": language},
        metadata={"channel": channel, "external_id": chat_id},
    )


async def run(action: Any, tracker: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, DOMAIN)
    return dispatcher.messages, events


def ballots(session_factory: sessionmaker[Session], poll: Poll) -> int:
    with session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(Ballot).where(Ballot.poll_id == poll.id)) or 0)


@pytest.fixture
def only_polls_by(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Limits "open polls" to those one test made: other tests share the database and leave polls open."""

    def limit(created_by: str) -> None:
        monkeypatch.setattr(
            actions.polls,
            "open_polls",
            lambda session, now=None: [p for p in polls.open_polls(session, now) if p.created_by == created_by],
        )

    return limit


async def test_open_polls_are_listed_as_buttons(session_factory: sessionmaker[Session], only_polls_by: Any) -> None:
    poll = make_poll(session_factory, created_by="listed-as-buttons")
    only_polls_by("listed-as-buttons")  # polls other modules left open would push it past the listed ten
    [message], _ = await run(ActionListPolls(), make_tracker(text="투표 목록", intent="list_polls"))
    assert message["response"] == "utter_open_polls"
    assert {"title": poll.title, "payload": f'/vote{{"poll_id":"{poll.public_id}"}}'} in message["buttons"]
    assert f"• {poll.title} — " in message["lines"]


async def test_no_open_poll_is_said_so(session_factory: sessionmaker[Session], only_polls_by: Any) -> None:
    only_polls_by("nobody")
    [message], _ = await run(ActionListPolls(), make_tracker(text="what polls are open?", intent="list_polls"))
    assert message["response"] == "utter_no_open_polls"


async def test_a_chosen_poll_shows_its_options_as_buttons(session_factory: sessionmaker[Session]) -> None:
    poll = make_poll(session_factory)
    messages, events = await run(ActionShowPoll(), tap(poll, None, channel="web", chat_id="w1"))
    [message] = messages  # results are hidden until closing: no results button
    assert message["response"] == "utter_poll" and message["title"] == poll.title
    assert "23시" in message["description_line"]
    assert [b["payload"] for b in message["buttons"]] == [
        f'/vote{{"poll_id":"{poll.public_id}","option":{n}}}' for n in (1, 2, 3)
    ]
    assert [json.loads(b["payload"][len("/vote") :])["option"] for b in message["buttons"]] == [1, 2, 3]
    assert message["buttons"][0]["title"] == "1. 찬성"
    assert {"event": "slot", "timestamp": None, "name": "poll_id", "value": poll.public_id} in events


async def test_interim_results_are_offered_with_the_ballot(session_factory: sessionmaker[Session]) -> None:
    poll = make_poll(session_factory, show_interim_results=True)
    messages, _ = await run(ActionShowPoll(), tap(poll, None, channel="web", chat_id="w2"))
    assert [m["response"] for m in messages] == ["utter_poll", "utter_poll_interim_results_offer"]
    assert messages[1]["poll_id"] == poll.public_id


async def test_vote_in_words_shows_the_only_open_poll(
    session_factory: sessionmaker[Session], only_polls_by: Any
) -> None:
    poll = make_poll(session_factory, created_by="only-one")
    only_polls_by("only-one")
    tracker = make_tracker(text="2번에 투표할게요", intent="vote")
    [message], _ = await run(ActionShowPoll(), tracker)
    assert message["response"] == "utter_poll" and message["title"] == poll.title

    make_poll(session_factory, created_by="only-one")
    [message], _ = await run(ActionShowPoll(), tracker)
    assert message["response"] == "utter_open_polls" and len(message["buttons"]) == 2


async def test_a_verified_telegram_citizen_votes_and_gets_a_receipt(session_factory: sessionmaker[Session]) -> None:
    poll = make_poll(session_factory)
    chat = verified_telegram_chat(session_factory)
    [message], _ = await run(ActionCastVote(), tap(poll, 2, channel="telegram", chat_id=chat, language="en"))
    assert message["response"] == "utter_vote_accepted", message
    assert message["option_label"] == "반대" and message["leaf_index"] == 0
    assert len(message["root_hash"]) == 16 and int(message["root_hash"], 16) >= 0
    base = get_settings().public_base_url.rstrip("/")
    assert message["proof_url"] == (
        f"{base}/api/polls/{poll.public_id}/proof/inclusion?receipt={message['receipt_id']}"
    )
    with session_factory() as session:
        ballot = session.execute(select(Ballot).where(Ballot.poll_id == poll.id)).scalar_one()
        assert (ballot.receipt_id, ballot.option_position, ballot.channel) == (message["receipt_id"], 2, "telegram")

    # A second tap, or another option: the first ballot stands and its receipt is repeated.
    [again], _ = await run(ActionCastVote(), tap(poll, 1, channel="telegram", chat_id=chat))
    assert again["response"] == "utter_vote_already" and again["receipt_id"] == message["receipt_id"]
    assert ballots(session_factory, poll) == 1


async def test_a_vote_that_failed_offers_the_options_again(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure says "tap your choice again": the gateway accepts only the latest buttons, so they come along."""
    poll = make_poll(session_factory)
    chat = verified_telegram_chat(session_factory)

    cast_votes, failures = actions.polls.cast_votes, iter([RuntimeError("could not serialize access")])

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        for error in failures:
            raise error
        return cast_votes(*args, **kwargs)

    monkeypatch.setattr(actions.polls, "cast_votes", failing_once)
    [message], _ = await run(ActionCastVote(), tap(poll, 2, channel="telegram", chat_id=chat))
    assert message["response"] == "utter_vote_failed"
    expected = [actions.polls.vote_payload(poll.public_id, position) for position in (1, 2, 3)]
    assert [button["payload"] for button in message["buttons"]] == expected
    assert ballots(session_factory, poll) == 0

    [again], _ = await run(ActionCastVote(), tap(poll, 2, channel="telegram", chat_id=chat))
    assert again["response"] == "utter_vote_accepted"


async def test_a_number_off_the_roll_is_refused(session_factory: sessionmaker[Session]) -> None:
    poll = make_poll(session_factory, visibility="roll", roll_phones=(new_phone(),))
    voter = new_phone()
    chat = verified_telegram_chat(session_factory, voter)
    [message], _ = await run(ActionCastVote(), tap(poll, 1, channel="telegram", chat_id=chat))
    assert message["response"] == "utter_vote_refused_not_on_roll" and message["last4"] == voter[-4:]
    assert ballots(session_factory, poll) == 0


async def test_a_number_on_the_roll_votes_in_the_chat(session_factory: sessionmaker[Session]) -> None:
    voter = new_phone()
    poll = make_poll(session_factory, visibility="roll", roll_phones=(voter,))
    chat = verified_telegram_chat(session_factory, voter)
    [message], _ = await run(ActionCastVote(), tap(poll, 3, channel="telegram", chat_id=chat))
    assert message["response"] == "utter_vote_accepted"


async def test_an_unverified_telegram_citizen_is_asked_to_share_their_number(
    session_factory: sessionmaker[Session],
) -> None:
    poll = make_poll(session_factory)
    [message], _ = await run(ActionCastVote(), tap(poll, 1, channel="telegram", chat_id="555000111"))
    assert message["response"] == "utter_verify_phone_to_vote"
    # The options come again, so one tap votes once the number is shared.
    assert len(message["buttons"]) == 3 and message["buttons"][0]["payload"].endswith('"option":1}')
    assert ballots(session_factory, poll) == 0


def verified_web_chat(session_factory: sessionmaker[Session], phone: str | None = None) -> str:
    """A web chat whose citizen entered an SMS code in "📞 Verify my number" (bot/channels/webchat/phone.py)."""
    external_id = uuid.uuid4().hex
    with session_scope(session_factory) as session:
        citizen = get_or_create_citizen(session, phone=phone or new_phone())
        conversation = get_or_create_conversation(session, channel="web", external_id=external_id)
        conversation.citizen_id = citizen.id
    return external_id


async def test_a_verified_web_chat_citizen_votes_in_the_chat(session_factory: sessionmaker[Session]) -> None:
    poll = make_poll(session_factory)
    chat = verified_web_chat(session_factory)
    [message], _ = await run(ActionCastVote(), tap(poll, 1, channel="web", chat_id=chat, language="ja"))
    assert message["response"] == "utter_vote_accepted", message
    assert message["option_label"] == "찬성" and message["buttons"] == []
    with session_factory() as session:
        ballot = session.execute(select(Ballot).where(Ballot.poll_id == poll.id)).scalar_one()
        assert (ballot.receipt_id, ballot.option_position, ballot.channel) == (message["receipt_id"], 1, "web")

    [again], _ = await run(ActionCastVote(), tap(poll, 2, channel="web", chat_id=chat))
    assert again["response"] == "utter_vote_already" and again["receipt_id"] == message["receipt_id"]
    assert ballots(session_factory, poll) == 1


async def test_one_number_votes_once_across_telegram_and_the_web_chat(session_factory: sessionmaker[Session]) -> None:
    poll = make_poll(session_factory)
    phone = new_phone()
    [first], _ = await run(
        ActionCastVote(), tap(poll, 1, channel="telegram", chat_id=verified_telegram_chat(session_factory, phone))
    )
    [second], _ = await run(
        ActionCastVote(), tap(poll, 2, channel="web", chat_id=verified_web_chat(session_factory, phone))
    )
    assert (first["response"], second["response"]) == ("utter_vote_accepted", "utter_vote_already")
    assert second["receipt_id"] == first["receipt_id"] and ballots(session_factory, poll) == 1


async def test_an_unverified_web_chat_citizen_is_asked_to_verify_their_number(
    session_factory: sessionmaker[Session],
) -> None:
    poll = make_poll(session_factory)
    [message], _ = await run(ActionCastVote(), tap(poll, 2, channel="web", chat_id=uuid.uuid4().hex))
    assert message["response"] == "utter_verify_phone_to_vote_web"
    # The options come again, so one tap votes once the number is verified below the chat.
    assert [b["payload"] for b in message["buttons"]] == [
        f'/vote{{"poll_id":"{poll.public_id}","option":{n}}}' for n in (1, 2, 3)
    ]
    assert ballots(session_factory, poll) == 0


async def test_a_rest_client_is_linked_to_the_voting_page(session_factory: sessionmaker[Session]) -> None:
    poll = make_poll(session_factory)
    tracker = make_tracker(
        sender="rasa-shell-1",
        text=actions.polls.vote_payload(poll.public_id, 1),
        intent="vote",
        entities=[{"entity": "poll_id", "value": poll.public_id}, {"entity": "option", "value": 1}],
    )
    [message], _ = await run(ActionCastVote(), tracker)
    assert message["response"] == "utter_vote_on_web_page" and message["buttons"] == []
    assert message["url"] == f"{get_settings().public_base_url.rstrip('/')}/polls/{poll.public_id}?lang=ko"
    assert ballots(session_factory, poll) == 0


async def test_password_polls_are_voted_on_their_page_even_when_verified(
    session_factory: sessionmaker[Session],
) -> None:
    poll = make_poll(session_factory, visibility="password", password="hangang-2026")
    chat = verified_telegram_chat(session_factory)
    [message], _ = await run(ActionCastVote(), tap(poll, 1, channel="telegram", chat_id=chat))
    assert message["response"] == "utter_vote_on_page_password" and f"/polls/{poll.public_id}?" in message["url"]
    web = verified_web_chat(session_factory)
    [on_web], _ = await run(ActionCastVote(), tap(poll, 1, channel="web", chat_id=web))
    assert on_web["response"] == "utter_vote_on_page_password"
    assert ballots(session_factory, poll) == 0


async def test_a_closed_poll_takes_no_vote_and_shows_its_results(session_factory: sessionmaker[Session]) -> None:
    now = utcnow()
    poll = make_poll(session_factory, opens_at=now - timedelta(days=8), closes_at=now - timedelta(days=1))
    chat = verified_telegram_chat(session_factory)
    [message], _ = await run(ActionCastVote(), tap(poll, 1, channel="telegram", chat_id=chat))
    assert message["response"] == "utter_vote_refused_not_open"
    [shown], _ = await run(ActionShowPoll(), tap(poll, None, channel="telegram", chat_id=chat))
    assert shown["response"] == "utter_poll_closed" and shown["poll_id"] == poll.public_id


async def test_results_are_hidden_until_the_poll_closes(session_factory: sessionmaker[Session]) -> None:
    poll = make_poll(session_factory)
    tracker = make_tracker(text="결과", intent="poll_results", slots={"poll_id": poll.public_id})
    [message], _ = await run(ActionPollResults(), tracker)
    assert message["response"] == "utter_poll_results_hidden" and message["title"] == poll.title
    assert "lines" not in message


async def test_visible_results_are_counts_shares_and_bars(session_factory: sessionmaker[Session]) -> None:
    poll = make_poll(session_factory, show_interim_results=True)
    for option in (1, 1, 1, 2):
        chat = verified_telegram_chat(session_factory)
        [voted], _ = await run(ActionCastVote(), tap(poll, option, channel="telegram", chat_id=chat))
        assert voted["response"] == "utter_vote_accepted"
    button = make_tracker(
        text=f'/poll_results{{"poll_id":"{poll.public_id}"}}',
        intent="poll_results",
        entities=[{"entity": "poll_id", "value": poll.public_id}],
    )
    [message], _ = await run(ActionPollResults(), button)
    assert message["response"] == "utter_poll_results_interim" and message["total"] == 4
    assert message["lines"].split("\n") == [
        "1. 찬성",
        "▇▇▇▇▇▇▇▇ 3 (75%)",
        "2. 반대",
        "▇▇ 1 (25%)",
        "3. 잘 모르겠다",
        "0 (0%)",
    ]


async def test_an_unknown_poll_is_not_found(session_factory: sessionmaker[Session]) -> None:
    tracker = make_tracker(
        text='/vote{"poll_id":"nope","option":1}',
        intent="vote",
        entities=[{"entity": "poll_id", "value": "nope"}, {"entity": "option", "value": 1}],
        metadata={"channel": "telegram", "external_id": "1"},
    )
    [message], _ = await run(ActionCastVote(), tracker)
    assert message["response"] == "utter_poll_not_found"


def test_options_are_split_on_commas_and_lines_without_list_markers() -> None:
    assert actions.poll_proposals.parse_options("찬성, 반대，잘 모르겠다") == ["찬성", "반대", "잘 모르겠다"]
    assert actions.poll_proposals.parse_options("1. 月曜日\n2. 水曜日\n\n3) 金曜日") == ["月曜日", "水曜日", "金曜日"]
    assert actions.poll_proposals.parse_options("• yes\n• no") == ["yes", "no"]
    assert actions.poll_proposals.parse_options("찬성") is None  # one option is no choice
    assert actions.poll_proposals.parse_options("찬성, 찬성") is None
    assert actions.poll_proposals.parse_options(", ".join(f"안 {n}" for n in range(21))) is None
    assert actions.poll_proposals.parse_options(f"{'가' * 101}, 나") is None


def test_days_are_the_first_number_or_a_week() -> None:
    assert [actions.poll_proposals.parse_days(t) for t in ("7", "10일", "14 days", "７日間", "일주일", "a week")] == [
        7,
        10,
        14,
        7,
        7,
        7,
    ]
    assert [actions.poll_proposals.parse_days(t) for t in ("0", "31", "soon", "")] == [None, None, None, None]


def form_tracker(requested: str, text: str, intent: str = "inform", **slots: Any) -> Any:
    return make_tracker(
        sender="telegram:424242",
        text=text,
        intent=intent,
        slots={"requested_slot": requested, **slots},
        metadata={"channel": "telegram", "external_id": "424242"},
        active_loop="poll_form",
    )


async def test_the_proposal_form_takes_answers_as_typed_and_checks_them() -> None:
    form = actions.poll_proposals.ValidatePollForm()
    dispatcher = CollectingDispatcher()
    tracker = form_tracker("poll_options", "찬성, 반대")
    assert await form.extract_poll_options(dispatcher, tracker, DOMAIN) == {"poll_options": "찬성, 반대"}
    assert await form.extract_poll_title(dispatcher, tracker, DOMAIN) == {}  # not the question asked
    assert form.validate_poll_options("찬성, 반대", dispatcher, tracker, DOMAIN) == {"poll_options": "• 찬성\n• 반대"}
    assert form.validate_poll_options("찬성", dispatcher, tracker, DOMAIN) == {"poll_options": None}
    assert dispatcher.messages[-1]["response"] == "utter_poll_options_invalid"
    assert form.validate_poll_days("2주 말고 10일", dispatcher, tracker, DOMAIN) == {"poll_days": "2"}
    cancel = form_tracker("poll_title", "취소할래요", intent="cancel_report")
    assert await form.extract_poll_title(dispatcher, cancel, DOMAIN) == {}
    button = form_tracker("poll_title", "/affirm", intent="affirm")
    assert await form.extract_poll_title(dispatcher, button, DOMAIN) == {}
    maybe = form_tracker("confirm_poll", "음 글쎄요", intent="out_of_scope")
    assert await form.extract_confirm_poll(dispatcher, maybe, DOMAIN) == {"confirm_poll": False}
    yes = form_tracker("confirm_poll", "네", intent="affirm")
    assert await form.extract_confirm_poll(dispatcher, yes, DOMAIN) == {"confirm_poll": True}


async def test_a_confirmed_proposal_waits_for_moderation(session_factory: sessionmaker[Session]) -> None:
    title = f"공원 놀이터에 그늘막을 설치할까요? {uuid.uuid4().hex[:6]}"
    slots = {"poll_title": title, "poll_options": "• 찬성\n• 반대", "poll_days": "7", "confirm_poll": True}
    messages, events = await run(
        actions.poll_proposals.ActionSubmitPoll(), form_tracker("", "네", intent="affirm", **slots)
    )
    assert messages[0]["response"] == "utter_poll_sent_for_moderation" and messages[0]["title"] == title
    assert {e["name"]: e["value"] for e in events} == dict.fromkeys(actions.poll_proposals.PROPOSAL_SLOTS)
    with session_factory() as session:
        poll = session.execute(select(Poll).where(Poll.title == title)).scalar_one()
        assert (poll.kind, poll.status, poll.created_by) == ("citizen", "pending", "telegram:424242")
        assert [o.label for o in poll.options] == ["찬성", "반대"]
        assert timedelta(days=7) - (poll.closes_at - poll.opens_at) < timedelta(seconds=1)
        assert poll.id not in [p.id for p in polls.open_polls(session)]  # not before the city approves it


async def test_a_declined_proposal_sends_nothing(session_factory: sessionmaker[Session]) -> None:
    title = f"보내지 않을 투표 {uuid.uuid4().hex[:6]}"
    slots = {"poll_title": title, "poll_options": "• 예\n• 아니요", "poll_days": "3", "confirm_poll": False}
    messages, _ = await run(
        actions.poll_proposals.ActionSubmitPoll(), form_tracker("", "아니요", intent="deny", **slots)
    )
    assert messages[0]["response"] == "utter_poll_draft_discarded"
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Poll).where(Poll.title == title)) == 0


async def test_one_author_cannot_flood_the_moderation_queue(session_factory: sessionmaker[Session]) -> None:
    author = f"{uuid.uuid4().int % 10**9}"
    responses = []
    for n in range(polls.MAX_PENDING_PROPOSALS + 1):
        tracker = make_tracker(
            sender=f"telegram:{author}",
            text="네",
            intent="affirm",
            slots={
                "poll_title": f"제안 {n} {author}",
                "poll_options": "• 찬성\n• 반대",
                "poll_days": "7",
                "confirm_poll": True,
            },
            metadata={"channel": "telegram", "external_id": author},
        )
        messages, _ = await run(actions.poll_proposals.ActionSubmitPoll(), tracker)
        responses.append(messages[0]["response"])
    assert responses == ["utter_poll_sent_for_moderation"] * polls.MAX_PENDING_PROPOSALS + [
        "utter_poll_too_many_pending"
    ]
    with session_factory() as session:
        pending = session.execute(select(Poll).where(Poll.created_by == f"telegram:{author}")).scalars().all()
        assert len(pending) == polls.MAX_PENDING_PROPOSALS
