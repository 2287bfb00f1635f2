"""Twilio signatures on webhooks and Media Streams, checked against PUBLIC_BASE_URL by a tiny app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlencode

import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from civic.settings import Settings
from telephony import twilio_auth
from telephony.twilio_auth import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    public_url,
    require_twilio_signature,
    websocket_signature_ok,
)

PUBLIC = "https://civic.example.org"
TOKEN = "test-twilio-auth-token-0123456789"
ACCOUNT_SID = "AC" + "1" * 32
OTHER_ACCOUNT_SID = "AC" + "2" * 32
VOICE_PATH = "/twilio/voice"
MEDIA_PATH = "/twilio/media"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# What Twilio posts when a call comes in, with the awkward cases of form encoding: an empty value, Korean
# (percent-encoded UTF-8) and a `+` (Twilio signs the decoded value).
PARAMS = {
    "AccountSid": ACCOUNT_SID,
    "CallSid": "CA" + "3" * 32,
    "From": "+821012345678",
    "To": "+82120",
    "CallerName": "",
    "FromCity": "서울",
}


def sign(url: str, params: dict[str, str]) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    test_settings = Settings(
        environment="test", public_base_url=PUBLIC, twilio_auth_token=TOKEN, twilio_account_sid=ACCOUNT_SID
    )
    monkeypatch.setattr(twilio_auth, "get_settings", lambda: test_settings)
    return test_settings


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post(VOICE_PATH)
    async def voice(params: Annotated[dict[str, str], Depends(require_twilio_signature)]) -> dict[str, str]:
        return params

    @app.websocket(MEDIA_PATH)
    async def media(websocket: WebSocket) -> None:
        if not websocket_signature_ok(websocket, twilio_auth.get_settings()):
            await websocket.close(code=1008)
            return
        await websocket.accept()
        await websocket.send_text("accepted")
        await websocket.close()

    return app


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    # The app is reached at http://testserver, as behind the proxy; Twilio called https://civic.example.org.
    with TestClient(make_app()) as test_client:
        yield test_client


def post(client: TestClient, params: dict[str, str], signature: str | None, path: str = VOICE_PATH) -> int:
    headers = dict(FORM)
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return client.post(path, content=urlencode(params), headers=headers).status_code


@pytest.mark.parametrize("path", [VOICE_PATH, f"{VOICE_PATH}?lang=ko&step=1"])
def test_valid_signature_passes_the_params_to_the_handler(client: TestClient, path: str) -> None:
    response = client.post(
        path, content=urlencode(PARAMS), headers={**FORM, SIGNATURE_HEADER: sign(PUBLIC + path, PARAMS)}
    )
    assert response.status_code == 200
    assert response.json() == PARAMS


def test_plus_and_spaces_are_checked_decoded(client: TestClient) -> None:
    params = {"SpeechResult": "불법 주차 신고 +1", "Digits": "1#"}
    response = client.post(
        VOICE_PATH, content=urlencode(params), headers={**FORM, SIGNATURE_HEADER: sign(PUBLIC + VOICE_PATH, params)}
    )
    assert response.status_code == 200
    assert response.json() == params


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param({**PARAMS, "From": "+821099999999"}, id="tampered-value"),
        pytest.param({**PARAMS, "Digits": "9"}, id="added-param"),
        pytest.param({k: v for k, v in PARAMS.items() if k != "CallerName"}, id="removed-empty-param"),
        pytest.param({k: v for k, v in PARAMS.items() if k != "From"}, id="removed-param"),
    ],
)
def test_changed_params_are_refused(client: TestClient, sent: dict[str, str]) -> None:
    assert post(client, sent, sign(PUBLIC + VOICE_PATH, PARAMS)) == 403


@pytest.mark.parametrize(
    ("signed_url", "path"),
    [
        pytest.param(f"{PUBLIC}/twilio/status", VOICE_PATH, id="other-path"),
        pytest.param(f"{PUBLIC}{VOICE_PATH}?lang=ko", f"{VOICE_PATH}?lang=en", id="tampered-query"),
        pytest.param(f"{PUBLIC}{VOICE_PATH}?lang=ko", VOICE_PATH, id="query-dropped"),
        pytest.param(f"{PUBLIC}{VOICE_PATH}", f"{VOICE_PATH}?lang=ko", id="query-added"),
        pytest.param(f"http://civic.example.org{VOICE_PATH}", VOICE_PATH, id="signed-for-http"),
        pytest.param(f"https://civic.example.org.evil.test{VOICE_PATH}", VOICE_PATH, id="other-host"),
        pytest.param(f"http://testserver{VOICE_PATH}", VOICE_PATH, id="the-url-the-app-sees"),
    ],
)
def test_signature_for_another_url_is_refused(client: TestClient, signed_url: str, path: str) -> None:
    assert post(client, PARAMS, sign(signed_url, PARAMS), path) == 403


def test_forwarded_headers_cannot_choose_the_url(client: TestClient) -> None:
    """An attacker signs for his own host with his own Twilio account and claims it in the headers."""
    attacker_url = f"https://attacker.test{VOICE_PATH}"
    headers = {
        **FORM,
        SIGNATURE_HEADER: sign(attacker_url, PARAMS),
        "Host": "attacker.test",
        "X-Forwarded-Host": "attacker.test",
        "X-Forwarded-Proto": "https",
    }
    assert client.post(VOICE_PATH, content=urlencode(PARAMS), headers=headers).status_code == 403


def test_behind_the_proxy_the_public_url_is_what_counts(settings: Settings) -> None:
    """The app sees http://127.0.0.1:8000 with the proxy's headers; the signature is over PUBLIC_BASE_URL."""
    with TestClient(make_app(), base_url="http://127.0.0.1:8000") as local:
        headers = {**FORM, SIGNATURE_HEADER: sign(PUBLIC + VOICE_PATH, PARAMS), "X-Forwarded-Proto": "http"}
        response = local.post(VOICE_PATH, content=urlencode(PARAMS), headers=headers)
    assert response.status_code == 200
    assert response.json() == PARAMS


