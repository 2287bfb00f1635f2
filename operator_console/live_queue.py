"""The operators' live queue: the page, its JSON, and a server-sent event stream pushed when the queue changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy.orm import Session

from civic.console_accounts import ConsoleIdentity
from civic.console_queue import queue_version, waiting
from civic.db import in_thread, utcnow
from operator_console.audit import session_factory
from operator_console.auth import CONSOLE_PATH, require_role
from operator_console.routes import render_page

# The queue is looked at twice a second: "within 1 s" with room for the browser's own delivery.
CHECK_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0  # a comment line keeps proxies from closing an idle stream
router = APIRouter(prefix=CONSOLE_PATH, tags=["console"])
Operator = Annotated[ConsoleIdentity, Depends(require_role("operator", "admin"))]


async def _snapshot(request: Request) -> dict[str, object]:
    def read(session: Session) -> dict[str, object]:
        now = utcnow()
        items = waiting(session)
        return {"at": now.isoformat(), "items": [item.to_json(now) for item in items]}

    return await in_thread(session_factory(request), read)


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request, user: Operator) -> HTMLResponse:
    return render_page(request, "queue.html", user=user, snapshot=await _snapshot(request))


@router.get("/api/queue")
async def queue_json(request: Request, user: Operator) -> dict[str, object]:
    return await _snapshot(request)


@router.get("/api/queue/events")
async def queue_events(request: Request, user: Operator) -> StreamingResponse:
    """Server-sent events: the whole queue now, then again each time it changes."""
    factory = session_factory(request)

    async def events() -> AsyncIterator[str]:
        last: tuple[object, ...] | None = None
        quiet = 0.0
        while not await request.is_disconnected():
            version = await in_thread(factory, queue_version)
            if version != last:
                last = version
                quiet = 0.0
                yield f"event: queue\ndata: {json.dumps(await _snapshot(request), ensure_ascii=False)}\n\n"
            elif quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(CHECK_SECONDS)
            quiet += CHECK_SECONDS

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
