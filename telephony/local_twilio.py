"""Twilio's REST API (2010-04-01 Messages and Calls) on a local port: for the call simulator, benchmarks and tests.

Twilio itself is out of reach here; this speaks its wire protocol (form-encoded requests with HTTP Basic auth,
JSON resources and error bodies), so the real twilio library is what talks to it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

JSON = dict[str, Any]
API_VERSION = "2010-04-01"

# GSM 03.38: the basic alphabet costs one septet a character, the extension table two (escape + char).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = set("^{}\\[~]|€")
_FAILURE_MESSAGES = {
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    502: (20500, "An internal server error has occurred"),
    503: (20503, "Service Unavailable"),
}


@contextmanager
def serve_in_thread(app: Any, port: int = 0) -> Iterator[str]:
    """Runs an ASGI app with uvicorn on a loopback port (a free one by default) in a thread; yields its URL."""
    if port == 0:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"local Twilio API did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@contextmanager
def local_twilio(account_sid: str, auth_token: str, port: int = 0) -> Iterator[FakeTwilioAPI]:
    """A FakeTwilioAPI answering on a loopback port (a free one by default) for the block; `.url` says where."""
    fake = FakeTwilioAPI(account_sid, auth_token)
    with serve_in_thread(fake.app, port) as url:
        fake.url = url
        yield fake


def num_segments(body: str) -> int:
    """How many SMS segments Twilio bills for `body`: GSM-7 160/153 septets, else UCS-2 70/67 code units."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in body):
        units, single, part = sum(2 if ch in _GSM_EXTENSION else 1 for ch in body), 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // part)