@pytest.mark.parametrize("signature", [None, ""], ids=["missing", "empty"])
def test_missing_or_empty_signature_is_refused(client: TestClient, signature: str | None) -> None:
    assert post(client, PARAMS, signature) == 403


def test_garbage_signature_is_refused(client: TestClient) -> None:
    assert post(client, PARAMS, "not-a-signature") == 403


def test_signed_by_another_account_is_refused(client: TestClient) -> None:
    params = {**PARAMS, "AccountSid": OTHER_ACCOUNT_SID}
    assert post(client, params, sign(PUBLIC + VOICE_PATH, params)) == 403


def test_no_account_sid_is_accepted(client: TestClient) -> None:
    params = {k: v for k, v in PARAMS.items() if k != "AccountSid"}
    assert post(client, params, sign(PUBLIC + VOICE_PATH, params)) == 200


def _sized_params(size: int) -> dict[str, str]:
    """PARAMS padded with one field so that the urlencoded body is exactly `size` bytes."""
    base = len(urlencode({**PARAMS, "Pad": ""}))
    params = {**PARAMS, "Pad": "x" * (size - base)}
    assert len(urlencode(params)) == size
    return params


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_64_kib_is_refused(client: TestClient, chunked: bool) -> None:
    params = _sized_params(MAX_BODY_BYTES + 1)
    body = urlencode(params).encode()
    headers = {**FORM, SIGNATURE_HEADER: sign(PUBLIC + VOICE_PATH, params)}
    # A generator body goes out chunked, with no Content-Length to refuse it by.
    content = (body[i : i + 4096] for i in range(0, len(body), 4096)) if chunked else body
    assert client.post(VOICE_PATH, content=content, headers=headers).status_code == 413


def test_body_of_exactly_64_kib_is_read(client: TestClient) -> None:
    params = _sized_params(MAX_BODY_BYTES)
    assert post(client, params, sign(PUBLIC + VOICE_PATH, params)) == 200


def test_repeated_key_keeps_the_first_value(client: TestClient) -> None:
    signature = sign(PUBLIC + VOICE_PATH, {"Digits": "1"})
    response = client.post(VOICE_PATH, content="Digits=1&Digits=2", headers={**FORM, SIGNATURE_HEADER: signature})
    assert response.status_code == 200
    assert response.json() == {"Digits": "1"}


def test_json_body_is_refused(client: TestClient) -> None:
    response = client.post(VOICE_PATH, json=PARAMS, headers={SIGNATURE_HEADER: sign(PUBLIC + VOICE_PATH, {})})
    assert response.status_code == 415


def test_body_that_is_not_utf8_is_refused(client: TestClient) -> None:
    response = client.post(VOICE_PATH, content=b"From=%FF", headers={**FORM, SIGNATURE_HEADER: "x"})
    assert response.status_code == 400


@pytest.mark.parametrize("base", [PUBLIC, PUBLIC + "/"])
def test_public_url_ignores_host_and_keeps_the_raw_query(base: str) -> None:
    settings = Settings(environment="test", public_base_url=base)
    scope = {
        "type": "http",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "path": "/twilio/voice",
        "raw_path": b"/twilio/voice",
        "query_string": b"lang=ko&q=%EC%84%9C",
        "headers": [(b"host", b"attacker.test"), (b"x-forwarded-host", b"attacker.test")],
    }
    assert public_url(Request(scope), settings) == f"{PUBLIC}/twilio/voice?lang=ko&q=%EC%84%9C"


def test_websocket_with_valid_signature_is_accepted(client: TestClient) -> None:
    headers = {SIGNATURE_HEADER: sign(f"wss://civic.example.org{MEDIA_PATH}", {})}
    with client.websocket_connect(MEDIA_PATH, headers=headers) as websocket:
        assert websocket.receive_text() == "accepted"


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("not-a-signature", id="garbage"),
        pytest.param(sign(f"wss://civic.example.org/twilio/other{MEDIA_PATH}", {}), id="other-path"),
        pytest.param(sign(f"https://civic.example.org{MEDIA_PATH}", {}), id="https-form"),
        pytest.param(sign(f"ws://testserver{MEDIA_PATH}", {}), id="the-url-the-app-sees"),
        pytest.param(sign(f"wss://civic.example.org{MEDIA_PATH}", {"CallSid": "CA1"}), id="with-params"),
    ],
)
def test_websocket_without_a_valid_signature_is_closed_1008(client: TestClient, signature: str | None) -> None:
    headers = {} if signature is None else {SIGNATURE_HEADER: signature}
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(MEDIA_PATH, headers=headers):
        pass
    assert refused.value.code == 1008
