"""The one place that reads the environment: every setting of the project."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Development placeholders: refused when ENVIRONMENT is not "development"/"test".
PLACEHOLDER_SECRETS = {
    "SECRET_KEY": "dev-secret-key-change-me",
    "PHONE_ENCRYPTION_KEY": "ZGV2LXBob25lLWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM=",
    "PHONE_INDEX_KEY": "dev-phone-index-key-change-me",
    # Base64 of a 32-byte Ed25519 seed; `python -m civic.checkpoints` prints a new one.
    "LEDGER_SIGNING_KEY": "ZGV2LWxlZGdlci1zaWduaW5nLWtleS0zMi1ieXRlcyE=",
    "TWILIO_AUTH_TOKEN": "dev-twilio-auth-token",
    # The internal doors: Rasa's HTTP API, the action server, and the gateway's signature on a citizen's identity.
    "RASA_AUTH_TOKEN": "dev-rasa-auth-token-change-me",
    "ACTION_SERVER_TOKEN": "dev-action-server-token-change-me",
    "METADATA_SIGNING_KEY": "dev-metadata-signing-key-change-me",
}
# Secrets that must decode (base64) to exactly 32 bytes: an AES-256 key and an Ed25519 seed.
KEY_SECRETS = ("PHONE_ENCRYPTION_KEY", "LEDGER_SIGNING_KEY")
# Shared secrets shorter than this are refused outside development (guessable, or typed by hand).
MIN_SECRET_CHARS = 32
# The metrics exporter may listen here without METRICS_TOKEN; anywhere else it needs one.
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# Refused outside development only when Telegram is on (TELEGRAM_BOT_TOKEN set).
PLACEHOLDER_TELEGRAM_SECRET = "dev-telegram-webhook-secret"
# Telegram allows 1-256 characters of A-Z, a-z, 0-9, _ and - in a webhook secret token.
TELEGRAM_SECRET_PATTERN = r"^[A-Za-z0-9_-]{1,256}$"


class Settings(BaseSettings):
    """Settings from the environment (or `.env`); see the README for each one."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Production unless told otherwise: a deployment that forgets a variable must not run on placeholders.
    environment: Literal["development", "test", "production"] = "production"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'civic.db'}"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_seconds: float = 10.0
    # Rasa runs with --auth-token: its HTTP API (trackers, pause/resume, parse) answers no one without it.
    rasa_auth_token: str = PLACEHOLDER_SECRETS["RASA_AUTH_TOKEN"]
    # The action server binds here (loopback unless Rasa runs on another host) and requires this token.
    action_host: str = "127.0.0.1"
    action_server_token: str = PLACEHOLDER_SECRETS["ACTION_SERVER_TOKEN"]
    # Where Rasa calls the actions (endpoints.yml); the web app's /ready and the metrics look at its /health.
    action_server_url: str = "http://127.0.0.1:5055/webhook"
    # The gateway signs each turn's server-side metadata (channel, external id, time); actions refuse the rest.
    metadata_signing_key: str = PLACEHOLDER_SECRETS["METADATA_SIGNING_KEY"]
    metadata_max_age_seconds: Annotated[int, Field(ge=5)] = 300
    redis_url: str = ""  # scale mode: Redis for Rasa's lock store and live console events between web workers
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    public_base_url: str = "http://localhost:8000"
    media_dir: Path = PROJECT_ROOT / "var" / "media"
    max_message_chars: int = 2000
    max_upload_bytes: int = 10 * 1024 * 1024
    # Personal data kept for this long (PIPA): transcripts after a conversation's last message, photos and call
    # audio after they arrived; what belongs to an open case stays until it is closed (civic.retention).
    retention_transcript_days: Annotated[int, Field(ge=1)] = 365
    retention_media_days: Annotated[int, Field(ge=1)] = 365
    # A request body whose next piece takes longer than this is answered 408 (slow-loris clients).
    request_body_timeout_seconds: float = 10.0
    secret_key: str = PLACEHOLDER_SECRETS["SECRET_KEY"]
    # Base64 of 32 random bytes (AES-256-GCM) for phone numbers at rest.
    phone_encryption_key: str = PLACEHOLDER_SECRETS["PHONE_ENCRYPTION_KEY"]
    # HMAC key of the blind index used to look phone numbers up without decrypting.
    phone_index_key: str = PLACEHOLDER_SECRETS["PHONE_INDEX_KEY"]
    outbox_poll_seconds: float = 1.0
    outbox_max_attempts: int = 8
    timezone: str = "Asia/Seoul"
    # Open311 GeoReport v2 (civic/open311.py): our jurisdiction_id, and a new API key's writes per minute.
    open311_jurisdiction_id: str = "seoul.go.kr"
    open311_key_rate_per_minute: Annotated[int, Field(ge=1)] = 60
    # Telegram is off while the token is unset; the rest of the stack runs without it.
    telegram_bot_token: str | None = None
    telegram_mode: Literal["webhook", "polling"] = "webhook"
    telegram_webhook_secret: Annotated[str, StringConstraints(pattern=TELEGRAM_SECRET_PATTERN)] = (
        PLACEHOLDER_TELEGRAM_SECRET
    )
    # Another Bot API server (self-hosted telegram-bot-api, or a local test server).
    telegram_base_url: str = "https://api.telegram.org"
    telegram_max_photo_bytes: int = 10 * 1024 * 1024
    # Signs the votes' Merkle-log checkpoints; kept outside the database on purpose.
    ledger_signing_key: str = PLACEHOLDER_SECRETS["LEDGER_SIGNING_KEY"]
    # Twilio (the 120 line and SMS codes); the API base URL is a setting so tests reach a local fake.
    twilio_account_sid: str = "ACdevelopment00000000000000000000"
    twilio_auth_token: str = PLACEHOLDER_SECRETS["TWILIO_AUTH_TOKEN"]
    twilio_phone_number: str = "+15005550006"
    twilio_api_base_url: str = "https://api.twilio.com"
    # The 120 line (telephony/): which recogniser takes which turn, the voice, and the operators' queue.
    asr_grammar_engine: Literal["whisper", "vosk"] = "whisper"
    asr_free_form_engine: Literal["whisper", "vosk"] = "whisper"
    asr_cache_dir: Path = PROJECT_ROOT / "var" / "cache" / "asr"
    asr_threads: int = 2
    asr_workers: int = 2  # Whisper decodes at a time (each with ASR_THREADS threads): README, the 120 line
    # Load the recognisers when the web app starts (otherwise on the first call).
    asr_preload: bool = True
    phone_voice: str = "Polly.Seoyeon"
    phone_operator_queue: str = "120-operators"
    phone_max_call_seconds: int = 900
    # Silence that ends a caller's turn: short after a closed question, longer while describing a problem.
    phone_end_of_answer_ms: int = 500
    phone_end_of_speech_ms: int = 800
    phone_no_answer_seconds: float = 8.0
    phone_max_utterance_seconds: float = 30.0
    # How long the signed, single-use token in each turn's <Stream> URL stays valid (it is spent when the stream opens).
    phone_stream_token_seconds: int = 300
    # Operator console sessions: ended after this long without a request, and this long after login regardless.
    console_idle_minutes: int = 30
    console_absolute_hours: int = 12
    console_cookie_name: str = "civic_console"
    # SMS codes go only to mobile numbers of these regions (ISO codes, comma-separated): no SMS pumping abroad.
    sms_verification_regions: str = "KR"
    # Per client address (an IPv6 client's /64): loose, since a school or an office shares one address.
    sms_codes_per_address_per_hour: Annotated[int, Field(ge=1)] = 20
    chat_messages_per_address_per_minute: Annotated[int, Field(ge=1)] = 120
    # Per conversation: well above a person typing or tapping buttons (a report takes about ten turns).
    chat_messages_per_conversation_per_minute: Annotated[int, Field(ge=1)] = 30
    chat_photos_per_address_per_hour: Annotated[int, Field(ge=1)] = 100
    # Operations: the metrics exporter (`python -m webapp.metrics`) listens here; beyond loopback only with a token.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    metrics_token: str = ""
    # After SIGTERM a web worker answers /ready with 503 this long before it stops taking requests, so the load
    # balancer sends no new ones to it (set above the balancer's probe interval).
    shutdown_drain_seconds: Annotated[float, Field(ge=0)] = 0.0

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> Settings:
        if self.metrics_host not in LOOPBACK_HOSTS and not self.metrics_token:
            raise ValueError(
                f"METRICS_HOST={self.metrics_host} is not loopback: set METRICS_TOKEN so metrics stay private"
            )
        if self.environment in ("development", "test"):
            return self
        if self.metrics_token:
            problem = _weakness("METRICS_TOKEN", self.metrics_token)
            if problem:
                raise ValueError(f"METRICS_TOKEN is too weak for ENVIRONMENT={self.environment}: {problem}")
        for name, placeholder in PLACEHOLDER_SECRETS.items():
            value = getattr(self, name.lower())
            if value == placeholder:
                raise ValueError(f"{name} must be set to a real secret when ENVIRONMENT={self.environment}")
            problem = _weakness(name, value)
            if problem:
                raise ValueError(f"{name} is too weak for ENVIRONMENT={self.environment}: {problem}")
        if self.telegram_bot_token and self.telegram_webhook_secret == PLACEHOLDER_TELEGRAM_SECRET:
            raise ValueError(f"TELEGRAM_WEBHOOK_SECRET must be a real secret when ENVIRONMENT={self.environment}")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _weakness(name: str, value: str) -> str | None:
    """Why a secret is unfit for production (None when it is fine): wrong key size, too short, one repeated char."""
    if name in KEY_SECRETS:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return "it must be base64"
        return None if len(decoded) == 32 else f"it must decode to 32 bytes, not {len(decoded)}"
    if name == "TWILIO_AUTH_TOKEN":
        return None if len(value) >= 32 else "Twilio auth tokens are 32 characters"
    if len(value) < MIN_SECRET_CHARS:
        return f"it must be at least {MIN_SECRET_CHARS} characters"
    if len(set(value)) < 8:
        return "it repeats too few characters to be random"
    return None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
