"""A closed poll's export, tampered with one way at a time: verification against the city's key fails and says why."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic import ledger, merkle, polls, votes
from civic.checkpoints import note_text, parse_checkpoint, sign_checkpoint, verifier_key
from civic.db import session_scope, utcnow
from civic.models import Poll, PollOption
from civic.polls import NewPoll
from civic.votes import VoteRequest

ROOT = Path(__file__).resolve().parents[2]
VOTERS = 12  # cast in batches of 5: checkpoints at sizes 5, 10, 12, then the final one at close


def closed_poll(session_factory: sessionmaker[Session]) -> tuple[int, dict[str, Any]]:
    """A policy poll with 12 ballots in three batches, closed early by the city, and its export."""
    now = utcnow()
    new = NewPoll(
        title="한강공원 야간 개장 시간을 연장할까요?",
        options=["찬성", "반대", "잘 모르겠다"],
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(days=7),
    )
    with session_scope(session_factory) as session:
        poll, _ = polls.create_poll(session, new, kind="policy", created_by="test")
        poll_id = poll.id
    for start in range(0, VOTERS, 5):
        requests = [VoteRequest(f"+8210{7000 + i:08d}", 1 + i % 3, "web") for i in range(start, min(VOTERS, start + 5))]
        with session_scope(session_factory) as session:
            votes.cast_votes(session, poll_id, requests)
    with session_scope(session_factory) as session:
        votes.close_poll(session, poll_id, early=True)
    with session_scope(session_factory) as session:
        poll = session.get(Poll, poll_id)
        assert poll is not None
        return poll_id, ledger.export(session, poll)


@pytest.fixture(scope="module")
def original(session_factory: sessionmaker[Session]) -> dict[str, Any]:
    return closed_poll(session_factory)[1]


@pytest.fixture
def export(original: dict[str, Any]) -> dict[str, Any]:
    """A fresh copy to tamper with."""
    return copy.deepcopy(original)


def city() -> str:
    return str(ledger.city_key())


def problems_of(data: dict[str, Any], key: str | None = None) -> list[str]:
    report = ledger.verify_export(data, key=key or city())
    assert not report.ok
    return report.problems


def sizes(data: dict[str, Any]) -> list[int]:
    return [parse_checkpoint(note_text(note)).size for note in data["checkpoints"]]


def run_cli(tmp_path: Path, data: dict[str, Any], *arguments: str) -> subprocess.CompletedProcess[str]:
    """The verifier as a citizen runs it: a separate process, the export in a file, no database."""
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    environment = {"PATH": os.environ.get("PATH", ""), "ENVIRONMENT": "test"}
    return subprocess.run(
        [sys.executable, "-m", "civic.ledger", "verify", str(path), *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_export_has_the_expected_shape(original: dict[str, Any]) -> None:
    assert sizes(original) == [5, 10, 12, 12] and len(original["leaves"]) == VOTERS
    assert note_text(original["checkpoints"][-1]).endswith("\nfinal\n")
    assert not any(note_text(note).endswith("\nfinal\n") for note in original["checkpoints"][:-1])


def test_an_untampered_export_verifies_with_the_key_and_with_its_fingerprint(
    original: dict[str, Any], tmp_path: Path
) -> None:
    for key in (city(), ledger.city_key().fingerprint, "sha256:" + ledger.city_key().fingerprint):
        report = ledger.verify_export(original, key=key)
        assert report.ok, report.problems
        assert report.tally == {1: 4, 2: 4, 3: 4} and report.checkpoints == 4 and report.leaves == VOTERS
    for key in (city(), ledger.city_key().fingerprint):
        done = run_cli(tmp_path, original, "--key", key)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.rstrip().endswith("OK") and "1. 찬성: 4" in done.stdout


def test_the_key_is_required_on_the_command_line(original: dict[str, Any], tmp_path: Path) -> None:
    done = run_cli(tmp_path, original)
    assert done.returncode == 2 and "--key" in done.stderr


def test_stripped_checkpoints_fail(export: dict[str, Any], tmp_path: Path) -> None:
    export["checkpoints"] = []
    assert any("no checkpoints" in problem for problem in problems_of(export))
    done = run_cli(tmp_path, export, "--key", city())
    assert done.returncode == 1
    assert "PROBLEM: no checkpoints: nothing in this export is signed by the city's key" in done.stdout
    assert done.stdout.rstrip().endswith("FAILED")


def resigned_by(data: dict[str, Any], other: Ed25519PrivateKey) -> dict[str, Any]:
    """The same checkpoints signed by another key, and that key carried in the export."""
    data["checkpoints"] = [sign_checkpoint(other, parse_checkpoint(note_text(note))) for note in data["checkpoints"]]
    data["verifier_key"] = str(verifier_key(other))
    return data


def test_an_export_signed_by_another_key_fails(export: dict[str, Any], tmp_path: Path) -> None:
    other = Ed25519PrivateKey.generate()
    forged = resigned_by(export, other)
    assert ledger.verify_export(forged, key=str(verifier_key(other))).ok  # consistent in itself: only the key tells
    problems = problems_of(forged)
    assert any("carries verifier key" in problem and "not the city's key" in problem for problem in problems)
    assert sum("not signed by the city's key" in problem for problem in problems) == 4
    # Given the fingerprint instead, the carried key is used only if it matches: it does not.
    [problem] = problems_of(forged, key=ledger.city_key().fingerprint)
    assert "does not have the fingerprint" in problem
    done = run_cli(tmp_path, forged, "--key", city())
    assert done.returncode == 1 and "not signed by the city's key seoul-civic/polls+" in done.stdout


def test_a_carried_key_that_differs_from_the_given_one_is_reported(export: dict[str, Any]) -> None:
    export["verifier_key"] = str(verifier_key(Ed25519PrivateKey.generate()))
    [problem] = problems_of(export)  # the checkpoints still verify with --key: only the mismatch is wrong
    assert "carries verifier key" in problem


def test_truncation_with_the_final_checkpoint_dropped_fails(export: dict[str, Any], tmp_path: Path) -> None:
    # Cut back to the checkpoint at size 10, as if the poll had stopped there: everything left is signed.
    export["checkpoints"] = export["checkpoints"][:2]
    export["leaves"] = export["leaves"][:10]
    [problem] = problems_of(export)
    assert problem.startswith("no final checkpoint")
    done = run_cli(tmp_path, export, "--key", city())
    assert done.returncode == 1 and "PROBLEM: no final checkpoint" in done.stdout


def test_truncation_keeping_the_final_checkpoint_fails(export: dict[str, Any]) -> None:
    export["leaves"] = export["leaves"][:10]
    problems = problems_of(export)
    assert any("covers more leaves than the export holds (10)" in problem for problem in problems)


def test_leaves_after_the_final_checkpoint_fail(export: dict[str, Any]) -> None:
    extra = json.loads(export["leaves"][0]) | {"receipt": "f" * 32}
    export["leaves"].append(merkle.canonical_json(extra).decode())
    problems = problems_of(export)
    assert any("the final checkpoint covers 12 leaves but the export has 13" in problem for problem in problems)


def relabel_shown(data: dict[str, Any]) -> None:
    data["poll"]["options"][1]["label"] = "찬성"


def relabel_both(data: dict[str, Any]) -> None:
    for part in (data["poll"], data["statement"]):
        part["options"][1]["label"] = "찬성"


def reorder_statement(data: dict[str, Any]) -> None:
    for part in (data["poll"], data["statement"]):
        options = part["options"]
        options[0]["label"], options[1]["label"] = options[1]["label"], options[0]["label"]


def change_question(data: dict[str, Any]) -> None:
    data["statement"]["question"] = data["poll"]["title"] = "한강공원을 폐쇄할까요?"


def move_window(data: dict[str, Any]) -> None:
    data["statement"]["opens_at"] = data["poll"]["opens_at"] = "2020-01-01T00:00:00Z"


def change_eligibility(data: dict[str, Any]) -> None:
    data["statement"]["eligibility"] = "roll"


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (relabel_shown, "option 2 is labelled '찬성', signed '반대'"),
        (relabel_both, "question, options, window or eligibility were changed"),
        (reorder_statement, "question, options, window or eligibility were changed"),
        (change_question, "question, options, window or eligibility were changed"),
        (move_window, "question, options, window or eligibility were changed"),
        (change_eligibility, "question, options, window or eligibility were changed"),
    ],
    ids=["relabel-shown", "relabel-statement", "reorder-options", "question", "window", "eligibility"],
)
def test_a_changed_poll_statement_fails(
    export: dict[str, Any], tamper: Callable[[dict[str, Any]], None], expected: str
) -> None:
    tamper(export)
    problems = problems_of(export)
    assert any(expected in problem for problem in problems), problems


def test_an_option_relabelled_in_the_database_fails(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    poll_id, before = closed_poll(session_factory)
    assert ledger.verify_export(before, key=city()).ok
    with session_scope(session_factory) as session:
        option = session.execute(
            select(PollOption).where(PollOption.poll_id == poll_id, PollOption.position == 2)
        ).scalar_one()
        option.label = "찬성"
    with session_scope(session_factory) as session:
        poll = session.get(Poll, poll_id)
        assert poll is not None
        after = ledger.export(session, poll)
    problems = problems_of(after)
    assert any("option 2 is labelled '찬성', signed '반대'" in problem for problem in problems)
    done = run_cli(tmp_path, after, "--key", city())
    assert done.returncode == 1 and "option 2 is labelled" in done.stdout


def swap_leaves(data: dict[str, Any]) -> None:
    leaves = data["leaves"]
    leaves[0], leaves[1] = leaves[1], leaves[0]


def edit_leaf(data: dict[str, Any]) -> None:
    entry = json.loads(data["leaves"][3])
    entry["option"] = 1 if entry["option"] != 1 else 2
    data["leaves"][3] = merkle.canonical_json(entry).decode()


def insert_leaf(data: dict[str, Any]) -> None:
    stuffed = json.loads(data["leaves"][3]) | {"receipt": "f" * 32}
    data["leaves"].insert(3, merkle.canonical_json(stuffed).decode())


def delete_leaf(data: dict[str, Any]) -> None:
    del data["leaves"][7]


@pytest.mark.parametrize(
    ("tamper", "first_bad_size"),
    [(swap_leaves, 5), (edit_leaf, 5), (insert_leaf, 5), (delete_leaf, 10)],
    ids=["reordered", "edited", "inserted", "deleted"],
)
def test_a_tampered_leaf_fails(
    export: dict[str, Any], tamper: Callable[[dict[str, Any]], None], first_bad_size: int
) -> None:
    tamper(export)
    problems = problems_of(export)
    mismatches = [problem for problem in problems if "the leaves do not hash to its root" in problem]
    assert mismatches and f"(size {first_bad_size}," in mismatches[0]
    assert "a leaf was edited, deleted, inserted or reordered" in mismatches[0]


def test_a_leaf_cast_outside_the_signed_window_fails(export: dict[str, Any]) -> None:
    entry = json.loads(export["leaves"][2]) | {"time": "2020-01-01T00:00:00Z"}
    export["leaves"][2] = merkle.canonical_json(entry).decode()
    problems = problems_of(export)
    assert any(problem.startswith("leaf 2: cast at '2020-01-01T00:00:00Z', outside the signed") for problem in problems)


def test_a_checkpoint_of_another_poll_fails(export: dict[str, Any], session_factory: sessionmaker[Session]) -> None:
    _, other = closed_poll(session_factory)
    export["checkpoints"][0] = other["checkpoints"][0]  # signed by the city, for another poll's log
    problems = problems_of(export)
    assert any(f"belongs to log {other['origin']}, not {export['origin']}" in problem for problem in problems)
