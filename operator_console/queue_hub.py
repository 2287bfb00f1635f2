"""One watcher of the operators' queue per web worker, or per cluster with Redis, fanning snapshots out to streams."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from bot.metrics import CONSOLE_LIVE_CLIENTS
from civic.console_queue import queue_version, waiting
from civic.db import in_thread, utcnow

log = logging.getLogger(__name__)
# The queue is looked at twice a second: "within 1 s" with room for the browser's own delivery.
CHECK_SECONDS = 0.5
CHANNEL = "civic:console:queue:{namespace}"
LEADER_KEY = "civic:console:queue-watcher:{namespace}"
# A watcher that dies (SIGKILL) holds the lead this long at most; then another worker takes over.
LEADER_TTL_MS = 3000
# Renew the lead only while we still hold it: a watcher that stalled past its TTL must not steal it back.
RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"


def snapshot(session: Session) -> dict[str, Any]:
    """The queue as the console shows it: everything waiting, oldest first, with waiting times."""
    now = utcnow()
    return {"at": now.isoformat(), "items": [item.to_json(now) for item in waiting(session)]}


class QueueHub:
    """Streams subscribe here; one watcher reads the database and every stream gets each new queue once.

    Without Redis each web worker watches for itself. With Redis the workers elect one watcher, which
    publishes each new queue on a channel every worker listens to: the database is read once however many
    workers and open consoles there are.
    """

    def __init__(self, session_factory: sessionmaker[Session], *, redis_url: str = "") -> None:
        self.session_factory = session_factory
        self.redis_url = redis_url
        self._streams: set[asyncio.Queue[str]] = set()
        self._id = secrets.token_hex(8)
        self.leading = False
        # Workers of one database share a watcher; another database (a test's schema) on the same Redis does not.
        bind = session_factory.kw["bind"]
        namespace = hashlib.sha256(bind.url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
        self.channel, self.leader_key = CHANNEL.format(namespace=namespace), LEADER_KEY.format(namespace=namespace)

    def subscribe(self) -> asyncio.Queue[str]:
        """A queue that receives each new snapshot (JSON); only the newest waits if the reader is slow."""
        stream: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._streams.add(stream)
        CONSOLE_LIVE_CLIENTS.inc()
        return stream

    def unsubscribe(self, stream: asyncio.Queue[str]) -> None:
        if stream in self._streams:
            self._streams.discard(stream)
            CONSOLE_LIVE_CLIENTS.dec()

    def _fan_out(self, data: str) -> None:
        for stream in self._streams:
            with contextlib.suppress(asyncio.QueueEmpty):
                stream.get_nowait()  # a reader behind by one snapshot needs only the newest
            stream.put_nowait(data)

    async def run(self) -> None:
        """Runs until cancelled (the app's lifespan)."""
        if not self.redis_url:
            await self._watch(publish=None)
            return
        while True:
            client = aioredis.from_url(self.redis_url)
            try:
                await asyncio.gather(self._watch(publish=client), self._listen(client))
            except RedisError as error:
                log.warning("live queue: Redis failed (%s); retrying in a second", type(error).__name__)
                await asyncio.sleep(1.0)
            finally:
                await client.aclose()

    async def _watch(self, publish: aioredis.Redis | None) -> None:
        last: tuple[object, ...] | None = None
        while True:
            if publish is None and not self._streams:
                # Nobody watches through this worker: nothing to read (a new stream sends its own first snapshot).
                last = None
            elif publish is None or await self._lead(publish):
                try:
                    version = await in_thread(self.session_factory, queue_version)
                    if version != last:
                        data = json.dumps(await in_thread(self.session_factory, snapshot), ensure_ascii=False)
                        if publish is None:
                            self._fan_out(data)
                        else:
                            await publish.publish(self.channel, data)
                        last = version
                except RedisError:
                    raise
                except Exception:  # a database hiccup must not end the live queue
                    log.exception("live queue: reading the queue failed")
            else:
                last = None  # when we lead again, publish at once
            await asyncio.sleep(CHECK_SECONDS)

    async def _lead(self, client: aioredis.Redis) -> bool:
        if self.leading and await client.eval(RENEW, 1, self.leader_key, self._id, LEADER_TTL_MS):
            return True
        self.leading = bool(await client.set(self.leader_key, self._id, nx=True, px=LEADER_TTL_MS))
        return self.leading

    async def _listen(self, client: aioredis.Redis) -> None:
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(self.channel)
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    data = message["data"]
                    self._fan_out(data.decode() if isinstance(data, bytes) else str(data))
