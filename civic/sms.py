"""SMS to citizens, queued in the outbox as channel `sms` with the number encrypted in the row."""

from __future__ import annotations

import base64

from sqlalchemy.orm import Session

from civic.models import Citizen, OutboxMessage
from civic.outbox import SEALED_TEXT, enqueue
from civic.phones import encrypt_phone, normalize_phone, seal, unseal

CHANNEL = "sms"
# A verification SMS's text is kept sealed in the row's data (never in `text`) until the sender opens it.
SEALED_TEXT_AAD = b"civic.outbox.sms-text"
SEALED_PLACEHOLDER = "[verification code]"
VERIFICATION_KIND = "verification_code"


def seal_text(text: str) -> str:
    return base64.b64encode(seal(text, SEALED_TEXT_AAD)).decode("ascii")


def message_text(message: OutboxMessage) -> str:
    """The text to send: the sealed one when the row has it (raises InvalidTag if tampered with), else `text`."""
    sealed = (message.data or {}).get(SEALED_TEXT)
    if sealed:
        return unseal(base64.b64decode(sealed, validate=True), SEALED_TEXT_AAD)
    return message.text


def queue_sms_to_ciphertext(
    session: Session,
    *,
    conversation_id: int,
    phone_ciphertext: bytes,
    text: str,
    kind: str,
    dedupe_key: str,
    secret: bool = False,
) -> OutboxMessage | None:
    """Queues an SMS to an already encrypted number; None when `dedupe_key` was already queued.

    `secret` (a verification code): the text is stored sealed, `text` holds only a placeholder, and the
    outbox drops the sealed text once the SMS is delivered.
    """
    data: dict[str, object] = {"to_ciphertext": base64.b64encode(phone_ciphertext).decode("ascii")}
    if secret:
        data |= {SEALED_TEXT: seal_text(text), "secret": True}
    return enqueue(
        session,
        conversation_id=conversation_id,
        channel=CHANNEL,
        kind=kind,
        text=SEALED_PLACEHOLDER if secret else text,
        data=data,
        dedupe_key=dedupe_key,
    )


def queue_sms(
    session: Session,
    *,
    conversation_id: int,
    phone_e164: str,
    text: str,
    kind: str,
    dedupe_key: str,
    secret: bool = False,
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
        secret=secret,
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
