"""The multi-turn conversation set (tests/dialogues/) against the real stack: 0.95 of each language files right."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bench.dialogue_eval import evaluate, failure_lines, rates
from tests.dialogues.schema import LANGUAGES, load_set
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e
MIN_RATE = 0.95


@pytest.mark.parametrize("language", LANGUAGES)
def test_conversations_end_with_the_right_case(language: str, stack: Stack, db: sessionmaker[Session]) -> None:
    outcomes = evaluate(load_set(languages=(language,)), stack.web_url, stack.rasa_url, db)
    rate = rates(outcomes)[language]
    assert rate["rate"] >= MIN_RATE, f"{language}: {rate}\n" + "\n".join(failure_lines(outcomes))
