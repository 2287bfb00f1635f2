"""The operators' live queue: the page, its JSON, and a server-sent event stream pushed when the queue changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from civic.console_accounts import ConsoleIdentity
from civic.db import in_thread
from operator_console.audit import session_factory
from operator_console.auth import CONSOLE_PATH, require_role
from operator_console.queue_hub import QueueHub, snapshot
from operator_console.routes import render_page

KEEPALIVE_SECONDS = 15.0  # a comment line keeps proxies from closing an idle stream
DISCONNECT_CHECK_SECONDS = 1.0
router = APIRouter(prefix=CONSOLE_PATH, tags=["console"])
Operator = Annotated[ConsoleIdentity, Depends(require_role("operator", "admin"))]


async def _snapshot(request: Request) -> dict[str, object]:
    return await in_thread(session_factory(request), snapshot)


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request, user: Operator) -> HTMLResponse:
    return render_page(request, "queue.html", user=user, snapshot=await _snapshot(request))


@router.get("/api/queue")
async def queue_json(request: Request, user: Operator) -> dict[str, object]:
    return await _snapshot(request)


@router.get("/api/queue/events")
async def queue_events(request: Request, user: Operator) -> StreamingResponse:
    """Server-sent events: the whole queue now, then again each time it changes (see QueueHub)."""
    hub: QueueHub = request.app.state.queue_hub

    async def events() -> AsyncIterator[str]:
        stream = hub.subscribe()
        try:
            yield f"event: queue\ndata: {json.dumps(await _snapshot(request), ensure_ascii=False)}\n\n"
            quiet = 0.0
            while not await request.is_disconnected():
                try:
                    data = await asyncio.wait_for(stream.get(), DISCONNECT_CHECK_SECONDS)
                except TimeoutError:
                    quiet += DISCONNECT_CHECK_SECONDS
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