def _rfc2822(moment: datetime) -> str:
    """Twilio's date format: "Fri, 13 Aug 2010 01:16:24 +0000"."""
    return format_datetime(moment.replace(microsecond=0))


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _error(status: int, code: int, message: str) -> JSONResponse:
    """Twilio's legacy error body, the one twilio-python turns into TwilioRestException."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass(frozen=True)
class _Rejection:
    code: int
    status: int
    message: str


class FakeTwilioAPI:
    """Speaks `POST /2010-04-01/Accounts/{sid}/Messages.json` and `.../Calls/{CallSid}.json` like api.twilio.com.

    Requests are form-encoded with HTTP Basic auth (account SID : auth token); answers are Twilio's JSON resources
    and error bodies. State is read from the test thread while the server's thread writes it, hence the lock.
    """

    def __init__(
        self,
        account_sid: str = "ACdevelopment00000000000000000000",
        auth_token: str = "dev-twilio-auth-token",
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.url = ""  # set while served (local_twilio)
        self.messages: list[JSON] = []
        self.call_updates: list[JSON] = []
        # Called in the server's thread with ("call_update" | "message", record): the simulator waits on them.
        self.listeners: list[Callable[[str, JSON], None]] = []
        self._lock = threading.Lock()
        self._rejected: dict[str, _Rejection] = {}
        self._failures: list[int] = []
        self._calls: dict[str, JSON] = {}
        prefix = f"/{API_VERSION}/Accounts/{{account_sid}}"
        self.app = Starlette(
            routes=[
                Route(f"{prefix}/Messages.json", self.create_message, methods=["POST"]),
                Route(f"{prefix}/Calls/{{call_sid}}.json", self.update_call, methods=["POST"]),
            ]
        )

    # ---- test-side API (called from the test thread) -------------------------------------------------------------

    def messages_to(self, number: str) -> list[JSON]:
        """The Message resources created for `number` (E.164), in order."""
        with self._lock:
            return [message for message in self.messages if message["to"] == number]

    def reject_number(
        self,
        number: str,
        code: int = 21211,
        status: int = 400,
        message: str = "The 'To' number is not a valid phone number.",
    ) -> None:
        """Refuses every message to `number` with this Twilio error (21610 unsubscribed, 21614 not mobile...)."""
        with self._lock:
            self._rejected[number] = _Rejection(code, status, message)

    def fail_next(self, status: int = 500) -> None:
        """The next request (of any kind) fails with `status` (429, 500, 502, 503) and Twilio's error body."""
        if status not in _FAILURE_MESSAGES:
            raise ValueError(f"fail_next supports {sorted(_FAILURE_MESSAGES)}")
        with self._lock:
            self._failures.append(status)

    def add_call(self, call_sid: str, *, from_number: str, to_number: str) -> None:
        """Declares an inbound call in progress, so that updates to it answer with its numbers."""
        with self._lock:
            self._calls[call_sid] = {"from": from_number, "to": to_number, "start": datetime.now(UTC)}

    def reset(self) -> None:
        """Forgets messages, call updates, calls, rejected numbers and pending failures."""
        with self._lock:
            self.messages.clear()
            self.call_updates.clear()
            self._rejected.clear()
            self._failures.clear()
            self._calls.clear()

    # ---- the REST API (runs in the server's thread) --------------------------------------------------------------

    def _refusal(self, request: Request) -> JSONResponse | None:
        """A 401/404/injected failure for this request, or None to go on."""
        if not self._authenticated(request.headers.get("authorization", "")):
            return _error(401, 20003, "Authenticate")
        if request.path_params["account_sid"] != self.account_sid:
            return _error(404, 20404, f"The requested resource {request.url.path} was not found")
        with self._lock:
            status = self._failures.pop(0) if self._failures else None
        if status is not None:
            code, message = _FAILURE_MESSAGES[status]
            return _error(status, code, message)
        return None

    def _authenticated(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(f"{username}:{password}", f"{self.account_sid}:{self.auth_token}")

    async def create_message(self, request: Request) -> JSONResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        form = await request.form()
        to, from_, body = (str(form.get(name) or "") for name in ("To", "From", "Body"))
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not from_:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        with self._lock:
            rejection = self._rejected.get(to)
        if rejection is not None:
            return _error(rejection.status, rejection.code, rejection.message)
        sid = _sid("SM")
        now = _rfc2822(datetime.now(UTC))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        message: JSON = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(num_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }
        with self._lock:
            self.messages.append(message)
        self._tell("message", message)
        return JSONResponse(message, status_code=201)

    async def update_call(self, request: Request) -> JSONResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        form = await request.form()
        call_sid = request.path_params["call_sid"]
        fields = {name: str(value) for name, value in form.items()}
        now = datetime.now(UTC)
        with self._lock:
            call = self._calls.get(call_sid, {"from": "", "to": "", "start": now})
        ended = fields.get("Status") in ("completed", "canceled")
        call_uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{call_sid}"
        resource: JSON = {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(call["start"]),
            "date_updated": _rfc2822(now),
            "direction": "inbound",
            "duration": str(int((now - call["start"]).total_seconds())) if ended else None,
            "end_time": _rfc2822(now) if ended else None,
            "forwarded_from": None,
            "from": call["from"],
            "from_formatted": call["from"],
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": call_sid,
            "start_time": _rfc2822(call["start"]),
            "status": fields["Status"] if ended else "in-progress",
            "subresource_uris": {
                name: f"{call_uri}/{name.title().replace('_', '')}.json"
                for name in (
                    "notifications",
                    "recordings",
                    "payments",
                    "events",
                    "siprec",
                    "streams",
                    "user_defined_message_subscriptions",
                    "user_defined_messages",
                )
            },
            "to": call["to"],
            "to_formatted": call["to"],
            "trunk_sid": None,
            "uri": f"{call_uri}.json",
        }
        update = {"call_sid": call_sid, "params": fields, "resource": resource}
        with self._lock:
            self.call_updates.append(update)
        self._tell("call_update", update)
        return JSONResponse(resource)

    def _tell(self, kind: str, record: JSON) -> None:
        for listener in list(self.listeners):
            listener(kind, record)


__all__ = ["FakeTwilioAPI", "local_twilio", "num_segments", "serve_in_thread"]
