"""Each poll's RFC 9162 Merkle log in the database: append, signed checkpoints, proofs, export, offline verify.

`python -m civic.ledger verify EXPORT --key KEY [--receipt ID]` checks a downloaded export with no database
against the city's published verifier key (or its fingerprint): every leaf, the signed poll statement,
every checkpoint's signature and root, consistency between checkpoints, the final checkpoint, the tally.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, tuple_, union_all
from sqlalchemy.orm import Session

from civic import merkle
from civic.checkpoints import (
    Checkpoint,
    NoteError,
    VerifierKey,
    checkpoint_timestamp,
    legacy_checkpoint_body,
    load_private_key,
    note_signature,
    note_text,
    open_checkpoint,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    statement_hash,
    verifier_key,
)
from civic.models import Ballot, LedgerCheckpoint, LedgerNode, Poll
from civic.settings import get_settings

LOG_PREFIX = "seoul-civic/polls/"
EXPORT_FORMAT = "seoul-civic-ledger-export/2"
STATEMENT_FORMAT = "seoul-civic-poll-statement/1"
T = TypeVar("T")
_DUMMY = b"\x00" * merkle.HASH_BYTES
_FINGERPRINT = re.compile(r"(?:sha256:)?([0-9a-f]{64})")


def log_id(poll: Poll) -> str:
    """The log's origin line: one log per poll."""
    return LOG_PREFIX + poll.public_id


@lru_cache
def signing_key() -> Ed25519PrivateKey:
    """The checkpoint key from LEDGER_SIGNING_KEY: outside the database, so a database edit cannot re-sign."""
    return load_private_key(get_settings().ledger_signing_key)


def city_key() -> VerifierKey:
    """The verifier key the city publishes (GET /api/ledger/key, `python -m civic.checkpoints public-key`)."""
    return verifier_key(signing_key())


def poll_statement(poll: Poll) -> dict[str, Any]:
    """What a vote is about, as checkpoints sign it: question, options in order, window and the kind of rule.

    The rule's secrets (roll, password hash, QR token, the GPS circle) stay out: only its kind is bound.
    """
    return {
        "format": STATEMENT_FORMAT,
        "poll": poll.public_id,
        "question": poll.title,
        "options": [{"position": option.position, "label": option.label} for option in poll.options],
        "opens_at": checkpoint_timestamp(poll.opens_at),
        "closes_at": checkpoint_timestamp(poll.closes_at),
        "eligibility": poll.visibility,
    }


def frozen_statement(poll: Poll) -> str:
    """The statement's canonical JSON, fixed at the poll's first checkpoint so every checkpoint signs the same one.

    Fixed rather than recomputed because closing early moves `closes_at`: the statement keeps the window
    that was announced, and the final checkpoint's time says when voting actually stopped.
    """
    if poll.ledger_statement is None:
        poll.ledger_statement = merkle.canonical_json(poll_statement(poll)).decode()
    return poll.ledger_statement


class _RecordingStore:
    """Answers every lookup with a dummy hash and remembers it: a proof's access pattern does not
    depend on the hashes, so one dry run tells which nodes to fetch in a single query."""

    def __init__(self, size: int) -> None:
        self._size = size
        self.wanted: set[tuple[int, int]] = set()

    def size(self) -> int:
        return self._size

    def get(self, level: int, index: int) -> bytes:
        self.wanted.add((level, index))
        return _DUMMY


