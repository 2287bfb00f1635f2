"""Web chat adapter: the /chat page and its JSON API, a thin layer over the gateway."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, File, Header, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.app_state import gateway_of, sessions_of
from bot.client_address import client_key
from bot.gateway import Inbound, Outcome
from bot.messages import gateway_message
from civic import rate_limits
from civic.conversations import get_or_create_conversation, transcript
from civic.db import MAX_ROW_ID, session_scope
from civic.i18n import DEFAULT_LANGUAGE
from civic.media import UnsupportedMedia, is_attachment_id, media_path, store_photo
from civic.models import Attachment, Conversation
from civic.poll_texts import wait_text
from civic.settings import Settings, get_settings

HERE = Path(__file__).parent
COOKIE = "civic_chat"
COOKIE_PURPOSE = "webchat-cookie"  # the cookie's own HMAC purpose: neither a CSRF token nor an external id
COOKIE_MAC_CHARS = 32
MAX_COOKIE_CHARS = 128
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/chat", tags=["web chat"])
STATUS_OF_ERROR = {"too_long": 413, "empty": 422, "unavailable": 503, "in_progress": 409}
# messages.id is a 32-bit integer on PostgreSQL (64-bit on SQLite): a larger `after` failed in the driver, a 500.
MAX_MESSAGE_ID = MAX_ROW_ID


class ChatMessageIn(BaseModel):
    client_message_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9\-_]+$")
    # Longer than the limit on purpose: the gateway answers an over-long message politely.
    text: str = Field(default="", max_length=20_000)
    payload: str | None = Field(default=None, max_length=500)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    attachment_ids: list[str] = Field(default_factory=list, max_length=10)


def _digest(settings: Settings, purpose: str, chat_id: str) -> str:
    return hmac.new(settings.secret_key.encode(), f"{purpose}:{chat_id}".encode(), hashlib.sha256).hexdigest()


def external_id_of(chat_id: str) -> str:
    """The conversation's id in the database: derived from, never equal to, the browser's secret cookie."""
    return _digest(get_settings(), "webchat", chat_id)[:40]


def issue_chat_cookie() -> str:
    """A new conversation's cookie: a random id and the server's HMAC of it, so only ids we issued are accepted."""
    chat_id = secrets.token_urlsafe(24)
    return f"{chat_id}.{_digest(get_settings(), COOKIE_PURPOSE, chat_id)[:COOKIE_MAC_CHARS]}"


def issued_by_us(cookie: str | None) -> bool:
    """Whether this cookie is one the server issued (False: missing, unsigned, forged, or too long)."""
    if not cookie or len(cookie) > MAX_COOKIE_CHARS:
        return False
    chat_id, _, mac = cookie.rpartition(".")
    if not chat_id or len(mac) != COOKIE_MAC_CHARS:
        return False
    return hmac.compare_digest(mac, _digest(get_settings(), COOKIE_PURPOSE, chat_id)[:COOKIE_MAC_CHARS])


def chat_id_of(civic_chat: Annotated[str | None, Cookie()] = None) -> str:
    """The chat's id: the whole signed cookie, once checked (what external_id_of and the CSRF token derive from)."""
    if civic_chat is None or not issued_by_us(civic_chat):
        raise HTTPException(401, "open /chat first")
    return civic_chat


def checked_chat_id(
    chat_id: Annotated[str, Depends(chat_id_of)], x_csrf_token: Annotated[str | None, Header()] = None
) -> str:
    expected = _digest(get_settings(), "csrf", chat_id)
    if not x_csrf_token or not hmac.compare_digest(x_csrf_token, expected):
        raise HTTPException(403, "missing or wrong CSRF token")
    return chat_id


ChatId = Annotated[str, Depends(chat_id_of)]
CheckedChatId = Annotated[str, Depends(checked_chat_id)]


@router.get("", response_class=HTMLResponse)
async def chat_page(request: Request, civic_chat: Annotated[str | None, Cookie()] = None) -> Response:
    settings = get_settings()
    # A cookie we did not issue (forged, or an unsigned one from before signing) starts a fresh conversation:
    # a value a client picks must never open a conversation it did not start.
    chat_id = civic_chat if civic_chat and issued_by_us(civic_chat) else issue_chat_cookie()
    response = templates.TemplateResponse(
        request, "chat.html", {"static_url": "/chat/static", "csrf_token": _digest(settings, "csrf", chat_id)}
    )
    response.headers["Cache-Control"] = "no-store"  # the page embeds this browser's CSRF token
    response.set_cookie(
        COOKIE,
        chat_id,
        max_age=90 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.environment == "production",
    )
    return response


@dataclass(frozen=True)
class Quota:
    """A chat quota: its bucket, and how many hits per how many seconds."""

    bucket: str
    limit: int
    per_seconds: float


# Per conversation: photos well above a report's few (messages: CHAT_MESSAGES_PER_CONVERSATION_PER_MINUTE).
PHOTOS_PER_CONVERSATION = Quota("chat_photo_conversation", 20, 3600)


