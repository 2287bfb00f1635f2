"""Structured logs: one JSON object a line; conversations appear only as a keyed hash, never words or numbers."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from civic.settings import get_settings

EVENTS = logging.getLogger("civic.events")
# Fields a log line may carry besides its message; anything else passed in `extra` is left out.
FIELDS_KEY = "fields"


def conversation_ref(sender: str) -> str:
    """A stable pseudonym of a conversation (`channel:external id`) for logs: HMAC under SECRET_KEY.

    Keyed, so a phone number or Telegram chat id cannot be found again by hashing candidates.
    """
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"log-conversation:{sender}".encode(), hashlib.sha256).hexdigest()[:16]


def log_event(event: str, **fields: Any) -> None:
    """One structured line (`event` plus fields): callers pass ids hashed and never a citizen's text."""
    EVENTS.info(event, extra={FIELDS_KEY: fields})


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", …fields}` on one line; an exception's trace as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS_KEY, None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Every log record of the process as JSON on stderr (the action server; uvicorn uses deploy/logging.json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
