"""The public voting web, in process with its lifespan: SMS codes through a fake Twilio, ballots, receipts, proofs."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from civic import merkle
from civic.checkpoints import open_checkpoint, parse_verifier_key
from civic.db import session_scope, utcnow
from civic.ledger import city_key, verify_export
from civic.models import Ballot, OutboxMessage, Poll, VerificationCode
from civic.phones import normalize_phone, phone_blind_index
from civic.polls import NewPoll, create_poll
from civic.settings import get_settings
from civic.votes import VoteRequest, cast_votes, close_poll
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from tests.inprocess_app import new_phone, running_app
from tests.limits import reset_rate_limits
from webapp.qr import qr_png

CITY_HALL = (37.5663, 126.9779)
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
RECEIPT = re.compile(r'class="receipt-id">([0-9a-f]{32})<')


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio("AC" + "7" * 32, "web-test-twilio-token") as fake:
        yield fake


@pytest.fixture(scope="module")
def client(db_url: str, session_factory: sessionmaker[Session], twilio: FakeTwilioAPI) -> Iterator[TestClient]:
    """The real app (create_app + lifespan) on the test database, its SMS going to the fake Twilio."""
    with running_app(db_url, twilio) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def fresh_ip_limit(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    """Every request here comes from one address; each test starts with that address's budget."""
    reset_rate_limits(session_factory)


def make_poll(factory: sessionmaker[Session], **overrides: Any) -> tuple[Poll, str | None]:
    now = utcnow()
    fields: dict[str, Any] = {
        "title": f"한강공원 금연 구역 확대 {uuid.uuid4().hex[:6]}",
        "options": ["찬성", "반대", "모르겠다"],
        "opens_at": now - timedelta(minutes=1),
        "closes_at": now + timedelta(hours=1),
        "description": "여의도·반포 한강공원 전체를 금연 구역으로 정할까요?",
    } | overrides
    with session_scope(factory) as session:
        poll, token = create_poll(session, NewPoll(**fields), kind="policy", created_by="test")
        poll.options  # noqa: B018 - loaded before the session closes
    return poll, token


def ballots_of(factory: sessionmaker[Session], poll: Poll) -> list[Ballot]:
    with session_scope(factory) as session:
        return list(session.execute(select(Ballot).where(Ballot.poll_id == poll.id)).scalars())


def codes_of(factory: sessionmaker[Session], phone: str) -> list[VerificationCode]:
    with session_scope(factory) as session:
        query = select(VerificationCode).where(VerificationCode.phone_index == phone_blind_index(phone))
        return list(session.execute(query.order_by(VerificationCode.id)).scalars())


def allow_another_code(factory: sessionmaker[Session], phone: str) -> None:
    """Forgets the send limits' counts (the one-send-per-half-minute gap), as if the citizen had waited."""
    reset_rate_limits(factory)


