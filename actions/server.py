"""The action server: rasa_sdk's app behind the shared token, on loopback, refusing unsigned turns.

`python -m rasa_sdk` binds every interface and answers anyone; this wraps the same app so that only Rasa,
holding ACTION_SERVER_TOKEN, can run an action, and an action runs only for a turn the gateway signed.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import time
from typing import Any

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json

from actions.context import UnverifiedTurn, claims_of
from bot.json_logs import configure_json_logging, conversation_ref, log_event
from bot.metrics import ACTION_REQUESTS, ACTION_SECONDS
from civic.settings import get_settings

logger = logging.getLogger(__name__)
# The one path an unauthenticated caller may reach: it says "ok" and nothing else (readiness probes).
OPEN_PATHS = {"/health"}
UNVERIFIED_RESPONSE = "utter_identity_unverified"


def presented_token(request: Request) -> str:
    """The token Rasa sends: `Authorization: Bearer …` (endpoints.yml) or Rasa's `?token=…` parameter."""
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return str(request.args.get("token") or "")


def unverified_turn(action_call: Any) -> str | None:
    """Why the action call's latest user turn is not one the gateway signed (None when it is)."""
    tracker = action_call.get("tracker") if isinstance(action_call, dict) else None
    if not isinstance(tracker, dict):
        return "no tracker"
    latest = tracker.get("latest_message") or {}
    metadata = latest.get("metadata") if isinstance(latest, dict) else None
    try:
        claims_of(str(tracker.get("sender_id") or ""), metadata if isinstance(metadata, dict) else {})
    except UnverifiedTurn as refusal:
        return refusal.reason
    return None


def guard(app: Sanic, token: str) -> Sanic:
    """Adds the token check and the signed-turn check in front of every route but /health."""

    @app.on_request
    async def check(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS:
            return None
        if not hmac.compare_digest(presented_token(request).encode(), token.encode()):
            return json({"error": "unauthorized"}, status=401)
        if request.path == "/webhook" and request.method == "POST":
            try:
                action_call = request.json
            except Exception:  # Sanic raises its own error type for a body that is not JSON
                return json({"error": "invalid body"}, status=400)
            request.ctx.action = str(action_call.get("next_action") or "unknown")
            request.ctx.sender = str((action_call.get("tracker") or {}).get("sender_id") or "")
            reason = unverified_turn(action_call)
            if reason is not None:
                logger.warning("refused %s: the turn's identity is %s", action_call.get("next_action"), reason)
                return json({"events": [], "responses": [{"response": UNVERIFIED_RESPONSE}]})
        return None

    return app


def measure(app: Sanic) -> Sanic:
    """Counts and times every action call, and logs it as one line (action, hashed conversation, status, latency)."""

    @app.on_request
    async def start_clock(request: Request) -> None:
        request.ctx.started = time.perf_counter()

    @app.on_response
    async def stop_clock(request: Request, response: HTTPResponse) -> None:
        action = getattr(request.ctx, "action", None)
        if action is None:
            return  # /health, or a call refused before its body was read
        seconds = time.perf_counter() - request.ctx.started
        ACTION_REQUESTS.labels(action, str(response.status)).inc()
        ACTION_SECONDS.labels(action).observe(seconds)
        log_event(
            "action",
            action=action,
            conversation=conversation_ref(request.ctx.sender),
            status=response.status,
            latency_ms=round(seconds * 1000, 1),
        )

    return app


def create_action_app() -> Sanic:
    """rasa_sdk's app for the `actions` package, no CORS (only Rasa calls it), behind the guard."""
    executor = ActionExecutor()
    executor.register_package("actions")
    return guard(measure(create_app(executor, cors_origins=None)), get_settings().action_server_token)


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=settings.action_host)
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args(argv)
    configure_json_logging()
    app = create_action_app()
    logger.info("action server on http://%s:%s (token required)", args.host, args.port)
    app.run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
