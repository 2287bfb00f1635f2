"""The Telegram front door against a fake Bot API and a fake Rasa, both on real local ports."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.telegram import webhook
from bot.channels.telegram.front_door import TelegramFrontDoor
from bot.gateway import Gateway
from bot.rasa_client import RasaClient
from civic import console_accounts as accounts
from civic import inbox, takeover
from civic.console_accounts import ConsoleIdentity
from civic.db import session_scope, utcnow
from civic.media import media_path
from civic.models import Attachment, Citizen, Conversation, InboundUpdate, Message, OutboxMessage
from civic.outbox import deliver_due, enqueue, unregister_sender
from civic.phones import decrypt_phone
from civic.settings import Settings
from telephony.local_twilio import serve_in_thread as serve
from tests.fakes import telegram_api as tg
from tests.fakes.rasa import FakeRasa
from tests.production_secrets import PRODUCTION_SECRETS

SECRET = "test-webhook-secret_1"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2048
CHAT = 7_000_001


@pytest.fixture
def telegram() -> Iterator[tuple[tg.FakeTelegramAPI, str]]:
    fake = tg.FakeTelegramAPI()
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake_rasa() -> Iterator[tuple[FakeRasa, str]]:
    fake = FakeRasa()
    with serve(fake.app) as url:
        yield fake, url


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "telegram_bot_token": tg.FakeTelegramAPI().token,
        "telegram_base_url": url,
        "telegram_webhook_secret": SECRET,
        "public_base_url": "https://civic.example.org",
        "telegram_max_photo_bytes": 100_000,
    }
    return Settings(**(values | overrides))


@pytest.fixture
async def door(
    telegram: tuple[tg.FakeTelegramAPI, str],
    fake_rasa: tuple[FakeRasa, str],
    session_factory: sessionmaker[Session],
) -> AsyncIterator[TelegramFrontDoor]:
    gateway = Gateway(session_factory=session_factory, rasa=RasaClient(fake_rasa[1], timeout=5), max_chars=2000)
    front_door = TelegramFrontDoor(settings_for(telegram[1]), session_factory, gateway)
    front_door.delivery.pacer.interval = 0.0  # pacing has its own test
    await front_door.start()
    await asyncio.wait_for(front_door.ready.wait(), timeout=10)
    yield front_door
    await front_door.stop()
    await gateway.rasa.aclose()
    unregister_sender("telegram")


@pytest.fixture
async def client(door: TelegramFrontDoor) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(webhook.router)
    app.state.telegram = door
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http


async def eventually(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


async def post(client: httpx.AsyncClient, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return await client.post("/telegram/webhook", json=update, headers=headers)


def texts_to(fake: tg.FakeTelegramAPI, chat: int) -> list[str]:
    return [str(call.params.get("text")) for call in fake.sent_messages(chat)]


async def settled(session_factory: sessionmaker[Session], update_id: int) -> InboundUpdate:
    def read() -> InboundUpdate | None:
        with session_scope(session_factory) as session:
            row = session.execute(
                select(InboundUpdate).where(InboundUpdate.update_key == str(update_id))
            ).scalar_one_or_none()
            if row is not None:
                session.expunge(row)
            return row

    deadline = time.monotonic() + 10
    while True:
        row = await asyncio.to_thread(read)
        if row is not None and row.status != inbox.PENDING:
            return row
        if time.monotonic() > deadline:
            raise TimeoutError(f"update {update_id} still pending")
        await asyncio.sleep(0.02)


async def test_start_configures_commands_and_webhook(door: TelegramFrontDoor, telegram: Any) -> None:
    fake, _ = telegram
    assert fake.webhook is not None
    assert fake.webhook["url"] == "https://civic.example.org/telegram/webhook"
    assert fake.webhook["secret_token"] == SECRET
    command_calls = fake.calls_to("setMyCommands")
    languages = {call.params.get("language_code") for call in command_calls}
    assert languages == {"ko", "en", "ja", None}
    english = next(call for call in command_calls if call.params.get("language_code") == "en")
    names = [command["command"] for command in english.params["commands"]]
    assert names[:3] == ["report", "status", "myreports"] and {"cancel", "language", "help", "start"} <= set(names)


async def test_a_text_turn_reaches_rasa_and_the_reply_reaches_the_chat(
    client: httpx.AsyncClient, telegram: Any, fake_rasa: Any, session_factory: sessionmaker[Session]
) -> None:
    fake, _ = telegram
    update = tg.text_update(CHAT, "마포구 가로등이 나갔어요")
    response = await post(client, update)
    assert response.status_code == 200
    await eventually(lambda: bool(fake.sent_messages(CHAT)))
    assert texts_to(fake, CHAT) == ["echo: 마포구 가로등이 나갔어요"]
    turn = fake_rasa[0].turns[-1]
    assert turn["sender"] == f"telegram:{CHAT}"
    assert turn["metadata"]["channel"] == "telegram" and turn["metadata"]["language"] == "ko"
    row = await settled(session_factory, update["update_id"])
    assert row.status == inbox.HANDLED


async def test_forged_or_missing_secret_is_refused_before_any_write(
    client: httpx.AsyncClient, telegram: Any, session_factory: sessionmaker[Session]
) -> None:
    fake, _ = telegram
    update = tg.text_update(CHAT + 1, "hello")
    assert (await post(client, update, secret="wrong")).status_code == 403
    assert (await post(client, update, secret=None)).status_code == 403
    assert (await post(client, update, secret=SECRET[:-1])).status_code == 403
    await asyncio.sleep(0.2)
    with session_scope(session_factory) as session:
        stored = session.scalar(
            select(func.count()).select_from(InboundUpdate).where(InboundUpdate.update_key == str(update["update_id"]))
        )
        conversations = session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.external_id == str(CHAT + 1))
        )
    assert stored == 0 and conversations == 0
    assert not fake.sent_messages(CHAT + 1)


async def test_malformed_bodies_get_400(client: httpx.AsyncClient) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert (await client.post("/telegram/webhook", content=b"\xff\xfe", headers=headers)).status_code == 400
    assert (await client.post("/telegram/webhook", json=[1, 2], headers=headers)).status_code == 400
    assert (await client.post("/telegram/webhook", json={"update_id": "7"}, headers=headers)).status_code == 400


async def test_a_replayed_update_is_handled_once(
    client: httpx.AsyncClient, telegram: Any, fake_rasa: Any, session_factory: sessionmaker[Session]
) -> None:
    fake, _ = telegram
    chat = CHAT + 2
    update = tg.text_update(chat, "hello there")
    for _ in range(3):
        assert (await post(client, update)).status_code == 200
    await settled(session_factory, update["update_id"])
    await asyncio.sleep(0.3)
    assert texts_to(fake, chat) == ["echo: hello there"]
    assert sum(1 for turn in fake_rasa[0].turns if turn["sender"] == f"telegram:{chat}") == 1


async def test_one_chats_turns_keep_their_order(client: httpx.AsyncClient, telegram: Any, fake_rasa: Any) -> None:
    fake, _ = telegram
    chat = CHAT + 3
    updates = [tg.text_update(chat, f"message {i}") for i in range(8)]
    for update in updates:
        assert (await post(client, update)).status_code == 200
    await eventually(lambda: len(fake.sent_messages(chat)) == 8)
    assert texts_to(fake, chat) == [f"echo: message {i}" for i in range(8)]


async def test_buttons_become_an_inline_keyboard_and_a_press_sends_the_payload(
    client: httpx.AsyncClient, telegram: Any, fake_rasa: Any
) -> None:
    fake, _ = telegram
    rasa = fake_rasa[0]
    chat = CHAT + 4

    def answer(turn: dict[str, Any]) -> list[dict[str, Any]]:
        if turn["message"] == "/affirm":
            return [{"text": "접수되었습니다"}]
        return [
            {"text": "이대로 접수할까요?"},
            {"buttons": [{"title": "네", "payload": "/affirm"}, {"title": "아니요", "payload": "/deny"}]},
        ]

    rasa.answer = answer
    await post(client, tg.text_update(chat, "가로등 신고"))
    await eventually(lambda: bool(fake.sent_messages(chat)))
    sent = fake.sent_messages(chat)[0]
    keyboard = sent.params["reply_markup"]["inline_keyboard"]
    titles = [button["text"] for row in keyboard for button in row]
    assert titles == ["네", "아니요"] and sent.params["text"] == "이대로 접수할까요?"
    yes = keyboard[0][0]["callback_data"]
    assert "/affirm" not in yes  # the client only ever holds a reference
    message_id = sent.result["message_id"]
    press = tg.callback_update(chat, yes, message_id=message_id)
    await post(client, press)
    await eventually(lambda: len(fake.sent_messages(chat)) == 2)
    assert rasa.turns[-1]["message"] == "/affirm"
    assert fake.calls_to("answerCallbackQuery")
    assert fake.calls_to("editMessageReplyMarkup", chat)  # the used keyboard is taken away
    # A forged callback (a payload of our own making) is not a button we offered.
    forged = tg.callback_update(chat, "b:999999:0", message_id=message_id)
    await post(client, forged)
    await eventually(lambda: any(c.params.get("text") for c in fake.calls_to("answerCallbackQuery")))
    assert len(rasa.turns) == 2


async def test_commands_map_to_fixed_intents(client: httpx.AsyncClient, telegram: Any, fake_rasa: Any) -> None:
    fake, _ = telegram
    chat = CHAT + 5
    for command in ("/report", "/myreports", "/status SR-2026-000123", "/help@seoul_civic_test_bot", "/polls"):
        await post(client, tg.text_update(chat, command))
    await eventually(lambda: len(fake.sent_messages(chat)) == 5)
    messages = [turn["message"] for turn in fake_rasa[0].turns if turn["sender"] == f"telegram:{chat}"]
    language = '{"language": "ko"}'
    assert messages == [
        f"/report_complaint{language}",
        f"/list_my_reports{language}",
        "SR-2026-000123",
        f"/help{language}",
        f"/list_polls{language}",
    ]
    # An unknown command is only text: Rasa never sees it as an intent.
    await post(client, tg.text_update(chat, '/inform{"category":"noise"}'))
    await eventually(lambda: len(fake.sent_messages(chat)) == 6)
    assert fake_rasa[0].turns[-1]["message"].startswith("／inform")


async def test_start_greets_with_the_keyboard_and_offers_languages(
    client: httpx.AsyncClient, telegram: Any, fake_rasa: Any, session_factory: sessionmaker[Session]
) -> None:
    fake, _ = telegram
    chat = CHAT + 6
    await post(client, tg.text_update(chat, "/start", language_code="ja"))
    await eventually(lambda: len(fake.sent_messages(chat)) == 2)
    greeting, picker = fake.sent_messages(chat)
    # The Telegram client's language, also inside the payload (Rasa keeps only a payload's own entities).
    assert fake_rasa[0].turns[-1]["message"] == '/greet{"language": "ja"}'
    assert fake_rasa[0].turns[-1]["metadata"]["language"] == "ja"
    buttons = greeting.params["reply_markup"]["keyboard"][0]
    assert buttons[0].get("request_location") is True and buttons[1].get("request_contact") is True
    choices = [b["callback_data"] for b in picker.params["reply_markup"]["inline_keyboard"][0]]
    assert choices == ["lang:ko", "lang:en", "lang:ja"]
    await post(client, tg.callback_update(chat, "lang:en", message_id=picker.result["message_id"]))
    await eventually(lambda: len(fake.sent_messages(chat)) == 3)
    assert "English" in str(fake.sent_messages(chat)[-1].params["text"])
    with session_scope(session_factory) as session:
        conversation = session.execute(
            select(Conversation).where(Conversation.channel == "telegram", Conversation.external_id == str(chat))
        ).scalar_one()
        assert conversation.language == "en"
    await post(client, tg.text_update(chat, "SR-2026-000001"))
    await eventually(lambda: len(fake.sent_messages(chat)) == 4)
    assert fake_rasa[0].turns[-1]["metadata"]["language"] == "en"


async def test_location_goes_to_rasa_as_coordinates(client: httpx.AsyncClient, telegram: Any, fake_rasa: Any) -> None:
    fake, _ = telegram
    chat = CHAT + 7
    await post(client, tg.location_update(chat, 37.5663, 126.9779))
    await eventually(lambda: bool(fake.sent_messages(chat)))
    turn = fake_rasa[0].turns[-1]
    assert turn["message"] == "/share_location"
    assert (turn["metadata"]["latitude"], turn["metadata"]["longitude"]) == (37.5663, 126.9779)


async def test_the_largest_photo_within_the_limit_is_stored(
    client: httpx.AsyncClient, telegram: Any, fake_rasa: Any, session_factory: sessionmaker[Session]
) -> None:
    fake, _ = telegram
    chat = CHAT + 8
    fake.add_file("photo-big", JPEG)
    fake.add_file("photo-big-s1", b"\xff\xd8\xff\xe0small")
    update = tg.photo_update(
        chat, "photo-big", sizes=((90, 90, 600), (320, 320, 900), (1280, 960, len(JPEG))), caption="쓰레기 무단투기"
    )
    await post(client, update)
    await eventually(lambda: bool(fake.sent_messages(chat)))
    turn = fake_rasa[0].turns[-1]
    assert turn["message"] == "쓰레기 무단투기" and len(turn["metadata"]["attachment_ids"]) == 1
    with session_scope(session_factory) as session:
        attachment = session.get(Attachment, turn["metadata"]["attachment_ids"][0])
        assert attachment is not None and attachment.content_type == "image/jpeg"
        assert media_path(attachment).read_bytes() == JPEG


async def test_photos_too_large_and_non_images_are_refused_clearly(
    client: httpx.AsyncClient, telegram: Any, fake_rasa: Any
) -> None:
    fake, _ = telegram
    chat = CHAT + 9
    huge = tg.photo_update(chat, "huge", sizes=((1280, 960, 500_000), (2560, 1920, 2_000_000)))
    await post(client, huge)
    fake.add_file("fake-image", b"%PDF-1.7 not an image")
    await post(client, tg.document_update(chat, "fake-image", "image/jpeg", "photo.jpg", file_size=30))
    await post(client, tg.document_update(chat, "doc", "application/pdf", "report.pdf"))
    await eventually(lambda: len(fake.sent_messages(chat)) == 3)
    texts = texts_to(fake, chat)
    assert "JPEG" in texts[0] and "JPEG" in texts[1]
    assert "스티커나 파일" in texts[2]
    assert not fake_rasa[0].turns


async def test_own_contact_verifies_the_phone_and_someone_elses_does_not(
    client: httpx.AsyncClient, telegram: Any, session_factory: sessionmaker[Session]
) -> None:
    fake, _ = telegram
    chat = CHAT + 10
    await post(client, tg.contact_update(chat, "+82 10-1234-5678", contact_user_id=CHAT + 999))
    await eventually(lambda: len(fake.sent_messages(chat)) == 1)
    assert "본인" in texts_to(fake, chat)[0]
    await post(client, tg.contact_update(chat, "+82 10-1234-5678", contact_user_id=chat))
    await eventually(lambda: len(fake.sent_messages(chat)) == 2)
    assert "5678" in texts_to(fake, chat)[1]
    with session_scope(session_factory) as session:
        conversation = session.execute(
            select(Conversation).where(Conversation.channel == "telegram", Conversation.external_id == str(chat))
        ).scalar_one()
        citizen = session.get(Citizen, conversation.citizen_id)
        assert citizen is not None and decrypt_phone(citizen.phone_ciphertext) == "+821012345678"
        stored = " ".join(
            m.text for m in session.execute(select(Message).where(Message.conversation_id == conversation.id)).scalars()
        )
        assert "1234-5678" not in stored and "+8210" not in stored  # the number is never in the transcript


async def test_unsupported_updates_get_a_clear_answer(client: httpx.AsyncClient, telegram: Any, fake_rasa: Any) -> None:
    fake, _ = telegram
    chat = CHAT + 11
    await post(client, tg.sticker_update(chat))
    await post(client, tg.voice_update(chat))
    await post(client, tg.edited_text_update(chat, "고친 메시지", message_id=1))
    await eventually(lambda: len(fake.sent_messages(chat)) == 3)
    sticker, voice, edited = texts_to(fake, chat)
    assert "스티커" in sticker and "120" in voice and "새 메시지" in edited
    assert not fake_rasa[0].turns


async def test_group_chats_are_told_to_use_a_private_chat(
    client: httpx.AsyncClient, telegram: Any, fake_rasa: Any
) -> None:
    fake, _ = telegram
    await post(client, tg.text_update(CHAT + 12, "/report", chat_type="group"))
    await eventually(lambda: bool(fake.sent_messages(-(CHAT + 12))))
    assert "private" in texts_to(fake, -(CHAT + 12))[0]
    assert not fake_rasa[0].turns


async def test_a_blocked_bot_marks_the_delivery_dead_and_keeps_the_rest(
    door: TelegramFrontDoor, telegram: Any, session_factory: sessionmaker[Session]
) -> None:
    fake, _ = telegram
    chat = CHAT + 13
    fake.block_chat(chat)
    with session_scope(session_factory) as session:
        conversation = Conversation(channel="telegram", external_id=str(chat), language="ko")
        session.add(conversation)
        session.flush()
        message = enqueue(
            session,
            conversation_id=conversation.id,
            channel="telegram",
            kind="status",
            text="처리 중입니다",
            dedupe_key=f"t{chat}",
        )
        assert message is not None
        session.flush()
        message_id = message.id
    await deliver_due(session_factory, now=utcnow())
    with session_scope(session_factory) as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None and row.status == "dead" and "blocked" in (row.last_error or "")
        assert row.attempts == 1


async def test_notifications_are_paced_to_one_message_per_second_per_chat(
    door: TelegramFrontDoor, telegram: Any, session_factory: sessionmaker[Session]
) -> None:
    fake, _ = telegram
    chat = CHAT + 14
    door.delivery.pacer.interval = 1.0
    with session_scope(session_factory) as session:
        conversation = Conversation(channel="telegram", external_id=str(chat), language="ko")
        session.add(conversation)
        session.flush()
        for i in range(3):
            enqueue(
                session,
                conversation_id=conversation.id,
                channel="telegram",
                kind="status",
                text=f"n{i}",
                dedupe_key=f"p{chat}-{i}",
            )
    await deliver_due(session_factory, now=utcnow())
    sent = fake.sent_messages(chat)
    assert [call.params["text"] for call in sent] == ["n0", "n1", "n2"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(sent)]
    assert all(gap >= 0.95 for gap in gaps), gaps


async def test_an_update_whose_handling_failed_is_retried_by_recovery(
    client: httpx.AsyncClient,
    door: TelegramFrontDoor,
    telegram: Any,
    fake_rasa: Any,
    session_factory: sessionmaker[Session],
) -> None:
    fake, _ = telegram
    chat = CHAT + 15
    update = tg.photo_update(chat, "not-registered-yet", sizes=((320, 320, 1000),))
    await post(client, update)
    row = await asyncio.wait_for(_pending_with_error(session_factory, update["update_id"]), timeout=10)
    assert row.status == inbox.PENDING and row.last_error
    # The file appears (Telegram recovered); once the lease runs out, recovery handles the update.
    fake.add_file("not-registered-yet", JPEG)
    with session_scope(session_factory) as session:
        session.execute(
            InboundUpdate.__table__.update()
            .where(InboundUpdate.update_key == str(update["update_id"]))
            .values(lease_until=utcnow())
        )
    assert await door.recover() >= 1
    handled = await settled(session_factory, update["update_id"])
    assert handled.status == inbox.HANDLED and handled.attempts == 2
    await eventually(lambda: bool(fake.sent_messages(chat)))


async def _pending_with_error(session_factory: sessionmaker[Session], update_id: int) -> InboundUpdate:
    while True:
        with session_scope(session_factory) as session:
            row = session.execute(
                select(InboundUpdate).where(InboundUpdate.update_key == str(update_id))
            ).scalar_one_or_none()
            if row is not None and row.last_error:
                session.expunge(row)
                return row
        await asyncio.sleep(0.05)


def test_placeholder_webhook_secret_is_refused_outside_development() -> None:
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        Settings(environment="production", telegram_bot_token="123:abc", **PRODUCTION_SECRETS)
    with pytest.raises(ValueError):
        Settings(environment="test", telegram_webhook_secret="has spaces and é")


async def test_polling_mode_feeds_get_updates_into_the_same_inbox(
    telegram: Any, fake_rasa: Any, session_factory: sessionmaker[Session]
) -> None:
    fake, url = telegram
    gateway = Gateway(session_factory=session_factory, rasa=RasaClient(fake_rasa[1], timeout=5), max_chars=2000)
    front_door = TelegramFrontDoor(settings_for(url, telegram_mode="polling"), session_factory, gateway)
    await front_door.start()
    try:
        await asyncio.wait_for(front_door.ready.wait(), timeout=10)
        assert fake.calls_to("deleteWebhook") and fake.webhook is None
        chat = CHAT + 16
        fake.push_update(tg.text_update(chat, "polling works"))
        await eventually(lambda: bool(fake.sent_messages(chat)))
        assert texts_to(fake, chat) == ["echo: polling works"]
        offsets = [int(call.params.get("offset") or 0) for call in fake.calls_to("getUpdates")]
        assert offsets == sorted(offsets)  # confirmed updates are never fetched again
    finally:
        await front_door.stop()
        await gateway.rasa.aclose()
        unregister_sender("telegram")


async def test_a_held_chat_reaches_the_operator_and_the_operator_and_the_bot_after_hand_back_reach_telegram(
    client: httpx.AsyncClient, telegram: Any, fake_rasa: Any, session_factory: Any
) -> None:
    fake, rasa = telegram[0], fake_rasa[0]
    chat = CHAT + 77
    await post(client, tg.text_update(chat, "상담사 불러 주세요"))
    await eventually(lambda: len(fake.sent_messages(chat)) == 1)
    with session_scope(session_factory) as session:
        user = accounts.create_user(
            session, email=f"op-{chat}@seoul.example.kr", password="correct horse battery", role="operator"
        )
        session.flush()
        operator = ConsoleIdentity(user.id, user.email, "operator", None, None, "s")
        conversation = session.execute(
            select(Conversation).where(Conversation.channel == "telegram", Conversation.external_id == str(chat))
        ).scalar_one()
        conversation_id = conversation.id
        takeover.take(session, operator, conversation_id)
    turns = len(rasa.turns)
    update = tg.text_update(chat, "여보세요?")
    await post(client, update)
    row = await settled(session_factory, update["update_id"])
    assert row.status == inbox.HANDLED and len(rasa.turns) == turns  # the bot never saw it
    with session_scope(session_factory) as session:
        takeover.say(session, operator, conversation_id, "120 상담사입니다. 무엇을 도와드릴까요?", key="t" * 32)
    await deliver_due(session_factory)
    assert texts_to(fake, chat)[1:] == [takeover.TAKEN_TEXT["ko"], "120 상담사입니다. 무엇을 도와드릴까요?"]

    rasa.answer = lambda turn: [{"text": "어느 구인가요?", "buttons": [{"title": "마포구", "payload": "/inform"}]}]
    with session_scope(session_factory) as session:
        takeover.release(session, operator, conversation_id)
    gateway = Gateway(session_factory=session_factory, rasa=RasaClient(fake_rasa[1], timeout=5), max_chars=2000)
    await gateway.resume_report(conversation_id, key="handback:tg")
    await gateway.rasa.aclose()
    await deliver_due(session_factory)
    question = fake.sent_messages(chat)[-1]
    assert question.params["text"] == "어느 구인가요?"
    button = question.params["reply_markup"]["inline_keyboard"][0][0]
    assert button["text"] == "마포구" and "/inform" not in button["callback_data"]
    await post(client, tg.callback_update(chat, button["callback_data"], message_id=question.result["message_id"]))
    await eventually(lambda: rasa.turns[-1]["message"] == "/inform")
