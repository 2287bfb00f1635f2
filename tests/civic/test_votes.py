"""Votes: one phone one ballot under concurrency, visibility rules, receipts and the tamper-evident ledger."""

from __future__ import annotations

import asyncio
import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from civic import ledger, merkle, polls, votes
from civic.checkpoints import NoteError, legacy_checkpoint_body, open_checkpoint
from civic.db import session_scope, utcnow
from civic.models import Ballot, ElectoralRollEntry, LedgerCheckpoint, Poll
from civic.polls import NewPoll, PollError, VoterProof
from civic.votes import VoteRequest


def new_poll(**overrides: object) -> NewPoll:
    now = utcnow()
    values: dict[str, object] = {
        "title": "한강공원 야간 개장 시간을 연장할까요?",
        "options": ["찬성", "반대", "잘 모르겠다"],
        "opens_at": now - timedelta(minutes=1),
        "closes_at": now + timedelta(days=7),
    }
    return NewPoll(**(values | overrides))  # type: ignore[arg-type]


def phone(n: int) -> str:
    return f"+8210{n:08d}"


def make_poll(session_factory: sessionmaker[Session], **overrides: object) -> tuple[int, str | None]:
    with session_scope(session_factory) as session:
        poll, token = polls.create_poll(session, new_poll(**overrides), kind="policy", created_by="test")
        return poll.id, token


def cast(session_factory: sessionmaker[Session], poll_id: int, *requests: VoteRequest) -> list[votes.VoteOutcome]:
    with session_scope(session_factory) as session:
        return votes.cast_votes(session, poll_id, list(requests))


def test_a_ballot_gets_a_receipt_provable_against_the_signed_checkpoint(session_factory: sessionmaker[Session]) -> None:
    poll_id, _ = make_poll(session_factory)
    [outcome] = cast(session_factory, poll_id, VoteRequest(phone(1), 2, "web"))
    assert outcome.status == "accepted" and outcome.receipt is not None
    receipt = outcome.receipt
    checkpoint = open_checkpoint(receipt.checkpoint["note"], ledger.city_key())
    assert receipt.checkpoint["root_hash"] == checkpoint.root_hash.hex() and not checkpoint.final
    with session_scope(session_factory) as session:
        poll = session.get(Poll, poll_id)
        assert poll is not None
        ballot = session.execute(select(Ballot).where(Ballot.receipt_id == receipt.receipt_id)).scalar_one()
        entry = json.loads(ballot.leaf)
        assert entry == {"poll": poll.public_id, "receipt": receipt.receipt_id, "option": 2, "time": entry["time"]}
        assert "8210" not in ballot.leaf  # the phone number is never in the log
        proof = ledger.inclusion_proof(session, poll, receipt.leaf_index, checkpoint.size)
    leaf = merkle.leaf_hash(ballot.leaf.encode())
    assert merkle.verify_inclusion(leaf, receipt.leaf_index, checkpoint.size, proof, checkpoint.root_hash)


def test_a_second_attempt_is_told_it_already_voted_with_the_same_receipt(
    session_factory: sessionmaker[Session],
) -> None:
    poll_id, _ = make_poll(session_factory)
    [first] = cast(session_factory, poll_id, VoteRequest(phone(2), 1, "telegram"))
    [second] = cast(session_factory, poll_id, VoteRequest(phone(2), 3, "web"))
    twice_in_one_batch = cast(
        session_factory, poll_id, VoteRequest(phone(3), 1, "web"), VoteRequest(phone(3), 2, "web")
    )
    assert first.status == "accepted" and second.status == "already_voted"
    assert first.receipt is not None and second.receipt is not None
    assert second.receipt.receipt_id == first.receipt.receipt_id
    assert [o.status for o in twice_in_one_batch] == ["accepted", "already_voted"]
    assert twice_in_one_batch[0].receipt == twice_in_one_batch[1].receipt
    with session_scope(session_factory) as session:
        poll = session.get(Poll, poll_id)
        assert poll is not None and polls.tally(session, poll) == {1: 2, 2: 0, 3: 0}