class Citizen:
    """A non-member with a phone and a browser (the module's TestClient, cookie jar included)."""

    def __init__(self, client: TestClient, twilio: FakeTwilioAPI, poll: Poll) -> None:
        self.client = client
        self.twilio = twilio
        self.poll = poll
        self.phone = new_phone()
        self.e164 = normalize_phone(self.phone)
        self.csrf = ""
        self.lang = "ko"
        self.seen = 0  # SMS to this phone already read

    def open(self, **params: str) -> httpx.Response:
        self.lang = params.get("lang", self.lang)
        page = self.client.get(f"/polls/{self.poll.public_id}", params=params)
        assert page.status_code == 200, page.text
        match = CSRF.search(page.text)
        assert match, "the poll page must carry a CSRF token"
        self.csrf = match.group(1)
        return page

    def post(self, action: str, **fields: Any) -> httpx.Response:
        form = {"csrf_token": self.csrf, "lang": self.lang, "phone": self.phone} | fields
        form = {name: str(value) for name, value in form.items() if value is not None}
        return self.client.post(f"/polls/{self.poll.public_id}/{action}", data=form)

    def request_code(self, **fields: Any) -> httpx.Response:
        return self.post("code", **fields)

    def receive_code(self, timeout: float = 10) -> str:
        """The code from the newest SMS to this phone, once the outbox has delivered it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.twilio.messages_to(self.e164)
            if len(messages) > self.seen:
                self.seen = len(messages)
                match = re.search(r"\b(\d{6})\b", messages[-1]["body"])
                assert match, messages[-1]["body"]
                return match.group(1)
            time.sleep(0.05)
        raise AssertionError("no SMS reached the fake Twilio")

    def get_code(self, **fields: Any) -> str:
        response = self.request_code(**fields)
        assert response.status_code == 200, response.text
        return self.receive_code()

    def vote(self, option: int | None, code: str, **fields: Any) -> httpx.Response:
        return self.post("vote", option=option, code=code, **fields)


@pytest.fixture
def citizen_for(client: TestClient, twilio: FakeTwilioAPI) -> Any:
    def make(poll: Poll) -> Citizen:
        citizen = Citizen(client, twilio, poll)
        citizen.open()
        return citizen

    return make


def test_list_page_shows_open_polls_in_the_chosen_language(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    poll, _ = make_poll(session_factory, visibility="password", password="seoul-2026")
    pending, _ = make_poll(session_factory)
    with session_scope(session_factory) as session:
        session.get(Poll, pending.id).status = "pending"  # type: ignore[union-attr]
    page = client.get("/polls")
    assert page.status_code == 200
    assert "진행 중인 투표" in page.text and poll.title in page.text and "비밀번호 필요" in page.text
    assert pending.title not in page.text
    assert "Open polls" in client.get("/polls?lang=en").text
    japanese = client.get("/polls", headers={"Accept-Language": "fr-FR,ja;q=0.8,en;q=0.5"}).text
    assert "実施中の投票" in japanese and 'lang="ja"' in japanese
    assert "Open polls" in client.get("/polls?lang=xx", headers={"Accept-Language": "en-US"}).text
    assert client.get(f"/polls/{pending.public_id}").status_code == 404
    assert client.get("/polls/no-such-poll").status_code == 404
    assert client.get("/static/polls.css").status_code == 200


def test_vote_with_an_sms_code_gives_a_receipt_whose_inclusion_proof_verifies(
    client: TestClient, session_factory: sessionmaker[Session], twilio: FakeTwilioAPI, citizen_for: Any
) -> None:
    poll, _ = make_poll(session_factory)
    citizen = citizen_for(poll)
    sent = citizen.request_code(option=2)
    assert sent.status_code == 200
    assert f"끝자리 {citizen.e164[-4:]} 번호로 인증번호를 보냈어요" in sent.text
    assert 'value="2" required checked' in sent.text  # the choice survives the round trip
    code = citizen.receive_code()
    assert twilio.messages_to(citizen.e164)[-1]["body"] == f"[서울시 엠보팅] 인증번호 {code} (5분 안에 입력)"
    with session_scope(session_factory) as session:
        outbox_rows = session.execute(select(OutboxMessage).where(OutboxMessage.kind == "verification_code")).scalars()
        assert all(citizen.e164 not in str(row.data) and code != row.dedupe_key for row in outbox_rows)

    voted = citizen.vote(2, code)
    assert voted.status_code == 200, voted.text
    assert "투표가 접수됐어요" in voted.text
    match = RECEIPT.search(voted.text)
    assert match
    receipt = match.group(1)
    [ballot] = ballots_of(session_factory, poll)
    assert (ballot.receipt_id, ballot.option_position, ballot.channel) == (receipt, 2, "web")
    assert codes_of(session_factory, citizen.e164)[-1].used_at is not None

    proof_url = f"/api/polls/{poll.public_id}/proof/inclusion?receipt={receipt}"
    assert proof_url in voted.text
    proof = client.get(proof_url).json()
    assert proof["leaf_index"] == ballot.leaf_index and proof["leaf"] == ballot.leaf
    leaf_hash = merkle.leaf_hash(proof["leaf"].encode())
    assert proof["leaf_hash"] == leaf_hash.hex()
    published = client.get("/api/ledger/key").json()
    assert published["verifier_key"] == str(city_key()) and published["fingerprint"] == city_key().fingerprint
    checkpoint = open_checkpoint(proof["checkpoint"]["note"], parse_verifier_key(published["verifier_key"]))
    assert proof["tree_size"] == checkpoint.size
    path = [bytes.fromhex(node) for node in proof["audit_path"]]
    assert merkle.verify_inclusion(leaf_hash, proof["leaf_index"], checkpoint.size, path, checkpoint.root_hash)
    # The receipt page shows the signed note itself, line by line (HTML-escaped only where needed: nowhere here).
    assert checkpoint.root_hash.hex() in voted.text and proof["checkpoint"]["note"] in voted.text
    assert 'href="/api/ledger/key"' in voted.text

    # The same phone again, with a fresh code and another option: told so, with the first receipt.
    allow_another_code(session_factory, citizen.e164)
    again = citizen.vote(1, citizen.get_code())
    assert again.status_code == 200
    assert "이미 투표했어요" in again.text
    assert RECEIPT.search(again.text).group(1) == receipt  # type: ignore[union-attr]
    assert [b.option_position for b in ballots_of(session_factory, poll)] == [2]


def test_wrong_and_expired_codes_are_refused_and_nothing_is_stored(
    session_factory: sessionmaker[Session], citizen_for: Any
) -> None:
    poll, _ = make_poll(session_factory)
    citizen = citizen_for(poll)
    no_code = citizen.vote(1, "123456")
    assert no_code.status_code == 400 and "먼저 인증번호를 받아 주세요" in no_code.text
    code = citizen.get_code()
    wrong = citizen.vote(1, f"{(int(code) + 1) % 10**6:06d}")
    assert wrong.status_code == 400 and "인증번호가 맞지 않아요" in wrong.text
    assert codes_of(session_factory, citizen.e164)[-1].attempts == 1
    empty = citizen.vote(1, "")
    assert empty.status_code == 422 and "인증번호를 입력해 주세요" in empty.text
    no_choice = citizen.vote(None, code)
    assert no_choice.status_code == 422 and "선택지를 하나 골라 주세요" in no_choice.text

    with session_scope(session_factory) as session:
        session.execute(
            update(VerificationCode)
            .where(VerificationCode.phone_index == phone_blind_index(citizen.e164))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = citizen.vote(1, code)
    assert expired.status_code == 400 and "인증번호가 만료됐어요" in expired.text
    assert ballots_of(session_factory, poll) == []
    assert codes_of(session_factory, citizen.e164)[-1].used_at is None


def test_posts_without_the_csrf_token_are_refused(
    client: TestClient, session_factory: sessionmaker[Session], twilio: FakeTwilioAPI, citizen_for: Any
) -> None:
    poll, _ = make_poll(session_factory)
    citizen = citizen_for(poll)
    assert citizen.post("code", csrf_token=None).status_code == 403
    assert citizen.post("code", csrf_token="0" * 64).status_code == 403
    assert citizen.post("vote", csrf_token=None, option=1, code="123456").status_code == 403
    # A token without the cookie it was made for (another site posting the form) is refused too.
    # Not entered as a context manager: that would run the app's lifespan a second time.
    stranger = TestClient(client.app)
    form = {"csrf_token": citizen.csrf, "phone": citizen.phone}
    refused = stranger.post(f"/polls/{poll.public_id}/code", data=form)
    assert refused.status_code == 403 and "페이지가 만료됐어요" in refused.text
    assert codes_of(session_factory, citizen.e164) == [] and twilio.messages_to(citizen.e164) == []


def test_send_limits_and_a_bad_number(
    client: TestClient, session_factory: sessionmaker[Session], citizen_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    poll, _ = make_poll(session_factory)
    citizen = citizen_for(poll)
    bad = citizen.request_code(phone="12345")
    assert bad.status_code == 422 and "휴대전화 번호를 확인해 주세요" in bad.text
    citizen.get_code()
    too_soon = citizen.request_code()
    assert too_soon.status_code == 429 and "너무 자주 요청했어요" in too_soon.text and "초 후에" in too_soon.text
    assert len(codes_of(session_factory, citizen.e164)) == 1

    # The address has sent one code; with a budget of two it may send one more, then no more.
    monkeypatch.setattr(get_settings(), "sms_codes_per_address_per_hour", 2)
    first, second = citizen_for(poll), citizen_for(poll)
    assert first.request_code().status_code == 200
    limited = second.request_code()
    assert limited.status_code == 429 and "이 연결에서 인증번호 요청이 너무 많아요" in limited.text
    assert codes_of(session_factory, second.e164) == []


def test_password_poll(session_factory: sessionmaker[Session], citizen_for: Any) -> None:
    poll, _ = make_poll(session_factory, visibility="password", password="mapo-2026")
    citizen = citizen_for(poll)
    code = citizen.get_code()
    missing = citizen.vote(1, code)
    assert missing.status_code == 403 and "투표 비밀번호를 입력해 주세요" in missing.text
    wrong = citizen.vote(1, code, password="guess")
    assert wrong.status_code == 403 and "투표 비밀번호가 맞지 않아요" in wrong.text and "새 인증번호" in wrong.text
    assert ballots_of(session_factory, poll) == []

    allow_another_code(session_factory, citizen.e164)
    accepted = citizen.vote(1, citizen.get_code(), password="mapo-2026")
    assert accepted.status_code == 200 and "투표가 접수됐어요" in accepted.text
    assert len(ballots_of(session_factory, poll)) == 1


def test_qr_poll_needs_its_link_and_texts_in_english(
    session_factory: sessionmaker[Session], twilio: FakeTwilioAPI, citizen_for: Any
) -> None:
    poll, token = make_poll(session_factory, visibility="qr")
    assert token
    citizen = citizen_for(poll)
    assert "QR 코드 링크로 열어야" in citizen.open().text
    code = citizen.get_code()
    without = citizen.vote(3, code)
    assert without.status_code == 403 and "QR 코드 링크로만 참여할 수 있어요" in without.text
    forged = citizen.vote(3, code, t="not-the-token")
    assert forged.status_code == 403

    page = citizen.open(t=token, lang="en")
    assert f'name="t" value="{token}"' in page.text and "Opened from the QR code link" in page.text
    accepted = citizen.vote(3, code, t=token)  # refusals before the code is spent keep it valid
    assert accepted.status_code == 200 and "Your vote has been counted" in accepted.text
    assert [b.option_position for b in ballots_of(session_factory, poll)] == [3]


def test_english_sms_text(session_factory: sessionmaker[Session], twilio: FakeTwilioAPI, citizen_for: Any) -> None:
    poll, _ = make_poll(session_factory)
    citizen = citizen_for(poll)
    citizen.open(lang="ja")
    sent = citizen.request_code()
    assert "認証番号を送りました" in sent.text
    code = citizen.receive_code()
    assert (
        twilio.messages_to(citizen.e164)[-1]["body"] == f"[ソウル市エムボーティング] 認証番号 {code}（5分以内に入力）"
    )


def test_gps_poll_needs_a_position_inside_the_area(session_factory: sessionmaker[Session], citizen_for: Any) -> None:
    poll, _ = make_poll(session_factory, visibility="gps", gps_center=CITY_HALL, gps_radius_m=500)
    citizen = citizen_for(poll)
    page = citizen.open()
    assert 'id="locate"' in page.text and "/static/polls.js" in page.text
    code = citizen.get_code()
    no_position = citizen.vote(1, code)
    assert no_position.status_code == 403 and "위치 확인이 필요해요" in no_position.text
    gangnam = citizen.vote(1, code, lat=37.4979, lon=127.0276)
    assert gangnam.status_code == 403 and "투표 지역 밖이에요" in gangnam.text
    assert ballots_of(session_factory, poll) == []
    accepted = citizen.vote(1, code, lat=37.5659, lon=126.9784)
    assert accepted.status_code == 200 and "투표가 접수됐어요" in accepted.text


def test_roll_poll_refuses_numbers_off_the_roll(session_factory: sessionmaker[Session], citizen_for: Any) -> None:
    voter, outsider = "010-3141-5926", "010-2718-2818"
    poll, _ = make_poll(session_factory, visibility="roll", roll_phones=(voter,))
    stranger = citizen_for(poll)
    stranger.phone, stranger.e164 = outsider, normalize_phone(outsider)
    refused = stranger.vote(1, stranger.get_code())
    assert refused.status_code == 403 and "참여 명부에 없어요" in refused.text
    member = citizen_for(poll)
    member.phone, member.e164 = voter, normalize_phone(voter)
    accepted = member.vote(2, member.get_code())
    assert accepted.status_code == 200 and "투표가 접수됐어요" in accepted.text


def cast(factory: sessionmaker[Session], poll: Poll, *options: int) -> list[str]:
    requests = [VoteRequest(f"+82109{random.randrange(10**7):07d}", option, channel="web") for option in options]
    with session_scope(factory) as session:
        outcomes = cast_votes(session, poll.id, requests)
    assert all(outcome.status == "accepted" and outcome.receipt for outcome in outcomes)
    return [outcome.receipt.receipt_id for outcome in outcomes if outcome.receipt]


def test_results_hidden_until_close_unless_interim_results_are_public(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    hidden, _ = make_poll(session_factory)
    cast(session_factory, hidden, 1, 1, 2)
    page = client.get(f"/polls/{hidden.public_id}/results")
    assert page.status_code == 200 and "결과는 투표가 마감되면 공개돼요" in page.text and "<svg" not in page.text

    live, _ = make_poll(session_factory, show_interim_results=True)
    cast(session_factory, live, 1, 1, 2)
    page = client.get(f"/polls/{live.public_id}/results")
    assert "<svg" in page.text and "중간 결과" in page.text and "총 3표" in page.text
    assert "2표 (66.7%)" in page.text and "1표 (33.3%)" in page.text and "0표 (0.0%)" in page.text
    assert "찬성" in page.text and "모르겠다" in page.text

    with session_scope(session_factory) as session:
        close_poll(session, hidden.id, early=True)
    page = client.get(f"/polls/{hidden.public_id}/results?lang=en")
    assert "<svg" in page.text and "Final results" in page.text and "2 votes (66.7%)" in page.text
    assert f"/api/polls/{hidden.public_id}/export" in page.text


def test_ledger_json_for_verifiers(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    poll, _ = make_poll(session_factory)
    assert client.get(f"/api/polls/{poll.public_id}/checkpoint").json()["checkpoint"] is None
    receipts = cast(session_factory, poll, 1, 2) + cast(session_factory, poll, 2) + cast(session_factory, poll, 3, 1)
    api = f"/api/polls/{poll.public_id}"

    head = client.get(f"{api}/checkpoint").json()
    assert head["checkpoint"]["size"] == head["ledger_size"] == 5
    sizes = [c["size"] for c in client.get(f"{api}/checkpoints").json()["checkpoints"]]
    assert sizes == [2, 3, 5]
    consistency = client.get(f"{api}/proof/consistency", params={"first": 3, "second": 5}).json()
    old, new = consistency["first_checkpoint"], consistency["second_checkpoint"]
    proof = [bytes.fromhex(node) for node in consistency["proof"]]
    assert merkle.verify_consistency(3, 5, bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"]), proof)
    assert client.get(f"{api}/proof/consistency", params={"first": 4, "second": 6}).status_code == 400
    assert client.get(f"{api}/proof/consistency", params={"first": 3, "second": 2}).status_code == 400
    assert client.get(f"{api}/proof/consistency", params={"first": 1, "second": 4}).json()["first_checkpoint"] is None

    unknown = client.get(f"{api}/proof/inclusion", params={"receipt": "0" * 32})
    assert unknown.status_code == 404 and unknown.json()["error"] == "no_receipt"
    assert client.get("/api/polls/nope/checkpoint").json()["error"] == "no_poll"
    assert client.get("/api/polls/nope/export").status_code == 404

    early = client.get(f"{api}/export")
    assert early.status_code == 409 and early.json()["error"] == "not_closed"
    with session_scope(session_factory) as session:
        close_poll(session, poll.id, early=True)
    export = client.get(f"{api}/export").json()
    report = verify_export(export, key=city_key().fingerprint, receipt_id=receipts[2])
    assert report.ok, report.problems
    assert report.tally == {1: 2, 2: 2, 3: 1} and report.receipt and report.receipt["included"]
    assert export["checkpoints"][-1].split("\n\n")[0].endswith("\nfinal")
    assert export["statement"]["options"] == [
        {"position": o["position"], "label": o["label"]} for o in export["poll"]["options"]
    ]
    with session_scope(session_factory) as session:
        assert session.execute(select(func.count()).select_from(Ballot).where(Ballot.poll_id == poll.id)).scalar() == 5


def test_upcoming_and_closed_polls_take_no_codes(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    now = utcnow()
    upcoming, _ = make_poll(session_factory, opens_at=now + timedelta(days=1), closes_at=now + timedelta(days=2))
    page = client.get(f"/polls/{upcoming.public_id}")
    assert "아직 시작 전이에요" in page.text and 'name="code"' not in page.text
    csrf = CSRF.search(client.get(f"/polls/{make_poll(session_factory)[0].public_id}").text).group(1)  # type: ignore[union-attr]
    refused = client.post(f"/polls/{upcoming.public_id}/code", data={"csrf_token": csrf, "phone": "010-5555-1234"})
    assert refused.status_code == 403 and "투표 기간이 아니에요" in refused.text


def test_qr_png() -> None:
    png = qr_png("https://civic.example.org/polls/abc?t=token")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 200
