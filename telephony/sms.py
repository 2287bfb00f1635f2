"""SMS to citizens through Twilio's REST API, delivered by the civic outbox as channel `sms`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging

from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from civic.models import OutboxMessage
from civic.outbox import Undeliverable, register_sender
from civic.phones import decrypt_phone
from civic.settings import Settings
from civic.sms import CHANNEL, message_text

log = logging.getLogger(__name__)

# Below the outbox's SEND_TIMEOUT_SECONDS, so the thread doing the request never outlives the attempt.
HTTP_TIMEOUT_SECONDS = 30.0
# Twilio answers these statuses when it refuses this very message: sending it again fails again.
PERMANENT_STATUSES = frozenset({400, 404})
# ...except when the refusal is about our own Twilio setup (invalid or not SMS-capable From number,
# destination country not enabled): once an operator fixes it, the queued messages must still go.
OPERATOR_ERRORS = frozenset({21212, 21408, 21606})


class SmsFailed(Exception):
    """A retryable Twilio refusal, told by HTTP status and Twilio code only (Twilio's text may quote the number)."""


def make_twilio_client(settings: Settings) -> Client:
    """A Twilio client that sends the `api` domain's requests (Messages, Calls) to `twilio_api_base_url`."""
    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT_SECONDS),
    )
    # Domain.base_url is what Domain.absolute_url joins every request path of this domain to, so the
    # library still builds the requests, authenticates them and raises TwilioRestException itself.
    client.api.base_url = settings.twilio_api_base_url
    # The base URL already says where (a regional host included); TWILIO_EDGE/TWILIO_REGION read from
    # os.environ would rewrite its host name behind the settings' back.
    client.edge = client.region = None
    return client


def _failure(message_id: int, error: TwilioRestException | TwilioServiceException) -> Exception:
    """Undeliverable when retrying cannot help, else SmsFailed; neither carries Twilio's text."""
    status, code = error.status, error.code
    description = f"twilio HTTP {status} code {code}"
    # Twilio's own codes have five digits; without one (a proxy's error page, where the library puts the
    # HTTP status in `code`) the refusal is not Twilio's verdict on this message.
    has_twilio_code = isinstance(code, int) and code >= 10000
    if status in PERMANENT_STATUSES and has_twilio_code and code not in OPERATOR_ERRORS:
        return Undeliverable(description)  # the outbox logs it with the row's id
    # The outbox logs only the exception's type for retries; the code is what an operator needs.
    log.warning("sms for outbox %s not accepted by Twilio, will retry: HTTP %s code %s", message_id, status, code)
    return SmsFailed(description)


def _recipient(message: OutboxMessage) -> str:
    try:
        blob = base64.b64decode((message.data or {})["to_ciphertext"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise Undeliverable("no readable to_ciphertext") from None
    # InvalidTag from a wrong PHONE_ENCRYPTION_KEY propagates: a configuration error, so retried.
    return decrypt_phone(blob)


class SmsDelivery:
    """The outbox sender of channel `sms`: one Twilio Message per outbox row."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = make_twilio_client(settings)

    def register(self) -> None:
        register_sender(CHANNEL, self.send)

    def close(self) -> None:
        """Closes the pooled HTTP connections to Twilio."""
        session = self.client.http_client.session
        if session is not None:
            session.close()

    async def send(self, message: OutboxMessage) -> None:
        """Delivers one outbox row; Undeliverable when Twilio refuses the recipient for good."""
        to = _recipient(message)
        body = message_text(message)  # a verification code is sealed in the row; InvalidTag is retried
        # The library's aiohttp client needs a running loop at construction and ignores its timeout;
        # the requests-based one in a thread has neither problem and an SMS is one request.
        try:
            sent = await asyncio.to_thread(
                self.client.messages.create, to=to, from_=self.settings.twilio_phone_number, body=body
            )
        except (TwilioRestException, TwilioServiceException) as error:
            # `from None`: the chained error's text can quote the number, and tracebacks end up in logs.
            raise _failure(message.id, error) from None
        log.info("sms for outbox %s accepted by Twilio as %s", message.id, sent.sid)