def test_a_thousand_concurrent_attempts_from_a_hundred_phones_make_a_hundred_ballots(
    session_factory: sessionmaker[Session],
) -> None:
    poll_id, _ = make_poll(session_factory)
    attempts = [VoteRequest(phone(100 + i % 100), 1 + i % 3, "web") for i in range(1000)]

    def one(request: VoteRequest) -> str:
        # Every attempt is its own transaction, as separate web workers would make them.
        for _ in range(20):
            try:
                return cast(session_factory, poll_id, request)[0].status
            except Exception as error:  # a lost race on the unique key is retried, never returned
                last = error
        raise AssertionError(f"gave up: {last!r}")

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, attempts))
    assert statuses.count("accepted") == 100
    assert statuses.count("already_voted") == 900
    with session_scope(session_factory) as session:
        poll = session.get(Poll, poll_id)
        assert poll is not None
        count = session.scalar(select(func.count()).select_from(Ballot).where(Ballot.poll_id == poll_id))
        indices = sorted(session.execute(select(Ballot.leaf_index).where(Ballot.poll_id == poll_id)).scalars())
        assert count == 100 and poll.ledger_size == 100 and indices == list(range(100))
        votes.close_poll(session, poll_id, early=True)
        report = ledger.verify_export(ledger.export(session, poll), key=str(ledger.city_key()))
    assert report.ok, report.problems
    assert sum(report.tally.values()) == 100


@pytest.mark.parametrize(
    ("overrides", "proof", "voter", "refusal"),
    [
        ({"visibility": "password", "password": "hangang2026"}, VoterProof(), 1, "wrong_password"),
        ({"visibility": "password", "password": "hangang2026"}, VoterProof(password="nope"), 1, "wrong_password"),
        ({"visibility": "password", "password": "hangang2026"}, VoterProof(password="hangang2026"), 1, None),
        ({"visibility": "roll", "roll_phones": ("010-0000-0001", "+82 10 0000 0002")}, VoterProof(), 3, "not_on_roll"),
        ({"visibility": "roll", "roll_phones": ("010-0000-0001", "+82 10 0000 0002")}, VoterProof(), 2, None),
        (
            {"visibility": "gps", "gps_center": (37.5663, 126.9779), "gps_radius_m": 500},
            VoterProof(),
            1,
            "location_needed",
        ),
        (
            {"visibility": "gps", "gps_center": (37.5663, 126.9779), "gps_radius_m": 500},
            VoterProof(latitude=37.5796, longitude=126.9770),  # Gyeongbokgung: ~1.5 km away
            1,
            "outside_area",
        ),
        (
            {"visibility": "gps", "gps_center": (37.5663, 126.9779), "gps_radius_m": 500},
            VoterProof(latitude=37.5651, longitude=126.9770),
            1,
            None,
        ),
        (
            {"opens_at": utcnow() + timedelta(days=1), "closes_at": utcnow() + timedelta(days=2)},
            VoterProof(),
            1,
            "not_open",
        ),
    ],
)
def test_visibility_rules(
    session_factory: sessionmaker[Session],
    overrides: dict[str, object],
    proof: VoterProof,
    voter: int,
    refusal: str | None,
) -> None:
    poll_id, _ = make_poll(session_factory, **overrides)
    [outcome] = cast(session_factory, poll_id, VoteRequest(f"+82100000000{voter}", 1, "web", proof))
    assert (outcome.status, outcome.reason) == (("refused", refusal) if refusal else ("accepted", None))


def test_qr_polls_need_the_link_token(session_factory: sessionmaker[Session]) -> None:
    poll_id, token = make_poll(session_factory, visibility="qr")
    assert token
    [without] = cast(session_factory, poll_id, VoteRequest(phone(7), 1, "web"))
    [forged] = cast(session_factory, poll_id, VoteRequest(phone(7), 1, "web", VoterProof(qr_token=token + "x")))
    [with_token] = cast(session_factory, poll_id, VoteRequest(phone(7), 1, "web", VoterProof(qr_token=token)))
    assert (without.reason, forged.reason, with_token.status) == ("wrong_link", "wrong_link", "accepted")


