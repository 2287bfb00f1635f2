"""The 120 line's webhooks and media stream in process: signatures, TwiML, keys, silence and bad frames."""

from __future__ import annotations

import base64
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from civic import console_accounts as accounts
from civic.cases import file_case
from civic.db import session_scope
from civic.media import store_audio
from civic.models import Attachment, AuditEntry, Case, Conversation, Message, PhoneCall
from civic.phones import encrypt_phone
from telephony import media_stream, stream_tokens
from telephony.asr import Transcript
from telephony.audio import FRAME_BYTES, MULAW_SILENCE, PHONE_RATE, pcm_to_mulaw, wav_bytes
from telephony.expectations import Expectation, after_reply
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from telephony.phone_texts import KEPT_FOR_OPERATOR, UNHEARD_MARKERS
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app
from tests.operator_console.helpers import CSRF, log_in, new_user

ACCOUNT = "AC" + "7" * 32
TOKEN = "phone-test-twilio-token"
PUBLIC = "https://civic.example.kr"
STREAM_URL = "wss://civic.example.kr/telephony/stream"


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioAPI]:
    with local_twilio(ACCOUNT, TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, twilio: FakeTwilioAPI, rasa: FakeRasa) -> Iterator[TestClient]:
    env = {"RASA_URL": rasa.url, "PUBLIC_BASE_URL": PUBLIC, "PHONE_NO_ANSWER_SECONDS": "0.4"}
    with running_app(db_url, twilio, **env) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    return client.app.state.session_factory  # type: ignore[attr-defined,no-any-return]


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def signed_post(client: TestClient, path: str, params: dict[str, str], token: str = TOKEN) -> Any:
    signature = RequestValidator(token).compute_signature(PUBLIC + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def call_params(call_sid: str, **extra: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT, "CallSid": call_sid, "From": "+821027771234", "To": "+8212000120", **extra}


def dial(client: TestClient, call_sid: str) -> ET.Element:
    response = signed_post(client, "/telephony/voice", call_params(call_sid, CallStatus="ringing"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.text)


def stream_url_of(document: ET.Element) -> str:
    """The <Stream> URL a TwiML document asks Twilio to open (each carries its own single-use token)."""
    stream = document.find("Connect/Stream")
    assert stream is not None
    return stream.get("url", "")


def open_stream(client: TestClient, document: ET.Element | str, signature: str | None = None) -> Any:
    """Opens the stream of a TwiML document (or a wss:// URL) as Twilio would: its path, signed over its URL."""
    url = document if isinstance(document, str) else stream_url_of(document)
    signature = signature if signature is not None else RequestValidator(TOKEN).compute_signature(url, {})
    path = url.removeprefix("wss://civic.example.kr")
    return client.websocket_connect(path, headers={"X-Twilio-Signature": signature})


def send_start(ws: WebSocketTestSession, call_sid: str, turn: int, account: str = ACCOUNT) -> None:
    ws.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    start = {
        "accountSid": account,
        "callSid": call_sid,
        "streamSid": "MZ" + secrets.token_hex(16),
        "tracks": ["inbound"],
        "customParameters": {"turn": str(turn)},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    ws.send_text(json.dumps({"event": "start", "sequenceNumber": "1", "start": start}))


def press(ws: WebSocketTestSession, digits: str) -> None:
    for digit in digits:
        ws.send_text(json.dumps({"event": "dtmf", "dtmf": {"digit": digit}}))


def updates_for(twilio: FakeTwilioAPI, call_sid: str, count: int, timeout: float = 10.0) -> list[ET.Element]:
    """The TwiML documents the line sent to this call with calls(sid).update, once `count` have arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        documents = [u["params"]["Twiml"] for u in twilio.call_updates if u["call_sid"] == call_sid]
        if len(documents) >= count:
            return [ET.fromstring(d) for d in documents]
        time.sleep(0.02)
    raise AssertionError(f"{count} call updates expected for {call_sid}")


def keys_turn(client: TestClient, twilio: FakeTwilioAPI, call_sid: str, keys: str) -> ET.Element:
    """A new call's first stream: the caller presses `keys`; the TwiML the line answered with, once it arrived."""
    greeting = dial(client, call_sid)
    with open_stream(client, greeting) as ws:
        send_start(ws, call_sid, 0)
        press(ws, keys)
        [document] = updates_for(twilio, call_sid, 1)
        ws.send_text(json.dumps({"event": "stop", "stop": {}}))
    return document


def resumed_stream(client: TestClient, call_sid: str) -> ET.Element:
    """The TwiML of /resume (what Twilio asks when a stream dropped): the same question with a fresh stream."""
    return ET.fromstring(signed_post(client, "/telephony/resume", call_params(call_sid, CallStatus="in-progress")).text)


def said(document: ET.Element) -> str:
    return " ".join((say.text or "") for say in document.iter("Say"))


def call_row(db: sessionmaker[Session], call_sid: str) -> PhoneCall:
    with session_scope(db) as session:
        call = session.execute(select(PhoneCall).where(PhoneCall.call_sid == call_sid)).scalar_one()
        session.expunge(call)
        return call


def test_incoming_call_greets_in_korean_and_streams_with_the_turn_number(client: TestClient) -> None:
    document = dial(client, new_call_sid())
    say = document.find("Say")
    assert say is not None and say.get("language") == "ko-KR" and say.get("voice") == "Polly.Seoyeon"
    assert "120" in (say.text or "") and "0번" in (say.text or "")
    stream = document.find("Connect/Stream")
    assert stream is not None and stream.get("url", "").startswith(STREAM_URL + "/CA")
    assert {p.get("name"): p.get("value") for p in stream.findall("Parameter")} == {"turn": "0"}
    assert document.find("Redirect") is not None and (document.find("Redirect").text or "").endswith(
        "/telephony/resume"
    )  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p, h: (p | {"From": "+821099999999"}, h), id="tampered-parameter"),
        pytest.param(lambda p, h: (p, {}), id="missing-header"),
        pytest.param(lambda p, h: (p, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}), id="wrong-signature"),
    ],
)
def test_forged_voice_webhooks_are_refused_before_any_write(
    client: TestClient, db: sessionmaker[Session], change: Any
) -> None:
    call_sid = new_call_sid()
    params = call_params(call_sid)
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(PUBLIC + "/telephony/voice", params)}
    params, headers = change(params, headers)
    response = client.post("/telephony/voice", data=params, headers=headers)
    assert response.status_code == 403
    with session_scope(db) as session:
        assert session.execute(select(PhoneCall).where(PhoneCall.call_sid == call_sid)).first() is None


