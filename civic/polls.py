"""Polls: creation and moderation, the voting window, who may vote (visibility rules), results."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import math
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from civic.db import utcnow
from civic.models import Ballot, ElectoralRollEntry, Poll, PollOption
from civic.phones import normalize_phone, phone_blind_index

KINDS = ("policy", "citizen")
VISIBILITIES = ("public", "roll", "password", "qr", "gps")
PENDING, APPROVED, REJECTED, CLOSED = "pending", "approved", "rejected", "closed"
MIN_OPTIONS, MAX_OPTIONS = 2, 20
MAX_TITLE_CHARS, MAX_OPTION_CHARS = 200, 100
# Anyone in the chat can propose a poll; this keeps one author from flooding the moderators' queue.
MAX_PENDING_PROPOSALS = 3
_passwords = PasswordHasher()  # Argon2id with the library's (RFC 9106 low-memory) defaults


class PollError(ValueError):
    """A poll that cannot be created or a vote that cannot be taken; `code` names the reason."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


@dataclass(frozen=True)
class NewPoll:
    title: str
    options: list[str]
    opens_at: datetime
    closes_at: datetime
    description: str = ""
    show_interim_results: bool = False
    visibility: str = "public"
    password: str | None = None
    roll_phones: tuple[str, ...] = ()
    gps_center: tuple[float, float] | None = None
    gps_radius_m: int | None = None


@dataclass(frozen=True)
class VoterProof:
    """What a voter brings besides their verified phone: a password, the QR link's token, a position."""

    password: str | None = None
    qr_token: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def create_poll(session: Session, new: NewPoll, *, kind: str, created_by: str) -> tuple[Poll, str | None]:
    """Validates and stores a poll; returns it and, for a QR poll, the link token (shown once, stored hashed).

    City (policy) polls are approved at once; citizen polls wait for moderation.
    """
    _validate(new, kind)
    if kind == "citizen":
        pending = session.scalar(
            select(func.count()).select_from(Poll).where(Poll.created_by == created_by, Poll.status == PENDING)
        )
        if (pending or 0) >= MAX_PENDING_PROPOSALS:
            raise PollError("too_many_proposals", f"{MAX_PENDING_PROPOSALS} proposals are already waiting for review")
    qr_token = secrets.token_urlsafe(24) if new.visibility == "qr" else None
    poll = Poll(
        public_id=secrets.token_urlsafe(12),
        kind=kind,
        title=new.title.strip(),
        description=new.description.strip(),
        status=APPROVED if kind == "policy" else PENDING,
        opens_at=new.opens_at,
        closes_at=new.closes_at,
        show_interim_results=new.show_interim_results,
        visibility=new.visibility,
        password_hash=_passwords.hash(new.password) if new.visibility == "password" and new.password else None,
        qr_token_hash=_token_hash(qr_token) if qr_token else None,
        gps_latitude=new.gps_center[0] if new.gps_center else None,
        gps_longitude=new.gps_center[1] if new.gps_center else None,
        gps_radius_m=new.gps_radius_m,
        created_by=created_by,
        created_at=utcnow(),
        ledger_size=0,
    )
    session.add(poll)
    session.flush()
    for position, label in enumerate(new.options, start=1):
        session.add(PollOption(poll_id=poll.id, position=position, label=label.strip()))
    if new.visibility == "roll":
        add_to_roll(session, poll, new.roll_phones)
    session.flush()
    session.refresh(poll)
    return poll, qr_token


def _validate(new: NewPoll, kind: str) -> None:
    if kind not in KINDS:
        raise PollError("bad_kind", f"kind must be one of {KINDS}")
    if not new.title.strip() or len(new.title) > MAX_TITLE_CHARS:
        raise PollError("bad_title", f"a title of 1-{MAX_TITLE_CHARS} characters")
    labels = [label.strip() for label in new.options]
    if not MIN_OPTIONS <= len(labels) <= MAX_OPTIONS:
        raise PollError("bad_options", f"{MIN_OPTIONS}-{MAX_OPTIONS} options")
    if any(not label or len(label) > MAX_OPTION_CHARS for label in labels) or len(set(labels)) != len(labels):
        raise PollError("bad_options", f"options must be distinct, 1-{MAX_OPTION_CHARS} characters each")
    if new.opens_at.tzinfo is None or new.closes_at.tzinfo is None or new.closes_at <= new.opens_at:
        raise PollError("bad_window", "closing time must be after opening time (aware datetimes)")
    if new.visibility not in VISIBILITIES:
        raise PollError("bad_visibility", f"visibility must be one of {VISIBILITIES}")
    if new.visibility == "password" and not (new.password and len(new.password) >= 4):
        raise PollError("bad_password", "a password poll needs a password of at least 4 characters")
    if new.visibility == "roll" and not new.roll_phones:
        raise PollError("bad_roll", "a roll poll needs at least one phone number")
    if new.visibility == "gps":
        if new.gps_center is None or not new.gps_radius_m or not 10 <= new.gps_radius_m <= 50_000:
            raise PollError("bad_area", "a GPS poll needs a centre and a radius of 10 m to 50 km")
        latitude, longitude = new.gps_center
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise PollError("bad_area", "the centre is not a position on Earth")


def parse_roll_csv(text: str) -> list[str]:
    """Phone numbers from the first column of an uploaded CSV; a header row is skipped."""
    phones = []
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0].strip():
            continue
        cell = row[0].strip()
        if not any(ch.isdigit() for ch in cell):
            continue  # a header such as "phone"
        phones.append(cell)
    return phones


