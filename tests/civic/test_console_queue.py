"""The operators' queue: new cases, hand-off requests and unfinished reports, oldest first."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from civic.console_queue import queue_version, waiting
from civic.conversations import request_handoff
from civic.db import utcnow
from civic.models import Case, Conversation
from civic.phone_calls import keep_draft, queue_for_operator, start_call
from civic.workflow import CaseStatus, transition

MakeCase = Callable[..., Case]
MakeConversation = Callable[..., Conversation]


def test_the_queue_holds_new_cases_handoffs_and_drafts_oldest_first(
    session: Session, make_case: MakeCase, make_conversation: MakeConversation
) -> None:
    now = utcnow()
    case = make_case(description="<b>소화전</b> 앞 주차")
    case.created_at = now - timedelta(minutes=3)
    chat = make_conversation(channel="web")
    request_handoff(session, conversation=chat, reason="두 번 못 알아들음")
    chat.handoff_requested_at = now - timedelta(minutes=5)
    call = start_call(session, call_sid="CA" + uuid.uuid4().hex, caller="+821012345678", expectation={})
    session.flush()
    caller = session.get(Conversation, call.conversation_id)
    assert caller is not None
    request_handoff(session, conversation=caller, reason="phone: caller_pressed_0")
    queue_for_operator(session, call)
    caller.handoff_requested_at = now - timedelta(minutes=1)
    draft = keep_draft(
        session, conversation_id=caller.id, channel="phone", slots={"category": "noise"}, reason="hangup"
    )
    draft.created_at = now - timedelta(minutes=2)
    session.flush()

    mine = {(item.kind, item.id): item for item in waiting(session)}
    ours = [
        mine[("handoff", chat.id)],
        mine[("case", case.id)],
        mine[("draft", draft.id)],
        mine[("handoff", caller.id)],
    ]
    assert [item.since for item in ours] == sorted(item.since for item in ours)
    assert [item.kind for item in waiting(session) if item in ours] == ["handoff", "case", "draft", "handoff"]
    assert mine[("case", case.id)].title == case.number
    assert mine[("case", case.id)].detail == "<b>소화전</b> 앞 주차"  # raw: the console escapes it
    assert mine[("handoff", caller.id)].title == "caller in the phone queue"
    assert mine[("draft", draft.id)].detail == "category: noise"
    assert mine[("case", case.id)].waiting_seconds(now) == 180


def test_the_version_changes_when_the_queue_does(session: Session, make_case: MakeCase) -> None:
    before = queue_version(session)
    case = make_case()
    session.flush()
    with_case = queue_version(session)
    assert with_case != before
    assert queue_version(session) == with_case  # nothing changed, nothing to push
    transition(session, case=case, to=CaseStatus.ACCEPTED, actor="operator:1")
    assert queue_version(session) != with_case
