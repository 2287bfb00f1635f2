"""Audit entries for console requests: who (the session's user), what, and from where (the client address)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from bot.app_state import sessions_of
from bot.client_address import client_address
from civic import console_accounts as accounts
from civic.console_accounts import ConsoleIdentity
from civic.db import in_thread, session_scope


def client_ip(request: Request) -> str:
    """The client's address as uvicorn saw it (behind a proxy, --forwarded-allow-ips must trust the proxy)."""
    return client_address(request)


def audit(
    request: Request,
    action: str,
    *,
    by: ConsoleIdentity | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Writes one audit entry in its own transaction (blocking: call from sync routes and dependencies)."""
    with session_scope(sessions_of(request)) as session:
        accounts.record(session, action, by=by, target=target, details=details, ip=client_ip(request))


async def audit_async(
    request: Request,
    action: str,
    *,
    by: ConsoleIdentity | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """`audit` for async code: the write runs in a worker thread."""
    ip = client_ip(request)
    await in_thread(
        sessions_of(request),
        lambda session: accounts.record(session, action, by=by, target=target, details=details, ip=ip),
    )
