"""Duplicates at intake: an open case of the same problem close by, which a citizen may follow instead of filing."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher

from sqlalchemy import select
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.errors import CaseNotFound
from civic.models import Case, CaseFollower
from civic.polls import distance_m
from civic.workflow import CaseStatus

S = CaseStatus
# Listed, not "not closed": an IN list lets the indexes below serve the status test too.
OPEN_STATUSES = tuple(s.value for s in (S.RECEIVED, S.ACCEPTED, S.ASSIGNED, S.IN_PROGRESS, S.REOPENED))
RADIUS_M = 100.0
WINDOW = timedelta(days=14)
# A dong holds a few hundred cases of a category in two weeks at most; the newest ones are compared by place.
PLACE_CANDIDATES = 50
PLACE_SIMILARITY = 0.6
# About 1 m in degrees at Seoul's latitude (1° latitude ≈ 111 km, 1° longitude ≈ 88 km): a box the indexed
# query can use; the exact distance is checked afterwards.
LAT_DEGREES_PER_M = 1 / 111_000
LON_DEGREES_PER_M = 1 / 88_000
_GPS_SUFFIX = re.compile(r"\(GPS[^)]*\)")
_NOT_WORD = re.compile(r"[\W_]+")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Duplicate:
    """An open case the citizen's report seems to repeat: its number, status, age and distance if known."""

    number: str
    status: str
    created_at: datetime
    distance_m: float | None


def bounding_box(latitude: float, longitude: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min lat, max lat, min lon, max lon) of a square holding the circle of `radius_m` around the point."""
    dlat, dlon = radius_m * LAT_DEGREES_PER_M, radius_m * LON_DEGREES_PER_M
    return latitude - dlat, latitude + dlat, longitude - dlon, longitude + dlon


def find_duplicate(
    session: Session,
    *,
    category: str,
    district: str | None,
    dong: str | None,
    place: str | None,
    latitude: float | None = None,
    longitude: float | None = None,
    now: datetime | None = None,
) -> Duplicate | None:
    """The open case of `category` from the last 14 days within 100 m (the nearest), else in the same dong with
    a similar place (the newest); None when there is none."""
    since = (now or utcnow()) - WINDOW
    recent_open = select(Case.number, Case.status, Case.created_at, Case.latitude, Case.longitude, Case.place).where(
        Case.category == category,
        Case.status.in_(OPEN_STATUSES),
        Case.created_at >= since,
        Case.merged_into_id.is_(None),
    )
    if latitude is not None and longitude is not None:
        lat_min, lat_max, lon_min, lon_max = bounding_box(latitude, longitude, RADIUS_M)
        rows = session.execute(
            recent_open.where(Case.latitude.between(lat_min, lat_max), Case.longitude.between(lon_min, lon_max))
        ).all()
        near = [(distance_m(latitude, longitude, r.latitude, r.longitude), r) for r in rows]
        near = [(d, r) for d, r in near if d <= RADIUS_M]
        if near:
            d, row = min(near, key=lambda pair: (pair[0], -pair[1].created_at.timestamp()))
            return Duplicate(row.number, row.status, row.created_at, d)
    if district and dong and place:
        rows = session.execute(
            recent_open.where(Case.district == district, Case.dong == dong)
            .order_by(Case.created_at.desc())
            .limit(PLACE_CANDIDATES)
        ).all()
        for row in rows:
            if similar_place(place, row.place, ignore=(district, dong)):
                return Duplicate(row.number, row.status, row.created_at, None)
    return None


def _place_key(place: str, ignore: tuple[str, ...]) -> str:
    text = _GPS_SUFFIX.sub("", unicodedata.normalize("NFKC", place)).casefold()
    for word in ignore:
        text = text.replace(word.casefold(), "")  # the same gu and dong in both says nothing of the spot
    return _NOT_WORD.sub("", text)


def similar_place(one: str, other: str, *, ignore: tuple[str, ...] = ()) -> bool:
    """Whether two places in the same dong name the same spot: "합정역 2번 출구 앞에" and "합정역 2번출구 앞"."""
    a, b = _place_key(one, ignore), _place_key(other, ignore)
    if min(len(a), len(b)) < 3:
        return False  # "앞", "건너편" say nothing
    numbers_a, numbers_b = set(_NUMBER.findall(a)), set(_NUMBER.findall(b))
    if numbers_a and numbers_b and numbers_a != numbers_b:
        return False  # exit 2 is not exit 3, nor house 123 house 125, however alike the rest reads
    return a in b or b in a or SequenceMatcher(None, a, b).ratio() >= PLACE_SIMILARITY


def add_follower(session: Session, *, case: Case, conversation_id: int, language: str) -> bool:
    """Make the conversation a follower of `case`, unless it filed or already follows it; whether it was added."""
    if conversation_id == case.conversation_id:
        return False
    following = session.execute(
        select(CaseFollower.id).where(CaseFollower.case_id == case.id, CaseFollower.conversation_id == conversation_id)
    ).first()
    if following is not None:
        return False
    session.add(CaseFollower(case_id=case.id, conversation_id=conversation_id, language=language))
    session.flush()
    return True


def follow_case(session: Session, *, number: str, conversation_id: int, language: str) -> Case:
    """ "저도 같은 불편을 겪고 있어요": the conversation follows the open case `number` instead of filing its own.

    Nothing is sent: the bot tells the citizen in the conversation, and the case's later notices reach them once.
    """
    case = session.execute(select(Case).where(Case.number == number)).scalar_one_or_none()
    if case is None or case.status not in OPEN_STATUSES:
        raise CaseNotFound(number)
    add_follower(session, case=case, conversation_id=conversation_id, language=language)
    return case
