"""The outbox in the console: what could not be delivered to citizens (dead letters), and sending it again."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.app_state import sessions_of
from civic import console_accounts as accounts
from civic import outbox
from civic.db import session_scope
from civic.models import OutboxMessage
from civic.sms import SEALED_PLACEHOLDER, VERIFICATION_KIND
from operator_console.audit import client_ip
from operator_console.auth import CONSOLE_PATH, Operator, RowId, require_csrf
from operator_console.routes import render_page

router = APIRouter(prefix=CONSOLE_PATH, tags=["console"], dependencies=[Depends(require_csrf)])
PREVIEW_CHARS = 200


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(request: Request, user: Operator, done: str = "") -> HTMLResponse:
    with session_scope(sessions_of(request)) as session:
        counts = outbox.status_counts(session)
        rows = [
            {
                "id": row.id,
                "conversation_id": row.conversation_id,
                "channel": row.channel,
                "kind": row.kind,
                "status": row.status,
                "attempts": row.attempts,
                "next_attempt_at": row.next_attempt_at,
                "last_error": (row.last_error or "")[:PREVIEW_CHARS],
                # A vote receipt and an SMS code are secret: their text is never shown, even undelivered.
                "preview": preview(row),
            }
            for row in outbox.undelivered(session)
        ]
    return render_page(request, "outbox.html", user=user, counts=counts, rows=rows, retried=done == "retry")


def preview(row: OutboxMessage) -> str:
    if row.kind == VERIFICATION_KIND:
        return SEALED_PLACEHOLDER
    return "" if (row.data or {}).get("secret") else row.text[:PREVIEW_CHARS]


@router.post("/outbox/{message_id}/retry")
def retry(request: Request, user: Operator, message_id: RowId) -> Response:
    with session_scope(sessions_of(request)) as session:
        row = outbox.retry_dead(session, message_id)
        if row is None:
            raise HTTPException(404, "no dead letter with this id")
        accounts.record(session, "outbox.retry", by=user, target=str(message_id), ip=client_ip(request))
    wakeup = getattr(request.app.state, "outbox_wakeup", None)
    if wakeup is not None:
        wakeup.set()
    return RedirectResponse(f"{CONSOLE_PATH}/outbox?done=retry", status_code=303)
