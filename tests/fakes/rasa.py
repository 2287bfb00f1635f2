"""A fake Rasa REST channel on a real local port: records every turn, answers from a script."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Answer = Callable[[dict[str, Any]], list[dict[str, Any]]]


class FakeRasa:
    """Speaks `POST /webhooks/rest/webhook` like Rasa 3.6: JSON {sender, message, metadata} in, list out."""

    def __init__(self) -> None:
        self.turns: list[dict[str, Any]] = []
        self.answer: Answer = lambda turn: [{"recipient_id": turn["sender"], "text": f"echo: {turn['message']}"}]
        self.status_code = 200
        self.app = Starlette(routes=[Route("/webhooks/rest/webhook", self.webhook, methods=["POST"])])

    async def webhook(self, request: Request) -> JSONResponse:
        turn = await request.json()
        self.turns.append(turn)
        if self.status_code != 200:
            return JSONResponse({"error": "failing on purpose"}, status_code=self.status_code)
        return JSONResponse(self.answer(turn))


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Runs an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
