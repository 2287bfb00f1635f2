"""`/health` (the process answers) and `/ready` (it can serve: database, Rasa, actions), for a load balancer."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Literal

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from bot.rasa_client import RasaClient
from civic.db import in_thread
from civic.settings import get_settings

# Each dependency answers within this or counts as down: a probe must answer before the balancer gives up.
CHECK_TIMEOUT_SECONDS = 1.0
router = APIRouter(tags=["operations"])


@dataclass
class Readiness:
    """Whether this worker takes new requests: not while starting, nor once told to stop."""

    state: Literal["starting", "ready", "draining"] = "starting"

    def mark_ready(self) -> None:
        """Starting → ready; a worker already draining stays so."""
        if self.state == "starting":
            self.state = "ready"


def action_server_health_url(action_server_url: str) -> str:
    """The action server's open /health, next to the /webhook Rasa calls."""
    base = action_server_url.rstrip("/")
    return (base.removesuffix("/webhook") or base) + "/health"


async def database_reachable(session_factory: sessionmaker[Session]) -> bool:
    try:
        await asyncio.wait_for(in_thread(session_factory, lambda s: s.execute(text("SELECT 1"))), CHECK_TIMEOUT_SECONDS)
    except Exception:  # any failure (locked, refused, timed out) means the worker cannot serve
        return False
    return True


async def url_answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_SECONDS) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def dependency_checks(
    session_factory: sessionmaker[Session], rasa: RasaClient, action_server_url: str
) -> dict[str, bool]:
    """Database, Rasa (at least one replica: the client passes over one that is down) and the action server."""
    database, replicas, actions = await asyncio.gather(
        database_reachable(session_factory),
        rasa.reachable(CHECK_TIMEOUT_SECONDS),
        url_answers(action_server_health_url(action_server_url)),
    )
    return {"database": database, "rasa": any(replicas.values()), "actions": actions}


@contextlib.contextmanager
def drain_on_sigterm(readiness: Readiness, delay: float) -> Iterator[None]:
    """While open: SIGTERM marks the worker draining (/ready 503) and reaches uvicorn's handler `delay` s later.

    Only the main thread may set signal handlers; elsewhere (a test client's thread) this does nothing.
    """
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous) or threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        readiness.state = "draining"
        loop.call_soon_threadsafe(loop.call_later, delay, previous, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive and its event loop answers; nothing else is checked."""
    return {"status": "ok"}


@router.get("/ready", include_in_schema=False)
async def ready(request: Request) -> JSONResponse:
    """200 when this worker can serve a citizen now, else 503 with what is missing (a balancer's probe)."""
    readiness: Readiness | None = getattr(request.app.state, "readiness", None)
    if readiness is None or readiness.state != "ready":
        return JSONResponse({"status": readiness.state if readiness else "starting"}, status_code=503)
    checks = await dependency_checks(
        request.app.state.session_factory, request.app.state.gateway.rasa, get_settings().action_server_url
    )
    ok = all(checks.values())
    return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
