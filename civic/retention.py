"""PIPA retention: blanks old transcripts and deletes old photos and call audio that no open case needs.

.venv/bin/python -m civic.retention [--dry-run]   (also `make purge`; the web app runs it once a day)

A conversation's transcript is kept for RETENTION_TRANSCRIPT_DAYS after its last message, a stored file for
RETENTION_MEDIA_DAYS after it arrived, both for as long as a case filed from (or followed by) the conversation
is open. Rows stay so that ids, counts and the event log still add up: message texts become "" and their data
keeps only ids and codes, with {"purged": true}; a file's row keeps its hash and size with an empty path.
Cases are the city's record and are not touched, but for the contact an Open311 client sent with one, dropped
as long after the case closed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, cast, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from civic.db import get_session_factory, session_scope, utcnow
from civic.inbox import PENDING
from civic.media import PURGED_PATH, UnsupportedMedia, media_path
from civic.models import Attachment, Case, CaseFollower, Conversation, InboundUpdate, Message, OutboxMessage
from civic.outbox import SENT
from civic.settings import Settings, get_settings
from civic.workflow import CaseStatus

log = logging.getLogger(__name__)

CLOSED_STATUSES = (CaseStatus.RESOLVED.value, CaseStatus.REJECTED.value, CaseStatus.WITHDRAWN.value)
PURGED_MARK = {"purged": True}
# What a purged message's data keeps: references and codes the software wrote, never a citizen's words,
# place (GPS), button payload or filled slots.
KEPT_DATA_KEYS = frozenset(
    {
        "case_number",
        "status",
        "event_id",
        "event",
        "kind",
        "outbox_id",
        "outbox_key",
        "reply_to",
        "transcript_id",
        "error",
        "handoff",
    }
)
# How json.dumps (SQLAlchemy's JSON serialiser on SQLite and PostgreSQL) writes the mark: rows carrying it are
# skipped in SQL, so a conversation purged long ago is not rewritten every day.
_MARK_TEXT = '%"purged": true%'
BATCH = 500


@dataclass(frozen=True)
class PurgeCounts:
    """What one purge changed (or, dry, would change)."""

    conversations: int = 0  # conversations whose transcript had something left to blank
    messages: int = 0
    outbox_messages: int = 0  # delivered copies of those messages (SMS and chat notices)
    inbound_updates: int = 0  # raw channel updates (a Telegram message as it arrived), long handled
    attachments: int = 0
    files_deleted: int = 0
    contacts: int = 0  # Open311 reporters' sealed contacts, on cases closed longer ago than transcripts are kept


def _open_case_conversations() -> Select[tuple[int | None]]:
    """Ids of conversations an open case was filed from or is followed by (a merged duplicate's citizen)."""
    filed = select(Case.conversation_id).where(Case.conversation_id.is_not(None), Case.status.not_in(CLOSED_STATUSES))
    followed = (
        select(CaseFollower.conversation_id)
        .join(Case, Case.id == CaseFollower.case_id)
        .where(Case.status.not_in(CLOSED_STATUSES))
    )
    return filed.union(followed)  # type: ignore[return-value]


def _batches(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield list(ids[start : start + BATCH])


def _purged_data(data: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (data or {}).items() if key in KEPT_DATA_KEYS} | PURGED_MARK


def _is_purged(text: str, data: dict[str, Any] | None) -> bool:
    return text == "" and bool((data or {}).get("purged"))


def _not_marked(column: Any) -> Any:
    return cast(column, String).not_like(_MARK_TEXT)


def purge_transcripts(session: Session, now: datetime, settings: Settings, *, dry_run: bool) -> PurgeCounts:
    """Blanks the messages of conversations silent for the retention period with no open case."""
    cutoff = now - timedelta(days=settings.retention_transcript_days)
    stale = (
        select(Conversation.id)
        .where(Conversation.last_message_at < cutoff, Conversation.id.not_in(_open_case_conversations()))
        .order_by(Conversation.id)
    )
    conversation_ids = list(session.execute(stale).scalars())
    conversations = messages = outbox = 0
    for batch in _batches(conversation_ids):
        touched: set[int] = set()
        rows = session.execute(
            select(Message).where(
                Message.conversation_id.in_(batch), or_(Message.text != "", _not_marked(Message.data))
            )
        ).scalars()
        for message in rows:
            if _is_purged(message.text, message.data):
                continue
            touched.add(message.conversation_id)
            messages += 1
            if not dry_run:
                message.text, message.data = "", _purged_data(message.data)
        # Delivered notices repeat the transcript (and an SMS row holds the encrypted number); pending and
        # dead ones stay, so that a retry never sends an empty message.
        sent = session.execute(
            select(OutboxMessage).where(
                OutboxMessage.conversation_id.in_(batch),
                OutboxMessage.status == SENT,
                or_(OutboxMessage.text != "", _not_marked(OutboxMessage.data)),
            )
        ).scalars()
        for row in sent:
            if _is_purged(row.text, row.data):
                continue
            touched.add(row.conversation_id)
            outbox += 1
            if not dry_run:
                row.text, row.data = "", dict(PURGED_MARK)
        conversations += len(touched)
        session.flush()
    return PurgeCounts(
        conversations=conversations,
        messages=messages,
        outbox_messages=outbox,
        inbound_updates=_purge_inbound_updates(session, cutoff, dry_run=dry_run),
    )


def _purge_inbound_updates(session: Session, cutoff: datetime, *, dry_run: bool) -> int:
    """Blanks raw updates handled (or given up) before the cutoff: they repeat the transcript, names included.

    Their rows stay, so a very late retry of the same update is still recognised and ignored.
    """
    done = (
        InboundUpdate.status != PENDING,
        InboundUpdate.received_at < cutoff,
        _not_marked(InboundUpdate.payload),
    )
    if dry_run:
        return int(session.execute(select(func.count()).select_from(InboundUpdate).where(*done)).scalar_one())
    result = session.execute(
        update(InboundUpdate).where(*done).values(payload=PURGED_MARK).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge_media(session: Session, now: datetime, settings: Settings, *, dry_run: bool) -> PurgeCounts:
    """Deletes photos and recordings older than the retention period that no open case needs."""
    cutoff = now - timedelta(days=settings.retention_media_days)
    open_cases = select(Case.id).where(Case.status.not_in(CLOSED_STATUSES))
    query = (
        select(Attachment)
        .where(
            Attachment.created_at < cutoff,
            Attachment.path != PURGED_PATH,
            or_(Attachment.case_id.is_(None), Attachment.case_id.not_in(open_cases)),
            # A caller's recordings are linked to the case only through its conversation.
            or_(Attachment.conversation_id.is_(None), Attachment.conversation_id.not_in(_open_case_conversations())),
        )
        .order_by(Attachment.created_at)
    )
    attachments = files = 0
    for attachment in session.execute(query).scalars():
        attachments += 1
        try:
            path = media_path(attachment)
        except UnsupportedMedia:
            path = None  # a path leading out of the media store: nothing of ours to delete there
        if path is not None and path.is_file():
            files += 1
            if not dry_run:
                path.unlink()
        if not dry_run:
            attachment.path = PURGED_PATH
    session.flush()
    return PurgeCounts(attachments=attachments, files_deleted=files)


def purge_contacts(session: Session, now: datetime, settings: Settings, *, dry_run: bool) -> int:
    """Drops the contact an Open311 client sent with a case once the case has been closed as long as a transcript."""
    cutoff = now - timedelta(days=settings.retention_transcript_days)
    stale = (Case.contact_ciphertext.is_not(None), Case.status.in_(CLOSED_STATUSES), Case.updated_at < cutoff)
    count = session.execute(select(func.count()).select_from(Case).where(*stale)).scalar_one()
    if count and not dry_run:
        session.execute(
            update(Case).where(*stale).values(contact_ciphertext=None).execution_options(synchronize_session=False)
        )
    return int(count)


def purge(session: Session, now: datetime | None = None, *, dry_run: bool = False) -> PurgeCounts:
    """One retention run in the caller's transaction; files are deleted at once, so commit right after.

    Repeating it changes nothing more: a file deleted before a failed commit is simply marked next time.
    """
    settings = get_settings()
    now = now or utcnow()
    transcripts = purge_transcripts(session, now, settings, dry_run=dry_run)
    media = purge_media(session, now, settings, dry_run=dry_run)
    return PurgeCounts(
        conversations=transcripts.conversations,
        messages=transcripts.messages,
        outbox_messages=transcripts.outbox_messages,
        inbound_updates=transcripts.inbound_updates,
        attachments=media.attachments,
        files_deleted=media.files_deleted,
        contacts=purge_contacts(session, now, settings, dry_run=dry_run),
    )


def run_once(factory: sessionmaker[Session] | None = None, *, dry_run: bool = False) -> PurgeCounts:
    """A purge in its own transaction (on the configured database by default), logged."""
    with session_scope(factory or get_session_factory()) as session:
        counts = purge(session, dry_run=dry_run)
        if dry_run:
            session.rollback()
    log.info("retention purge%s: %s", " (dry run)" if dry_run else "", asdict(counts))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m civic.retention", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="count what would be purged, change nothing")
    args = parser.parse_args(argv)
    print(json.dumps(asdict(run_once(dry_run=args.dry_run)) | {"dry_run": args.dry_run}))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