def test_an_option_not_on_the_ballot_is_refused(session_factory: sessionmaker[Session]) -> None:
    poll_id, _ = make_poll(session_factory)
    [outcome] = cast(session_factory, poll_id, VoteRequest(phone(8), 4, "web"))
    assert (outcome.status, outcome.reason) == ("refused", "bad_option")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"options": ["only one"]}, "bad_options"),
        ({"options": [f"option {i}" for i in range(21)]}, "bad_options"),
        ({"options": ["same", "same"]}, "bad_options"),
        ({"title": " "}, "bad_title"),
        ({"closes_at": utcnow() - timedelta(days=1)}, "bad_window"),
        ({"visibility": "password", "password": ""}, "bad_password"),
        ({"visibility": "roll", "roll_phones": ()}, "bad_roll"),
        ({"visibility": "roll", "roll_phones": ("not a number",)}, "bad_roll"),
        ({"visibility": "gps", "gps_center": (37.5, 127.0), "gps_radius_m": 1}, "bad_area"),
        ({"visibility": "everyone"}, "bad_visibility"),
    ],
)
def test_bad_polls_are_refused(session: Session, overrides: dict[str, object], code: str) -> None:
    with pytest.raises(PollError) as refused:
        polls.create_poll(session, new_poll(**overrides), kind="policy", created_by="test")
    assert refused.value.code == code


def test_citizen_polls_wait_for_moderation(session: Session) -> None:
    poll, _ = polls.create_poll(session, new_poll(), kind="citizen", created_by="telegram:1")
    assert poll.status == polls.PENDING and not polls.is_open(poll)
    polls.moderate(session, poll, approve=True)
    assert polls.is_open(poll)
    with pytest.raises(PollError):
        polls.moderate(session, poll, approve=False)


def test_the_roll_csv_keeps_only_blind_indexes(session: Session) -> None:
    phones = polls.parse_roll_csv("phone,name\n010-1234-5678,홍길동\n+82 10 9876 5432,\n\n")
    assert phones == ["010-1234-5678", "+82 10 9876 5432"]
    poll, _ = polls.create_poll(
        session, new_poll(visibility="roll", roll_phones=tuple(phones)), kind="policy", created_by="t"
    )
    rows = session.execute(select(func.count()).select_from(Poll).where(Poll.id == poll.id)).scalar()
    assert rows == 1
    stored = list(
        session.execute(select(ElectoralRollEntry.phone_index).where(ElectoralRollEntry.poll_id == poll.id)).scalars()
    )
    assert len(stored) == 2 and all(len(index) == 64 and "5678" not in index for index in stored)


def test_results_show_at_close_or_live_when_the_poll_says_so(session: Session) -> None:
    hidden, _ = polls.create_poll(session, new_poll(), kind="policy", created_by="t")
    live, _ = polls.create_poll(session, new_poll(show_interim_results=True), kind="policy", created_by="t")
    assert not polls.results_visible(hidden) and polls.results_visible(live)
    assert polls.results_visible(hidden, hidden.closes_at + timedelta(seconds=1))


