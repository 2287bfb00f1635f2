"""Casting ballots: one verified phone one ballot per poll, logged and checkpointed in the same transaction."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from civic import ledger, polls
from civic.checkpoints import checkpoint_timestamp
from civic.db import session_scope, utcnow
from civic.merkle import canonical_json
from civic.models import Ballot, LedgerCheckpoint, Poll, PollVoter
from civic.polls import PollError, VoterProof
from civic.settings import get_settings


@dataclass(frozen=True)
class VoteRequest:
    phone_e164: str  # already verified by the channel (shared contact, SMS code, caller id)
    option_position: int
    channel: str
    proof: VoterProof = field(default_factory=VoterProof)


@dataclass(frozen=True)
class Receipt:
    """What the voter keeps: enough to ask for an inclusion proof and check it against a signed head.

    `checkpoint` holds the signed note (checked with the city's published key) and its fields spelled out.
    """

    poll_id: str
    receipt_id: str
    leaf_index: int
    checkpoint: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "poll": self.poll_id,
            "receipt": self.receipt_id,
            "leaf_index": self.leaf_index,
            "checkpoint": self.checkpoint,
        }


@dataclass(frozen=True)
class VoteOutcome:
    status: Literal["accepted", "already_voted", "refused"]
    receipt: Receipt | None = None
    reason: str | None = None  # a PollError code when refused


def voter_index(poll: Poll, phone_e164: str) -> str:
    """HMAC of the number scoped to this poll: equal for the same voter here, unlinkable elsewhere."""
    key = get_settings().phone_index_key.encode()
    return hmac.new(key, f"ballot:{poll.public_id}:{phone_e164}".encode(), hashlib.sha256).hexdigest()


def lock_poll(session: Session, poll_id: int) -> Poll:
    """The poll row, locked until commit: appends to one log happen one transaction at a time.

    SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL needs the row lock.
    """
    # populate_existing: a poll this session loaded before the lock would otherwise come back as it was then,
    # with a stale ledger_size, and two ballots would claim the same leaf.
    query = select(Poll).where(Poll.id == poll_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    poll = session.execute(query).scalar_one_or_none()
    if poll is None:
        raise PollError("no_poll", f"no poll {poll_id}")
    return poll


def cast_votes(
    session: Session, poll_id: int, requests: list[VoteRequest], now: datetime | None = None
) -> list[VoteOutcome]:
    """Takes a batch of votes for one poll; one signed checkpoint covers every ballot accepted here."""
    now = now or utcnow()
    poll = lock_poll(session, poll_id)
    positions = {option.position for option in poll.options}
    outcomes: list[VoteOutcome | None] = [None] * len(requests)
    indexes = [voter_index(poll, request.phone_e164) for request in requests]
    first: dict[str, int] = {}  # voter index → the first eligible attempt in this batch
    for number, (request, index) in enumerate(zip(requests, indexes, strict=True)):
        if index in first:
            continue
        try:
            polls.check_eligibility(session, poll, request.phone_e164, request.proof, now)
            if request.option_position not in positions:
                raise PollError("bad_option", "no such option on this ballot")
        except PollError as error:
            outcomes[number] = VoteOutcome("refused", reason=error.code)
            continue
        first[index] = number
    receipts = {index: secrets.token_hex(16) for index in first}
    new_voters = _claim_voters(session, poll, receipts, now)
    ballots = _append(session, poll, requests, {i: first[i] for i in first if i in new_voters}, receipts, now)
    checkpoint = ledger.sign_tree_head(session, poll) if ballots else None
    earlier = _earlier_ballots(session, poll, set(first) - new_voters)
    for number, index in enumerate(indexes):
        if outcomes[number] is not None:
            continue
        if index in ballots and first[index] == number:
            assert checkpoint is not None
            outcomes[number] = VoteOutcome("accepted", _receipt(poll, ballots[index], checkpoint))
            continue
        ballot = ballots.get(index) or earlier.get(index)
        head = checkpoint if index in ballots else None
        if ballot is not None and head is None:
            head = ledger.checkpoint_at_least(session, poll, ballot.leaf_index + 1)
        receipt = _receipt(poll, ballot, head) if ballot is not None and head is not None else None
        outcomes[number] = VoteOutcome("already_voted", receipt)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _claim_voters(session: Session, poll: Poll, receipts: dict[str, str], now: datetime) -> set[str]:
    """Records these voters as having voted; returns those who had not (INSERT … ON CONFLICT DO NOTHING)."""
    if not receipts:
        return set()
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = [
        {"poll_id": poll.id, "voter_index": index, "receipt_id": receipt, "voted_at": now}
        for index, receipt in receipts.items()
    ]
    statement = insert(PollVoter).values(rows).on_conflict_do_nothing().returning(PollVoter.voter_index)
    return set(session.execute(statement).scalars())


def _earlier_ballots(session: Session, poll: Poll, indexes: set[str]) -> dict[str, Ballot]:
    """The ballots these voters cast before, by voter index (for "you already voted", with the receipt)."""
    if not indexes:
        return {}
    receipt_of = dict(
        session.execute(
            select(PollVoter.receipt_id, PollVoter.voter_index).where(
                PollVoter.poll_id == poll.id, PollVoter.voter_index.in_(indexes)
            )
        ).all()
    )
    ballots = session.execute(select(Ballot).where(Ballot.receipt_id.in_(list(receipt_of)))).scalars()
    return {receipt_of[ballot.receipt_id]: ballot for ballot in ballots}


def _append(
    session: Session,
    poll: Poll,
    requests: list[VoteRequest],
    accepted: dict[str, int],
    receipts: dict[str, str],
    now: datetime,
) -> dict[str, Ballot]:
    if not accepted:
        return {}
    time = checkpoint_timestamp(now)
    entries = []
    for index, number in accepted.items():
        # The leaf names the poll, a random receipt, the option and the time: never the voter.
        leaf = canonical_json(
            {
                "poll": poll.public_id,
                "receipt": receipts[index],
                "option": requests[number].option_position,
                "time": time,
            }
        ).decode()
        entries.append((index, number, leaf))
    leaf_indices = ledger.append_leaves(session, poll, [leaf.encode() for _, _, leaf in entries])
    ballots = {}
    for (index, number, leaf), leaf_index in zip(entries, leaf_indices, strict=True):
        ballot = Ballot(
            poll_id=poll.id,
            receipt_id=receipts[index],
            option_position=requests[number].option_position,
            leaf_index=leaf_index,
            leaf=leaf,
            channel=requests[number].channel,
            cast_at=now,
        )
        session.add(ballot)
        ballots[index] = ballot
    session.flush()
    return ballots


def _receipt(poll: Poll, ballot: Ballot, checkpoint: LedgerCheckpoint) -> Receipt:
    return Receipt(poll.public_id, ballot.receipt_id, ballot.leaf_index, ledger.checkpoint_dict(poll, checkpoint))


def close_poll(session: Session, poll_id: int, *, now: datetime | None = None, early: bool = False) -> Poll:
    """Closes a poll whose time is up (or early, by the city) and signs the final checkpoint."""
    now = now or utcnow()
    poll = lock_poll(session, poll_id)
    if poll.status == polls.CLOSED:
        return poll
    if poll.status != polls.APPROVED or (now < poll.closes_at and not early):
        raise PollError("not_closable", f"poll {poll.public_id} is {poll.status} and closes at {poll.closes_at}")
    poll.status, poll.closed_at = polls.CLOSED, now
    if now < poll.closes_at:
        poll.closes_at = now
    ledger.sign_tree_head(session, poll, final=True)
    return poll


def close_due_polls(session_factory: sessionmaker[Session], now: datetime | None = None) -> int:
    """Closes every approved poll past its closing time; returns how many."""
    now = now or utcnow()
    with session_scope(session_factory) as session:
        due = list(
            session.execute(select(Poll.id).where(Poll.status == polls.APPROVED, Poll.closes_at <= now)).scalars()
        )
    for poll_id in due:
        with session_scope(session_factory) as session:
            close_poll(session, poll_id, now=now)
    return len(due)


class BallotBox:
    """Group commit for votes arriving together: one transaction and one checkpoint per poll per batch.

    A single writer thread per box keeps votes off the pool the web requests use and turns N
    concurrent voters into a few transactions instead of N serialised ones.
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self._waiting: dict[int, list[tuple[VoteRequest, asyncio.Future[VoteOutcome]]]] = defaultdict(list)
        self._wake = asyncio.Event()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ballot-box")
        self._task: asyncio.Task[None] | None = None

    async def cast(self, poll_id: int, request: VoteRequest) -> VoteOutcome:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        outcome: asyncio.Future[VoteOutcome] = asyncio.get_running_loop().create_future()
        self._waiting[poll_id].append((request, outcome))
        self._wake.set()
        return await outcome

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            batches, self._waiting = self._waiting, defaultdict(list)
            for poll_id, batch in batches.items():
                requests = [request for request, _ in batch]
                try:
                    results = await loop.run_in_executor(self._writer, self._cast, poll_id, requests)
                except Exception as error:  # the whole batch failed: every voter gets the error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)

    def _cast(self, poll_id: int, requests: list[VoteRequest]) -> list[VoteOutcome]:
        with session_scope(self.session_factory) as session:
            return cast_votes(session, poll_id, requests)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._writer.shutdown(wait=True)
