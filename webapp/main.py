"""Builds the web app: shared clients in the lifespan, routers included, nothing at import but routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.telegram import webhook as telegram_webhook
from bot.channels.telegram.front_door import TelegramFrontDoor
from bot.channels.webchat import chat as webchat
from bot.channels.webchat import phone as webchat_phone
from bot.gateway import Gateway
from bot.metrics import process_exiting
from bot.rasa_client import RasaClient
from civic import gazetteer, retention
from civic.db import get_session_factory, session_scope
from civic.feedback import close_unanswered
from civic.outbox import unregister_sender
from civic.settings import get_settings
from civic.votes import BallotBox, close_due_polls
from operator_console import admin_pages, api_key_pages, case_pages, dashboard, live_queue, outbox_pages
from operator_console import conversations as console_conversations
from operator_console import routes as console
from operator_console.queue_hub import QueueHub
from telephony import sms_replies, voice
from telephony.asr import Recognizers
from telephony.phone_line import CallControl, PhoneLine
from telephony.sms import CHANNEL as SMS_CHANNEL
from telephony.sms import SmsDelivery
from webapp import ledger_api, open311
from webapp import polls as poll_pages
from webapp.body_limits import BodyReadTimeout, BodySizeLimit
from webapp.errors import validation_failed
from webapp.health import Readiness, drain_on_sigterm
from webapp.health import router as health_router
from webapp.outbox_worker import WEB_CHANNELS, register_web_senders, run_outbox_worker
from webapp.request_log import RequestLog
from webapp.security_headers import SecurityHeaders

WEBCHAT_STATIC = Path(webchat.__file__).parent / "static"
HOME_PAGE = Path(__file__).parent / "templates" / "home.html"
WEB_STATIC = Path(__file__).parent / "static"
POLL_CLOSER_SECONDS = 30.0
FEEDBACK_CLOSER_SECONDS = 3600.0
RETENTION_EVERY_SECONDS = 24 * 3600.0
# The first purge waits until start-up (speech models, Telegram) is over and short-lived test apps are gone.
RETENTION_FIRST_RUN_SECONDS = 600.0
logger = logging.getLogger(__name__)


async def run_every(what: str, work: Callable[[], object], every_seconds: float) -> None:
    """Runs blocking `work` in a thread every `every_seconds`, for the app's life."""
    while True:
        try:
            await asyncio.to_thread(work)
        except Exception:  # a bad round must not stop the work for the rest of the app's life
            logger.exception("%s failed", what)
        await asyncio.sleep(every_seconds)


def run_poll_closer(session_factory: sessionmaker[Session], every_seconds: float) -> Coroutine[Any, Any, None]:
    """Closes polls whose time is up and signs their final checkpoint; results and exports follow."""
    return run_every("closing due polls", lambda: close_due_polls(session_factory), every_seconds)


def run_feedback_closer(session_factory: sessionmaker[Session], every_seconds: float) -> Coroutine[Any, Any, None]:
    """Closes resolved cases whose "fixed?" question went unanswered for 7 days (civic.feedback)."""

    def close() -> None:
        with session_scope(session_factory) as session:
            close_unanswered(session)

    return run_every("closing unanswered questions", close, every_seconds)


async def run_retention(session_factory: sessionmaker[Session], every_seconds: float, first_after: float) -> None:
    """Once a day, the PIPA purge of old transcripts and files (civic.retention)."""
    await asyncio.sleep(first_after)
    while True:
        try:
            await asyncio.to_thread(retention.run_once, session_factory)
        except Exception:  # a failed purge is tried again the next day, and must not stop the app
            logger.exception("retention purge failed")
        await asyncio.sleep(every_seconds)