class TestLedger:
    def closed_export(self, session_factory: sessionmaker[Session], voters: int = 12) -> tuple[int, dict]:
        poll_id, _ = make_poll(session_factory)
        for batch in range(0, voters, 5):
            cast(
                session_factory,
                poll_id,
                *[VoteRequest(phone(500 + i), 1 + i % 3, "web") for i in range(batch, min(voters, batch + 5))],
            )
        with session_scope(session_factory) as session:
            votes.close_poll(session, poll_id, early=True)
        with session_scope(session_factory) as session:
            poll = session.get(Poll, poll_id)
            assert poll is not None
            return poll_id, ledger.export(session, poll)

    def test_a_closed_poll_exports_and_verifies_offline(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        poll_id, data = self.closed_export(session_factory)
        assert data["checkpoints"][-1].split("\n\n")[0].endswith("\nfinal")
        assert len(data["checkpoints"]) == 4  # 3 batches + close
        path = tmp_path / "export.json"
        path.write_text(json.dumps(data))
        key = str(ledger.city_key())
        assert ledger.main(["verify", str(path), "--key", key]) == 0
        report = ledger.verify_export(data, key=key)
        assert report.ok and report.tally == {1: 4, 2: 4, 3: 4}
        receipt = json.loads(data["leaves"][7])["receipt"]
        assert ledger.main(["verify", str(path), "--key", key, "--receipt", receipt]) == 0
        assert ledger.main(["verify", str(path), "--key", key, "--receipt", "0" * 32]) == 1
        with session_scope(session_factory) as session:
            poll = session.get(Poll, poll_id)
            assert poll is not None and poll.status == polls.CLOSED
            [late] = votes.cast_votes(session, poll_id, [VoteRequest(phone(999), 1, "web")])
        assert (late.status, late.reason) == ("refused", "not_open")

    @pytest.mark.parametrize("tamper", ["edit", "delete", "reorder", "insert"])
    def test_tampering_with_stored_ballots_is_detected(
        self, session_factory: sessionmaker[Session], tamper: str
    ) -> None:
        poll_id, _ = self.closed_export(session_factory)
        with session_scope(session_factory) as session:
            ballots = list(
                session.execute(select(Ballot).where(Ballot.poll_id == poll_id).order_by(Ballot.leaf_index)).scalars()
            )
            if tamper == "edit":  # change a vote to another valid option
                entry = json.loads(ballots[3].leaf)
                entry["option"] = 1 if entry["option"] != 1 else 2
                ballots[3].leaf = merkle.canonical_json(entry).decode()
            elif tamper == "delete":
                session.delete(ballots[5])
            elif tamper == "reorder":
                first, second = ballots[0].leaf_index, ballots[1].leaf_index
                session.execute(update(Ballot).where(Ballot.id == ballots[0].id).values(leaf_index=-1))
                session.execute(update(Ballot).where(Ballot.id == ballots[1].id).values(leaf_index=first))
                session.execute(update(Ballot).where(Ballot.id == ballots[0].id).values(leaf_index=second))
            else:  # a ballot stuffed in after the fact
                stuffed = json.loads(ballots[0].leaf) | {"receipt": "f" * 32}
                session.add(
                    Ballot(
                        poll_id=poll_id,
                        receipt_id="f" * 32,
                        option_position=1,
                        leaf_index=999,
                        leaf=merkle.canonical_json(stuffed).decode(),
                        channel="web",
                    )
                )
        with session_scope(session_factory) as session:
            poll = session.get(Poll, poll_id)
            assert poll is not None
            report = ledger.verify_export(ledger.export(session, poll), key=str(ledger.city_key()))
        assert not report.ok and report.problems

    def test_a_forged_checkpoint_signature_is_detected(self, session_factory: sessionmaker[Session]) -> None:
        _, data = self.closed_export(session_factory)
        text, signature_line = data["checkpoints"][1].split("\n\n")
        prefix, encoded = signature_line.rsplit(" ", 1)
        signature = bytearray(base64.b64decode(encoded))
        signature[10] ^= 1
        data["checkpoints"][1] = f"{text}\n\n{prefix} {base64.b64encode(signature).decode()}\n"
        with pytest.raises(NoteError):
            open_checkpoint(data["checkpoints"][1], ledger.city_key())
        report = ledger.verify_export(data, key=str(ledger.city_key()))
        assert any("checkpoint 2: bad signature" in problem for problem in report.problems)

    def test_database_proofs_match_an_in_memory_log(self, session_factory: sessionmaker[Session]) -> None:
        poll_id, data = self.closed_export(session_factory, voters=23)
        store = merkle.MemoryNodeStore()
        for leaf in data["leaves"]:
            store.append(merkle.leaf_hash(leaf.encode()))
        with session_scope(session_factory) as session:
            poll = session.get(Poll, poll_id)
            assert poll is not None
            for size in (1, 5, 10, 15, 23):
                for index in range(size):
                    assert ledger.inclusion_proof(session, poll, index, size) == merkle.inclusion_proof(
                        store, index, size
                    )
                for first in range(size + 1):
                    assert ledger.consistency_proof(session, poll, first, size) == merkle.consistency_proof(
                        store, first, size
                    )
            checkpoints = session.scalar(
                select(func.count()).select_from(LedgerCheckpoint).where(LedgerCheckpoint.poll_id == poll_id)
            )
        assert checkpoints == 6


async def test_the_ballot_box_takes_a_thousand_concurrent_attempts_from_a_hundred_phones(
    session_factory: sessionmaker[Session],
) -> None:
    """The web app's path: concurrent requests share transactions and checkpoints, none is lost or doubled."""
    poll_id, _ = make_poll(session_factory)
    box = votes.BallotBox(session_factory)
    try:
        outcomes = await asyncio.gather(
            *(box.cast(poll_id, VoteRequest(phone(2000 + i % 100), 1 + i % 2, "web")) for i in range(1000))
        )
    finally:
        await box.aclose()
    statuses = [outcome.status for outcome in outcomes]
    assert statuses.count("accepted") == 100 and statuses.count("already_voted") == 900
    receipts = {outcome.receipt.receipt_id for outcome in outcomes if outcome.receipt is not None}
    assert len(receipts) == 100  # every refusal carries the receipt of the ballot that counts
    with session_scope(session_factory) as session:
        poll = session.get(Poll, poll_id)
        assert poll is not None and poll.ledger_size == 100
        checkpoints = session.scalar(
            select(func.count()).select_from(LedgerCheckpoint).where(LedgerCheckpoint.poll_id == poll_id)
        )
        assert checkpoints is not None and checkpoints < 100  # batched: far fewer checkpoints than ballots
        votes.close_poll(session, poll_id, early=True)
        assert ledger.verify_export(ledger.export(session, poll), key=str(ledger.city_key())).ok


def test_an_author_has_at_most_a_few_proposals_waiting(session: Session) -> None:
    for _ in range(polls.MAX_PENDING_PROPOSALS):
        polls.create_poll(session, new_poll(), kind="citizen", created_by="web:flood")
    with pytest.raises(PollError) as refused:
        polls.create_poll(session, new_poll(), kind="citizen", created_by="web:flood")
    assert refused.value.code == "too_many_proposals"
    polls.create_poll(session, new_poll(), kind="policy", created_by="web:flood")  # the city is not limited


def test_a_poll_loaded_before_the_lock_is_read_again_under_it(session_factory: sessionmaker[Session]) -> None:
    """A chat vote loads the poll, then casts: another ballot appended in between must not be overwritten."""
    poll_id, _ = make_poll(session_factory)
    late = session_factory()
    try:
        late.get(Poll, poll_id)  # the poll stays in this session's identity map as it is now
        if late.get_bind().dialect.name == "sqlite":
            late.commit()  # SQLite's writers take turns (BEGIN IMMEDIATE): the other vote waits for this one
        cast(session_factory, poll_id, VoteRequest(phone(1), 1, "web"))
        [outcome] = votes.cast_votes(late, poll_id, [VoteRequest(phone(2), 2, "web")])
        late.commit()
    finally:
        late.close()
    assert outcome.status == "accepted"
    assert outcome.receipt is not None and outcome.receipt.leaf_index == 1


def test_checkpoints_from_before_signed_notes_are_re_signed_only_if_their_old_signature_holds(
    session_factory: sessionmaker[Session],
) -> None:
    poll_id, _ = make_poll(session_factory)
    cast(session_factory, poll_id, VoteRequest(phone(3001), 1, "web"), VoteRequest(phone(3002), 2, "web"))
    cast(session_factory, poll_id, VoteRequest(phone(3003), 2, "web"))
    with session_scope(session_factory) as session:
        poll = session.get(Poll, poll_id)
        assert poll is not None
        rows = list(
            session.execute(
                select(LedgerCheckpoint).where(LedgerCheckpoint.poll_id == poll_id).order_by(LedgerCheckpoint.size)
            ).scalars()
        )
        # As migration 0008 leaves them: no statement, no note, the old JSON-body signature.
        poll.ledger_statement = None
        for row in rows:
            body = legacy_checkpoint_body(ledger.log_id(poll), row.size, bytes(row.root_hash), row.timestamp)
            row.note, row.signature = None, ledger.signing_key().sign(body)
        rows[0].root_hash = merkle.leaf_hash(b"edited while nobody looked")
    with session_scope(session_factory) as session:
        poll = session.get(Poll, poll_id)
        assert poll is not None
        edited, intact = session.execute(
            select(LedgerCheckpoint).where(LedgerCheckpoint.poll_id == poll_id).order_by(LedgerCheckpoint.size)
        ).scalars()
        with pytest.raises(ValueError, match="no valid signature"):
            ledger.checkpoint_note(poll, edited)
        note = ledger.checkpoint_note(poll, intact)
        assert intact.note == note and open_checkpoint(note, ledger.city_key()).size == 3
        session.delete(edited)
        votes.close_poll(session, poll_id, early=True)
        report = ledger.verify_export(ledger.export(session, poll), key=str(ledger.city_key()))
    assert report.ok, report.problems