def test_signature_over_another_url_or_token_is_refused(client: TestClient) -> None:
    params = call_params(new_call_sid())
    for url, token in (("http://civic.example.kr/telephony/voice", TOKEN), (PUBLIC + "/telephony/voice", "other")):
        signature = RequestValidator(token).compute_signature(url, params)
        assert (
            client.post("/telephony/voice", data=params, headers={"X-Twilio-Signature": signature}).status_code == 403
        )


def test_a_retried_voice_webhook_is_the_same_call(client: TestClient, db: sessionmaker[Session]) -> None:
    call_sid = new_call_sid()
    first, second = dial(client, call_sid), dial(client, call_sid)
    # The same TwiML but for the stream's single-use token, which is new in every document.
    assert stream_url_of(first) != stream_url_of(second)
    for document in (first, second):
        document.find("Connect/Stream").set("url", "")  # type: ignore[union-attr]
    assert ET.tostring(first) == ET.tostring(second)
    with session_scope(db) as session:
        calls = session.execute(select(func.count()).where(PhoneCall.call_sid == call_sid)).scalar_one()
        conversations = session.execute(
            select(func.count()).where(Conversation.channel == "phone", Conversation.external_id == call_sid)
        ).scalar_one()
        conversation = session.execute(select(Conversation).where(Conversation.external_id == call_sid)).scalar_one()
        greetings = session.execute(
            select(func.count()).where(Message.conversation_id == conversation.id, Message.sender == "system")
        ).scalar_one()
        assert (calls, conversations, greetings) == (1, 1, 1)
        assert conversation.citizen_id is not None  # the caller's number is the verified phone


def test_malformed_call_sid_is_refused(client: TestClient) -> None:
    response = signed_post(client, "/telephony/voice", call_params("CA../../etc"))
    assert response.status_code == 400


def test_unsigned_or_forged_stream_upgrade_is_refused(client: TestClient) -> None:
    url = stream_url_of(dial(client, new_call_sid()))
    for signature in ("", RequestValidator(TOKEN).compute_signature(url.replace("wss://", "https://"), {})):
        with pytest.raises(WebSocketDisconnect), open_stream(client, url, signature) as ws:
            ws.receive_text()


