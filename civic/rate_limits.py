"""Rate limits shared by every worker: counters in the database, keyed by an HMAC of the client, phone or id."""

from __future__ import annotations

import hashlib
import hmac
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Float, Integer, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.models import RateLimitCounter
from civic.settings import get_settings

# Old windows are deleted by about one call in this many (in the caller's transaction, so cheaply and often enough).
PRUNE_ONE_IN = 50
MAX_BUCKET_CHARS = 48


# One window's row, by bound parameters: the statements are built once (building them cost more than running them).
_ROW: tuple[ColumnElement[bool], ...] = (
    RateLimitCounter.bucket == bindparam("b_bucket"),
    RateLimitCounter.key_hash == bindparam("b_key_hash"),
    RateLimitCounter.window_index == bindparam("b_window"),
)
_COUNT = select(RateLimitCounter.count).where(*_ROW)
_EARLIER = RateLimitCounter.__table__.alias("earlier")
_PREVIOUS = (
    select(_EARLIER.c.count)
    .where(
        _EARLIER.c.bucket == bindparam("b_bucket"),
        _EARLIER.c.key_hash == bindparam("b_key_hash"),
        _EARLIER.c.window_index == bindparam("b_previous"),
    )
    .scalar_subquery()
)
# The decision and the count in one statement: the previous window's count is read by the UPDATE itself.
_TAKE = (
    update(RateLimitCounter)
    .where(
        *_ROW,
        RateLimitCounter.count
        <= bindparam("b_spare", type_=Integer) - func.coalesce(_PREVIOUS, 0) * bindparam("b_remaining", type_=Float),
    )
    .values(count=RateLimitCounter.count + 1)
)
# INSERT … ON CONFLICT DO NOTHING: two workers creating the same window's row both succeed, one row remains.
_NEW_ROW = {
    "bucket": bindparam("b_bucket"), "key_hash": bindparam("b_key_hash"), "window_index": bindparam("b_window"),
    "count": 0, "expires_at": bindparam("b_expires"),
}  # fmt: skip
_CREATE = {
    "postgresql": postgresql.insert(RateLimitCounter).values(_NEW_ROW).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(RateLimitCounter).values(_NEW_ROW).on_conflict_do_nothing(),
}


@dataclass(frozen=True)
class RateDecision:
    """Whether a hit may proceed; when not, how many seconds until it would."""

    allowed: bool
    retry_after_seconds: int


def key_hash(bucket: str, key: str) -> str:
    """HMAC of the bucket and key with PHONE_INDEX_KEY: the table holds no phone number, address or id in clear."""
    message = f"rate-limit:{bucket}:{key}".encode()
    return hmac.new(get_settings().phone_index_key.encode(), message, hashlib.sha256).hexdigest()


def allow(
    session: Session, *, bucket: str, key: str, limit: int, per_seconds: float, now: datetime | None = None
) -> RateDecision:
    """At most `limit` hits per `per_seconds` for `key` in `bucket`; counts the hit when it is allowed.

    A sliding window estimated from two fixed windows (the previous window's count weighted by how much of it
    still overlaps the sliding one), so a burst at a window's edge does not get twice the limit. The decision and
    the count are one conditional UPDATE, which the database serialises per row: concurrent workers cannot both
    take the last hit (PostgreSQL re-checks the WHERE after the row lock; SQLite's writers are serialised by
    BEGIN IMMEDIATE). Commits nothing: the caller's transaction does, and a rolled-back caller leaves no count.
    A bucket must always be used with the same `per_seconds`.
    """
    if len(bucket) > MAX_BUCKET_CHARS or limit < 1 or per_seconds <= 0:
        raise ValueError("a bucket name of at most 48 characters, a limit ≥ 1 and a positive window")
    now = now or utcnow()
    moment = now.timestamp()
    window = math.floor(moment / per_seconds)
    elapsed = moment / per_seconds - window  # fraction of the current window gone, in [0, 1)
    hashed = key_hash(bucket, key)
    expires = datetime.fromtimestamp((window + 2) * per_seconds, tz=now.tzinfo) + timedelta(seconds=1)
    if random.randrange(PRUNE_ONE_IN) == 0:
        prune(session, now)
    row = {"b_bucket": bucket, "b_key_hash": hashed}
    # Core statements on the session's connection: the ORM's per-statement work buys nothing for a counter row.
    connection = session.connection()
    connection.execute(_CREATE[connection.dialect.name], row | {"b_window": window, "b_expires": expires})
    # Allowed when the estimate with this hit stays within the limit: current + 1 + previous·(1 − f) ≤ limit.
    weights = {"b_window": window, "b_previous": window - 1, "b_spare": limit - 1, "b_remaining": 1 - elapsed}
    if connection.execute(_TAKE, row | weights).rowcount == 1:
        return RateDecision(True, 0)
    previous = connection.execute(_COUNT, row | {"b_window": window - 1}).scalar_one_or_none() or 0
    current = connection.execute(_COUNT, row | {"b_window": window}).scalar_one()
    return RateDecision(False, _retry_after(previous, current, limit, elapsed, per_seconds))


def _retry_after(previous: int, current: int, limit: int, elapsed: float, per_seconds: float) -> int:
    """Seconds until one more hit fits: current + 1 + previous·(1 − f) ≤ limit (f: fraction of the window gone)."""
    if current + 1 > limit:
        # Not before the next window, where this window's count decays: current·(1 − f′) + 1 ≤ limit.
        fraction = (1 - elapsed) + max(0.0, 1 - (limit - 1) / current)
    else:
        # Within this window, as the previous one slides out: previous·(1 − f) ≤ limit − 1 − current.
        fraction = max(0.0, 1 - (limit - 1 - current) / previous - elapsed) if previous else 0.0
    return max(1, math.ceil(fraction * per_seconds))


def prune(session: Session, now: datetime | None = None) -> int:
    """Deletes windows too old to count for anything; returns how many rows went."""
    result = session.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at < (now or utcnow())))
    return cast(CursorResult[Any], result).rowcount
