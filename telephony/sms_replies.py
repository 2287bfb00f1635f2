"""Twilio's inbound SMS webhook (signature-checked): a caller answering the "fixed?" SMS (civic.feedback)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from bot.app_state import sessions_of
from civic.db import in_thread
from civic.feedback import answer_by_sms
from telephony.twilio_auth import require_twilio_signature

router = APIRouter(prefix="/telephony", include_in_schema=False)
TwilioForm = Annotated[dict[str, str], Depends(require_twilio_signature)]
# Nothing is answered in the webhook's TwiML: the reply is queued in the outbox like every message to citizens.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@router.post("/sms")
async def incoming_sms(request: Request, form: TwilioForm) -> Response:
    """An SMS to the 120 number: "1"/"2", a rating or what is still wrong; anything else is left alone."""
    phone, body, message_sid = form.get("From", ""), form.get("Body", ""), form.get("MessageSid", "")
    if phone and message_sid:
        await in_thread(
            sessions_of(request),
            lambda session: answer_by_sms(session, phone=phone, body=body[:1600], message_key=message_sid),
        )
    return Response(EMPTY_TWIML, media_type="application/xml")
