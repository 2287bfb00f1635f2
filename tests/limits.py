"""Test helpers for the shared rate limits: every TestClient request comes from one address, "testclient"."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from civic.db import session_scope
from civic.models import RateLimitCounter


def reset_rate_limits(factory: sessionmaker[Session]) -> None:
    """Forgets every count, so a test starts with full budgets whatever the tests before it sent."""
    with session_scope(factory) as session:
        session.execute(delete(RateLimitCounter))