def add_to_roll(session: Session, poll: Poll, phones: tuple[str, ...] | list[str]) -> int:
    """Adds numbers to the poll's roll as keyed blind indexes only; returns how many were new."""
    indexes = set()
    invalid = 0
    for phone in phones:
        try:
            indexes.add(phone_blind_index(normalize_phone(phone)))
        except ValueError:
            invalid += 1
    if invalid:
        raise PollError("bad_roll", f"{invalid} phone numbers in the roll could not be read")
    existing = set(
        session.execute(select(ElectoralRollEntry.phone_index).where(ElectoralRollEntry.poll_id == poll.id)).scalars()
    )
    new = indexes - existing
    session.add_all(ElectoralRollEntry(poll_id=poll.id, phone_index=index) for index in sorted(new))
    return len(new)


def moderate(session: Session, poll: Poll, *, approve: bool) -> None:
    """The city approves or rejects a citizen poll before it can open."""
    if poll.status != PENDING:
        raise PollError("not_pending", f"poll {poll.public_id} is {poll.status}, not waiting for moderation")
    poll.status = APPROVED if approve else REJECTED


def is_open(poll: Poll, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return poll.status == APPROVED and poll.opens_at <= now < poll.closes_at


def open_polls(session: Session, now: datetime | None = None) -> list[Poll]:
    now = now or utcnow()
    return list(
        session.execute(
            select(Poll)
            .where(Poll.status == APPROVED, Poll.opens_at <= now, Poll.closes_at > now)
            .order_by(Poll.closes_at, Poll.id)
        ).scalars()
    )


@dataclass(frozen=True)
class PollSummary:
    """What a page or a chat shows of a poll, read inside the transaction and safe to use after it."""

    id: int
    public_id: str
    title: str
    description: str
    visibility: str
    state: str  # pending | rejected | upcoming | open | closed
    opens_at: datetime
    closes_at: datetime
    results_visible: bool
    options: tuple[tuple[int, str], ...]

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    @property
    def closed(self) -> bool:
        return self.state == "closed"


def summarize(poll: Poll, now: datetime | None = None) -> PollSummary:
    now = now or utcnow()
    if is_open(poll, now):
        state = "open"
    elif poll.status in (PENDING, REJECTED):
        state = poll.status
    elif poll.status == APPROVED and now < poll.opens_at:
        state = "upcoming"
    else:
        state = "closed"
    return PollSummary(
        id=poll.id,
        public_id=poll.public_id,
        title=poll.title,
        description=poll.description,
        visibility=poll.visibility,
        state=state,
        opens_at=poll.opens_at,
        closes_at=poll.closes_at,
        results_visible=results_visible(poll, now),
        options=tuple((option.position, option.label) for option in poll.options),
    )


def poll_by_public_id(session: Session, public_id: str) -> Poll | None:
    return session.execute(select(Poll).where(Poll.public_id == public_id)).scalar_one_or_none()


def check_eligibility(session: Session, poll: Poll, phone_e164: str, proof: VoterProof, now: datetime) -> None:
    """Raises PollError when this voter may not vote in this poll now (the phone is already verified)."""
    if not is_open(poll, now):
        raise PollError("not_open", "this poll is not open for voting")
    if poll.visibility == "roll":
        on_roll = session.get(ElectoralRollEntry, (poll.id, phone_blind_index(phone_e164)))
        if on_roll is None:
            raise PollError("not_on_roll", "this phone number is not on the poll's electoral roll")
    elif poll.visibility == "password":
        if not proof.password or not _password_matches(poll.password_hash, proof.password):
            raise PollError("wrong_password", "the poll's password is wrong")
    elif poll.visibility == "qr":
        given = _token_hash(proof.qr_token) if proof.qr_token else ""
        if not poll.qr_token_hash or not hmac.compare_digest(given, poll.qr_token_hash):
            raise PollError("wrong_link", "this poll can only be reached through its QR link")
    elif poll.visibility == "gps":
        if proof.latitude is None or proof.longitude is None:
            raise PollError("location_needed", "share your location to vote in this poll")
        assert poll.gps_latitude is not None and poll.gps_longitude is not None and poll.gps_radius_m
        if distance_m(proof.latitude, proof.longitude, poll.gps_latitude, poll.gps_longitude) > poll.gps_radius_m:
            raise PollError("outside_area", "your location is outside the poll's area")


def _password_matches(stored: str | None, given: str) -> bool:
    if not stored:
        return False
    try:
        return _passwords.verify(stored, given)
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); plenty for radii of tens of metres to kilometres."""
    radius = 6_371_008.8
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(a))


def results_visible(poll: Poll, now: datetime | None = None) -> bool:
    """Results show after closing, or while open when the poll says interim results are public."""
    now = now or utcnow()
    return poll.status == CLOSED or now >= poll.closes_at or (poll.show_interim_results and is_open(poll, now))


def tally(session: Session, poll: Poll) -> dict[int, int]:
    """Ballots per option position, every option present (zero included)."""
    counts = dict(
        session.execute(
            select(Ballot.option_position, func.count())
            .where(Ballot.poll_id == poll.id)
            .group_by(Ballot.option_position)
        ).all()
    )
    return {option.position: int(counts.get(option.position, 0)) for option in poll.options}
