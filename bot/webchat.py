"""Web chat adapter: the /chat page and its JSON API, a thin layer over the gateway."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, File, Header, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from bot.gateway import Gateway, Inbound, Outcome
from bot.messages import gateway_message
from civic.conversations import get_or_create_conversation, transcript
from civic.db import MAX_ROW_ID, session_scope
from civic.media import UnsupportedMedia, is_attachment_id, media_path, store_photo
from civic.models import Attachment
from civic.settings import Settings, get_settings

HERE = Path(__file__).parent
COOKIE = "civic_chat"
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


def chat_id_of(civic_chat: Annotated[str | None, Cookie()] = None) -> str:
    if not civic_chat or len(civic_chat) > 64:
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


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def sessions_of(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


@router.get("", response_class=HTMLResponse)
async def chat_page(request: Request, civic_chat: Annotated[str | None, Cookie()] = None) -> Response:
    settings = get_settings()
    chat_id = civic_chat if civic_chat and len(civic_chat) <= 64 else secrets.token_urlsafe(24)
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
