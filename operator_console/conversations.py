"""Live takeover in the console: take a conversation, talk to the citizen, hand it back to the bot."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot.app_state import gateway_of, sessions_of
from bot.rasa_client import RasaClient, RasaUnavailable
from civic import console_accounts as accounts
from civic import takeover
from civic.console_accounts import ConsoleIdentity
from civic.console_admin import canned_answers_for
from civic.console_cases import ActionRefused, PermissionDenied
from civic.db import MAX_ROW_ID, in_thread
from civic.errors import CaseNotFound
from civic.models import Conversation, Message
from operator_console.audit import client_ip
from operator_console.auth import CONSOLE_PATH, Operator, RowId, require_csrf, wants_json
from operator_console.routes import render_page

log = logging.getLogger(__name__)
router = APIRouter(prefix=CONSOLE_PATH, tags=["console"], dependencies=[Depends(require_csrf)])
TRANSCRIPT_LIMIT = 500

# Flash messages are chosen by key from these tables, never echoed from the URL.
DONE = {
    "take": ("대화를 맡았습니다. 챗봇은 멈췄습니다.", "You hold the conversation; the bot is paused."),
    "bridge": ("전화를 내 자리 전화로 연결했습니다.", "The caller is being connected to your desk phone."),
    "release": ("챗봇에게 대화를 돌려주었습니다.", "The conversation is back with the bot."),
    "sent": ("보냈습니다.", "Sent."),
}
ERRORS = {
    "held_by_other": ("다른 상담사가 이미 맡고 있습니다.", "Another operator holds this conversation."),
    "not_holding": ("이 대화를 맡고 있지 않습니다.", "You do not hold this conversation."),
    "text_required": ("보낼 내용을 입력하세요.", "Write a message first."),
    "text_too_long": ("메시지가 너무 깁니다 (2,000자까지).", "The message is too long (2,000 characters at most)."),
    "key_required": ("양식을 다시 불러오세요.", "Reload the form."),
    "channel_not_writable": ("전화 상담은 글로 보낼 수 없습니다.", "Callers are talked to on the phone."),
    "no_desk_phone": ("내 자리 전화번호가 없습니다. 관리자에게 요청하세요.", "You have no desk phone; ask an admin."),
    "caller_gone": ("전화를 건 시민이 이미 끊었습니다.", "The caller has hung up."),
    "not_queued": ("대기 중인 전화가 아닙니다.", "This caller is not waiting in the queue."),
    "bot_unreachable": (
        "챗봇에 연결하지 못했습니다. 대화는 유지됩니다.",
        "The bot could not be reached; the conversation is kept.",
    ),
}


def _rasa(request: Request) -> RasaClient:
    return gateway_of(request).rasa


def _sender(conversation: Conversation) -> str:
    return f"{conversation.channel}:{conversation.external_id}"


def _message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction,
        "sender": message.sender,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
    }


def _page(conversation_id: int) -> str:
    return f"{CONSOLE_PATH}/conversations/{conversation_id}"


def _wake_outbox(request: Request) -> None:
    # Web chats have it on their transcript already; Telegram gets it now rather than at the worker's next round.
    wakeup = getattr(request.app.state, "outbox_wakeup", None)
    if wakeup is not None:
        wakeup.set()


def _back(request: Request, conversation_id: int, *, done: str = "", error: str = "") -> Response:
    if wants_json(request):
        body = {"ok": not error, "done": done, "error": error, "message": ERRORS.get(error, ("", ""))[1]}
        return JSONResponse(body, status_code=409 if error else 200)
    query = f"?error={error}" if error else f"?done={done}"
    return RedirectResponse(_page(conversation_id) + query, status_code=303)


async def _db(request: Request, work: Any) -> Any:
    return await in_thread(sessions_of(request), work)


@router.get("/conversations", response_class=HTMLResponse)
async def conversations_page(request: Request, user: Operator) -> HTMLResponse:
    rows = await _db(request, lambda s: takeover.conversations_for(s, user))
    return render_page(request, "conversations.html", user=user, rows=rows)


def _view(session: Session, user: ConsoleIdentity, conversation_id: int) -> dict[str, Any]:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise CaseNotFound(str(conversation_id))
    call = takeover.phone_call_of(session, conversation)
    return {
        "conversation": conversation,
        "sender": _sender(conversation),
        "holder": takeover.holder_of(session, conversation_id),
        "held_by_me": conversation.held_by_user_id == user.user_id,
        "phone_status": call.status if call is not None else None,
        "writable": conversation.channel in takeover.WRITABLE_CHANNELS,
        "messages": takeover.messages_after(session, conversation_id, 0, limit=TRANSCRIPT_LIMIT),
        "canned": canned_answers_for(session, conversation.language),
        "has_desk_phone": takeover.desk_phone_of(session, user) is not None,
    }


@router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(
    request: Request, user: Operator, conversation_id: RowId, done: str = "", error: str = ""
) -> HTMLResponse:
    try:
        view = await _db(request, lambda s: _view(s, user, conversation_id))
    except CaseNotFound:
        raise HTTPException(404, "no such conversation") from None
    try:
        slots = {k: v for k, v in (await _rasa(request).slots(view["sender"])).items() if v not in (None, "", [])}
    except RasaUnavailable:
        slots = {}
    return render_page(
        request,
        "conversation.html",
        user=user,
        slots=slots,
        # One key per form shown: a double click or a resubmitted form sends one message.
        form_key=secrets.token_hex(16),
        done=DONE.get(done),
        error=ERRORS.get(error),
        last_id=view["messages"][-1].id if view["messages"] else 0,
        **view,
    )


@router.get("/api/conversations/{conversation_id}/messages")
async def conversation_messages(
    request: Request, user: Operator, conversation_id: RowId, after: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0
) -> JSONResponse:
    """The transcript after `after` and who holds the conversation: the page polls this every second."""

    def read(session: Session) -> dict[str, Any]:
        messages = takeover.messages_after(session, conversation_id, max(after, 0))
        holder = takeover.holder_of(session, conversation_id)
        return {"messages": [_message_json(m) for m in messages], "held_by": holder}

    try:
        body = await _db(request, read)
    except CaseNotFound:
        raise HTTPException(404, "no such conversation") from None
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _audited(request: Request, user: ConsoleIdentity, action: str, conversation_id: int, work: Any) -> Any:
    """Runs `work` and its audit entry in one transaction."""

    def run(session: Session) -> Any:
        result = work(session)
        accounts.record(session, f"conversation.{action}", by=user, target=str(conversation_id), ip=client_ip(request))
        return result

    return _db(request, run)


@router.post("/conversations/{conversation_id}/take")
async def take(request: Request, user: Operator, conversation_id: RowId) -> Response:
    """Hold the conversation: the bot pauses; a caller in the phone queue is bridged to the desk phone."""

    def hold(session: Session) -> tuple[Conversation, str | None, str | None]:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise CaseNotFound(str(conversation_id))
        call = takeover.phone_call_of(session, conversation)
        desk = None
        if call is not None:
            if call.status != "queued" and conversation.held_by_user_id != user.user_id:
                raise ActionRefused("not_queued")
            desk = takeover.desk_phone_of(session, user)
            if desk is None:
                raise ActionRefused("no_desk_phone")
        takeover.take(session, user, conversation_id)
        return conversation, desk, call.status if call is not None else None

    try:
        conversation, desk, phone_status = await _audited(request, user, "take", conversation_id, hold)
    except CaseNotFound:
        raise HTTPException(404, "no such conversation") from None
    except PermissionDenied:
        raise HTTPException(403, "operators take conversations") from None
    except ActionRefused as refused:
        return _back(request, conversation_id, error=refused.code)
    sender = _sender(conversation)
    try:
        await _rasa(request).pause(sender)
    except RasaUnavailable:
        log.warning("could not pause the bot of conversation %s", conversation_id)
    if desk is not None and phone_status == "queued":
        if not await request.app.state.phone_line.bridge(conversation_id, desk):
            return _back(request, conversation_id, error="caller_gone")
        return _back(request, conversation_id, done="bridge")
    _wake_outbox(request)
    return _back(request, conversation_id, done="take")


@router.post("/conversations/{conversation_id}/messages")
async def send_message(
    request: Request,
    user: Operator,
    conversation_id: RowId,
    form_key: Annotated[str, Form(min_length=16, max_length=64)],
    text: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """The operator's message to the citizen, through the outbox on the citizen's channel."""
    try:
        await _audited(
            request, user, "say", conversation_id, lambda s: takeover.say(s, user, conversation_id, text, key=form_key)
        )
    except CaseNotFound:
        raise HTTPException(404, "no such conversation") from None
    except ActionRefused as refused:
        return _back(request, conversation_id, error=refused.code)
    _wake_outbox(request)
    return _back(request, conversation_id, done="sent")


@router.post("/conversations/{conversation_id}/release")
async def release(
    request: Request,
    user: Operator,
    conversation_id: RowId,
    collect_missing: Annotated[str | None, Form()] = None,
) -> Response:
    """Give the conversation back to the bot, optionally asking it to collect what the report misses."""
    try:
        conversation = await _audited(
            request, user, "release", conversation_id, lambda s: takeover.release(s, user, conversation_id)
        )
    except CaseNotFound:
        raise HTTPException(404, "no such conversation") from None
    except ActionRefused as refused:
        return _back(request, conversation_id, error=refused.code)
    gateway = gateway_of(request)
    try:
        await gateway.resume_bot(conversation_id, _sender(conversation))
        if collect_missing:
            key = f"handback:{conversation_id}:{secrets.token_hex(8)}"
            for reply in await gateway.resume_report(conversation_id, key=key):
                log.debug("hand-back question %s queued", reply.id)
    except RasaUnavailable:
        return _back(request, conversation_id, error="bot_unreachable")
    finally:
        _wake_outbox(request)
    return _back(request, conversation_id, done="release")
