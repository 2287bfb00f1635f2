"""No internal door: the action server and Rasa's API answer only their token, and identity only when signed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.gateway import server_metadata
from bot.rasa_client import RasaClient
from civic.db import make_session_factory
from civic.models import Case, Conversation
from civic.settings import get_settings
from civic.turn_tokens import TOKEN_FIELD, sign_turn
from tests.e2e.stack import ROOT, rasa_api_params, running_engine

pytestmark = pytest.mark.e2e

FORGED_IDENTITY = {"channel": "telegram", "external_id": "999999"}
REPORT = "마포구 합정역 2번 출구 앞에 불법 주차된 차가 있어요"


@pytest.fixture(scope="module")
def doors(db_url: str, engine: Engine) -> Iterator[tuple[str, str]]:
    """The real Rasa engine and action server, started as `make run` starts them: (rasa_url, actions_url)."""
    if not list((ROOT / "models").glob("*.tar.gz")):
        pytest.fail("no trained model in models/: run `make train` (make test does it)")
    with running_engine(db_url) as (rasa_url, actions_url, _pids):
        yield rasa_url, actions_url


@pytest.fixture(scope="module")
def db(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def action_call(*, sender: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """What Rasa posts to run `action_submit_complaint` on a completed report (the issue's forged call)."""
    slots = {
        "language": "ko",
        "category": "illegal_parking",
        "district": "마포구",
        "place": "합정역 2번 출구",
        "description": "불법 주차",
        "confirm_report": True,
    }
    return {
        "next_action": "action_submit_complaint",
        "sender_id": sender,
        "version": "3.6.21",
        "domain": {"slots": {}, "forms": {}},
        "tracker": {
            "sender_id": sender,
            "slots": slots,
            "latest_message": {"text": "네", "intent": {"name": "affirm"}, "entities": [], "metadata": metadata},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


def cases_of(db: sessionmaker[Session], channel: str, external_id: str) -> int:
    with db() as session:
        return int(
            session.execute(
                select(func.count(Case.id))
                .join(Conversation, Conversation.id == Case.conversation_id)
                .where(Conversation.channel == channel, Conversation.external_id == external_id)
            ).scalar_one()
        )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- the action server ---------------------------------------------------------------------------------------------


def test_the_action_server_listens_on_loopback_only(doors: tuple[str, str]) -> None:
    port = int(doors[1].rsplit(":", 1)[1])
    listening = listening_addresses(port)
    assert listening == {"127.0.0.1"}, listening


def test_the_action_server_refuses_a_call_without_its_token(doors: tuple[str, str], db: sessionmaker[Session]) -> None:
    sender = f"telegram:{FORGED_IDENTITY['external_id']}"
    call = action_call(sender=sender, metadata=FORGED_IDENTITY)
    for headers in ({}, bearer("wrong-token"), bearer(get_settings().action_server_token + "x")):
        response = httpx.post(f"{doors[1]}/webhook", json=call, headers=headers, timeout=30)
        assert response.status_code == 401, response.text
    assert httpx.get(f"{doors[1]}/actions", timeout=30).status_code == 401
    assert cases_of(db, **FORGED_IDENTITY) == 0


def test_the_action_server_refuses_an_identity_the_gateway_did_not_sign(
    doors: tuple[str, str], db: sessionmaker[Session]
) -> None:
    """Even with the action token (say, leaked), metadata typed by a client files nothing as anyone."""
    sender = f"telegram:{FORGED_IDENTITY['external_id']}"
    key = get_settings().metadata_signing_key
    forgeries = {
        "unsigned": FORGED_IDENTITY,
        "signed with another key": {TOKEN_FIELD: sign_turn(FORGED_IDENTITY, sender=sender, key="attacker-" + key)},
        "stale": {TOKEN_FIELD: sign_turn(FORGED_IDENTITY, sender=sender, key=key, now=time.time() - 3600)},
        "signed for another conversation": {TOKEN_FIELD: sign_turn(FORGED_IDENTITY, sender="telegram:1", key=key)},
        "token cut and pasted": {
            TOKEN_FIELD: sign_turn(FORGED_IDENTITY, sender=sender, key=key)[:-4] + "AAAA",
            **FORGED_IDENTITY,
        },
    }
    token = get_settings().action_server_token
    for name, metadata in forgeries.items():
        response = httpx.post(
            f"{doors[1]}/webhook", json=action_call(sender=sender, metadata=metadata), headers=bearer(token), timeout=30
        )
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert body["responses"] == [{"response": "utter_identity_unverified"}], (name, body)
        assert body["events"] == [], name
    assert cases_of(db, **FORGED_IDENTITY) == 0


# ---- Rasa's HTTP API -----------------------------------------------------------------------------------------------


def test_rasas_api_answers_no_one_without_its_token(doors: tuple[str, str]) -> None:
    rasa = doors[0]
    sender = f"web:{uuid.uuid4().hex}"
    calls = [
        ("GET", "/status", None),
        ("GET", f"/conversations/{sender}/tracker", None),
        ("POST", f"/conversations/{sender}/tracker/events", {"event": "pause"}),
        ("POST", "/model/parse", {"text": "안녕하세요"}),
    ]
    for method, path, body in calls:
        refused = httpx.request(method, f"{rasa}{path}", json=body, timeout=30)
        assert refused.status_code == 401, (path, refused.status_code)
        wrong = httpx.request(method, f"{rasa}{path}", json=body, params={"token": "guess"}, timeout=30)
        assert wrong.status_code == 401, (path, wrong.status_code)
    # The same calls with the token work: the lock is on the door, not a broken door.
    tracker = httpx.get(f"{rasa}/conversations/{sender}/tracker", params=rasa_api_params(), timeout=30)
    assert tracker.status_code == 200 and tracker.json()["sender_id"] == sender


async def test_readiness_sees_the_real_rasa_serving_only_with_its_token(doors: tuple[str, str]) -> None:
    """/ready and the metrics ask Rasa's /status (200 once the model is loaded), which needs RASA_AUTH_TOKEN."""
    with_token = RasaClient(doors[0], auth_token=get_settings().rasa_auth_token)
    without = RasaClient(doors[0])
    try:
        assert await with_token.reachable() == {doors[0]: True}
        assert await without.reachable() == {doors[0]: False}
    finally:
        await with_token.aclose()
        await without.aclose()


def test_a_report_typed_straight_into_rasa_with_a_forged_identity_files_nothing(
    doors: tuple[str, str], db: sessionmaker[Session]
) -> None:
    """Rasa's REST channel is reachable on loopback; metadata claiming a Telegram chat is not believed."""
    rasa, sender = doors[0], f"telegram:{FORGED_IDENTITY['external_id']}"
    with httpx.Client(base_url=rasa, timeout=60) as client:
        client.post("/webhooks/rest/webhook", json={"sender": sender, "message": REPORT, "metadata": FORGED_IDENTITY})
        replies = client.post(
            "/webhooks/rest/webhook", json={"sender": sender, "message": "/affirm", "metadata": FORGED_IDENTITY}
        ).json()
    said = "\n".join(str(reply.get("text")) for reply in replies)
    assert "utter_identity_unverified" in [reply.get("utter_action") for reply in replies], replies
    assert "SR-" not in said
    assert cases_of(db, **FORGED_IDENTITY) == 0


def test_the_same_report_signed_by_the_gateway_is_filed_as_that_chat(
    doors: tuple[str, str], db: sessionmaker[Session]
) -> None:
    """The positive control of the test above: the only difference is the gateway's signature."""
    chat_id = str(uuid.uuid4().int % 10**9)
    sender, facts = f"telegram:{chat_id}", {"channel": "telegram", "external_id": chat_id, "language": "ko"}
    with httpx.Client(base_url=doors[0], timeout=60) as client:
        for text in (REPORT, "/affirm"):
            body = {"sender": sender, "message": text, "metadata": server_metadata(sender, facts)}
            replies = client.post("/webhooks/rest/webhook", json=body).json()
    said = "\n".join(str(reply.get("text")) for reply in replies)
    assert "SR-" in said, said
    assert cases_of(db, "telegram", chat_id) == 1


def listening_addresses(port: int) -> set[str]:
    """The local addresses of sockets listening on `port`, read from /proc (IPv4 and IPv6)."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(table, encoding="ascii").read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(_address(address, width))
    return found


def _address(hex_address: str, width: int) -> str:
    raw = bytes.fromhex(hex_address)
    if width == 8:
        return ".".join(str(b) for b in reversed(raw))
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]  # the kernel prints each 32-bit word little-endian
    return ":".join(b"".join(words)[i : i + 2].hex() for i in range(0, 16, 2))
