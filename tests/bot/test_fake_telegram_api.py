"""The fake Telegram Bot API, driven by python-telegram-bot itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter

from telephony.local_twilio import serve_in_thread as serve
from tests.fakes.telegram_api import (
    FakeTelegramAPI,
    callback_update,
    contact_update,
    document_update,
    edited_text_update,
    location_update,
    photo_update,
    sticker_update,
    text_update,
    voice_update,
)

TOKEN = "123456:TEST-token"
CHAT = 5550001


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeTelegramAPI, str]]:
    fake = FakeTelegramAPI()
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake(server: tuple[FakeTelegramAPI, str]) -> FakeTelegramAPI:
    server[0].reset()
    return server[0]


@pytest.fixture
def url(server: tuple[FakeTelegramAPI, str]) -> str:
    return server[1]


@pytest.fixture
async def bot(fake: FakeTelegramAPI, url: str) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot") as bot:
        yield bot


def keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton("예", callback_data="/affirm"), InlineKeyboardButton("아니요", callback_data="/deny")]]
    )


async def test_ptb_talks_to_the_fake(fake: FakeTelegramAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "seoul_civic_test_bot", True)

    first = await bot.send_message(CHAT, "신고를 접수할까요?", reply_markup=keyboard())
    second = await bot.send_message(CHAT, "두 번째")
    assert first.chat.id == CHAT and first.from_user is not None and first.from_user.id == 123456
    assert second.message_id > first.message_id
    assert first.reply_markup is not None
    assert first.reply_markup.inline_keyboard[0][1].callback_data == "/deny"

    [call, _] = fake.sent_messages(CHAT)
    assert call.method == "sendMessage" and call.params["text"] == "신고를 접수할까요?"
    assert call.params["reply_markup"]["inline_keyboard"][0][0] == {"text": "예", "callback_data": "/affirm"}
    assert call.result["message_id"] == first.message_id and call.status == 200

    path = fake.add_file("photo-1", b"\xff\xd8jpeg bytes")
    file = await bot.get_file("photo-1")
    assert file.file_path is not None and file.file_path.endswith(path) and file.file_size == 12
    assert await file.download_as_bytearray() == bytearray(b"\xff\xd8jpeg bytes")
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await bot.get_file("nope")

    assert await bot.set_webhook("https://example.test/telegram", secret_token="s3cret", allowed_updates=["message"])
    assert fake.webhook == {
        "url": "https://example.test/telegram",
        "secret_token": "s3cret",
        "allowed_updates": ["message"],
    }
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("https://example.test/telegram", 0)

    assert await bot.answer_callback_query("4242", text="접수했습니다")
    assert await bot.send_chat_action(CHAT, "typing")
    assert [c.params["callback_query_id"] for c in fake.calls_to("answerCallbackQuery")] == ["4242"]
    assert len(fake.calls_to("sendMessage", chat_id=str(CHAT))) == 2
    assert fake.calls_to("sendmessage", chat_id=999) == []


async def test_edits_and_photo_upload(fake: FakeTelegramAPI, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "분류를 골라 주세요", reply_markup=keyboard())
    edited = await bot.edit_message_reply_markup(CHAT, sent.message_id)
    assert not isinstance(edited, bool)
    assert edited.text == "분류를 골라 주세요" and edited.reply_markup is None and edited.edit_date is not None
    edited = await bot.edit_message_text("불법 주정차", chat_id=CHAT, message_id=sent.message_id)
    assert not isinstance(edited, bool) and edited.text == "불법 주정차"
    assert await bot.edit_message_reply_markup(inline_message_id="inline-1") is True

    photo = await bot.send_photo(CHAT, InputFile(b"\x89PNG data", filename="map.png"), caption="지도")
    assert photo.caption == "지도" and len(photo.photo) == 3
    [call] = fake.calls_to("sendPhoto", chat_id=CHAT)
    assert call.params["photo"] == b"\x89PNG data" and call.params["caption"] == "지도"
    file = await bot.get_file(photo.photo[-1].file_id)
    assert await file.download_as_bytearray() == bytearray(b"\x89PNG data")
    by_id = await bot.send_photo(CHAT, "AgAC-existing")
    assert by_id.photo[-1].file_id == "AgAC-existing"
    assert [c.method for c in fake.sent_messages(CHAT)] == ["sendMessage", "sendPhoto", "sendPhoto"]


@pytest.mark.filterwarnings("ignore:Deprecated since version v22.2")  # PTB's own RetryAfter.retry_after
async def test_failures(fake: FakeTelegramAPI, bot: Bot) -> None:
    fake.block_chat(CHAT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "안녕하세요")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(CHAT, "typing")
    assert fake.calls_to("sendMessage", CHAT)[0].status == 403
    assert fake.sent_messages(CHAT) == []
    await bot.send_message(CHAT + 1, "other chats still work")

    fake.fail_next("sendMessage", retry_after=3)
    fake.fail_next("sendMessage", status=502)
    with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
        await bot.send_message(CHAT + 1, "a")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(CHAT + 1, "b")
    await bot.send_message(CHAT + 1, "c")
    assert [c.status for c in fake.calls_to("sendMessage", CHAT + 1)] == [200, 429, 502, 200]
    assert [c.params["text"] for c in fake.sent_messages(CHAT + 1)] == ["other chats still work", "c"]

    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(CHAT + 1, " ")
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(CHAT + 1, "x", reply_markup=too_long)


async def test_raw_wire_protocol(fake: FakeTelegramAPI, url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/bot999:wrong/getMe")
        assert response.status_code == 401
        assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        response = await client.post(f"/bot{TOKEN}/sendCarrierPigeon")
        assert response.status_code == 404
        assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

        response = await client.get(f"/bot{TOKEN}/SENDMESSAGE", params={"chat_id": 7, "text": "hi"})
        assert response.json()["result"]["chat"] == {"id": 7, "type": "private", "first_name": "Citizen"}
        markup = {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]}
        response = await client.post(
            f"/bot{TOKEN}/sendMessage", json={"chat_id": -100, "text": "group", "reply_markup": markup}
        )
        assert response.json()["result"]["chat"]["type"] == "group"
        assert response.json()["result"]["reply_markup"] == markup
        [get, posted] = fake.calls_to("sendMessage")
        assert get.params == {"chat_id": "7", "text": "hi"}
        assert posted.params == {"chat_id": -100, "text": "group", "reply_markup": markup}

        fake.add_file("f", b"data")
        assert (await client.get(f"/file/bot{TOKEN}/photos/%2E%2E/photos/file_1.jpg")).status_code == 404
        assert (await client.get(f"/file/bot{TOKEN}/photos/missing.jpg")).status_code == 404
        assert (await client.get("/file/bot1:x/photos/file_1.jpg")).status_code == 401

    with pytest.raises(InvalidToken):
        async with Bot("1:wrong", base_url=f"{url}/bot") as bot:
            await bot.get_me()


async def test_get_updates_long_polls(fake: FakeTelegramAPI, bot: Bot) -> None:
    first = fake.push_update(text_update(CHAT, "안녕"))
    [update] = await bot.get_updates(timeout=0)
    assert update.update_id == first["update_id"] and update.message is not None and update.message.text == "안녕"
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()

    started = time.monotonic()
    asyncio.get_running_loop().call_later(0.3, fake.push_update, location_update(CHAT, 37.57, 126.98))
    [update] = await bot.get_updates(offset=update.update_id + 1, timeout=3)
    assert 0.25 < time.monotonic() - started < 2
    assert update.message is not None and update.message.location is not None

    started = time.monotonic()
    assert await bot.get_updates(offset=update.update_id + 1, timeout=1) == ()
    assert time.monotonic() - started >= 0.9

    await bot.set_webhook("https://example.test/hook")
    with pytest.raises(Conflict):
        await bot.get_updates(timeout=0)
    await bot.delete_webhook()


def test_wait_for_reports_what_happened(fake: FakeTelegramAPI) -> None:
    fake.wait_for(lambda: True)
    with pytest.raises(TimeoutError, match="no calls"):
        fake.wait_for(lambda: False, timeout=0.1)


async def test_builders_parse_as_ptb_updates() -> None:
    bot = Bot(TOKEN)

    command = Update.de_json(text_update(CHAT, "/start@seoul_civic_test_bot hello", language_code="en"), bot)
    assert command.effective_message is not None and command.effective_user is not None
    assert command.effective_message.text == "/start@seoul_civic_test_bot hello"
    assert command.effective_message.parse_entities() == {
        command.effective_message.entities[0]: "/start@seoul_civic_test_bot"
    }
    assert (command.effective_user.id, command.effective_user.language_code) == (CHAT, "en")
    assert command.effective_chat is not None and command.effective_chat.type == "private"

    plain = Update.de_json(text_update(CHAT, "불법 주차 신고"), bot)
    assert plain.effective_message is not None and plain.effective_message.entities == ()
    assert plain.effective_message.message_id > command.effective_message.message_id

    group = Update.de_json(text_update(CHAT, "hi", chat_type="group", user_id=77), bot)
    assert group.effective_chat is not None and group.effective_user is not None
    assert (group.effective_chat.id, group.effective_chat.type, group.effective_user.id) == (-CHAT, "group", 77)

    location = Update.de_json(location_update(CHAT, 37.5665, 126.978), bot)
    assert location.effective_message is not None and location.effective_message.location is not None
    assert location.effective_message.location.latitude == 37.5665

    photo = Update.de_json(photo_update(CHAT, "AgACphoto", caption="쓰레기", media_group_id="g1"), bot)
    assert photo.effective_message is not None
    sizes = photo.effective_message.photo
    assert [p.file_id for p in sizes] == ["AgACphoto-s0", "AgACphoto-s1", "AgACphoto"]
    assert sizes[-1].width == 1280 and photo.effective_message.caption == "쓰레기"
    assert photo.effective_message.media_group_id == "g1"

    contact = Update.de_json(contact_update(CHAT, "+821012345678", contact_user_id=CHAT), bot)
    assert contact.effective_message is not None and contact.effective_message.contact is not None
    assert (contact.effective_message.contact.user_id, contact.effective_message.contact.phone_number) == (
        CHAT,
        "+821012345678",
    )
    stranger = Update.de_json(contact_update(CHAT, "+82212345678", contact_user_id=None), bot)
    assert stranger.effective_message is not None and stranger.effective_message.contact is not None
    assert stranger.effective_message.contact.user_id is None

    callback = Update.de_json(callback_update(CHAT, "/affirm", message_id=41, message_text="맞나요?"), bot)
    query = callback.callback_query
    assert query is not None and query.data == "/affirm" and query.from_user.id == CHAT and query.chat_instance
    assert query.message is not None and query.message.message_id == 41 and query.message.chat.id == CHAT
    assert callback.effective_message is not None and callback.effective_message.text == "맞나요?"
    assert callback.effective_message.from_user is not None and callback.effective_message.from_user.is_bot

    sticker = Update.de_json(sticker_update(CHAT), bot)
    assert sticker.effective_message is not None and sticker.effective_message.sticker is not None
    assert sticker.effective_message.sticker.emoji == "👍"

    voice = Update.de_json(voice_update(CHAT, duration=5), bot)
    assert voice.effective_message is not None and voice.effective_message.voice is not None
    assert voice.effective_message.voice.to_dict()["duration"] == 5

    document = Update.de_json(document_update(CHAT, "BQAC", "application/pdf", "민원.pdf"), bot)
    assert document.effective_message is not None and document.effective_message.document is not None
    assert document.effective_message.document.file_name == "민원.pdf"

    edited = Update.de_json(edited_text_update(CHAT, "고쳤어요", 12), bot)
    assert edited.edited_message is not None and edited.message is None
    assert (edited.edited_message.message_id, edited.edited_message.text) == (12, "고쳤어요")
    assert edited.edited_message.edit_date is not None

    ids = [u.update_id for u in (command, plain, location, photo, contact, callback, sticker, voice, edited)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
