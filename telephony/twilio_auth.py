"""Twilio webhooks and Media Streams authenticated by X-Twilio-Signature over the public URL Twilio called."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request, WebSocket
from twilio.request_validator import RequestValidator

from civic.settings import Settings, get_settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Twilio's form webhooks are a few kilobytes; the limit keeps an unauthenticated client from making us
# buffer and hash megabytes before the signature can be checked.
MAX_BODY_BYTES = 64 * 1024
# Twilio opens Media Streams on the wss:// form of the address and signs that form.
WEBSOCKET_SCHEMES = {"https": "wss", "http": "ws"}


def public_url(connection: Request | WebSocket, settings: Settings) -> str:
    """PUBLIC_BASE_URL + the request's path + `?` and its raw query string, if any: the URL Twilio signed.

    Behind the TLS-terminating proxy the app sees http://127.0.0.1:8000, so its own URL never matches what
    Twilio signed. Host and X-Forwarded-Proto/-Host are not used to rebuild it either: any client sets them,
    and trusting them would let an attacker choose the URL the signature is checked against (one he holds a
    valid signature for, from a Twilio account of his own pointed at his own host). Only the configured
    PUBLIC_BASE_URL names where Twilio really called.
    """
    # raw_path is the path exactly as it arrived (scope["path"] is percent-decoded, Twilio signed it encoded);
    # the query is taken as bytes too: URL(scope) decodes it as strict UTF-8 and would fail on junk with a 500.
    raw_path = connection.scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else connection.url.path
    query = connection.scope.get("query_string", b"").decode("latin-1")
    return settings.public_base_url.rstrip("/") + path + (f"?{query}" if query else "")


def websocket_public_url(websocket: WebSocket, settings: Settings) -> str:
    """The public URL of a WebSocket upgrade with its scheme as Twilio dialled it: https → wss, http → ws."""
    scheme, separator, rest = public_url(websocket, settings).partition("://")
    return WEBSOCKET_SCHEMES.get(scheme.lower(), scheme) + separator + rest


async def _read_body(request: Request) -> bytes:
    """The body, or 413 as soon as it is known to exceed MAX_BODY_BYTES (chunked bodies have no length)."""
    try:
        declared = int(request.headers.get("content-length", ""))
    except ValueError:
        declared = None
    if declared is not None and declared > MAX_BODY_BYTES:
        raise HTTPException(status_code=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(status_code=413)
    return bytes(body)


def _form_params(body: bytes) -> dict[str, str]:
    """The form's fields as Twilio signs them: percent- and `+`-decoded, empty values kept.

    A repeated key keeps its first value and the rest are dropped before the signature is checked, so the
    handler sees exactly the fields the signature covers. Twilio sends none of its webhook fields twice; if it
    ever did it would sign every value and such a request would be refused (fail closed), never misread.
    """
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise HTTPException(status_code=400) from None
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    return params


async def require_twilio_signature(request: Request) -> dict[str, str]:
    """FastAPI dependency of a form-POST Twilio webhook: the verified form fields, or 403 (413/415/400).

    Nothing of the request is used before this returns. Settings come from get_settings() at call time.
    """
    settings = get_settings()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise HTTPException(status_code=403)  # before reading a byte of the body
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        # Twilio's JSON webhooks sign a bodySHA256 query parameter instead; none of ours uses them.
        raise HTTPException(status_code=415)
    params = _form_params(await _read_body(request))
    url = public_url(request, settings)
    # Always HMAC-SHA1 with the Auth Token: an X-Twilio-Webhooks-Signature-Settings header (SharedKey
    # signatures) is the sender's claim and must not pick the algorithm; we hold no SharedKey anyway.
    if not RequestValidator(settings.twilio_auth_token).validate(url, params, signature):
        # The URL is no secret, and a wrong PUBLIC_BASE_URL is the usual reason Twilio's own calls fail here.
        log.warning("twilio webhook refused: X-Twilio-Signature does not match %s", url)
        raise HTTPException(status_code=403)
    account_sid = params.get("AccountSid")
    if account_sid is not None and account_sid != settings.twilio_account_sid:
        # Another of our accounts (or a subaccount) signing validly must still not drive this line.
        log.warning("twilio webhook refused: signed, but for another account")
        raise HTTPException(status_code=403)
    return params


def websocket_signature_ok(websocket: WebSocket, settings: Settings) -> bool:
    """Whether the WebSocket upgrade carries Twilio's signature for this stream; check before accept().

    Twilio signs a Media Stream's upgrade request like a webhook with no parameters: HMAC-SHA1 with the Auth
    Token over the wss:// URL it connected to (ConversationRelay onboarding: "the same verification mechanism
    used for standard Twilio webhooks"; the https:// form does not match, twilio-labs/twilio-aspnet#162, and
    Twilio's own twilio-agent-connect-python rewrites https to wss). <Stream> URLs take no query string, so
    one is kept in the URL as sent rather than guessed into parameters. Only the wss:// form is accepted: an
    http(s):// signature is one made for an ordinary webhook, not for opening this stream.
    The AccountSid cannot be checked here; it arrives in the stream's `start` message.
    """
    signature = websocket.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return False
    url = websocket_public_url(websocket, settings)
    if RequestValidator(settings.twilio_auth_token).validate(url, {}, signature):
        return True
    log.warning("twilio media stream refused: X-Twilio-Signature does not match %s", url)
    return False
