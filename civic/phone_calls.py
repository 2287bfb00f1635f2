"""Calls to the 120 line and the report drafts callers leave: one row per call, one draft per conversation."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from civic.conversations import get_or_create_conversation
from civic.db import utcnow
from civic.errors import InvalidPhone
from civic.models import PhoneCall, ReportDraft
from civic.phones import get_or_create_citizen

ACTIVE, QUEUED, BRIDGED, ENDED = "active", "queued", "bridged", "ended"
# The report slots that make a draft worth an operator's look when the caller is gone.
REPORT_SLOTS = ("category", "district", "dong", "place", "description", "latitude", "longitude")


def get_call(session: Session, call_sid: str, *, for_update: bool = False) -> PhoneCall | None:
    query = select(PhoneCall).where(PhoneCall.call_sid == call_sid)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def start_call(session: Session, *, call_sid: str, caller: str | None, expectation: dict[str, Any]) -> PhoneCall:
    """The call's row, created on Twilio's first webhook; a retried webhook gets the same row back.

    The caller's number becomes the conversation's verified phone (it is what Twilio reports as From);
    a withheld or malformed number leaves the call anonymous.
    """
    existing = get_call(session, call_sid)
    if existing is not None:
        return existing
    conversation = get_or_create_conversation(session, channel="phone", external_id=call_sid, language="ko")
    if caller and conversation.citizen_id is None:
        # "anonymous", "+266696687" (withheld), a SIP URI: no number to verify.
        with contextlib.suppress(InvalidPhone):
            conversation.citizen_id = get_or_create_citizen(session, phone=caller).id
    now = utcnow()
    call = PhoneCall(
        call_sid=call_sid,
        conversation_id=conversation.id,
        status=ACTIVE,
        turn=0,
        expectation=expectation,
        silences=0,
        misses=0,
        started_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(call)
    except IntegrityError:  # the same webhook, retried, on another worker
        found = get_call(session, call_sid)
        if found is None:
            raise
        return found
    return call


def end_call(session: Session, call: PhoneCall, reason: str) -> bool:
    """Marks the call over; False when it already was (Twilio's status callback and the stream both tell)."""
    if call.status == ENDED:
        return False
    call.status = ENDED
    call.end_reason = reason[:32]
    call.ended_at = call.updated_at = utcnow()
    return True


def queue_for_operator(session: Session, call: PhoneCall) -> None:
    call.status = QUEUED
    call.updated_at = utcnow()


def bridge_to_operator(session: Session, call: PhoneCall) -> None:
    """The caller left Twilio's queue for an operator's desk line."""
    call.status = BRIDGED
    call.updated_at = utcnow()


def keep_draft(
    session: Session, *, conversation_id: int, channel: str, slots: dict[str, Any], reason: str
) -> ReportDraft:
    """Keeps what a citizen had said of an unfiled report; a second call for the same conversation updates it."""
    filled = {name: slots[name] for name in REPORT_SLOTS if slots.get(name) not in (None, "")}
    now = utcnow()
    draft = session.execute(
        select(ReportDraft).where(ReportDraft.conversation_id == conversation_id)
    ).scalar_one_or_none()
    if draft is None:
        draft = ReportDraft(
            conversation_id=conversation_id,
            channel=channel,
            slots=filled,
            reason=reason[:32],
            status="open",
            created_at=now,
            updated_at=now,
        )
        session.add(draft)
    else:
        draft.slots, draft.reason, draft.updated_at = filled, reason[:32], now
    session.flush()
    return draft


def open_drafts(session: Session, limit: int = 100) -> list[ReportDraft]:
    """Drafts waiting for an operator, oldest first."""
    query = select(ReportDraft).where(ReportDraft.status == "open").order_by(ReportDraft.created_at).limit(limit)
    return list(session.execute(query).scalars())


def has_report_content(slots: dict[str, Any]) -> bool:
    return any(slots.get(name) not in (None, "") for name in REPORT_SLOTS)
