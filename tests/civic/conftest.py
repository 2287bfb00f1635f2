"""Factories for civic tests: conversations and cases in the test's session."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from civic.cases import file_case
from civic.conversations import get_or_create_conversation
from civic.models import Case, Conversation

MakeConversation = Callable[..., Conversation]
MakeCase = Callable[..., Case]  # test modules spell this alias out: conftest is not importable


@pytest.fixture
def make_conversation(session: Session) -> MakeConversation:
    def make(channel: str = "telegram", language: str = "ko") -> Conversation:
        return get_or_create_conversation(session, channel=channel, external_id=uuid.uuid4().hex, language=language)

    return make


@pytest.fixture
def make_case(session: Session, make_conversation: MakeConversation) -> MakeCase:
    def make(with_conversation: bool = True, **overrides: Any) -> Case:
        fields: dict[str, Any] = {
            "category": "illegal_parking",
            "district": "마포구",
            "place": "합정역 7번 출구 앞",
            "description": "소화전 앞에 차가 서 있어요",
            "channel": "telegram",
        }
        if with_conversation and "conversation_id" not in overrides:
            fields["conversation_id"] = make_conversation(channel=fields["channel"]).id
        fields.update(overrides)
        return file_case(session, **fields)

    return make
