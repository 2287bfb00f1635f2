"""Recordings the confidence gate did not believe: flagged for an operator, who types what the caller said."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.models import Attachment, Case
from telephony.phone_texts import UNHEARD_MARKERS

MAX_TRANSCRIPT_CHARS = 2000
# Which question's answer a recording is, by the domain response that asked it.
FIELD_OF_RESPONSE = {"utter_ask_place": "place", "utter_ask_description": "description"}


class TranscriptRefused(ValueError):
    """Not a recording waiting for a transcript of this case, or an empty transcript."""


def waiting(session: Session, case: Case) -> list[Attachment]:
    """The case's recordings still to be transcribed, oldest first."""
    query = select(Attachment).where(
        Attachment.case_id == case.id, Attachment.to_transcribe.is_not(None), Attachment.transcript.is_(None)
    )
    return list(session.execute(query.order_by(Attachment.created_at)).scalars())


def save_transcript(session: Session, case: Case, attachment_id: str, text: str) -> str:
    """Keeps an operator's transcript and puts it in the case where the line left its marker; the field."""
    text = " ".join(text.split())[:MAX_TRANSCRIPT_CHARS]
    attachment = session.get(Attachment, attachment_id)
    if not text or attachment is None or attachment.case_id != case.id or attachment.to_transcribe is None:
        raise TranscriptRefused(attachment_id)
    field = attachment.to_transcribe
    attachment.transcript = text
    attachment.transcribed_at = utcnow()
    marker = UNHEARD_MARKERS[field]
    # Later notices and the console read the case, so from now on they carry the operator's words. A place
    # marker may also stand as the description (the bot takes a report-like place answer for both).
    case.place = case.place.replace(marker, text)
    case.description = case.description.replace(marker, text)
    case.updated_at = utcnow()
    return field
