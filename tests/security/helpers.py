"""Shared by the forged-input matrix: bad media paths, row counts that prove nothing was written, raw requests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Message, Receive, Scope

from civic.db import session_scope, utcnow
from civic.models import Attachment, AuditEntry, Base, OutboxMessage
from civic.outbox import LEASE_SECONDS, PENDING
from webapp.outbox_worker import WEB_CHANNELS

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CANARY = b"CANARY: a file outside the media directory"
# Ways out of /…/media/{id}, as raw bytes of the URL's path after the prefix.
TRAVERSALS = {
    "dot-dot-slash": b"../../../secret.txt",
    "dot-dot-slash-to-etc": b"../../../../../../etc/passwd",
    "encoded-slash": b"..%2f..%2f..%2fsecret.txt",
    "encoded-dots-and-slash": b"%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
    "double-encoded": b"%252e%252e%252fsecret.txt",
    "backslashes": b"..%5c..%5c..%5csecret.txt",
    "dot-dot": b"..",
    "absolute-path": b"/etc/passwd",
    "encoded-absolute-path": b"%2fetc%2fpasswd",
    "nul-byte": b"%00../../secret.txt",
    "overlong-id": b"a" * 5000,
}
# What may follow a real attachment id in its URL and must not still find it.
ID_SUFFIXES = {"long": "x" * 4000, "dots": "..", "traversal": "%2f..%2f..%2fsecret.txt", "extension": ".png"}
# Attachment rows whose stored path leads out of the media directory ({root} is the directory itself).
ESCAPING_STORED_PATHS = {
    "relative-escape": "../secret.txt",
    "nested-escape": "photos/../../secret.txt",
    "absolute": "/etc/passwd",
    "absolute-escape": "{root}/../secret.txt",
    "symlink-out": "link-to-secret",
    "missing-file": "missing.png",
}

# Their rows are the record of a refusal, so a refusal may add to them; tests assert on them where it matters.
# The rate limits' counters count attempts, refused ones included (tests/security/test_abuse_limits.py).
REFUSAL_RECORDS = frozenset({"console_audit_log", "console_login_attempts", "rate_limit_counters"})


def media_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A media directory with a secret file beside it and a symlink inside pointing at that file."""
    root = tmp_path_factory.mktemp("store")
    (root / "secret.txt").write_bytes(CANARY)
    media = root / "media"
    media.mkdir()
    (media / "link-to-secret").symlink_to(root / "secret.txt")
    return media


def attachment_stored_at(db: sessionmaker[Session], conversation_id: int, stored_path: str) -> str:
    """The id of a new photo row of the conversation whose file is said to be at `stored_path`."""
    attachment_id = uuid.uuid4().hex
    with session_scope(db) as session:
        session.add(
            Attachment(
                id=attachment_id,
                conversation_id=conversation_id,
                kind="photo",
                content_type="image/png",
                size=1,
                sha256="0" * 64,
                path=stored_path,
            )
        )
    return attachment_id


def row_counts(db: sessionmaker[Session]) -> dict[str, int]:
    """How many rows each table holds, except the tables that record refusals."""
    with session_scope(db) as session:
        return {
            table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
            if table.name not in REFUSAL_RECORDS
        }


def wait_for_web_deliveries(db: sessionmaker[Session], timeout: float = 5.0) -> None:
    """Waits while a web-chat notice waits for its first delivery (the outbox appends it to a transcript).

    Earlier tests' notices are delivered by this app's outbox worker; one landing while rows are counted
    would look like a write by the request under test. A claimed row is leased, not yet failed: still pending.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        soon = utcnow() + timedelta(seconds=LEASE_SECONDS + 1)
        query = select(func.count()).where(
            OutboxMessage.channel.in_(WEB_CHANNELS),
            OutboxMessage.status == PENDING,
            OutboxMessage.next_attempt_at <= soon,
        )
        with session_scope(db) as session:
            if not session.scalar(query):
                return
        time.sleep(0.05)


@contextmanager
def nothing_written(db: sessionmaker[Session]) -> Iterator[None]:
    """Fails if any table (but the refusal records) has a different number of rows after the block."""
    wait_for_web_deliveries(db)
    before = row_counts(db)
    yield
    after = row_counts(db)
    changed = {name: (before[name], after[name]) for name in before if after[name] != before[name]}
    assert not changed, f"rows written by a refused request (before, after): {changed}"


def last_audit_id(db: sessionmaker[Session]) -> int:
    with session_scope(db) as session:
        return session.execute(select(func.coalesce(func.max(AuditEntry.id), 0))).scalar_one()


def audit_since(db: sessionmaker[Session], after_id: int) -> list[tuple[str, str]]:
    """(action, target) of the audit entries written after `after_id`, oldest first."""
    query = select(AuditEntry.action, AuditEntry.target).where(AuditEntry.id > after_id).order_by(AuditEntry.id)
    with session_scope(db) as session:
        return [(action, target) for action, target in session.execute(query)]


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def http_scope(method: str, raw_path: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    """An HTTP scope as uvicorn builds it: the path exactly as sent (no client normalises `../` away)."""
    path, _, query = raw_path.partition(b"?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path.decode("latin-1")),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def _empty_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def asgi_request(
    client: TestClient, scope: Scope, receive: Receive = _empty_body, *, give_up_after: float = 15.0
) -> RawResponse:
    """Runs one request through the app on the test client's own event loop (where its lifespan state lives).

    A request the app never answers fails the test after `give_up_after` seconds instead of hanging it.
    """
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        with anyio.fail_after(give_up_after):
            await client.app(scope, receive, send)

    assert client.portal is not None, "only inside a running TestClient"
    client.portal.call(run)
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return RawResponse(start["status"], dict(start.get("headers") or []), body)
