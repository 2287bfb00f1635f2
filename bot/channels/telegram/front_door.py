"""The Telegram application's life: build, start (webhook or polling), inbox of updates, per-chat order."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, BaseUpdateProcessor, ContextTypes

from bot.channels.telegram.delivery import CHANNEL, TelegramDelivery
from bot.channels.telegram.handlers import TelegramHandlers
from bot.channels.telegram.privacy import redact_telegram_logs, seal, unseal
from bot.channels.telegram.texts import COMMANDS
from bot.gateway import Gateway
from civic import inbox
from civic.db import session_scope
from civic.settings import Settings

logger = logging.getLogger(__name__)
WEBHOOK_PATH = "/telegram/webhook"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
RECOVERY_SECONDS = 30.0
START_RETRY_SECONDS = 15.0
POLL_TIMEOUT_SECONDS = 25
# Turns in flight at once: enough to keep Rasa busy, few enough that acknowledging new updates
# never waits behind the dialogue work (measured in bench/telegram.py).
MAX_CONCURRENT_UPDATES = 8


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Runs updates of different chats concurrently and those of one chat one after another, in order.

    PTB hands updates over in arrival order and asyncio locks are FIFO, so a chat's turns keep their
    order. After each update the inbox row is closed: handled, or left pending for another attempt.
    """

    def __init__(self, front_door: TelegramFrontDoor, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self.front_door = front_door
        self._locks: dict[int, asyncio.Lock] = {}
        self._holders: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        key = chat.id if chat is not None else 0
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
                if isinstance(update, Update):
                    await self.front_door.close_update(update.update_id)
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:
                del self._holders[key], self._locks[key]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class TelegramFrontDoor:
    """Owns the PTB Application (built with no Updater: the web app receives the webhooks)."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session], gateway: Gateway) -> None:
        assert settings.telegram_bot_token, "Telegram is off without TELEGRAM_BOT_TOKEN"
        self.settings = settings
        self.session_factory = session_factory
        base = settings.telegram_base_url.rstrip("/")
        self.application: Application = (
            ApplicationBuilder()
            .token(settings.telegram_bot_token)
            .base_url(f"{base}/bot")
            .base_file_url(f"{base}/file/bot")
            .updater(None)
            .concurrent_updates(PerChatUpdateProcessor(self))
            # Telegram's 30 messages/s overall, and its "retry after" answers, are handled here.
            .rate_limiter(AIORateLimiter(max_retries=3))
            .build()
        )
        self.delivery = TelegramDelivery(self.application.bot, session_factory)
        TelegramHandlers(
            gateway=gateway,
            delivery=self.delivery,
            session_factory=session_factory,
            max_photo_bytes=settings.telegram_max_photo_bytes,
        ).register(self.application)
        self.application.add_error_handler(self._on_error)
        self._failures: dict[int, str] = {}
        self._arrivals: list[tuple[str, dict[str, Any], asyncio.Future[bool]]] = []
        self._arrived = asyncio.Event()
        self._inbox_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telegram-inbox")
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Registers the outbox sender and connects to Telegram in the background (retrying if it is down)."""
        self.delivery.register()
        redact_telegram_logs()  # PTB prints whole updates, shared contacts included, at DEBUG
        self._tasks.append(asyncio.create_task(self._store_arrivals_forever()))
        self._tasks.append(asyncio.create_task(self._connect()))

    async def _connect(self) -> None:
        while True:
            try:
                await self.application.initialize()  # getMe
                await self.application.start()
                await self._configure()
                break
            except TelegramError as error:
                logger.warning("Telegram not reachable (%s); retrying in %ss", error, START_RETRY_SECONDS)
                await asyncio.sleep(START_RETRY_SECONDS)
        logger.info("Telegram bot @%s up in %s mode", self.application.bot.username, self.settings.telegram_mode)
        self.ready.set()
        self._tasks.append(asyncio.create_task(self._recover_forever()))
        if self.settings.telegram_mode == "polling":
            self._tasks.append(asyncio.create_task(self._poll_forever()))

    async def _configure(self) -> None:
        bot = self.application.bot
        for language in ("ko", "en", "ja"):
            commands = [BotCommand(name, texts[language]) for name, texts in COMMANDS.items()]
            await bot.set_my_commands(commands, language_code=language)
        await bot.set_my_commands([BotCommand(name, texts["ko"]) for name, texts in COMMANDS.items()])
        if self.settings.telegram_mode == "webhook":
            await bot.set_webhook(
                url=self.settings.public_base_url.rstrip("/") + WEBHOOK_PATH,
                secret_token=self.settings.telegram_webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await bot.delete_webhook()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.application.running:
            await self.application.stop()
        if self.ready.is_set():
            await self.application.shutdown()
        self._inbox_writer.shutdown(wait=True)

    # -- the inbox -------------------------------------------------------------------------------

    def secret_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.settings.telegram_webhook_secret.encode())

    async def accept(self, data: dict[str, Any]) -> bool:
        """Stores a webhook/polled update and queues it; False for an update_id seen before (a no-op).

        Returns once the update is committed, so the caller may acknowledge it to Telegram.
        """
        accepted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._arrivals.append((str(data["update_id"]), data, accepted))
        self._arrived.set()
        if not await accepted:
            return False
        await self._queue(data)
        return True

    async def _store_arrivals_forever(self) -> None:
        """Group commit: every update that arrived while the last batch was written goes in one transaction.

        One writer on its own thread keeps acknowledgements off the pool the dialogue work uses, and
        one commit per batch instead of per update is what lets a single SQLite file keep up.
        """
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            batch, self._arrivals = self._arrivals, []
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self._inbox_writer, self._store, [(k, d) for k, d, _ in batch])
            except Exception as error:  # the database is down: Telegram gets a 500 and retries later
                for _, _, accepted in batch:
                    if not accepted.done():
                        accepted.set_exception(error)
                continue
            for (_, _, accepted), new in zip(batch, results, strict=True):
                if not accepted.done():
                    accepted.set_result(new)

    def _store(self, updates: list[tuple[str, dict[str, Any]]]) -> list[bool]:
        # A shared contact's number is stored encrypted, like every phone number at rest.
        sealed = [(key, seal(data)) for key, data in updates]
        with session_scope(self.session_factory) as session:
            return inbox.accept_many(session, channel=CHANNEL, updates=sealed)

    async def _queue(self, data: dict[str, Any]) -> None:
        try:
            update = Update.de_json(data, self.application.bot)
        except (KeyError, TypeError, ValueError) as error:
            logger.warning("unreadable Telegram update %s: %s", data.get("update_id"), type(error).__name__)
            await self._close(str(data["update_id"]), error=f"unreadable: {error}", give_up=True)
            return
        await self.application.update_queue.put(update)

    async def close_update(self, update_id: int) -> None:
        error = self._failures.pop(update_id, None)
        await self._close(str(update_id), error=error)

    async def _close(self, update_key: str, *, error: str | None, give_up: bool = False) -> None:
        def work() -> None:
            with session_scope(self.session_factory) as session:
                if error is None:
                    inbox.mark_handled(session, channel=CHANNEL, update_key=update_key)
                else:
                    inbox.mark_failed_attempt(session, channel=CHANNEL, update_key=update_key, error=error)
                    if give_up:
                        inbox.give_up(session, channel=CHANNEL, update_key=update_key)

        await asyncio.to_thread(work)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        logger.error("Telegram update failed", exc_info=context.error)
        if isinstance(update, Update):
            self._failures[update.update_id] = f"{type(context.error).__name__}: {context.error}"

    async def recover(self) -> int:
        """Queues again the updates whose worker died or failed; returns how many."""

        def claim() -> list[inbox.PendingUpdate]:
            with session_scope(self.session_factory) as session:
                return inbox.claim_stale(session, channel=CHANNEL)

        pending = await asyncio.to_thread(claim)
        for item in pending:
            await self._queue(unseal(item.payload))
        return len(pending)

    async def _recover_forever(self) -> None:
        while True:
            try:
                await self.recover()
            except Exception:  # the loop must outlive one bad round
                logger.exception("Telegram inbox recovery failed")
            await asyncio.sleep(RECOVERY_SECONDS)

    async def _poll_forever(self) -> None:
        """Development mode without a public URL: long-poll getUpdates into the same inbox."""
        bot, offset = self.application.bot, 0
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT_SECONDS, allowed_updates=ALLOWED_UPDATES
                )
            except TelegramError as error:
                logger.warning("getUpdates failed: %s", error)
                await asyncio.sleep(3)
                continue
            for update in updates:
                await self.accept(update.to_dict())
                offset = update.update_id + 1
