"""THE case lifecycle: statuses, allowed transitions, the event log and the citizen's notice."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from civic.conversations import queue_on_transcript
from civic.db import utcnow
from civic.errors import InvalidTransition
from civic.fixed_question import ask_if_fixed
from civic.models import Case, CaseEvent, CaseFollower, Citizen, Conversation
from civic.notifications import status_text
from civic.outbox import enqueue
from civic.sms import queue_sms_to_citizen

__all__ = [
    "ALLOWED",
    "CaseStatus",
    "InvalidTransition",
    "log_case_event",
    "transition",
]


class CaseStatus(StrEnum):
    """Where a case stands; stored as its value in cases.status and case_events."""

    RECEIVED = "received"
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    REOPENED = "reopened"
    WITHDRAWN = "withdrawn"


S = CaseStatus
ALLOWED: dict[CaseStatus, frozenset[CaseStatus]] = {
    S.RECEIVED: frozenset({S.ACCEPTED, S.REJECTED, S.WITHDRAWN}),
    S.ACCEPTED: frozenset({S.ASSIGNED, S.REJECTED}),
    # A department may send a case back to the 120 operators when it is not theirs.
    S.ASSIGNED: frozenset({S.IN_PROGRESS, S.RESOLVED, S.REJECTED, S.ACCEPTED}),
    S.IN_PROGRESS: frozenset({S.RESOLVED, S.REJECTED}),
    S.RESOLVED: frozenset({S.REOPENED}),
    S.REJECTED: frozenset({S.REOPENED}),
    S.REOPENED: frozenset({S.ACCEPTED, S.ASSIGNED}),
    S.WITHDRAWN: frozenset(),
}


def log_case_event(
    session: Session,
    *,
    case: Case,
    to_status: str,
    actor: str,
    from_status: str | None = None,
    note: str | None = None,
) -> CaseEvent:
    """Append one row to the case's event log; the only writer of case_events."""
    # Through the relationship, a case filed in this flush and its first event go in one flush.
    event = CaseEvent(
        case=case,
        actor=actor,
        from_status=None if from_status is None else str(from_status),
        to_status=str(to_status),
        note=note,
        created_at=utcnow(),
    )
    session.add(event)
    session.flush()
    return event


def transition(
    session: Session,
    *,
    case: Case,
    to: CaseStatus,
    actor: str,
    note: str | None = None,
    notify: bool = True,
) -> CaseEvent:
    """Move `case` to `to` if ALLOWED, log the event and queue a notice to the citizen."""
    current = CaseStatus(case.status)
    to = CaseStatus(to)
    if to not in ALLOWED[current]:
        raise InvalidTransition(
            f"{case.number}: {current} → {to} is not allowed", current=str(current), requested=str(to)
        )
    event = log_case_event(session, case=case, from_status=current, to_status=to, actor=actor, note=note)
    case.status = to.value
    case.updated_at = event.created_at
    if notify:
        notify_citizen(session, case=case, event=event)
    session.flush()
    return event


def notify_citizen(session: Session, *, case: Case, event: CaseEvent) -> None:
    """Queue the notice of `event` to the case's conversation and its followers, once per conversation.

    Followers are the citizens of duplicates merged into the case; each is told in the language of their
    own report. A phone call is over by the time anything changes, so phone conversations are told by
    SMS to the caller's verified number (none when the caller withheld it).
    """
    recipients: list[tuple[int, str, str]] = []  # (conversation id, language, dedupe key)
    if case.conversation_id is not None:
        # The filer's key stays as it was before followers existed: queued notices keep deduplicating.
        recipients.append((case.conversation_id, case.language, f"case-event:{event.id}"))
    followers = session.execute(
        select(CaseFollower.conversation_id, CaseFollower.language)
        .where(CaseFollower.case_id == case.id)
        .order_by(CaseFollower.id)
    ).all()
    recipients += [
        (row.conversation_id, row.language, f"case-event:{event.id}:c{row.conversation_id}") for row in followers
    ]
    seen: set[int] = set()
    for conversation_id, lang, dedupe_key in recipients:
        if conversation_id in seen:
            continue
        seen.add(conversation_id)
        conversation = session.get(Conversation, conversation_id)
        if conversation is not None:
            text = status_text(session, case=case, status=event.to_status, note=event.note, lang=lang)
            buttons: list[dict[str, str]] = []
            if event.to_status == CaseStatus.RESOLVED:  # the public answer comes with "해결됐어요 / 아직이에요"
                text, buttons = ask_if_fixed(
                    session, case=case, event=event, conversation=conversation, lang=lang, text=text
                )
            _queue_notice(
                session,
                case=case,
                event=event,
                conversation=conversation,
                text=text,
                dedupe_key=dedupe_key,
                buttons=buttons,
            )


def _queue_notice(
    session: Session,
    *,
    case: Case,
    event: CaseEvent,
    conversation: Conversation,
    text: str,
    dedupe_key: str,
    buttons: list[dict[str, str]],
) -> None:
    if conversation.channel == "phone":
        citizen = session.get(Citizen, conversation.citizen_id) if conversation.citizen_id else None
        if citizen is not None:
            queue_sms_to_citizen(
                session,
                conversation_id=conversation.id,
                citizen=citizen,
                text=text,
                kind="case_status",
                dedupe_key=dedupe_key,
            )
        return
    data = {"case_number": case.number, "status": event.to_status, "event_id": event.id}
    if buttons:
        # A notice to tap on is the bot's latest turn on the transcript, with its buttons: the web chat shows it
        # from there, Telegram sends it as an inline keyboard pointing at it, and the gateway takes a tap on it as
        # it takes the bot's own buttons.
        queue_on_transcript(
            session,
            conversation=conversation,
            sender="bot",
            kind="case_status",
            text=text,
            dedupe_key=dedupe_key,
            transcript_data={"buttons": buttons},
            outbox_data=data | {"buttons": buttons},
        )
        return
    enqueue(
        session,
        conversation_id=conversation.id,
        channel=conversation.channel,
        kind="case_status",
        text=text,
        data=data,
        dedupe_key=dedupe_key,
    )


def announce_filing(session: Session, *, case: Case) -> None:
    """Queue the "received" notice with the case number where the bot's answer does not stay on screen.

    Chat channels keep the bot's answer in the chat; a caller only heard it, so the number also goes by SMS.
    """
    conversation = session.get(Conversation, case.conversation_id) if case.conversation_id else None
    if conversation is None or conversation.channel != "phone":
        return
    first = next((e for e in case.events if e.to_status == CaseStatus.RECEIVED), None)
    if first is not None:
        notify_citizen(session, case=case, event=first)
