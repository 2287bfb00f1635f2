"""Refuses request bodies over a size limit before they are read, and bodies that arrive too slowly."""

from __future__ import annotations

import asyncio
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the limit.

    An HTTPException, because FastAPI turns any other exception raised while it parses a body into a 400.
    """

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


class BodyReadTimedOut(HTTPException):
    """Raised from `receive` when the next piece of a body did not arrive in time; the connection is dropped."""

    def __init__(self) -> None:
        super().__init__(408, "request body too slow", headers={"Connection": "close"})


class BodySizeLimit:
    """413 for bodies over the limit: by Content-Length up front, and while streaming otherwise."""

    def __init__(self, app: ASGIApp, *, default_limit: int, upload_limit: int) -> None:
        self.app = app
        self.default_limit = default_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"].endswith("/photos") else self.default_limit
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_error(send, BodyTooLarge())
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        started = ResponseStarted(send)
        try:
            await self.app(scope, limited_receive, started)
        except BodyTooLarge as error:
            # Reached here only when no exception handler answered it (a plain ASGI route).
            if started.started:
                raise
            await send_error(send, error)


class BodyReadTimeout:
    """408 (and the connection closed) when a body stalls: each piece must arrive within `seconds` of asking.

    uvicorn times out idle keep-alive connections but not a request whose body is still coming, so a client
    that sends headers and then dribbles the body would hold a worker's request open for as long as it likes.
    The clock runs only until the body is complete: later `receive` calls wait for a disconnect (server-sent
    events, streamed responses) and may wait for ever. Like nginx's client_body_timeout, it bounds the gap
    between two pieces, not the whole upload, so a slow but steady phone upload still gets through.
    """

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_complete = False

        async def timed_receive() -> Message:
            nonlocal body_complete
            if body_complete:
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                raise BodyReadTimedOut from None
            body_complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        started = ResponseStarted(send)
        try:
            await self.app(scope, timed_receive, started)
        except BodyReadTimedOut as error:
            if started.started:
                raise
            await send_error(send, error)


class ResponseStarted:
    """A `send` that remembers whether the response has begun (after that, no other status can be sent)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


async def send_error(send: Send, error: HTTPException) -> None:
    """The error as FastAPI's exception handler would answer it, for when the middleware answers itself."""
    headers = [(b"content-type", b"application/json")]
    headers += [(name.lower().encode(), value.encode()) for name, value in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"detail": error.detail}).encode()})
