"""A non-member votes on the public poll page of the real web app, verified by an SMS code through a fake Twilio."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic import merkle
from civic.checkpoints import open_checkpoint, parse_verifier_key
from civic.db import session_scope, utcnow
from civic.models import Ballot
from civic.polls import NewPoll, create_poll
from telephony.local_twilio import FakeTwilioAPI
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e
PHONE, E164 = "010-7412-3698", "+821074123698"


def test_citizen_votes_with_an_sms_code_and_gets_a_verifiable_receipt(
    stack: Stack, db: sessionmaker[Session], twilio_api: FakeTwilioAPI
) -> None:
    now = utcnow()
    new = NewPoll(
        title="따릉이 대여소 확충 우선 지역",
        options=["마포구", "성동구", "노원구"],
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=1),
        show_interim_results=True,
    )
    with session_scope(db) as session:
        poll, _ = create_poll(session, new, kind="policy", created_by="e2e")

    citizen = httpx.Client(base_url=stack.web_url, timeout=30)
    listing = citizen.get("/polls")
    assert listing.status_code == 200 and new.title in listing.text
    page = citizen.get(f"/polls/{poll.public_id}")
    assert page.status_code == 200 and "성동구" in page.text
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match
    form = {"csrf_token": match.group(1), "lang": "ko", "phone": PHONE, "option": "2"}

    sent = citizen.post(f"/polls/{poll.public_id}/code", data=form)
    assert sent.status_code == 200 and "인증번호를 보냈어요" in sent.text
    deadline = time.monotonic() + 15
    while not twilio_api.messages_to(E164) and time.monotonic() < deadline:
        time.sleep(0.1)
    [sms] = twilio_api.messages_to(E164)
    code = re.search(r"인증번호 (\d{6})", sms["body"])
    assert code, sms["body"]

    voted = citizen.post(f"/polls/{poll.public_id}/vote", data=form | {"code": code.group(1)})
    assert voted.status_code == 200 and "투표가 접수됐어요" in voted.text
    receipt = re.search(r'class="receipt-id">([0-9a-f]{32})<', voted.text)
    assert receipt
    with session_scope(db) as session:
        ballot = session.execute(select(Ballot).where(Ballot.poll_id == poll.id)).scalar_one()
    assert (ballot.receipt_id, ballot.option_position) == (receipt.group(1), 2)

    proof = citizen.get(f"/api/polls/{poll.public_id}/proof/inclusion", params={"receipt": receipt.group(1)}).json()
    city_key = parse_verifier_key(citizen.get("/api/ledger/key").json()["verifier_key"])
    head = open_checkpoint(proof["checkpoint"]["note"], city_key)
    path = [bytes.fromhex(node) for node in proof["audit_path"]]
    leaf = merkle.leaf_hash(proof["leaf"].encode())
    assert merkle.verify_inclusion(leaf, proof["leaf_index"], head.size, path, head.root_hash)
    results = citizen.get(f"/polls/{poll.public_id}/results")
    assert "<svg" in results.text and "1표 (100.0%)" in results.text
