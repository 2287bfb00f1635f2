"""PIPA retention drops an Open311 reporter's sealed contact once the case has been closed as long as a transcript."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from civic.cases import file_case
from civic.db import utcnow
from civic.phones import seal
from civic.retention import purge_contacts
from civic.settings import get_settings
from civic.workflow import CaseStatus


def test_contacts_of_long_closed_cases_are_dropped(session: Session) -> None:
    settings = get_settings()
    now = utcnow() + timedelta(days=settings.retention_transcript_days + 1)
    cases = []
    for status in (CaseStatus.RESOLVED, CaseStatus.RECEIVED):
        case = file_case(
            session, category="noise", district="마포구", place="합정역", description="소음", channel="open311"
        )
        case.contact_ciphertext, case.status = seal('{"email": "a@example.kr"}', b"civic.cases.contact"), status
        cases.append(case)
    session.flush()
    assert purge_contacts(session, now, settings, dry_run=True) >= 1
    assert cases[0].contact_ciphertext is not None  # a dry run changes nothing
    assert purge_contacts(session, now, settings, dry_run=False) >= 1
    session.expire_all()
    assert cases[0].contact_ciphertext is None  # closed long enough ago
    assert cases[1].contact_ciphertext is not None  # still open: the city may need to call back
    assert purge_contacts(session, utcnow(), settings, dry_run=False) == 0