def test_pressing_0_hands_the_caller_to_the_operators_queue(
    client: TestClient, twilio: FakeTwilioAPI, db: sessionmaker[Session]
) -> None:
    call_sid = new_call_sid()
    document = keys_turn(client, twilio, call_sid, "0")
    assert document.findtext("Enqueue") == "120-operators"
    assert "상담원" in said(document)
    assert call_row(db, call_sid).status == "queued"
    with session_scope(db) as session:
        conversation = session.execute(select(Conversation).where(Conversation.external_id == call_sid)).scalar_one()
        assert conversation.handoff_requested_at is not None
        assert conversation.handoff_reason == "phone: caller_pressed_0"


def test_a_key_that_is_no_choice_asks_again_and_a_stale_stream_is_ignored(
    client: TestClient, twilio: FakeTwilioAPI, db: sessionmaker[Session]
) -> None:
    call_sid = new_call_sid()
    document = keys_turn(client, twilio, call_sid, "9")
    assert said(document).startswith("9번은 없는 번호예요.")
    assert "불편 신고는 1번" in said(document)
    stream = document.find("Connect/Stream")
    assert stream is not None and stream.find("Parameter").get("value") == "1"  # type: ignore[union-attr]
    # The stream of turn 0 again (a late reconnect, with a valid token for that turn) changes nothing.
    late = STREAM_URL + "/" + stream_tokens.issue(call_sid, 0, client.app.state.phone_line.settings)  # type: ignore[attr-defined]
    with open_stream(client, late) as ws:
        send_start(ws, call_sid, 0)
        press(ws, "0")
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    time.sleep(0.2)
    assert len([u for u in twilio.call_updates if u["call_sid"] == call_sid]) == 1
    assert call_row(db, call_sid).status == "active"


def test_silence_asks_again_then_offers_an_operator_then_says_goodbye(
    client: TestClient, twilio: FakeTwilioAPI, db: sessionmaker[Session]
) -> None:
    call_sid = new_call_sid()
    documents = [dial(client, call_sid)]
    for turn in range(3):
        with open_stream(client, documents[-1]) as ws:
            send_start(ws, call_sid, turn)
            silence = base64.b64encode(bytes([MULAW_SILENCE]) * FRAME_BYTES).decode()
            ws.send_text(json.dumps({"event": "media", "sequenceNumber": "2", "media": {"payload": silence}}))
            documents = updates_for(twilio, call_sid, turn + 1)
            ws.send_text(json.dumps({"event": "stop", "stop": {}}))
    first, second, third = documents
    assert said(first).startswith("말씀이 잘 들리지 않았어요.")
    assert "0번" in said(second) and "상담원" in said(second)
    assert third.find("Hangup") is not None and third.find("Connect") is None
    call = call_row(db, call_sid)
    assert (call.status, call.end_reason) == ("ended", "silence")


def test_bad_frames_are_skipped_and_the_turn_still_counts(
    client: TestClient, twilio: FakeTwilioAPI, db: sessionmaker[Session]
) -> None:
    call_sid = new_call_sid()
    greeting = dial(client, call_sid)
    with open_stream(client, greeting) as ws:
        ws.send_text("not json")
        ws.send_bytes(b"\x00\x01binary")
        send_start(ws, call_sid, 0)
        ws.send_text(json.dumps({"event": "media", "media": {"payload": "%%%not base64%%%"}}))
        ws.send_text(json.dumps({"event": "media", "media": {"payload": base64.b64encode(b"\xff" * 50_000).decode()}}))
        ws.send_text(json.dumps({"no_event": True}))
        press(ws, "*#")  # keys that are no choice
        [document] = updates_for(twilio, call_sid, 1)
        ws.send_text(json.dumps({"event": "stop", "stop": {}}))
    assert "없는 번호" in said(document)


