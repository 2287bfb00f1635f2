"""Case services: file a case (numbered, routed, due-dated, idempotent), look it up, withdraw it."""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import URL, Table, create_engine, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from civic.categories import check_category, due_date_for
from civic.db import utcnow
from civic.districts import check_district
from civic.errors import CaseNotFound, NotYourCase
from civic.i18n import LANGUAGES
from civic.models import Attachment, Case, CaseNumberSequence
from civic.routing import department_id_for
from civic.settings import get_settings
from civic.workflow import CaseStatus, log_case_event, transition

_SEQUENCES: Table = CaseNumberSequence.__table__  # type: ignore[assignment]

# "SR-2026-000123", also "sr2026000123", "SR 2026 123", full-width forms (folded by NFKC first).
_CASE_NUMBER = re.compile(r"(?<![a-z0-9])sr\s*[-_]?\s*(\d{4})\s*[-_]?\s*(\d{1,6})(?!\d)", re.IGNORECASE)


def format_case_number(year: int, value: int) -> str:
    """SR-<year>-<value, six digits>."""
    return f"SR-{year}-{value:06d}"


def normalize_case_number(text: str) -> str | None:
    """The canonical case number found in `text` (e.g. "sr2026000123" → "SR-2026-000123")."""
    match = _CASE_NUMBER.search(unicodedata.normalize("NFKC", text))
    if match is None:
        return None
    return format_case_number(int(match.group(1)), int(match.group(2)))


def case_numbers_in(text: str) -> set[str]:
    """Every case number `text` names, canonical (e.g. a "my reports" list names several)."""
    folded = unicodedata.normalize("NFKC", text)
    return {format_case_number(int(m.group(1)), int(m.group(2))) for m in _CASE_NUMBER.finditer(folded)}


_pg_sequences: set[tuple[URL, int]] = set()
# Plain SQL built once: constructing and cache-keying an update() on every filing cost ~0.7 ms.
_BUMP_SEQUENCE = text(
    "UPDATE case_number_sequences SET last_value = last_value + 1 WHERE year = :year RETURNING last_value"
)


def _next_from_postgres_sequence(session: Session, year: int) -> int:
    # A row counter would hold its lock until commit, so filings would queue behind each other's
    # fsync; a sequence hands numbers out without a lock (a rolled-back filing leaves a gap).
    name = f"case_number_{year}"
    url = session.get_bind().engine.url
    if (url, year) not in _pg_sequences:
        # Created and committed at once, on a connection of its own outside the pool: after a restart or at New
        # Year, as many first filings as the pool has connections would each hold one and wait for another.
        unpooled = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            # A concurrent filer may create it first: IF NOT EXISTS can still race in the catalogue.
            with unpooled.connect() as connection, contextlib.suppress(IntegrityError):
                connection.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {name}"))
        finally:
            unpooled.dispose()
        _pg_sequences.add((url, year))
    return int(session.execute(text(f"SELECT nextval('{name}')")).scalar_one())


def next_case_number(session: Session, year: int) -> int:
    """Atomically take the next number of `year` (1, 2, …), in the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        return _next_from_postgres_sequence(session, year)
    value = session.execute(_BUMP_SEQUENCE, {"year": year}).scalar_one_or_none()
    if value is not None:
        return int(value)
    # First case of the year. Two writers can both miss the row; the upsert lets the second one bump
    # the row the first just inserted (SQLite's write lock serialises them) instead of failing.
    upsert = (
        sqlite.insert(_SEQUENCES)
        .values(year=year, last_value=1)
        .on_conflict_do_update(index_elements=[_SEQUENCES.c.year], set_={"last_value": _SEQUENCES.c.last_value + 1})
        .returning(_SEQUENCES.c.last_value)
    )
    return int(session.execute(upsert).scalar_one())


def _by_idempotency_key(session: Session, key: str) -> Case | None:
    return session.execute(select(Case).where(Case.idempotency_key == key)).scalar_one_or_none()


def file_case(
    session: Session,
    *,
    category: str,
    district: str,
    place: str,
    description: str,
    channel: str,
    language: str = "ko",
    dong: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    conversation_id: int | None = None,
    citizen_id: int | None = None,
    attachment_ids: Sequence[str] = (),
    idempotency_key: str | None = None,
    actor: str = "bot",
    contact_ciphertext: bytes | None = None,
) -> Case:
    """File a new case in status received, or return the one already filed with `idempotency_key`.

    `contact_ciphertext` is a sealed contact an Open311 client sent; a returned earlier case keeps its own.
    """
    check_category(category)
    check_district(district)
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    department_id = department_id_for(session, category=category, district=district)
    now = utcnow()
    year = now.astimezone(ZoneInfo(get_settings().timezone)).year
    due_at = due_date_for(session, category, now)
    try:
        # The number is taken inside the savepoint too, so losing the idempotency race leaves no gap.
        with session.begin_nested():
            case = Case(
                number=format_case_number(year, next_case_number(session, year)),
                category=category,
                district=district,
                dong=dong,
                place=place,
                description=description,
                latitude=latitude,
                longitude=longitude,
                status=CaseStatus.RECEIVED.value,
                channel=channel,
                language=language,
                conversation_id=conversation_id,
                citizen_id=citizen_id,
                department_id=department_id,
                attachments=list(attachment_ids),
                idempotency_key=idempotency_key,
                contact_ciphertext=contact_ciphertext,
                due_at=due_at,
                created_at=now,
                updated_at=now,
            )
            session.add(case)
            log_case_event(session, case=case, to_status=CaseStatus.RECEIVED, actor=actor)
            link_attachments(session, case=case, attachment_ids=attachment_ids)
    except IntegrityError:
        # This idempotency key was filed before (a retry, a double click, or a concurrent twin):
        # the unique constraint decides, and the savepoint keeps the caller's transaction usable.
        existing = _by_idempotency_key(session, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return existing
    return case


def link_attachments(session: Session, *, case: Case, attachment_ids: Sequence[str]) -> None:
    if not attachment_ids:
        return
    rows = session.execute(select(Attachment).where(Attachment.id.in_(list(attachment_ids))))
    for attachment in rows.scalars():
        attachment.case_id = case.id
    session.flush()


def get_case(session: Session, number: str) -> Case | None:
    """The case with that number, however the citizen typed it; None if unknown."""
    canonical = normalize_case_number(number)
    if canonical is None:
        return None
    return session.execute(select(Case).where(Case.number == canonical)).scalar_one_or_none()


def cases_for_conversation(session: Session, conversation_id: int) -> list[Case]:
    """Cases filed from a conversation, newest first."""
    query = select(Case).where(Case.conversation_id == conversation_id).order_by(Case.created_at.desc(), Case.id.desc())
    return list(session.execute(query).scalars())


def withdraw_case(session: Session, *, number: str, conversation_id: int, actor: str = "citizen") -> Case:
    """Withdraw a case still in status received, at the request of the conversation that filed it."""
    case = get_case(session, number)
    if case is None:
        raise CaseNotFound(number)
    if case.conversation_id != conversation_id:
        raise NotYourCase(number)
    # The citizen asked in this very conversation and gets the bot's answer there: no outbox notice.
    transition(session, case=case, to=CaseStatus.WITHDRAWN, actor=actor, notify=False)
    return case


def last_public_note(case: Case) -> str | None:
    """The official's public answer (resolved) or reason (rejected), shown with the status."""
    if case.status not in (CaseStatus.RESOLVED, CaseStatus.REJECTED):
        return None
    events = [e for e in case.events if e.to_status == case.status and e.note]
    return events[-1].note if events else None
