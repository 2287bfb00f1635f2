"""Citizens' look-ups by case number: only the conversation or verified phone that filed or follows a case sees it.

Case numbers are sequential (SR-2026-000123, …124, …), so anyone can guess them. A look-up by someone who did
not file or follow the case gets exactly what a number nobody has gets: no case of theirs has that number. Not
even the status is shown: the status with the category, district and department would tell a stranger what was
reported where and when, and "exists" alone measures the city's volume day by day. The stricter choice costs the
citizen nothing, since whoever filed or follows a case (and any conversation proven to be their phone) sees it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from civic import rate_limits
from civic.cases import get_case
from civic.models import Case, CaseFollower, Conversation

# Look-ups by number per conversation: enough for a citizen with many reports, too few to walk the numbers.
LOOKUP_BUCKET = "case_lookup"
LOOKUPS_PER_WINDOW = 20
LOOKUP_WINDOW_SECONDS = 3600.0


@dataclass(frozen=True)
class Lookup:
    """The outcome of a look-up: the case (None: unknown or not theirs, the same answer), or being rate-limited."""

    case: Case | None
    retry_after_seconds: int = 0

    @property
    def limited(self) -> bool:
        return self.retry_after_seconds > 0

    @property
    def retry_after_minutes(self) -> int:
        return max(1, math.ceil(self.retry_after_seconds / 60))


def may_see(session: Session, case: Case, conversation_id: int) -> bool:
    """Whether the conversation filed or follows the case, itself or through its verified phone.

    A conversation's phone counts only when its channel verified it (Conversation.citizen_id: the caller's number
    on the 120 line, Telegram's shared contact, the web chat's SMS code): it matches the case's citizen, or the
    verified phone of the conversation that filed it or of one that follows it.
    """
    if case.conversation_id == conversation_id:
        return True
    followers = set(
        session.execute(select(CaseFollower.conversation_id).where(CaseFollower.case_id == case.id)).scalars()
    )
    if conversation_id in followers:
        return True
    asker = session.get(Conversation, conversation_id)
    if asker is None or asker.citizen_id is None:
        return False
    if asker.citizen_id == case.citizen_id:
        return True
    related = followers | ({case.conversation_id} if case.conversation_id is not None else set())
    phones = select(Conversation.citizen_id).where(Conversation.id.in_(sorted(related)))
    return asker.citizen_id in set(session.execute(phones).scalars())


def look_up(session: Session, *, number: str, conversation_id: int, now: datetime | None = None) -> Lookup:
    """The case numbered `number` if this conversation may see it; counted against its look-up limit."""
    decision = rate_limits.allow(
        session,
        bucket=LOOKUP_BUCKET,
        key=f"conversation:{conversation_id}",
        limit=LOOKUPS_PER_WINDOW,
        per_seconds=LOOKUP_WINDOW_SECONDS,
        now=now,
    )
    if not decision.allowed:
        return Lookup(None, max(1, decision.retry_after_seconds))
    case = get_case(session, number)
    if case is None or not may_see(session, case, conversation_id):
        return Lookup(None)
    return Lookup(case)
