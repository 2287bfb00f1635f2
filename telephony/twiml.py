"""The TwiML documents of the 120 line, built with twilio's own VoiceResponse."""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from civic.settings import Settings
from telephony import stream_tokens

STREAM_PATH = "/telephony/stream"
RESUME_PATH = "/telephony/resume"
OPERATOR_DONE_PATH = "/telephony/operator-done"
# Voices for the few sentences said to callers in another language.
FOREIGN_VOICES = {"en": ("en-US", "Polly.Joanna"), "ja": ("ja-JP", "Polly.Mizuki"), "zh": ("cmn-CN", "Polly.Zhiyu")}


def stream_url(settings: Settings, token: str) -> str:
    """wss:// (or ws:// in development) form of PUBLIC_BASE_URL + the stream path + the turn's token: what Twilio signs.

    The token (telephony.stream_tokens) makes every stream's URL, and so Twilio's signature of its upgrade, unique.
    """
    base = settings.public_base_url.rstrip("/")
    scheme, _, rest = base.partition("://")
    return {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme) + "://" + rest + f"{STREAM_PATH}/{token}"


def _say(response: VoiceResponse, text: str, settings: Settings) -> None:
    if text:
        response.say(text, language="ko-KR", voice=settings.phone_voice)


def listen(text: str, *, call_sid: str, turn: int, settings: Settings, foreign: tuple[str, str] | None = None) -> str:
    """Say `text`, then stream the caller's answer to us (a fresh single-use URL); if it drops, Twilio asks /resume."""
    response = VoiceResponse()
    if foreign is not None:
        language, sentence = foreign
        locale, voice = FOREIGN_VOICES[language]
        response.say(sentence, language=locale, voice=voice)
    _say(response, text, settings)
    connect = Connect()
    stream = connect.stream(url=stream_url(settings, stream_tokens.issue(call_sid, turn, settings)))
    stream.parameter(name="turn", value=str(turn))
    response.append(connect)
    # Reached only when the stream ended without a new TwiML from us (our worker died, the socket broke).
    response.redirect(settings.public_base_url.rstrip("/") + RESUME_PATH, method="POST")
    return str(response)


def hand_off(text: str, settings: Settings) -> str:
    """Say `text`, then wait in the operators' queue, where the 120 console picks the caller up."""
    response = VoiceResponse()
    _say(response, text, settings)
    response.enqueue(settings.phone_operator_queue)
    return str(response)


def bridge(text: str, desk_phone: str, settings: Settings) -> str:
    """Say `text`, then dial the operator's desk line; when that leg ends Twilio asks /operator-done."""
    response = VoiceResponse()
    _say(response, text, settings)
    dial = Dial(
        caller_id=settings.twilio_phone_number,
        action=settings.public_base_url.rstrip("/") + OPERATOR_DONE_PATH,
        method="POST",
    )
    dial.number(desk_phone)
    response.append(dial)
    return str(response)


def goodbye(text: str, settings: Settings) -> str:
    response = VoiceResponse()
    _say(response, text, settings)
    response.hangup()
    return str(response)
