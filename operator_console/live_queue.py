"""The operators' live queue: the page, its JSON, and a server-sent event stream pushed when the queue changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy.orm import Session

from bot.app_state import sessions_of
from civic.console_accounts import ConsoleIdentity
from civic.db import in_thread
from civic.settings import get_settings
from operator_console import sessions
from operator_console.auth import CONSOLE_PATH, OPERATOR_ROLES, Operator
from operator_console.queue_hub import QueueHub, snapshot
from operator_console.routes import render_page

KEEPALIVE_SECONDS = 15.0  # a comment line keeps proxies from closing an idle stream
DISCONNECT_CHECK_SECONDS = 1.0
# A quiet stream still looks at its session this often, so a logout closes it within seconds, not at the next push.
SESSION_CHECK_SECONDS = 5.0
router = APIRouter(prefix=CONSOLE_PATH, tags=["console"])


async def _snapshot(request: Request) -> dict[str, object]:
    return await in_thread(sessions_of(request), snapshot)


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request, user: Operator) -> HTMLResponse:
    return render_page(request, "queue.html", user=user, snapshot=await _snapshot(request))


@router.get("/api/queue")
async def queue_json(request: Request, user: Operator) -> dict[str, object]:
    return await _snapshot(request)


async def _still_allowed(request: Request, user: ConsoleIdentity) -> bool:
    """Whether the stream's session is still open, unexpired, of an active user with the same role.

    Checked without touching the session: an open queue tab is not use, so it cannot keep an idle session alive.
    """
    token = request.cookies.get(get_settings().console_cookie_name)

    def check(session: Session) -> bool:
        identity = sessions.resolve_session(session, token, touch=False)
        return identity is not None and identity.user_id == user.user_id and identity.role in OPERATOR_ROLES

    return await in_thread(sessions_of(request), check)


@router.get("/api/queue/events")
async def queue_events(request: Request, user: Operator) -> StreamingResponse:
    """Server-sent events: the whole queue now, then again each time it changes (see QueueHub).

    The session is checked again before every push and keep-alive, and at least every SESSION_CHECK_SECONDS:
    after a logout, expiry, deactivation or change of role the stream sends `ended` and closes.
    """
    hub: QueueHub = request.app.state.queue_hub

    async def events() -> AsyncIterator[str]:
        stream = hub.subscribe()
        try:
            yield f"event: queue\ndata: {json.dumps(await _snapshot(request), ensure_ascii=False)}\n\n"
            quiet = unchecked = 0.0
            while not await request.is_disconnected():
                try:
                    data: str | None = await asyncio.wait_for(stream.get(), DISCONNECT_CHECK_SECONDS)
                except TimeoutError:
                    data = None
                    quiet += DISCONNECT_CHECK_SECONDS
                    unchecked += DISCONNECT_CHECK_SECONDS
                    if quiet < KEEPALIVE_SECONDS and unchecked < SESSION_CHECK_SECONDS:
                        continue
                unchecked = 0.0
                if not await _still_allowed(request, user):
                    yield "event: ended\ndata: {}\n\n"
                    return
                if data is None:
                    if quiet >= KEEPALIVE_SECONDS:
                        quiet = 0.0
                        yield ": keep-alive\n\n"
                    continue
                quiet = 0.0
                yield f"event: queue\ndata: {data}\n\n"
        finally:
            hub.unsubscribe(stream)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
