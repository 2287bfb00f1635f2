"""The 120 line's media streams open only with a fresh, signed, single-use token for that call and turn."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from civic.db import session_scope, utcnow
from civic.models import SpentStreamToken
from civic.settings import Settings
from telephony import stream_tokens
from telephony.local_twilio import FakeTwilioAPI, local_twilio
from tests.fakes.rasa import FakeRasa
from tests.inprocess_app import running_app
from tests.telephony.test_voice import (
    ACCOUNT,
    PUBLIC,
    STREAM_URL,
    TOKEN,
    dial,
    new_call_sid,
    open_stream,
    press,
    send_start,
    stream_url_of,
    updates_for,
)

SETTINGS = Settings(secret_key="stream-token-test-secret-key-0123456789", phone_stream_token_seconds=300)


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
    return client.app.state.session_factory  # type: ignore[attr-defined]


def app_settings(client: TestClient) -> Settings:
    return client.app.state.phone_line.settings  # type: ignore[attr-defined]


def refused(client: TestClient, url: str) -> int:
    """The close code of an upgrade to `url` carrying Twilio's valid signature for it (the token is what is judged)."""
    with pytest.raises(WebSocketDisconnect) as closed, open_stream(client, url):
        pass
    return closed.value.code


def answer_keys(client: TestClient, twilio: FakeTwilioAPI, url: str, call_sid: str, turn: int, keys: str) -> int:
    """Plays one keyed turn into the stream at `url`; how many call updates the call has had since."""
    before = len([u for u in twilio.call_updates if u["call_sid"] == call_sid])
    with open_stream(client, url) as ws:
        send_start(ws, call_sid, turn)
        press(ws, keys)
        updates_for(twilio, call_sid, before + 1)
        ws.send_text(json.dumps({"event": "stop", "stop": {}}))
    return len([u for u in twilio.call_updates if u["call_sid"] == call_sid]) - before


# ---- the token itself ------------------------------------------------------------------------------------------


def test_a_token_names_its_call_and_turn_and_verifies() -> None:
    call_sid = new_call_sid()
    token = stream_tokens.issue(call_sid, 3, SETTINGS)
    grant = stream_tokens.verify(token, SETTINGS)
    assert grant is not None and (grant.call_sid, grant.turn) == (call_sid, 3)
    assert stream_tokens.issue(call_sid, 3, SETTINGS) != token  # a fresh nonce every time


def test_forged_expired_and_malformed_tokens_do_not_verify() -> None:
    call_sid = new_call_sid()
    token = stream_tokens.issue(call_sid, 1, SETTINGS)
    body, mac = token.rsplit(".", 1)
    other_call = token.replace(call_sid, new_call_sid())
    other_turn = token.replace(f"{call_sid}.1.", f"{call_sid}.2.")
    flipped = body + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    other_key = Settings(secret_key="another-deployments-secret-key-0123456789")
    for forged in (other_call, other_turn, flipped, "", "x" * 200, token + ".", token.replace(".", "/")):
        assert stream_tokens.verify(forged, SETTINGS) is None, forged
    assert stream_tokens.verify(token, other_key) is None
    later = utcnow() + timedelta(seconds=SETTINGS.phone_stream_token_seconds + 1)
    assert stream_tokens.verify(token, SETTINGS, now=later) is None


def test_a_token_is_spent_once_across_connections(session_factory: sessionmaker[Session]) -> None:
    grant = stream_tokens.verify(stream_tokens.issue(new_call_sid(), 0, SETTINGS), SETTINGS)
    assert grant is not None
    with session_scope(session_factory) as first:
        assert stream_tokens.spend(first, grant)
    with session_scope(session_factory) as second:  # another connection: what another web worker would use
        assert not stream_tokens.spend(second, grant)


def test_spent_tokens_are_forgotten_once_expired(session_factory: sessionmaker[Session]) -> None:
    old = stream_tokens.verify(stream_tokens.issue(new_call_sid(), 0, SETTINGS), SETTINGS)
    new = stream_tokens.verify(stream_tokens.issue(new_call_sid(), 0, SETTINGS), SETTINGS)
    assert old is not None and new is not None
    with session_scope(session_factory) as session:
        assert stream_tokens.spend(session, old)
    with session_scope(session_factory) as session:
        assert stream_tokens.spend(session, new, now=old.expires_at + timedelta(seconds=1))
        left = session.execute(select(func.count()).where(SpentStreamToken.nonce == old.nonce)).scalar_one()
    assert left == 0


# ---- the stream endpoint ---------------------------------------------------------------------------------------


def test_each_turn_has_its_own_url_and_so_its_own_upgrade_signature(client: TestClient) -> None:
    call_sid = new_call_sid()
    first, again = stream_url_of(dial(client, call_sid)), stream_url_of(dial(client, call_sid))
    assert first != again and first.startswith(STREAM_URL + "/") and again.startswith(STREAM_URL + "/")
    validator = RequestValidator(TOKEN)
    assert validator.compute_signature(first, {}) != validator.compute_signature(again, {})


def test_a_replayed_upgrade_is_refused_and_the_next_turns_fresh_token_works(
    client: TestClient, twilio: FakeTwilioAPI, db: sessionmaker[Session]
) -> None:
    call_sid = new_call_sid()
    url = stream_url_of(dial(client, call_sid))
    assert answer_keys(client, twilio, url, call_sid, 0, "9") == 1  # "no such key": asked again, turn 1
    # The very upgrade Twilio made (same URL, same valid signature), replayed: refused before accept().
    assert refused(client, url) == 1008
    next_url = stream_url_of(updates_for(twilio, call_sid, 1)[-1])
    assert next_url != url
    assert answer_keys(client, twilio, next_url, call_sid, 1, "9") == 1
    with session_scope(db) as session:
        spent = session.execute(select(func.count()).where(SpentStreamToken.call_sid == call_sid)).scalar_one()
    assert spent == 2


def test_missing_forged_and_expired_tokens_are_refused_even_when_twilio_signed_the_url(
    client: TestClient, twilio: FakeTwilioAPI
) -> None:
    call_sid = new_call_sid()
    dial(client, call_sid)
    settings = app_settings(client)
    expired = stream_tokens.issue(call_sid, 0, settings, now=utcnow() - timedelta(seconds=3600))
    forged_key = settings.model_copy(update={"secret_key": "not-the-deployments-secret-key-0123456789"})
    forged = stream_tokens.issue(call_sid, 0, forged_key)
    for url in (STREAM_URL, f"{STREAM_URL}/{expired}", f"{STREAM_URL}/{forged}", f"{STREAM_URL}/{call_sid}"):
        assert refused(client, url) == 1008, url
    time.sleep(0.2)
    assert not [u for u in twilio.call_updates if u["call_sid"] == call_sid]


def test_a_token_opens_only_its_own_calls_turn(client: TestClient, twilio: FakeTwilioAPI) -> None:
    mine, victim = new_call_sid(), new_call_sid()
    url = stream_url_of(dial(client, mine))
    dial(client, victim)
    with open_stream(client, url) as ws:  # a valid token of another call (or turn) cannot drive this one
        send_start(ws, victim, 0)
        press(ws, "0")
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    time.sleep(0.2)
    assert not [u for u in twilio.call_updates if u["call_sid"] in (mine, victim)]