def _quota_refusal(
    factory: sessionmaker[Session], external_id: str, client: str, own: Quota, per_address: Quota
) -> tuple[str, int] | None:
    """Counts one hit against the conversation's and the address's quotas; (language, seconds to wait) when refused.

    Both quotas live in the database (civic.rate_limits), so they hold across web workers. A refusal counts
    nowhere (rolled back), so a client hammering a full quota does not keep it full.
    """
    with session_scope(factory) as session:
        for quota, key in ((own, external_id), (per_address, client)):
            decision = rate_limits.allow(
                session, bucket=quota.bucket, key=key, limit=quota.limit, per_seconds=quota.per_seconds
            )
            if not decision.allowed:
                session.rollback()
                language = session.execute(
                    select(Conversation.language).where(
                        Conversation.channel == "web", Conversation.external_id == external_id
                    )
                ).scalar_one_or_none()
                return language or DEFAULT_LANGUAGE, decision.retry_after_seconds
    return None


async def _over_quota(request: Request, chat_id: str, *, photo: bool) -> JSONResponse | None:
    """A friendly 429 with Retry-After in the citizen's language when a quota is used up, else None."""
    settings = get_settings()
    if photo:
        own, key = PHOTOS_PER_CONVERSATION, "photo_rate_limited"
        per_address = Quota("chat_photo_address", settings.chat_photos_per_address_per_hour, 3600)
    else:
        key = "chat_rate_limited"
        own = Quota("chat_message_conversation", settings.chat_messages_per_conversation_per_minute, 60)
        per_address = Quota("chat_message_address", settings.chat_messages_per_address_per_minute, 60)
    factory, external_id = sessions_of(request), external_id_of(chat_id)
    refusal = await asyncio.to_thread(_quota_refusal, factory, external_id, client_key(request), own, per_address)
    if refusal is None:
        return None
    language, seconds = refusal
    message = gateway_message(key, language, wait=wait_text(seconds, language))
    body = {"error": "rate_limited", "message": message, "retry_after": seconds}
    return JSONResponse(body, status_code=429, headers={"Retry-After": str(seconds)})


def _outcome_response(outcome: Outcome) -> JSONResponse:
    body: dict[str, Any] = {
        "replies": [{"id": r.id, "text": r.text, "buttons": r.buttons, "sender": r.sender} for r in outcome.replies],
        "language": outcome.language,
    }
    if outcome.error:
        body["error"] = outcome.error
        body["message"] = outcome.replies[0].text if outcome.replies else outcome.error
    return JSONResponse(body, status_code=STATUS_OF_ERROR.get(outcome.error or "", 200))


@router.post("/api/messages")
async def post_message(body: ChatMessageIn, request: Request, chat_id: CheckedChatId) -> JSONResponse:
    refused = await _over_quota(request, chat_id, photo=False)
    if refused is not None:
        return refused
    inbound = Inbound(
        channel="web",
        external_id=external_id_of(chat_id),
        text=body.text,
        payload=body.payload,
        client_message_id=body.client_message_id,
        latitude=body.latitude if body.longitude is not None else None,
        longitude=body.longitude if body.latitude is not None else None,
        attachment_ids=tuple(body.attachment_ids),
    )
    return _outcome_response(await gateway_of(request).handle(inbound))


@router.get("/api/messages")
async def get_messages(
    request: Request, chat_id: ChatId, after: Annotated[int, Query(le=MAX_MESSAGE_ID)] = 0
) -> dict[str, Any]:
    with session_scope(sessions_of(request)) as session:
        conversation = get_or_create_conversation(session, channel="web", external_id=external_id_of(chat_id))
        messages = transcript(session, conversation.id, after_id=max(after, 0))
        return {
            "messages": [
                {
                    "id": m.id,
                    "direction": m.direction,
                    "sender": m.sender,
                    "text": m.text,
                    "buttons": m.data.get("buttons") or [],
                    "attachment_ids": m.data.get("attachment_ids") or [],
                    "created_at": m.created_at.isoformat(),
                }
                for m in messages
            ]
        }


@router.post("/api/photos")
async def post_photo(request: Request, chat_id: CheckedChatId, file: Annotated[UploadFile, File()]) -> JSONResponse:
    refused = await _over_quota(request, chat_id, photo=True)
    if refused is not None:
        return refused
    settings = get_settings()
    content = await file.read(settings.max_upload_bytes + 1)
    with session_scope(sessions_of(request)) as session:
        conversation = get_or_create_conversation(session, channel="web", external_id=external_id_of(chat_id))
        try:
            attachment = store_photo(session, conversation_id=conversation.id, content=content)
        except UnsupportedMedia:
            message = gateway_message(
                "unsupported_file", conversation.language, limit_mb=settings.max_upload_bytes // 2**20
            )
            return JSONResponse({"error": "unsupported_file", "message": message}, status_code=415)
        return JSONResponse({"attachment_id": attachment.id, "thumbnail_url": f"/chat/api/photos/{attachment.id}"})


@router.get("/api/photos/{attachment_id}")
async def get_photo(attachment_id: str, request: Request, chat_id: ChatId) -> FileResponse:
    if not is_attachment_id(attachment_id):
        raise HTTPException(404, "no such photo")
    with session_scope(sessions_of(request)) as session:
        conversation = get_or_create_conversation(session, channel="web", external_id=external_id_of(chat_id))
        attachment = session.get(Attachment, attachment_id)
        # Only the conversation that uploaded a photo may see it here.
        if attachment is None or attachment.conversation_id != conversation.id:
            raise HTTPException(404, "no such photo")
        try:
            path = media_path(attachment)
        except UnsupportedMedia:  # a stored path leading out of the media directory
            raise HTTPException(404, "no such photo") from None
        if not path.is_file():  # FileResponse would fail only once the response has started: a 500
            raise HTTPException(404, "no such photo")
        return FileResponse(path, media_type=attachment.content_type)
