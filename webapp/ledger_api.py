"""The votes' ledger as public JSON for verifiers: the city's key, checkpoints, proofs and exports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from bot.app_state import sessions_of
from civic import ledger, merkle, polls
from civic.db import session_scope
from civic.models import Ballot, LedgerCheckpoint, Poll
from webapp.polls import public_poll

# Full paths, no prefix: the key lives outside /api/polls.
api = APIRouter(tags=["polls: verification"])


def _not_found(error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=404)


def _checkpoint(poll: Poll, row: LedgerCheckpoint) -> dict[str, Any]:
    return ledger.checkpoint_dict(poll, row)


@api.get("/api/ledger/key")
def verifier_key() -> JSONResponse:
    """The key every poll's checkpoints are signed with; compare it with the one the city publishes elsewhere."""
    key = ledger.city_key()
    return JSONResponse(
        {
            "verifier_key": str(key),
            "fingerprint": key.fingerprint,
            "key_name": key.name,
            "key_id": f"{key.key_id:08x}",
            "format": "C2SP signed-note, Ed25519 (c2sp.org/signed-note, c2sp.org/tlog-checkpoint)",
        }
    )


@api.get("/api/polls/{public_id}/checkpoint")
def latest_checkpoint(request: Request, public_id: str) -> JSONResponse:
    with session_scope(sessions_of(request)) as session:
        poll = public_poll(session, public_id)
        if poll is None:
            return _not_found("no_poll", "no such poll")
        row = ledger.latest_checkpoint(session, poll)
        return JSONResponse(
            {
                "poll": poll.public_id,
                "log_id": ledger.log_id(poll),
                "ledger_size": poll.ledger_size,
                "checkpoint": _checkpoint(poll, row) if row is not None else None,
                "verifier_key": str(ledger.city_key()),
            }
        )


@api.get("/api/polls/{public_id}/checkpoints")
def all_checkpoints(request: Request, public_id: str) -> JSONResponse:
    with session_scope(sessions_of(request)) as session:
        poll = public_poll(session, public_id)
        if poll is None:
            return _not_found("no_poll", "no such poll")
        rows = session.execute(
            select(LedgerCheckpoint)
            .where(LedgerCheckpoint.poll_id == poll.id)
            .order_by(LedgerCheckpoint.size, LedgerCheckpoint.id)
        ).scalars()
        return JSONResponse(
            {
                "poll": poll.public_id,
                "log_id": ledger.log_id(poll),
                "checkpoints": [_checkpoint(poll, row) for row in rows],
                "verifier_key": str(ledger.city_key()),
            }
        )


@api.get("/api/polls/{public_id}/proof/inclusion")
def inclusion_proof(request: Request, public_id: str, receipt: str = "") -> JSONResponse:
    with session_scope(sessions_of(request)) as session:
        poll = public_poll(session, public_id)
        if poll is None:
            return _not_found("no_poll", "no such poll")
        ballot = session.execute(
            select(Ballot).where(Ballot.poll_id == poll.id, Ballot.receipt_id == receipt[:32])
        ).scalar_one_or_none()
        head = ledger.latest_checkpoint(session, poll)
        if ballot is None or head is None or head.size <= ballot.leaf_index:
            return _not_found("no_receipt", "no ballot with this receipt in this poll's log")
        path = ledger.inclusion_proof(session, poll, ballot.leaf_index, head.size)
        return JSONResponse(
            {
                "poll": poll.public_id,
                "receipt": ballot.receipt_id,
                "leaf": ballot.leaf,
                "leaf_hash": merkle.leaf_hash(ballot.leaf.encode()).hex(),
                "leaf_index": ballot.leaf_index,
                "tree_size": head.size,
                "audit_path": [node.hex() for node in path],
                "checkpoint": _checkpoint(poll, head),
                "verifier_key": str(ledger.city_key()),
            }
        )


@api.get("/api/polls/{public_id}/proof/consistency")
def consistency_proof(request: Request, public_id: str, first: int, second: int) -> JSONResponse:
    with session_scope(sessions_of(request)) as session:
        poll = public_poll(session, public_id)
        if poll is None:
            return _not_found("no_poll", "no such poll")
        if not 0 <= first <= second <= poll.ledger_size:
            return JSONResponse(
                {"error": "bad_sizes", "message": f"need 0 <= first <= second <= {poll.ledger_size} (the log's size)"},
                status_code=400,
            )
        path = ledger.consistency_proof(session, poll, first, second)
        at_size = {
            row.size: row
            for row in session.execute(
                select(LedgerCheckpoint)
                .where(LedgerCheckpoint.poll_id == poll.id, LedgerCheckpoint.size.in_((first, second)))
                .order_by(LedgerCheckpoint.id)
            ).scalars()
        }
        return JSONResponse(
            {
                "poll": poll.public_id,
                "first": first,
                "second": second,
                "proof": [node.hex() for node in path],
                "first_checkpoint": _checkpoint(poll, at_size[first]) if first in at_size else None,
                "second_checkpoint": _checkpoint(poll, at_size[second]) if second in at_size else None,
                "verifier_key": str(ledger.city_key()),
            }
        )


@api.get("/api/polls/{public_id}/export")
def export(request: Request, public_id: str) -> JSONResponse:
    with session_scope(sessions_of(request)) as session:
        poll = public_poll(session, public_id)
        if poll is None:
            return _not_found("no_poll", "no such poll")
        if poll.status != polls.CLOSED:
            # The leaf list names each receipt's option: published only once nobody can vote any more.
            return JSONResponse(
                {"error": "not_closed", "message": "the full log is published when the poll has closed"},
                status_code=409,
            )
        return JSONResponse(ledger.export(session, poll))
