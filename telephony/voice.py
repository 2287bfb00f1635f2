"""The 120 line's routes: Twilio's voice webhooks and the media-stream WebSocket, all signature-checked."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, WebSocket

from civic.settings import get_settings
from telephony.media_stream import serve_media_stream
from telephony.phone_line import PhoneLine
from telephony.twilio_auth import require_twilio_signature

router = APIRouter(prefix="/telephony", include_in_schema=False)
TwilioForm = Annotated[dict[str, str], Depends(require_twilio_signature)]
CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
# Call statuses after which nothing more happens on the call.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def _call_sid(form: dict[str, str]) -> str:
    call_sid = form.get("CallSid", "")
    if not CALL_SID.match(call_sid):
        raise HTTPException(status_code=400, detail="CallSid missing or malformed")
    return call_sid


def _line(request: Request | WebSocket) -> PhoneLine:
    line: PhoneLine | None = getattr(request.app.state, "phone_line", None)
    if line is None:
        raise HTTPException(status_code=503)
    return line


def _twiml(document: str) -> Response:
    return Response(document, media_type="application/xml")


@router.post("/voice")
async def incoming_call(request: Request, form: TwilioForm) -> Response:
    """A call to the 120 line (or Twilio's retry of this webhook): the greeting and the first stream."""
    call_sid = _call_sid(form)
    return _twiml(await _line(request).incoming(call_sid, form.get("From")))


@router.post("/resume")
async def resume_call(request: Request, form: TwilioForm) -> Response:
    """Reached when a stream ended without our answer: the same question again."""
    return _twiml(await _line(request).resume(_call_sid(form)))


@router.post("/operator-done")
async def operator_done(request: Request, form: TwilioForm) -> Response:
    """Twilio's <Dial action> when the bridged operator's leg ends: thank the caller, give the bot back."""
    return _twiml(await _line(request).operator_done(_call_sid(form)))


@router.post("/status", status_code=204)
async def call_status(request: Request, form: TwilioForm) -> Response:
    """Twilio's status callback (set on the phone number): a finished call keeps its unfinished report."""
    call_sid = _call_sid(form)
    status = form.get("CallStatus", "")
    if status in FINAL_STATUSES:
        await _line(request).call_ended(call_sid, "hangup" if status == "completed" else status)
    return Response(status_code=204)


@router.websocket("/stream")
@router.websocket("/stream/{token}")
async def media_stream(websocket: WebSocket, token: str = "") -> None:
    """A turn's media stream; its URL carries the single-use token the turn's TwiML issued (none: refused)."""
    line: PhoneLine | None = getattr(websocket.app.state, "phone_line", None)
    if line is None:
        await websocket.close(code=1013)
        return
    await serve_media_stream(websocket, line, get_settings(), token)
