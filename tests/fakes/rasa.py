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
        self.url = ""  # set while served (tests/conftest.py's `rasa` fixture)
        self.events: list[tuple[str, dict[str, Any]]] = []  # (sender, event) appended to trackers
        self.paused: set[str] = set()
        self.slots: dict[str, dict[str, Any]] = {}
        self.app = Starlette(
            routes=[
                Route("/status", self.status, methods=["GET"]),
                Route("/webhooks/rest/webhook", self.webhook, methods=["POST"]),
                Route("/conversations/{sender}/tracker/events", self.append_event, methods=["POST"]),
                Route("/conversations/{sender}/tracker", self.tracker, methods=["GET"]),
            ]
        )

    async def status(self, request: Request) -> JSONResponse:
        # Rasa answers 200 once a model is loaded (409 before); what readiness and the metrics look at.
        return JSONResponse({"model_file": "fake.tar.gz", "model_id": "fake", "num_active_training_jobs": 0})

    async def webhook(self, request: Request) -> JSONResponse:
        turn = await request.json()
        self.turns.append(turn)
        if turn["sender"] in self.paused:
            return JSONResponse([])  # Rasa logs the message of a paused conversation and answers nothing
        if self.status_code != 200:
            return JSONResponse({"error": "failing on purpose"}, status_code=self.status_code)
        return JSONResponse(self.answer(turn))

    async def append_event(self, request: Request) -> JSONResponse:
        sender, event = request.path_params["sender"], await request.json()
        if self.status_code != 200:
            return JSONResponse({"error": "failing on purpose"}, status_code=self.status_code)
        self.events.append((sender, event))
        if event.get("event") == "pause":
            self.paused.add(sender)
        elif event.get("event") == "resume":
            self.paused.discard(sender)
        return JSONResponse(await self._tracker_of(sender))

    async def tracker(self, request: Request) -> JSONResponse:
        return JSONResponse(await self._tracker_of(request.path_params["sender"]))

    async def _tracker_of(self, sender: str) -> dict[str, Any]:
        return {"sender_id": sender, "paused": sender in self.paused, "slots": self.slots.get(sender, {})}
