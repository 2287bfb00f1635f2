"""The gateway's turn token: what it signs is what the actions believe, and nothing else passes."""

from __future__ import annotations

import time

import pytest
from rasa_sdk import Tracker

from actions.context import caller_of
from bot.gateway import server_metadata
from civic.settings import get_settings
from civic.turn_tokens import TOKEN_FIELD, UnverifiedTurn, sign_turn, verify_turn

KEY = "k" * 16 + "ey-for-the-turn-token-tests"
SENDER = "telegram:424242"
FACTS = {"channel": "telegram", "external_id": "424242", "latitude": 37.5663, "attachment_ids": ["a1"]}


def verify(token: object, sender: str = SENDER, now: float | None = None) -> dict[str, object]:
    return verify_turn(token, sender=sender, key=KEY, max_age_seconds=300, now=now)


def test_a_signed_turn_gives_back_exactly_its_claims() -> None:
    claims = verify(sign_turn(FACTS, sender=SENDER, key=KEY))
    assert {name: claims[name] for name in FACTS} == FACTS
    assert claims["sender"] == SENDER


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "unsigned"),
        ("", "unsigned"),
        (12, "unsigned"),
        ("eyJjaGFubmVsIjoidGVsZWdyYW0ifQ.", "bad signature"),
        ("no-dot-at-all", "bad signature"),
    ],
)
def test_garbage_is_refused(token: object, reason: str) -> None:
    with pytest.raises(UnverifiedTurn) as refused:
        verify(token)
    assert refused.value.reason == reason


def test_an_edited_claim_breaks_the_signature() -> None:
    token = sign_turn(FACTS, sender=SENDER, key=KEY)
    payload, signature = token.split(".")
    other = sign_turn(FACTS | {"external_id": "1"}, sender=SENDER, key=KEY).split(".")[0]
    with pytest.raises(UnverifiedTurn, match="bad signature"):
        verify(f"{other}.{signature}")
    assert verify(f"{payload}.{signature}")["external_id"] == "424242"


def test_another_key_another_conversation_old_and_future_tokens_are_refused() -> None:
    now = time.time()
    with pytest.raises(UnverifiedTurn, match="bad signature"):
        verify(sign_turn(FACTS, sender=SENDER, key=KEY + "x"))
    with pytest.raises(UnverifiedTurn, match="another conversation"):
        verify(sign_turn(FACTS, sender=SENDER, key=KEY), sender="telegram:1")
    with pytest.raises(UnverifiedTurn, match="stale"):
        verify(sign_turn(FACTS, sender=SENDER, key=KEY, now=now - 301), now=now)
    with pytest.raises(UnverifiedTurn, match="future"):
        verify(sign_turn(FACTS, sender=SENDER, key=KEY, now=now + 120), now=now)
    assert verify(sign_turn(FACTS, sender=SENDER, key=KEY, now=now - 299), now=now)["channel"] == "telegram"


def tracker(sender: str, metadata: dict[str, object]) -> Tracker:
    latest = {"text": "네", "intent": {"name": "affirm"}, "entities": [], "metadata": metadata}
    return Tracker(sender, {}, latest, [], False, None, {}, "action_listen")


def test_actions_take_the_caller_from_the_token_not_from_the_plain_fields() -> None:
    signed = server_metadata(SENDER, FACTS)
    assert caller_of(tracker(SENDER, signed)).external_id == "424242"
    # The plain copy beside the token is for Rasa's components; rewriting it changes nobody's identity.
    rewritten = signed | {"external_id": "999999", "channel": "web"}
    caller = caller_of(tracker(SENDER, rewritten))
    assert (caller.channel, caller.external_id) == ("telegram", "424242")


def test_actions_refuse_metadata_without_a_token_outside_development() -> None:
    assert get_settings().environment == "test"
    with pytest.raises(UnverifiedTurn, match="unsigned"):
        caller_of(tracker(SENDER, dict(FACTS)))
    forged = {TOKEN_FIELD: sign_turn(FACTS, sender=SENDER, key="attacker's own key, long enough")}
    with pytest.raises(UnverifiedTurn, match="bad signature"):
        caller_of(tracker(SENDER, forged))
