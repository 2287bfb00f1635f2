"""HTTP client of the Rasa REST channel: the only way channels reach Rasa."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


class RasaUnavailable(Exception):
    """Rasa did not answer (down, restarting, timing out or failing)."""


class RasaClient:
    """Sends one user turn to `POST /webhooks/rest/webhook` and returns Rasa's replies."""

    def __init__(self, base_url: str, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def send(self, *, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            response = await self._client.post(
                "/webhooks/rest/webhook", json={"sender": sender, "message": text, "metadata": metadata}
            )
        except httpx.HTTPError as error:
            raise RasaUnavailable(str(error)) from error
        if response.status_code != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}")
        replies = response.json()
        if not isinstance(replies, list):
            raise RasaUnavailable("Rasa answered with something other than a list of replies")
        return replies

    async def slots(self, sender: str) -> dict[str, Any]:
        """The conversation's current slots (its tracker without events), e.g. a half-filled report."""
        # Rasa's router does not decode %3A, and our sender ids are "<channel>:<id>": the colon stays as it is.
        try:
            response = await self._client.get(
                f"/conversations/{quote(sender, safe=':')}/tracker", params={"include_events": "NONE"}
            )
        except httpx.HTTPError as error:
            raise RasaUnavailable(str(error)) from error
        if response.status_code != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}")
        tracker = response.json()
        slots = tracker.get("slots") if isinstance(tracker, dict) else None
        return dict(slots) if isinstance(slots, dict) else {}

    async def aclose(self) -> None:
        await self._client.aclose()
