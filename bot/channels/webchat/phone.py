"""The web chat's "📞 Verify my number": an SMS code proves the number in the web app, never through Rasa."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.app_state import sessions_of
from bot.channels.webchat.chat import ChatId, CheckedChatId, external_id_of
from bot.client_address import client_key
from bot.messages import gateway_message
from civic import verification
from civic.conversations import get_or_create_conversation, record_message
from civic.db import session_scope, utcnow
from civic.errors import InvalidPhone
from civic.i18n import DEFAULT_LANGUAGE
from civic.models import Citizen, Conversation
from civic.phones import decrypt_phone, get_or_create_citizen, normalize_phone
from civic.poll_texts import text as code_text
from civic.poll_texts import wait_text
from civic.verification import send_verification_code

CHANNEL = "web"
CODE = re.compile(r"[0-9]{6}")
# What the send and check limits count by: a phone's codes for any web chat, whichever chat asks.
BUDGET = "chat"
router = APIRouter(prefix="/chat/api/phone", tags=["web chat"])


class PhoneIn(BaseModel):
    # Loose on purpose: the handler answers a malformed number with a message a citizen can read.
    phone: str = Field(default="", max_length=100)


class PhoneCodeIn(PhoneIn):
    code: str = Field(default="", max_length=32)


def purpose_of(external_id: str) -> str:
    """Binds a code to one chat: a code sent for this browser's chat verifies no other chat and no poll page."""
    return f"chat:{external_id}"


def _conversation(session: Session, external_id: str) -> Conversation | None:
    query = select(Conversation).where(Conversation.channel == CHANNEL, Conversation.external_id == external_id)
    return session.execute(query).scalar_one_or_none()


def _language(factory: sessionmaker[Session], external_id: str) -> str:
    with session_scope(factory) as session:
        conversation = _conversation(session, external_id)
        return conversation.language if conversation is not None else DEFAULT_LANGUAGE


def _verified_last4(factory: sessionmaker[Session], external_id: str) -> str | None:
    with session_scope(factory) as session:
        conversation = _conversation(session, external_id)
        if conversation is None or conversation.citizen_id is None:
            return None
        citizen = session.get(Citizen, conversation.citizen_id)
        return decrypt_phone(citizen.phone_ciphertext)[-4:] if citizen is not None else None


def _refusal(
    key: str, language: str, status_code: int, retry_after: int | None = None, **values: object
) -> JSONResponse:
    """{"error", "message"}: `error` lets the page say it in its own language, `message` is the chat's."""
    body: dict[str, Any] = {"error": key, "message": code_text(key, language, **values)}
    headers = None
    if retry_after is not None:
        body["retry_after"] = retry_after
        headers = {"Retry-After": str(retry_after)}
    return JSONResponse(body, status_code=status_code, headers=headers)


def _limit_refusal(refusal: verification.VerificationError, language: str) -> JSONResponse:
    """A refused send or check: 429 with the wait when a limit refused it, else 422 (wrong code, not a mobile…)."""
    seconds = refusal.retry_after_seconds
    if seconds is None:
        return _refusal(refusal.code, language, 422)
    return _refusal(refusal.code, language, 429, retry_after=seconds, wait=wait_text(seconds, language))


def _six_digits(raw: str) -> str | None:
    # Full-width digits (a Japanese keyboard) and spaces or dashes pasted from the SMS are still the code.
    code = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", raw))
    return code if CODE.fullmatch(code) else None


def _verify(
    factory: sessionmaker[Session], external_id: str, phone_e164: str, code: str, client: str
) -> verification.VerificationError | None:
    """Spends the code and gives the chat its citizen; returns why the code was refused.

    Commits either way: a wrong try must count, or guessers would get unlimited attempts.
    """
    with session_scope(factory) as session:
        try:
            verification.check_code(
                session,
                phone_e164=phone_e164,
                purpose=purpose_of(external_id),
                code=code,
                budget=BUDGET,
                client=client,
                now=utcnow(),
            )
        except verification.VerificationError as refusal:
            return refusal
        citizen = get_or_create_citizen(session, phone=phone_e164)
        conversation = get_or_create_conversation(session, channel=CHANNEL, external_id=external_id)
        conversation.citizen_id = citizen.id
        # A system line, not a citizen turn: the bot's last buttons (a ballot's options) stay tappable.
        record_message(
            session,
            conversation=conversation,
            direction="out",
            sender="system",
            text=gateway_message("web_phone_verified", conversation.language, last4=phone_e164[-4:]),
            data={"event": "phone_verified"},
        )
    return None


@router.get("")
async def phone_state(request: Request, chat_id: ChatId) -> dict[str, Any]:
    last4 = await asyncio.to_thread(_verified_last4, sessions_of(request), external_id_of(chat_id))
    return {"verified": last4 is not None, "last4": last4}


@router.post("")
async def send_code(body: PhoneIn, request: Request, chat_id: CheckedChatId) -> JSONResponse:
    factory, external_id = sessions_of(request), external_id_of(chat_id)
    language = await asyncio.to_thread(_language, factory, external_id)
    try:
        phone_e164 = normalize_phone(body.phone)
    except InvalidPhone:
        return _refusal("invalid_phone", language, 422)
    try:
        await asyncio.to_thread(
            send_verification_code,
            factory,
            phone_e164=phone_e164,
            purpose=purpose_of(external_id),
            budget=BUDGET,
            client=client_key(request),
            sms_text=lambda code: gateway_message("phone_code_sms", language, code=code),
            language=language,
        )
    except verification.VerificationError as refusal:
        return _limit_refusal(refusal, language)
    return JSONResponse({"sent": True, "last4": phone_e164[-4:]})


@router.post("/verify")
async def verify_code(body: PhoneCodeIn, request: Request, chat_id: CheckedChatId) -> JSONResponse:
    factory, external_id = sessions_of(request), external_id_of(chat_id)
    language = await asyncio.to_thread(_language, factory, external_id)
    try:
        phone_e164 = normalize_phone(body.phone)
    except InvalidPhone:
        return _refusal("invalid_phone", language, 422)
    code = _six_digits(body.code)
    if code is None:
        # Not six digits cannot be the code: refused without spending one of the code's attempts.
        return _refusal("enter_code", language, 422)
    refusal = await asyncio.to_thread(_verify, factory, external_id, phone_e164, code, client_key(request))
    if refusal is not None:
        return _limit_refusal(refusal, language)
    return JSONResponse({"verified": True, "last4": phone_e164[-4:]})
