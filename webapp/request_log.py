"""One JSON line and two metrics per request: route template, status, latency; never the path's values."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.json_logs import log_event
from bot.metrics import HTTP_REQUESTS, HTTP_SECONDS

# A balancer's probes are logged but not counted: a designed 503 of /ready (starting, draining, Rasa down) is not a
# server error, and probes every second would dilute the citizens' error rate.
PROBES = {"/health", "/ready"}


def route_template(scope: Scope) -> str:
    """The matched route's pattern (`/console/cases/{number}`): a raw path or query may carry a case or a token."""
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


class RequestLog:
    """Pure ASGI, so a streamed response is timed to its end and nothing is buffered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            if route not in PROBES:
                HTTP_REQUESTS.labels(f"{status // 100}xx").inc()
                HTTP_SECONDS.observe(seconds)
            log_event(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                latency_ms=round(seconds * 1000, 1),
            )
