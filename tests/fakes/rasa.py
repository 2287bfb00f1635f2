"""A fake Rasa REST channel on a real local port: records every turn, answers from a script."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