class DbNodeStore:
    """A poll's stored perfect subtrees, read in batches and cached for one unit of work."""

    def __init__(self, session: Session, poll: Poll) -> None:
        self.session = session
        self.poll_id = poll.id
        self._size = poll.ledger_size
        self.cache: dict[tuple[int, int], bytes] = {}

    def size(self) -> int:
        return self._size

    def get(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self.cache:
            self.fetch([key])
        try:
            return self.cache[key]
        except KeyError:
            raise KeyError(f"log of poll {self.poll_id} has no node at level {level}, index {index}") from None

    def fetch(self, keys: Iterable[tuple[int, int]]) -> None:
        by_level: dict[int, list[int]] = {}
        for level, index in keys:
            if (level, index) not in self.cache:
                by_level.setdefault(level, []).append(index)
        if not by_level:
            return
        # One query. SQLite searches the primary key only for "level = ? AND index IN (…)", so it gets a
        # UNION ALL of those (an OR of them, or a row-value IN, scanned the poll's whole log: 17 ms per
        # proof at 100,000 ballots); PostgreSQL does best with the row-value IN.
        parts = [
            select(LedgerNode.level, LedgerNode.index, LedgerNode.hash).where(
                LedgerNode.poll_id == self.poll_id, LedgerNode.level == level, LedgerNode.index.in_(indices)
            )
            for level, indices in by_level.items()
        ]
        if self.session.get_bind().dialect.name == "postgresql":  # PostgreSQL plans a row-value IN best
            pairs = [(level, index) for level, indices in by_level.items() for index in indices]
            rows = self.session.execute(
                select(LedgerNode.level, LedgerNode.index, LedgerNode.hash).where(
                    LedgerNode.poll_id == self.poll_id, tuple_(LedgerNode.level, LedgerNode.index).in_(pairs)
                )
            )
        else:
            rows = self.session.execute(parts[0] if len(parts) == 1 else union_all(*parts))
        for level, index, hash_ in rows:
            self.cache[(level, index)] = bytes(hash_)

    def prefetched(self, compute: Callable[[merkle.NodeStore], T]) -> T:
        """Runs `compute` (a proof or a root) after fetching every node it will read in one query."""
        recorder = _RecordingStore(self._size)
        compute(recorder)
        self.fetch(recorder.wanted)
        return compute(self)

    def append(self, leaf_hash: bytes) -> int:
        """Adds a leaf hash and the subtrees it completes (rows added to the session); returns its index."""
        index = self._size
        # Appending reads only the left siblings on the right edge: the log's frontier subtrees.
        self.fetch(_frontier(index))
        for level, node_index, node in merkle.new_nodes_after_append(self, leaf_hash):
            self.cache[(level, node_index)] = node
            self.session.add(LedgerNode(poll_id=self.poll_id, level=level, index=node_index, hash=node))
        self._size += 1
        return index


def _frontier(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees [0, size) is made of, left to right, as (level, index)."""
    keys, position = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, position >> level))
            position += 1 << level
    return keys


def append_leaves(session: Session, poll: Poll, leaves: list[bytes]) -> list[int]:
    """Appends leaf entries (canonical JSON bytes) to the poll's log; the caller holds the poll's lock."""
    store = DbNodeStore(session, poll)
    indices = [store.append(merkle.leaf_hash(leaf)) for leaf in leaves]
    poll.ledger_size = store.size()
    return indices


def sign_tree_head(session: Session, poll: Poll, *, final: bool = False) -> LedgerCheckpoint:
    """Signs and keeps a checkpoint of the log as it is now in this transaction."""
    store = DbNodeStore(session, poll)
    root = store.prefetched(lambda s: merkle.root(s, s.size()))
    statement = statement_hash(json.loads(frozen_statement(poll)))
    checkpoint = Checkpoint(log_id(poll), store.size(), root, statement, checkpoint_timestamp(), final)
    note = sign_checkpoint(signing_key(), checkpoint)
    row = LedgerCheckpoint(
        poll_id=poll.id,
        size=checkpoint.size,
        root_hash=root,
        timestamp=checkpoint.timestamp,
        signature=note_signature(note),
        final=final,
        note=note,
    )
    session.add(row)
    session.flush()
    return row


def checkpoint_note(poll: Poll, row: LedgerCheckpoint) -> str:
    """The row's signed note; a row from before signed notes is re-signed once, if its old signature holds."""
    if row.note is not None:
        return row.note
    # The old signature covered log id, size, root and time: checking it with the settings key first means
    # an edited row is never re-signed. The key still comes only from the settings.
    body = legacy_checkpoint_body(log_id(poll), row.size, bytes(row.root_hash), row.timestamp)
    if not city_key().verify(bytes(row.signature), body):
        raise ValueError(f"checkpoint {row.id} of poll {poll.public_id} has no valid signature; not re-signing it")
    statement = statement_hash(json.loads(frozen_statement(poll)))
    checkpoint = Checkpoint(log_id(poll), row.size, bytes(row.root_hash), statement, row.timestamp, row.final)
    row.note = sign_checkpoint(signing_key(), checkpoint)
    row.signature = note_signature(row.note)
    return row.note


def checkpoint_dict(poll: Poll, row: LedgerCheckpoint) -> dict[str, Any]:
    """The signed note with its fields spelled out, for receipts and the API (the note is what proves them)."""
    note = checkpoint_note(poll, row)
    return parse_checkpoint(note_text(note)).to_dict() | {"note": note}


def latest_checkpoint(session: Session, poll: Poll) -> LedgerCheckpoint | None:
    return session.execute(
        select(LedgerCheckpoint)
        .where(LedgerCheckpoint.poll_id == poll.id)
        .order_by(LedgerCheckpoint.size.desc(), LedgerCheckpoint.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def checkpoint_at_least(session: Session, poll: Poll, size: int) -> LedgerCheckpoint | None:
    """The first checkpoint that covers `size` leaves (the one a receipt can be proven against)."""
    return session.execute(
        select(LedgerCheckpoint)
        .where(LedgerCheckpoint.poll_id == poll.id, LedgerCheckpoint.size >= size)
        .order_by(LedgerCheckpoint.size, LedgerCheckpoint.id)
        .limit(1)
    ).scalar_one_or_none()


def inclusion_proof(session: Session, poll: Poll, leaf_index: int, size: int) -> list[bytes]:
    if not 0 <= leaf_index < size <= poll.ledger_size:
        raise ValueError(f"no leaf {leaf_index} in a tree of {size} (log holds {poll.ledger_size})")
    return DbNodeStore(session, poll).prefetched(lambda s: merkle.inclusion_proof(s, leaf_index, size))


def consistency_proof(session: Session, poll: Poll, first: int, second: int) -> list[bytes]:
    if not 0 <= first <= second <= poll.ledger_size:
        raise ValueError(f"no consistency proof from {first} to {second} (log holds {poll.ledger_size})")
    return DbNodeStore(session, poll).prefetched(lambda s: merkle.consistency_proof(s, first, second))


def export(session: Session, poll: Poll) -> dict[str, Any]:
    """Everything needed to re-check the poll offline: the signed statement, the poll as shown, leaves, notes."""
    statement = json.loads(frozen_statement(poll))
    leaves = session.execute(select(Ballot.leaf).where(Ballot.poll_id == poll.id).order_by(Ballot.leaf_index)).scalars()
    checkpoints = session.execute(
        select(LedgerCheckpoint)
        .where(LedgerCheckpoint.poll_id == poll.id)
        .order_by(LedgerCheckpoint.size, LedgerCheckpoint.id)
    ).scalars()
    return {
        "format": EXPORT_FORMAT,
        "origin": log_id(poll),
        "statement": statement,
        "poll": {
            "id": poll.public_id,
            "title": poll.title,
            "options": [{"position": o.position, "label": o.label} for o in poll.options],
            "opens_at": checkpoint_timestamp(poll.opens_at),
            "closes_at": checkpoint_timestamp(poll.closes_at),
            "status": poll.status,
        },
        # Informational only: a verifier checks against the key the city publishes, never this one.
        "verifier_key": str(city_key()),
        "leaves": list(leaves),
        "checkpoints": [checkpoint_note(poll, row) for row in checkpoints],
    }


@dataclass
class VerificationReport:
    """What `verify_export` found: ok only when `problems` is empty."""

    leaves: int = 0
    checkpoints: int = 0
    tally: dict[int, int] = field(default_factory=dict)
    root: str = ""
    statement: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    problems: list[str] = field(default_factory=list)
    receipt: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def trusted_key(given: str, carried: object) -> VerifierKey:
    """The key to verify with: `given` itself, or, when `given` is a fingerprint, the carried key that matches it."""
    fingerprint = _FINGERPRINT.fullmatch(given.strip().lower())
    if fingerprint is None:
        return parse_verifier_key(given)
    try:
        key = parse_verifier_key(str(carried))
    except ValueError:
        raise ValueError("the export carries no verifier key to match the fingerprint: pass the key itself") from None
    if key.fingerprint != fingerprint.group(1):
        raise ValueError(f"the export's verifier key {key} does not have the fingerprint given with --key")
    return key


def verify_export(data: dict[str, Any], *, key: VerifierKey | str, receipt_id: str | None = None) -> VerificationReport:
    """Re-checks an export against the city's key (`key`: a verifier key or its fingerprint), nothing else.

    Any key the export carries is informational: only a mismatch with `key` is reported.
    """
    report = VerificationReport()
    carried = data.get("verifier_key")
    try:
        trusted = key if isinstance(key, VerifierKey) else trusted_key(key, carried)
    except ValueError as error:
        report.problems.append(f"the key to verify with: {error}")
        return report
    try:
        statement = data["statement"]
        poll_id = str(statement["poll"])
        positions = {int(o["position"]) for o in statement["options"]}
        opens_at, closes_at = str(statement["opens_at"]), str(statement["closes_at"])
        digest = statement_hash(statement)
        leaves = [str(leaf) for leaf in data["leaves"]]
        notes = list(data["checkpoints"])
        shown = data["poll"]
    except (KeyError, TypeError, ValueError) as error:
        report.problems.append(f"not a verifiable ledger export: {error}")
        return report
    report.key, report.statement = str(trusted), statement
    if carried is not None and str(carried) != str(trusted):
        report.problems.append(f"the export carries verifier key {carried}, not the city's key {trusted}")
    if statement.get("format") != STATEMENT_FORMAT:
        report.problems.append(f"the poll statement is not in the {STATEMENT_FORMAT} format")
    report.problems.extend(_statement_differences(statement, shown))
    store = merkle.MemoryNodeStore()
    receipts: set[str] = set()
    for index, text in enumerate(leaves):
        problem = _check_leaf(text, poll_id, positions, (opens_at, closes_at), receipts)
        if problem:
            report.problems.append(f"leaf {index}: {problem}")
            continue
        entry = json.loads(text)
        report.tally[entry["option"]] = report.tally.get(entry["option"], 0) + 1
        if entry["receipt"] == receipt_id:
            report.receipt = {"receipt": receipt_id, "leaf_index": index, "option": entry["option"]}
        store.append(merkle.leaf_hash(text.encode()))
    report.leaves = store.size()
    report.root = merkle.root(store, store.size()).hex()
    checkpoints = _check_checkpoints(notes, LOG_PREFIX + poll_id, digest, trusted, store, report)
    report.checkpoints = len(checkpoints)
    final = checkpoints[-1] if checkpoints and checkpoints[-1].final else None
    if not notes:
        report.problems.append("no checkpoints: nothing in this export is signed by the city's key")
    elif final is None:
        report.problems.append(
            "no final checkpoint: the export does not end with the checkpoint signed at close (truncated?)"
        )
    elif final.size < store.size():
        report.problems.append(
            f"the final checkpoint covers {final.size} leaves but the export has {store.size()}:"
            " leaves were added after the poll closed"
        )
    if receipt_id is not None:
        _check_receipt(receipt_id, checkpoints, store, report)
    report.tally = dict(sorted(report.tally.items()))
    return report


def _statement_differences(statement: dict[str, Any], shown: dict[str, Any]) -> list[str]:
    """Where the poll as the city shows it (export["poll"]) differs from the statement its checkpoints sign."""
    prefix = "the poll as published differs from its signed statement"
    problems = []
    if shown.get("id") != statement.get("poll"):
        problems.append(f"{prefix}: poll id {shown.get('id')!r}, signed {statement.get('poll')!r}")
    if shown.get("title") != statement.get("question"):
        problems.append(f"{prefix}: the question is {shown.get('title')!r}, signed {statement.get('question')!r}")
    signed = [(o.get("position"), o.get("label")) for o in statement.get("options", [])]
    published = [(o.get("position"), o.get("label")) for o in shown.get("options", [])]
    if [position for position, _ in signed] != [position for position, _ in published]:
        problems.append(f"{prefix}: options {published}, signed {signed}")
    else:
        for (position, label), (_, signed_label) in zip(published, signed, strict=True):
            if label != signed_label:
                problems.append(f"{prefix}: option {position} is labelled {label!r}, signed {signed_label!r}")
    if shown.get("opens_at") != statement.get("opens_at"):
        problems.append(f"{prefix}: opens at {shown.get('opens_at')}, signed {statement.get('opens_at')}")
    # Closing early moves the shown close earlier, never later than the announced one.
    if str(shown.get("closes_at")) > str(statement.get("closes_at")):
        problems.append(f"{prefix}: closes at {shown.get('closes_at')}, signed {statement.get('closes_at')}")
    return problems


def _check_leaf(
    text: str, poll_id: str, positions: set[int], window: tuple[str, str], receipts: set[str]
) -> str | None:
    try:
        entry = json.loads(text)
    except json.JSONDecodeError:
        return "not JSON"
    if not isinstance(entry, dict) or set(entry) != {"poll", "receipt", "option", "time"}:
        return "not a ballot entry"
    try:
        canonical = merkle.canonical_json(entry).decode()
    except TypeError:
        return "not canonical JSON"
    if canonical != text:
        return "not canonical JSON"
    if entry["poll"] != poll_id:
        return f"belongs to poll {entry['poll']!r}"
    if entry["option"] not in positions:
        return f"option {entry['option']!r} is not on the ballot"
    # Same fixed-width UTC format on both sides, so comparing the strings compares the instants.
    if not isinstance(entry["time"], str) or not window[0] <= entry["time"] <= window[1]:
        return f"cast at {entry['time']!r}, outside the signed voting window"
    if entry["receipt"] in receipts:
        return f"receipt {entry['receipt']} appears twice"
    receipts.add(entry["receipt"])
    return None


def _check_checkpoints(
    notes: list[Any],
    origin: str,
    digest: bytes,
    key: VerifierKey,
    store: merkle.MemoryNodeStore,
    report: VerificationReport,
) -> list[Checkpoint]:
    """Opens every note with the city's key and checks it against the leaves; returns those that open, in order."""
    opened: list[Checkpoint] = []
    for number, note in enumerate(notes, 1):
        try:
            checkpoint = open_checkpoint(note, key)
        except NoteError as error:
            report.problems.append(f"checkpoint {number}: {error}")
            continue
        label = f"checkpoint {number} (size {checkpoint.size}, {checkpoint.timestamp})"
        if checkpoint.origin != origin:
            report.problems.append(f"{label} belongs to log {checkpoint.origin}, not {origin}")
        if checkpoint.statement_hash != digest:
            report.problems.append(
                f"{label} signs poll statement {checkpoint.statement_hash.hex()}, but the export's statement"
                f" hashes to {digest.hex()}: its question, options, window or eligibility were changed"
            )
        if opened and opened[-1].final:
            report.problems.append(f"{label} comes after the final checkpoint")
        previous = opened[-1] if opened else None
        opened.append(checkpoint)
        if checkpoint.size > store.size():
            report.problems.append(
                f"{label} covers more leaves than the export holds ({store.size()}): leaves were deleted or cut off"
            )
            continue
        if merkle.root(store, checkpoint.size) != checkpoint.root_hash:
            report.problems.append(
                f"{label}: the leaves do not hash to its root (a leaf was edited, deleted, inserted or reordered)"
            )
            continue
        if previous is None or previous.size > store.size():
            continue
        if previous.size > checkpoint.size:
            report.problems.append(f"{label} is smaller than the one before")
            continue
        proof = merkle.consistency_proof(store, previous.size, checkpoint.size)
        if not merkle.verify_consistency(
            previous.size, checkpoint.size, previous.root_hash, checkpoint.root_hash, proof
        ):
            report.problems.append(f"{label} is not consistent with the one before")
    return opened


def _check_receipt(
    receipt_id: str, checkpoints: list[Checkpoint], store: merkle.MemoryNodeStore, report: VerificationReport
) -> None:
    if report.receipt is None:
        report.problems.append(f"receipt {receipt_id} is not in the log")
        return
    index = int(report.receipt["leaf_index"])
    head = checkpoints[-1] if checkpoints else None
    if head is None or head.size <= index or head.size > store.size():
        report.problems.append(f"receipt {receipt_id} is not covered by a signed checkpoint")
        return
    # The same check a voter's own client does: leaf hash + audit path against the signed root.
    proof = merkle.inclusion_proof(store, index, head.size)
    included = merkle.verify_inclusion(store.get(0, index), index, head.size, proof, head.root_hash)
    report.receipt |= {"included": included, "checkpoint_size": head.size, "proof_length": len(proof)}
    if not included:
        report.problems.append(f"receipt {receipt_id}: the inclusion proof does not reach the signed root")


def _print_report(report: VerificationReport) -> None:
    labels = {o.get("position"): o.get("label") for o in report.statement.get("options", []) if isinstance(o, dict)}
    print(f"key: {report.key}")
    print(f"poll: {report.statement.get('poll')} {report.statement.get('question')!r}")
    print(f"leaves: {report.leaves}")
    print(f"checkpoints: {report.checkpoints}")
    print(f"root: {report.root}")
    print("tally: " + ", ".join(f"{option}. {labels.get(option)}: {count}" for option, count in report.tally.items()))
    if report.receipt:
        print("receipt: " + json.dumps(report.receipt, ensure_ascii=False))
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    print("OK" if report.ok else "FAILED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m civic.ledger", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="verify a downloaded ledger export offline")
    verify.add_argument("export", type=Path)
    verify.add_argument(
        "--key",
        required=True,
        help="the city's published verifier key (name+id+base64) or its SHA-256 fingerprint (64 hex);"
        " never take it from the export",
    )
    verify.add_argument("--receipt", help="also prove that this receipt's ballot is in the log")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.export.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        print(f"cannot read {args.export}: {error}", file=sys.stderr)
        return 2
    if not isinstance(data, dict):
        print(f"{args.export} is not a ledger export", file=sys.stderr)
        return 2
    report = verify_export(data, key=args.key, receipt_id=args.receipt)
    _print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
