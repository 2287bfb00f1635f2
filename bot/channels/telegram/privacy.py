"""Shared contacts' phone numbers out of what a Telegram update leaves behind: the inbox row and DEBUG logs."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Any

from cryptography.exceptions import InvalidTag

from civic.phones import decrypt_phone, encrypt_phone

PHONE_FIELD = "phone_number"
SEALED_FIELD = "phone_number_ciphertext"
# `phone_number='…'` in an object's repr, `"phone_number": "…"` in JSON.
_PHONE_IN_TEXT = re.compile(r"""(phone_number['"]?\s*[:=]\s*['"])([^'"]*)""")
# python-telegram-bot's loggers that print whole updates at DEBUG ("Processing update …", getUpdates' result).
PTB_LOGGERS = ("telegram.ext.Application", "telegram.Bot", "telegram.ext.ExtBot")


def seal(value: Any) -> Any:
    """A copy of an update's JSON with every `phone_number` encrypted (AES-GCM, as citizens' numbers at rest)."""
    if isinstance(value, list):
        return [seal(item) for item in value]
    if not isinstance(value, dict):
        return value
    sealed = {key: seal(item) for key, item in value.items() if key != PHONE_FIELD}
    if isinstance(value.get(PHONE_FIELD), str):
        sealed[SEALED_FIELD] = base64.b64encode(encrypt_phone(value[PHONE_FIELD])).decode("ascii")
    return sealed


def unseal(value: Any) -> Any:
    """The update as Telegram sent it, from a sealed copy; an unreadable number becomes "" (refused as invalid)."""
    if isinstance(value, list):
        return [unseal(item) for item in value]
    if not isinstance(value, dict):
        return value
    plain = {key: unseal(item) for key, item in value.items() if key != SEALED_FIELD}
    if SEALED_FIELD in value:
        try:
            plain[PHONE_FIELD] = decrypt_phone(base64.b64decode(str(value[SEALED_FIELD]), validate=True))
        except (InvalidTag, binascii.Error, ValueError):  # another PHONE_ENCRYPTION_KEY, a damaged row
            plain[PHONE_FIELD] = ""
    return plain


class RedactPhoneNumbers(logging.Filter):
    """Blanks `phone_number` values in a record's text; the record is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if PHONE_FIELD in message:
            record.msg, record.args = _PHONE_IN_TEXT.sub(r"\1[redacted]", message), None
        return True


def redact_telegram_logs() -> None:
    """Installs the filter on the loggers that print updates; a second call adds nothing."""
    for name in PTB_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactPhoneNumbers) for existing in logger.filters):
            logger.addFilter(RedactPhoneNumbers())
