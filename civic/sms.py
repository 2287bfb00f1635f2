"""SMS to citizens, queued in the outbox as channel `sms` with the number encrypted in the row."""

from __future__ import annotations

import base64

from sqlalchemy.orm import Session

from civic.models import Citizen, OutboxMessage
from civic.outbox import enqueue
from civic.phones import encrypt_phone, normalize_phone

CHANNEL = "sms"


def queue_sms_to_ciphertext(
    session: Session, *, conversation_id: int, phone_ciphertext: bytes, text: str, kind: str, dedupe_key: str
) -> OutboxMessage | None:
    """Queues an SMS to an already encrypted number; None when `dedupe_key` was already queued."""
    return enqueue(
        session,
        conversation_id=conversation_id,
        channel=CHANNEL,
        kind=kind,
        text=text,
        data={"to_ciphertext": base64.b64encode(phone_ciphertext).decode("ascii")},
        dedupe_key=dedupe_key,
    )


def queue_sms(
    session: Session, *, conversation_id: int, phone_e164: str, text: str, kind: str, dedupe_key: str
) -> OutboxMessage | None:
    """Queues an SMS to `phone_e164` (stored encrypted only); None when `dedupe_key` was already queued.

    The number is normalised again so that a malformed one fails here, in the caller's transaction,
    rather than as a dead letter later; raises civic.errors.InvalidPhone.
    """
    ciphertext = encrypt_phone(normalize_phone(phone_e164))
    return queue_sms_to_ciphertext(
        session,
        conversation_id=conversation_id,
        phone_ciphertext=ciphertext,
        text=text,
        kind=kind,
        dedupe_key=dedupe_key,
    )


def queue_sms_to_citizen(
    session: Session, *, conversation_id: int, citizen: Citizen, text: str, kind: str, dedupe_key: str
) -> OutboxMessage | None:
    """Queues an SMS to a citizen's verified number (a caller of the 120 line)."""
    return queue_sms_to_ciphertext(
        session,
        conversation_id=conversation_id,
        phone_ciphertext=citizen.phone_ciphertext,
        text=text,
        kind=kind,
        dedupe_key=dedupe_key,
    )