def test_a_stream_of_another_account_or_without_start_gets_no_answer(
    client: TestClient, twilio: FakeTwilioAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_sid = new_call_sid()
    dial(client, call_sid)
    with open_stream(client, resumed_stream(client, call_sid)) as ws:
        send_start(ws, call_sid, 0, account="AC" + "0" * 32)
        press(ws, "0")
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    monkeypatch.setattr(media_stream, "START_TIMEOUT_SECONDS", 0.3)
    with open_stream(client, resumed_stream(client, call_sid)) as ws:
        ws.send_text(json.dumps({"event": "connected"}))
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    assert not [u for u in twilio.call_updates if u["call_sid"] == call_sid]


def test_the_status_callback_ends_the_call_once(client: TestClient, db: sessionmaker[Session]) -> None:
    call_sid = new_call_sid()
    dial(client, call_sid)
    for _ in range(2):  # Twilio retries callbacks
        response = signed_post(client, "/telephony/status", call_params(call_sid, CallStatus="completed"))
        assert response.status_code == 204
    call = call_row(db, call_sid)
    assert (call.status, call.end_reason) == ("ended", "hangup")
    # A stream or a resume for the finished call gets a goodbye, not a new turn.
    resumed = signed_post(client, "/telephony/resume", call_params(call_sid, CallStatus="in-progress"))
    assert ET.fromstring(resumed.text).find("Hangup") is not None


def test_mashed_keys_are_capped_and_answered_once(client: TestClient, twilio: FakeTwilioAPI) -> None:
    call_sid = new_call_sid()
    document = keys_turn(client, twilio, call_sid, "98765432109876543210#")
    time.sleep(0.3)
    assert len([u for u in twilio.call_updates if u["call_sid"] == call_sid]) == 1
    # "9" can begin no choice, so the entry ends there; the rest of the mashing reaches no one.
    assert said(document).startswith("9번은 없는 번호예요.")


def test_a_call_past_the_time_limit_goes_to_an_operator(
    client: TestClient, twilio: FakeTwilioAPI, db: sessionmaker[Session]
) -> None:
    line = client.app.state.phone_line  # type: ignore[attr-defined]
    settings = line.settings
    line.settings = settings.model_copy(update={"phone_max_call_seconds": 0})
    try:
        call_sid = new_call_sid()
        document = keys_turn(client, twilio, call_sid, "1")
    finally:
        line.settings = settings
    assert document.findtext("Enqueue") == "120-operators"
    assert "통화가 길어져" in said(document)
    assert call_row(db, call_sid).status == "queued"


def test_a_caller_hanging_up_while_listened_to_ends_the_call(client: TestClient, db: sessionmaker[Session]) -> None:
    call_sid = new_call_sid()
    greeting = dial(client, call_sid)
    with open_stream(client, greeting) as ws:
        send_start(ws, call_sid, 0)
        ws.send_text(json.dumps({"event": "stop", "stop": {"callSid": call_sid}}))
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    call = call_row(db, call_sid)
    assert (call.status, call.end_reason) == ("ended", "hangup")


def test_an_operator_takes_a_queued_caller_on_the_desk_phone_and_the_bot_gets_the_call_back(
    client: TestClient, twilio: FakeTwilioAPI, db: sessionmaker[Session], rasa: FakeRasa
) -> None:
    call_sid = new_call_sid()
    keys_turn(client, twilio, call_sid, "0")
    with session_scope(db) as session:
        conversation_id = session.execute(
            select(Conversation.id).where(Conversation.external_id == call_sid)
        ).scalar_one()
    page = f"/console/conversations/{conversation_id}"
    email = new_user(db, "operator")
    client.cookies.clear()
    log_in(client, email)
    token = CSRF.search(client.get(page).text).group(1)  # type: ignore[union-attr]
    # Without a desk line there is nowhere to bridge the caller to.
    refused = client.post(f"{page}/take", data={"csrf_token": token}, follow_redirects=False)
    assert refused.headers["location"].endswith("?error=no_desk_phone")
    assert call_row(db, call_sid).status == "queued"
    with session_scope(db) as session:
        user = accounts.find_user(session, email)
        assert user is not None
        user.desk_phone_ciphertext = encrypt_phone("+8221200155")
    taken = client.post(f"{page}/take", data={"csrf_token": token}, follow_redirects=False)
    assert taken.headers["location"].endswith("?done=bridge")
    bridge = updates_for(twilio, call_sid, 2)[-1]
    assert bridge.findtext("Dial/Number") == "+8221200155"
    assert bridge.find("Dial").get("action") == PUBLIC + "/telephony/operator-done"  # type: ignore[union-attr]
    assert call_row(db, call_sid).status == "bridged"
    assert (f"phone:{call_sid}", {"event": "pause"}) in rasa.events
    # The operator hangs up: Twilio asks the Dial's action; the caller is thanked, the bot resumes.
    done = signed_post(client, "/telephony/operator-done", call_params(call_sid, DialCallStatus="completed"))
    document = ET.fromstring(done.text)
    assert document.find("Hangup") is not None and "감사합니다" in said(document)
    assert call_row(db, call_sid).status == "ended"
    assert rasa.events[-1] == (f"phone:{call_sid}", {"event": "resume"})
    with session_scope(db) as session:
        assert session.get(Conversation, conversation_id).held_by_user_id is None  # type: ignore[union-attr]
    forged = client.post("/telephony/operator-done", data=call_params(call_sid), headers={"X-Twilio-Signature": "x"})
    assert forged.status_code == 403


# ---- the confidence gate, with scripted decodings (telephony/understanding.py calls these) ---------------------------


class ScriptedRecognizers:
    """Stands in for the speech models: every decoding of every turn is `heard`."""

    grammar_engine = "whisper"
    free_form_engine = "whisper"
    whisper_options = None

    def __init__(self, heard: Transcript) -> None:
        self.heard = heard

    async def grammar(self, audio: Any, phrases: Any, *, vad: bool = True) -> Transcript:
        return self.heard

    async def free_form(self, audio: Any, **options: Any) -> Transcript:
        return self.heard


def speak(ws: WebSocketTestSession) -> None:
    """A second of loud tone, then silence until the endpointer ends the turn (its content is scripted)."""
    tone = (np.sin(np.arange(PHONE_RATE) * 2 * np.pi * 300 / PHONE_RATE) * 8000).astype(np.int16)
    samples = np.concatenate([tone, np.zeros(PHONE_RATE * 2, dtype=np.int16)])
    for number, start in enumerate(range(0, len(samples), FRAME_BYTES), start=2):
        payload = base64.b64encode(pcm_to_mulaw(samples[start : start + FRAME_BYTES])).decode()
        ws.send_text(json.dumps({"event": "media", "sequenceNumber": str(number), "media": {"payload": payload}}))


def call_at(client: TestClient, db: sessionmaker[Session], call_sid: str, expectation: Expectation) -> ET.Element:
    """A new call whose first turn already expects `expectation` (as if the bot had just asked it)."""
    greeting = dial(client, call_sid)
    with session_scope(db) as session:
        call = session.execute(select(PhoneCall).where(PhoneCall.call_sid == call_sid)).scalar_one()
        call.expectation = expectation.to_json()
    return greeting


def spoken_turn(
    client: TestClient, twilio: FakeTwilioAPI, call_sid: str, document: ET.Element, turn: int
) -> ET.Element:
    with open_stream(client, document) as ws:
        send_start(ws, call_sid, turn)
        speak(ws)
        document = updates_for(twilio, call_sid, turn + 1)[-1]
        ws.send_text(json.dumps({"event": "stop", "stop": {}}))
    return document


GARBAGE_PLACE = "하, 소녀기, 온스, 부, 하, 배, 부, 롯, 주"
SUMMARY = (
    "신고 내용을 확인해 주세요:\n• 유형: 불법 주정차\n• 구: 마포구\n• 위치: {place}\n• 내용: 차가 서 있어요\n"
    "이대로 접수할까요?"
)


def test_a_place_the_gate_refuses_is_kept_as_a_recording_and_never_read_back(
    client: TestClient,
    twilio: FakeTwilioAPI,
    db: sessionmaker[Session],
    rasa: FakeRasa,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line = client.app.state.phone_line  # type: ignore[attr-defined]
    monkeypatch.setattr(line, "recognizers", ScriptedRecognizers(Transcript(GARBAGE_PLACE, "whisper", 0.1)))
    buttons = [{"title": "네, 접수해 주세요", "payload": "/affirm"}, {"title": "고칠 게 있어요", "payload": "/deny"}]
    monkeypatch.setattr(
        rasa,
        "answer",
        lambda turn: [
            {"recipient_id": turn["sender"], "text": SUMMARY.format(place=turn["message"]), "buttons": buttons}
        ],
    )
    call_sid = new_call_sid()
    place = after_reply("정확한 위치를 말씀해 주세요.", [], "utter_ask_place")
    document = spoken_turn(client, twilio, call_sid, call_at(client, db, call_sid, place), 0)
    assert rasa.turns[-1]["message"] == UNHEARD_MARKERS["place"]  # the bot gets the marker, not the guess
    reply = said(document)
    assert reply.startswith(KEPT_FOR_OPERATOR)
    assert "녹음으로 남기신 위치" in reply and "소녀기" not in reply
    with session_scope(db) as session:
        conversation = session.execute(select(Conversation).where(Conversation.external_id == call_sid)).scalar_one()
        recordings = session.execute(select(Attachment).where(Attachment.conversation_id == conversation.id)).scalars()
        assert [(a.kind, a.to_transcribe, a.transcript) for a in recordings] == [("audio", "place", None)]
        texts = session.execute(select(Message.text).where(Message.conversation_id == conversation.id)).scalars()
        assert not any("소녀기" in text for text in texts)


def test_a_closed_answer_the_gate_refuses_is_asked_once_more_then_goes_to_an_operator(
    client: TestClient, twilio: FakeTwilioAPI, db: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    line = client.app.state.phone_line  # type: ignore[attr-defined]
    echo = Transcript("종로구 중구 용산구 성동구 광진구", "whisper", 0.1)  # the hot words said back
    monkeypatch.setattr(line, "recognizers", ScriptedRecognizers(echo))
    call_sid = new_call_sid()
    district = after_reply("서울 어느 구인가요?", [], "utter_ask_district")
    first = spoken_turn(client, twilio, call_sid, call_at(client, db, call_sid, district), 0)
    assert said(first).startswith("죄송해요, 잘 못 들었어요. 구 이름만")
    assert first.find("Enqueue") is None
    second = spoken_turn(client, twilio, call_sid, first, 1)
    assert second.findtext("Enqueue") == "120-operators"
    assert "녹음하신 말씀도 함께" in said(second)
    with session_scope(db) as session:
        conversation = session.execute(select(Conversation).where(Conversation.external_id == call_sid)).scalar_one()
        assert conversation.handoff_reason == "phone: not_understood"
        handoff = (
            session.execute(
                select(Message).where(Message.conversation_id == conversation.id, Message.sender == "system")
            )
            .scalars()
            .all()[-1]
        )
        [recording] = handoff.data["attachment_ids"]
        assert session.get(Attachment, recording).kind == "audio"  # type: ignore[union-attr]


def test_an_operator_types_a_recordings_transcript_into_the_case(client: TestClient, db: sessionmaker[Session]) -> None:
    with session_scope(db) as session:
        recording = store_audio(session, conversation_id=None, wav=wav_bytes(np.zeros(800, dtype=np.int16), 8000))
        recording.to_transcribe = "place"
        case = file_case(
            session,
            category="illegal_parking",
            district="마포구",
            place=UNHEARD_MARKERS["place"],
            description="차가 서 있어요",
            channel="phone",
            attachment_ids=[recording.id],
        )
        number, attachment_id = case.number, recording.id
    page = f"/console/cases/{number}"
    client.cookies.clear()
    log_in(client, new_user(db, "operator"))
    html = client.get(page).text
    assert "받아 적을 녹음" in html and attachment_id in html
    token = CSRF.search(html).group(1)  # type: ignore[union-attr]
    form = {"attachment": attachment_id, "transcript": "합정역 2번 출구 앞"}
    assert client.post(f"{page}/transcribe", data=form, follow_redirects=False).status_code == 403  # no CSRF token
    empty = client.post(
        f"{page}/transcribe", data=form | {"transcript": " ", "csrf_token": token}, follow_redirects=False
    )
    assert empty.headers["location"].endswith("?error=transcript_required")
    done = client.post(f"{page}/transcribe", data=form | {"csrf_token": token}, follow_redirects=False)
    assert done.headers["location"].endswith("?done=transcribe")
    with session_scope(db) as session:
        case = session.execute(select(Case).where(Case.number == number)).scalar_one()
        assert case.place == "합정역 2번 출구 앞"  # later notices read the case
        attachment = session.get(Attachment, attachment_id)
        assert attachment is not None and attachment.transcript == "합정역 2번 출구 앞"
        entry = session.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).scalar_one()
        assert (entry.action, entry.target) == ("case.transcribe", number)
    assert "받아 적을 녹음" not in client.get(page).text
