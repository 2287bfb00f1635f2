"""The 120 operators' queue: new cases, citizens waiting for a human, and reports callers left unfinished."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from civic.models import Case, Conversation, PhoneCall, ReportDraft

Kind = Literal["case", "handoff", "draft"]
QUEUE_LIMIT = 200


@dataclass(frozen=True)
class QueueItem:
    """One thing waiting for an operator, and since when."""

    kind: Kind
    id: int
    since: datetime
    channel: str
    title: str  # a case number, or the conversation's channel and reason
    detail: str  # what the citizen said, as they said it (rendered escaped by the console)
    conversation_id: int | None

    def waiting_seconds(self, now: datetime) -> int:
        return max(0, int((now - self.since).total_seconds()))

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "since": self.since.isoformat(),
            "waiting_seconds": self.waiting_seconds(now),
            "channel": self.channel,
            "title": self.title,
            "detail": self.detail,
            "conversation_id": self.conversation_id,
        }


# New cases, and cases a citizen said were still not fixed after two reopenings (civic.feedback).
FOR_OPERATORS = ("received", "reopened")


def waiting(session: Session, limit: int = QUEUE_LIMIT) -> list[QueueItem]:
    """Everything waiting, oldest first: received and reopened cases, hand-off requests, open drafts."""
    cases = session.execute(
        select(Case.id, Case.created_at, Case.channel, Case.number, Case.description, Case.conversation_id)
        .where(Case.status.in_(FOR_OPERATORS))
        .order_by(Case.created_at, Case.id)
        .limit(limit)
    ).all()
    handoffs = session.execute(
        select(
            Conversation.id,
            Conversation.handoff_requested_at,
            Conversation.channel,
            Conversation.handoff_reason,
            PhoneCall.status,
        )
        .outerjoin(PhoneCall, PhoneCall.conversation_id == Conversation.id)
        .where(Conversation.handoff_requested_at.is_not(None))
        .order_by(Conversation.handoff_requested_at)
        .limit(limit)
    ).all()
    drafts = session.execute(
        select(
            ReportDraft.id,
            ReportDraft.created_at,
            ReportDraft.channel,
            ReportDraft.reason,
            ReportDraft.slots,
            ReportDraft.conversation_id,
        )
        .where(ReportDraft.status == "open")
        .order_by(ReportDraft.created_at)
        .limit(limit)
    ).all()
    items = [
        QueueItem("case", r.id, r.created_at, r.channel, r.number, r.description[:200], r.conversation_id)
        for r in cases
    ]
    items += [
        QueueItem(
            "handoff",
            r.id,
            r.handoff_requested_at,
            r.channel,
            "caller in the phone queue" if r.status == "queued" else "asks for a human",
            (r.handoff_reason or "")[:200],
            r.id,
        )
        for r in handoffs
    ]
    items += [
        QueueItem(
            "draft",
            r.id,
            r.created_at,
            r.channel,
            f"unfinished report ({r.reason})",
            ", ".join(f"{k}: {v}" for k, v in (r.slots or {}).items())[:200],
            r.conversation_id,
        )
        for r in drafts
    ]
    items.sort(key=lambda item: item.since)
    return items[:limit]


def queue_version(session: Session) -> tuple[Any, ...]:
    """A cheap fingerprint that changes whenever the queue does: the live view pushes only then."""
    cases = session.execute(select(func.count(), func.max(Case.id)).where(Case.status.in_(FOR_OPERATORS))).one()
    handoffs = session.execute(
        select(func.count(), func.max(Conversation.handoff_requested_at)).where(
            Conversation.handoff_requested_at.is_not(None)
        )
    ).one()
    drafts = session.execute(select(func.count(), func.max(ReportDraft.id)).where(ReportDraft.status == "open")).one()
    return (*cases, *handoffs, *drafts)
