"""HTTP client of the Rasa REST channel: the only way channels reach Rasa."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any
from urllib.parse import quote

import httpx

from bot.metrics import RASA_ERRORS, RASA_REQUESTS


class RasaUnavailable(Exception):
    """Rasa did not answer (down, restarting, timing out or failing)."""


class RasaClient:
    """Sends one user turn to `POST /webhooks/rest/webhook` and returns Rasa's replies.

    `base_url` may list several replicas, comma-separated (scale mode, where they share a SQL tracker store
    and a Redis lock store): requests take turns over them, and one a replica refuses to connect goes to the
    next, so a replica that is down or restarting costs nothing.
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        auth_token: str = "",
    ) -> None:
        # Rasa's HTTP API (trackers, events) answers only with `?token=` (its --auth-token); the REST
        # channel's webhook is not part of that API and ignores it.
        self._auth = {"token": auth_token} if auth_token else {}
        urls = [url.strip().rstrip("/") for url in base_url.split(",") if url.strip()]
        if not urls:
            raise ValueError("no Rasa URL")
        self.replicas = urls
        self._clients = [
            httpx.AsyncClient(
                base_url=url,
                timeout=timeout,
                transport=transport,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
            for url in urls
        ]
        self._turn = itertools.count()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        first = next(self._turn)
        last: httpx.HTTPError | None = None
        for attempt in range(len(self._clients)):
            index = (first + attempt) % len(self._clients)
            replica = self.replicas[index]
            RASA_REQUESTS.labels(replica).inc()
            try:
                response = await self._clients[index].request(method, path, **kwargs)
            except httpx.ConnectError as error:
                # Nothing reached that replica, so the turn is safe to give to the next one.
                RASA_ERRORS.labels(replica, "connect").inc()
                last = error
                continue
            except httpx.HTTPError as error:
                kind = "timeout" if isinstance(error, httpx.TimeoutException) else "transport"
                RASA_ERRORS.labels(replica, kind).inc()
                raise RasaUnavailable(str(error)) from error
            if response.status_code >= 500:
                RASA_ERRORS.labels(replica, "http").inc()
            return response
        raise RasaUnavailable(str(last)) from last

    async def reachable(self, timeout: float = 1.0) -> dict[str, bool]:
        """Whether each replica serves within `timeout`: `GET /status` answers 200 only once its model is loaded."""

        async def serving(client: httpx.AsyncClient) -> bool:
            try:
                return (await client.get("/status", params=self._auth, timeout=timeout)).status_code == 200
            except httpx.HTTPError:
                return False

        answers = await asyncio.gather(*(serving(client) for client in self._clients))
        return dict(zip(self.replicas, answers, strict=True))

    async def send(self, *, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self._request(
            "POST", "/webhooks/rest/webhook", json={"sender": sender, "message": text, "metadata": metadata}
        )
        if response.status_code != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}")
        replies = response.json()
        if not isinstance(replies, list):
            raise RasaUnavailable("Rasa answered with something other than a list of replies")
        return replies

    async def _tracker(self, sender: str) -> dict[str, Any]:
        # Rasa's router does not decode %3A, and our sender ids are "<channel>:<id>": the colon stays as it is.
        response = await self._request(
            "GET",
            f"/conversations/{quote(sender, safe=':')}/tracker",
            params={"include_events": "NONE", **self._auth},
        )
        if response.status_code != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}")
        tracker = response.json()
        return tracker if isinstance(tracker, dict) else {}

    async def slots(self, sender: str) -> dict[str, Any]:
        """The conversation's current slots (its tracker without events), e.g. a half-filled report."""
        slots = (await self._tracker(sender)).get("slots")
        return dict(slots) if isinstance(slots, dict) else {}

    async def pause(self, sender: str) -> None:
        """Appends ConversationPaused to the tracker: Rasa answers nothing until `resume`."""
        await self._append_event(sender, {"event": "pause"})

    async def resume(self, sender: str) -> None:
        """Appends ConversationResumed: the bot takes the conversation back."""
        await self._append_event(sender, {"event": "resume"})

    async def _append_event(self, sender: str, event: dict[str, Any]) -> None:
        response = await self._request(
            "POST", f"/conversations/{quote(sender, safe=':')}/tracker/events", json=event, params=self._auth
        )
        if response.status_code != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}")

    async def is_paused(self, sender: str) -> bool:
        """Whether the tracker is paused (what the console shows and the tests check)."""
        return bool((await self._tracker(sender)).get("paused"))

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
