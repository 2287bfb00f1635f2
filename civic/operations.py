"""What operations watches in the database, in a few aggregate queries: outbox, inbox, calls, queue, cases, ballots.

Read at each metrics scrape (webapp/metrics.py), so every figure is the state itself, the same whichever web
worker changed it. Cases, case events and ballots are never deleted, so their counts only grow: counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from civic import inbox, outbox
from civic.console_stats import OPEN_STATUSES
from civic.models import Ballot, Case, CaseEvent, Conversation, InboundUpdate, OutboxMessage, PhoneCall, ReportDraft
from civic.settings import get_settings
from civic.workflow import CaseStatus


@dataclass(frozen=True)
class Backlog:
    """Items waiting, and the age in seconds of the oldest (0 when none wait)."""

    count: int = 0
    oldest_seconds: float = 0.0


@dataclass(frozen=True)
class OperationsSnapshot:
    outbox_undelivered: dict[str, Backlog]  # by channel: pending, or failed and due again
    outbox_dead: dict[str, int]  # by channel
    inbox_pending: dict[str, Backlog]  # by channel (Telegram's updates)
    phone_calls: dict[str, int]  # by status: active, queued (for an operator)
    console_queue: Backlog  # new cases, hand-off requests, unfinished reports
    cases_filed: dict[str, int]  # by category, ever
    cases_resolved: dict[str, int]  # by category: resolutions ever (a reopened case resolved again counts twice)
    cases_overdue: dict[str, int] = field(default_factory=dict)  # by category: open past the due date
    ballots_cast: dict[str, int] = field(default_factory=dict)  # by channel, ever


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def snapshot(session: Session, now: datetime) -> OperationsSnapshot:
    """Every figure at `now` (UTC); each query is an aggregate over an indexed column."""
    undelivered = session.execute(
        select(OutboxMessage.channel, func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.status.in_((outbox.PENDING, outbox.FAILED)))
        .group_by(OutboxMessage.channel)
    ).all()
    dead = session.execute(
        select(OutboxMessage.channel, func.count())
        .where(OutboxMessage.status == outbox.DEAD)
        .group_by(OutboxMessage.channel)
    ).all()
    pending_updates = session.execute(
        select(InboundUpdate.channel, func.count(), func.min(InboundUpdate.received_at))
        .where(InboundUpdate.status == inbox.PENDING)
        .group_by(InboundUpdate.channel)
    ).all()
    calls = session.execute(
        select(PhoneCall.status, func.count()).where(PhoneCall.status != "ended").group_by(PhoneCall.status)
    ).all()
    # The same three sources as the console's queue (civic/console_queue.py), counted instead of listed.
    waiting = [
        session.execute(select(func.count(), func.min(Case.created_at)).where(Case.status == "received")).one(),
        session.execute(
            select(func.count(), func.min(Conversation.handoff_requested_at)).where(
                Conversation.handoff_requested_at.is_not(None)
            )
        ).one(),
        session.execute(
            select(func.count(), func.min(ReportDraft.created_at)).where(ReportDraft.status == "open")
        ).one(),
    ]
    oldest = min((since for _, since in waiting if since is not None), default=None)
    today = now.astimezone(ZoneInfo(get_settings().timezone)).date()
    overdue = session.execute(
        select(Case.category, func.count())
        .where(Case.status.in_(OPEN_STATUSES), Case.due_at < today)
        .group_by(Case.category)
    ).all()
    resolved = session.execute(
        select(Case.category, func.count())
        .select_from(CaseEvent)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(CaseEvent.to_status == CaseStatus.RESOLVED)
        .group_by(Case.category)
    ).all()
    filed = session.execute(select(Case.category, func.count()).group_by(Case.category)).all()
    ballots = session.execute(select(Ballot.channel, func.count()).group_by(Ballot.channel)).all()
    return OperationsSnapshot(
        outbox_undelivered={channel: Backlog(n, _age(now, since)) for channel, n, since in undelivered},
        outbox_dead={channel: n for channel, n in dead},
        inbox_pending={channel: Backlog(n, _age(now, since)) for channel, n, since in pending_updates},
        phone_calls={status: n for status, n in calls},
        console_queue=Backlog(sum(n for n, _ in waiting), _age(now, oldest)),
        cases_filed={category: n for category, n in filed},
        cases_resolved={category: n for category, n in resolved},
        cases_overdue={category: n for category, n in overdue},
        ballots_cast={channel: n for channel, n in ballots},
    )