async def load_speech_models(recognizers: Recognizers) -> None:
    """Loads the recognisers and the place gazetteer in the background (a few seconds); a call arriving meanwhile
    waits for them."""
    try:
        await asyncio.to_thread(recognizers.load)
        await asyncio.to_thread(gazetteer.load)
    except Exception:  # the web chat and Telegram must come up even if the phone line's models do not
        logger.exception("speech models failed to load; the phone line will try again on the first call")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    readiness = app.state.readiness = Readiness()
    # Database work runs in threads; a shorter GIL switch interval keeps them from starving the event
    # loop that acknowledges webhooks (Python's default is 5 ms per switch).
    sys.setswitchinterval(0.001)
    session_factory = get_session_factory()
    rasa = RasaClient(settings.rasa_url, timeout=settings.rasa_timeout_seconds, auth_token=settings.rasa_auth_token)
    app.state.session_factory = session_factory
    gateway = Gateway(
        session_factory=session_factory,
        rasa=rasa,
        max_chars=settings.max_message_chars,
        # Past Rasa's timeout (and a Redis lock left by a killed replica) a turn can only have been interrupted.
        interrupted_after=timedelta(seconds=settings.rasa_timeout_seconds * 2 + 10),
    )
    app.state.gateway = gateway
    register_web_senders(session_factory)
    sms = SmsDelivery(settings)
    sms.register()
    app.state.ballot_box = BallotBox(session_factory)
    recognizers = Recognizers(
        grammar_engine=settings.asr_grammar_engine,
        free_form_engine=settings.asr_free_form_engine,
        cache_dir=settings.asr_cache_dir,
        whisper_threads=settings.asr_threads,
        whisper_workers=settings.asr_workers,
    )
    calls = CallControl(sms.client)  # one Twilio client (and connection pool) for messages and calls
    app.state.phone_line = PhoneLine(
        settings=settings,
        session_factory=session_factory,
        gateway=gateway,
        rasa=rasa,
        recognizers=recognizers,
        calls=calls,
    )
    models_loading = asyncio.create_task(load_speech_models(recognizers) if settings.asr_preload else asyncio.sleep(0))
    # Telegram is optional: without a token the web chat and the rest run alone.
    telegram = TelegramFrontDoor(settings, session_factory, gateway) if settings.telegram_bot_token else None
    app.state.telegram = telegram
    if telegram is not None:
        await telegram.start()
    app.state.outbox_wakeup = asyncio.Event()
    worker = asyncio.create_task(
        run_outbox_worker(session_factory, settings.outbox_poll_seconds, app.state.outbox_wakeup)
    )
    closer = asyncio.create_task(run_poll_closer(session_factory, POLL_CLOSER_SECONDS))
    feedback_closer = asyncio.create_task(run_feedback_closer(session_factory, FEEDBACK_CLOSER_SECONDS))
    purger = asyncio.create_task(run_retention(session_factory, RETENTION_EVERY_SECONDS, RETENTION_FIRST_RUN_SECONDS))
    app.state.queue_hub = QueueHub(session_factory, redis_url=settings.redis_url)
    queue_watcher = asyncio.create_task(app.state.queue_hub.run())
    # Ready once the speech models are in (or failed to load: the line then loads them on the first call), so a
    # balancer sends no caller to a worker that would keep them waiting on a cold model.
    models_loading.add_done_callback(lambda _: readiness.mark_ready())
    try:
        with drain_on_sigterm(readiness, settings.shutdown_drain_seconds):
            yield
    finally:
        readiness.state = "draining"
        for task in (worker, closer, feedback_closer, purger, queue_watcher, models_loading):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app.state.ballot_box.aclose()
        for channel in (SMS_CHANNEL, *WEB_CHANNELS):
            unregister_sender(channel)
        sms.close()
        recognizers.close()
        if telegram is not None:
            await telegram.stop()
        await rasa.aclose()
        process_exiting()


def create_app() -> FastAPI:
    settings = get_settings()
    # The API's documentation maps every route for whoever asks: only a developer's machine serves it.
    development = settings.environment == "development"
    app = FastAPI(
        title="Seoul civic front door",
        lifespan=lifespan,
        docs_url="/api/docs" if development else None,
        openapi_url="/openapi.json" if development else None,
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodySizeLimit, default_limit=64 * 1024, upload_limit=settings.max_upload_bytes + 64 * 1024)
    # Added late, so outer: the clock covers every read of the body, whoever does it.
    app.add_middleware(BodyReadTimeout, seconds=settings.request_body_timeout_seconds)
    # Outermost: every answer is counted and logged, the 408s and 413s of the limits included.
    app.add_middleware(RequestLog)
    app.mount("/chat/static", StaticFiles(directory=WEBCHAT_STATIC), name="chat-static")
    app.mount(poll_pages.STATIC_URL, StaticFiles(directory=WEB_STATIC), name="static")
    app.mount(console.STATIC_URL, StaticFiles(directory=console.STATIC_DIR), name="console-static")
    app.include_router(webchat.router)
    app.include_router(webchat_phone.router)
    app.include_router(poll_pages.router)
    app.include_router(ledger_api.api)
    app.include_router(open311.router)
    app.include_router(telegram_webhook.router)
    app.include_router(voice.router)
    app.include_router(sms_replies.router)
    app.include_router(console.router)
    app.include_router(live_queue.router)
    app.include_router(case_pages.router)
    app.include_router(dashboard.router)
    app.include_router(admin_pages.router)
    app.include_router(api_key_pages.router)
    app.include_router(console_conversations.router)
    app.include_router(outbox_pages.router)
    app.include_router(health_router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home() -> str:
        return HOME_PAGE.read_text(encoding="utf-8")

    return app


app = create_app()
